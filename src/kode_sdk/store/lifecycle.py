"""The store lifecycle every backend shares (:class:`BaseStore`) and the
``operation`` decorators that apply the contract's policy to each public method."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal, TypeVar, cast

from ..errors import (
    KodeError,
    StoreClosedError,
)
from ..types import (
    ToolCallRecord,
)
from .agent_ids import validate_agent_id
from .locks import AgentLock
from .metrics import Metrics
from .policy import (
    ARGUMENT_RULES,
    DriverErrorKind,
    OpKind,
    driver_error,
    kind_of,
)
from .transaction import BufferedDriver, StoreTransaction, TransactionDriver, upserted

F = TypeVar("F", bound=Callable[..., Any])


class BaseStore:
    """Lifecycle and instrumentation shared by every backend.

    Subclasses implement :meth:`_open` and :meth:`_close`. Constructors do no
    I/O; the store opens on first use or on ``await store.open()``.
    """

    #: Short backend name used in metrics labels and ``repr``.
    backend_name = "store"

    def __init__(self) -> None:
        self._state: Literal["new", "open", "closed"] = "new"
        self._open_lock: asyncio.Lock | None = None
        self.metrics = Metrics()
        # agent id -> (task holding it through agent_lock, the lock, nesting depth)
        self._nested_locks: dict[str, tuple[asyncio.Task[Any] | None, AgentLock, int]] = {}

    async def open(self) -> None:
        """Open the store (create files, connect, migrate). Idempotent."""
        if self._state == "open":
            return
        if self._state == "closed":
            raise StoreClosedError(f"{self.backend_name} store is closed")
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._state == "new":
                await self._open()
                self._state = "open"
            elif self._state == "closed":
                raise StoreClosedError(f"{self.backend_name} store is closed")

    async def close(self) -> None:
        """Flush what is buffered and release every resource. Closing twice is harmless."""
        if self._state == "closed":
            return
        was_open = self._state == "open"
        self._state = "closed"
        if was_open:
            await self._close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._state == "closed"

    async def __aenter__(self) -> Any:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def _ensure_open(self) -> None:
        if self._state != "open":
            await self.open()

    def _driver_error_kind(self, exc: Exception) -> DriverErrorKind | None:
        """Classify an exception the backend's driver raised: ``"connection"``,
        ``"conflict"`` or ``"input"``; ``None`` for one that is not the
        driver's. :mod:`~kode_sdk.store.policy` decides what the caller sees."""
        return None

    @contextlib.asynccontextmanager
    async def transaction(self, agent_id: str) -> AsyncIterator[StoreTransaction]:
        """A unit of work for ``agent_id``: the write methods on the yielded
        :class:`~kode_sdk.store.transaction.StoreTransaction` are committed
        together when the block ends, or not at all if it raises.

        >>> async with store.transaction("agt-1") as tx:           # doctest: +SKIP
        ...     await tx.append_messages("agt-1", messages)
        ...     await tx.upsert_tool_call_record("agt-1", record)
        """
        if self._state != "open":
            await self._ensure_open()
        validate_agent_id(agent_id)
        self._before_write(agent_id)
        tx = StoreTransaction(self, agent_id, self._transaction_driver(agent_id))
        try:
            yield tx
        except BaseException:
            await tx._finish(False)
            raise
        await tx._finish(True)

    def _transaction_driver(self, agent_id: str) -> TransactionDriver:
        """How this backend runs a transaction (default: buffered replay)."""
        return BufferedDriver(self, agent_id)

    async def _upsert_tool_call_by_rewrite(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None:
        """``upsert_tool_call_record`` for a backend without a one-row path:
        read the list, replace or append the record, save the list."""
        item = ToolCallRecord.coerce(record, "record")
        store: Any = self
        await store.save_tool_call_records(agent_id, upserted(await store.load_tool_call_records(agent_id), item))

    def _before_write(self, agent_id: str) -> None:
        """Called before every write call for ``agent_id``; a backend whose
        locks can lapse raises :class:`~kode_sdk.errors.LockLostError` here."""

    @contextlib.asynccontextmanager
    async def agent_lock(self, agent_id: str, timeout_ms: int = 30_000) -> AsyncIterator[AgentLock]:
        """Hold the agent's lock for the ``async with`` block.

        Blocks nest within one task: inside ``agent_lock(a)`` the same task may
        enter ``agent_lock(a)`` of this store again, and the lock is freed when
        the outermost block ends; other tasks wait. (:meth:`acquire_agent_lock`
        itself is not re-entrant.)

        >>> async with store.agent_lock("agt-1", timeout_ms=5000):   # doctest: +SKIP
        ...     info = await store.load_info("agt-1")
        """
        task = asyncio.current_task()
        held = self._nested_locks.get(agent_id)
        if held is not None and held[0] is task and not held[1].released:
            # The same task is already inside agent_lock(agent_id) of this store
            # (e.g. agent.chat() inside a caller's block): nest, do not wait for ourselves.
            self._nested_locks[agent_id] = (task, held[1], held[2] + 1)
            try:
                yield held[1]
            finally:
                current = self._nested_locks.get(agent_id)
                if current is not None and current[1] is held[1]:
                    self._nested_locks[agent_id] = (task, held[1], current[2] - 1)
            return
        lock: AgentLock = await self.acquire_agent_lock(agent_id, timeout_ms)  # type: ignore[attr-defined]
        self._nested_locks[agent_id] = (task, lock, 1)
        try:
            yield lock
        finally:
            current = self._nested_locks.get(agent_id)
            if current is not None and current[1] is lock:
                del self._nested_locks[agent_id]
            await lock.release()


def _query_rule(
    rule: Callable[[tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]],
) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]:
    """``rule`` plus the agent-id rules for an ``agent_id`` filter (kept here:
    validate_agent_id lives in this module)."""

    def checked(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args, kwargs = rule(args, kwargs)
        if kwargs.get("agent_id") is not None:
            validate_agent_id(kwargs["agent_id"])
        return args, kwargs

    return checked


def _rule_for(name: str) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]] | None:
    rule = ARGUMENT_RULES.get(name)
    if rule is not None and name.startswith("query_"):
        return _query_rule(rule)
    return rule


def _mapped(self: BaseStore, exc: Exception) -> Exception:
    """``exc``, or the error-hierarchy error it stands for if it is a driver exception."""
    if isinstance(exc, KodeError):
        return exc
    kind = self._driver_error_kind(exc)
    return exc if kind is None else driver_error(kind, exc, self.backend_name)


def _check_agent(self: BaseStore, args: tuple[Any, ...], kwargs: Mapping[str, Any], *, writes: bool) -> None:
    """Validate the agent id a call names (its first argument); a write first
    lets the store see it (see ``_before_write``)."""
    agent_id = args[0] if args else kwargs.get("agent_id")
    validate_agent_id(agent_id)
    if writes:
        self._before_write(cast(str, agent_id))


class _Recorded:
    """One call of a store method: timed into the store's metrics on exit (an
    error unless ``ok`` was set), a driver exception raised as the error of
    the hierarchy it stands for."""

    __slots__ = ("kind", "name", "ok", "started", "store")

    def __init__(self, store: BaseStore, kind: OpKind, name: str) -> None:
        self.store, self.kind, self.name = store, kind, name
        self.ok = False
        self.started = time.perf_counter()

    def __enter__(self) -> _Recorded:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, traceback: object) -> None:
        self.store.metrics.record(self.kind, self.name, (time.perf_counter() - self.started) * 1000, self.ok)
        if isinstance(exc, Exception):
            mapped = _mapped(self.store, exc)
            if mapped is not exc:
                raise mapped from exc


def operation(kind: OpKind, *, agent: bool = True) -> Callable[[F], F]:
    """Decorate a public async store method: open on first use, refuse after
    ``close()``, validate the first argument as an agent id (``agent=True``),
    normalise the arguments by the rules of :mod:`~kode_sdk.store.policy`,
    map driver exceptions to the error hierarchy, and record the call in the
    store's metrics under the kind the policy gives the method (``kind`` only
    for methods the contract does not name)."""

    def decorate(fn: F) -> F:
        name = fn.__name__
        method_kind = kind_of(name, kind)
        writes = method_kind in ("saves", "deletes")
        rule = _rule_for(name)  # looked up once, not per call

        @functools.wraps(fn)
        async def wrapper(self: BaseStore, *args: Any, **kwargs: Any) -> Any:
            if self._state != "open":
                await self._ensure_open()
            if agent:
                _check_agent(self, args, kwargs, writes=writes)
            # What _Recorded does, inlined: this wrapper runs on every store
            # call, and the context manager costs about 1 µs more a call.
            started = time.perf_counter()
            ok = False
            try:
                if rule is not None:
                    # Inside the record: a refused call is counted, as an error of its kind.
                    args, kwargs = rule(args, kwargs)
                result = await fn(self, *args, **kwargs)
                ok = True
                return result
            except Exception as exc:
                mapped = _mapped(self, exc)
                if mapped is exc:
                    raise
                raise mapped from exc
            finally:
                self.metrics.record(method_kind, name, (time.perf_counter() - started) * 1000, ok)

        wrapper.__kode_operation__ = method_kind  # type: ignore[attr-defined]  # read by tests/test_policy.py
        return cast(F, wrapper)

    return decorate


def operation_iter(kind: OpKind, *, agent: bool = True) -> Callable[[F], F]:
    """Like :func:`operation`, for async-generator methods (``read_events``).

    Validation happens on the first ``__anext__``, as for any async generator.
    """

    def decorate(fn: F) -> F:
        name = fn.__name__
        method_kind = kind_of(name, kind)

        @functools.wraps(fn)
        async def wrapper(self: BaseStore, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            if self._state != "open":
                await self._ensure_open()
            if agent:
                _check_agent(self, args, kwargs, writes=False)
            with _Recorded(self, method_kind, name) as call:
                async for item in fn(self, *args, **kwargs):
                    yield item
                call.ok = True

        wrapper.__kode_operation__ = method_kind  # type: ignore[attr-defined]  # read by tests/test_policy.py
        return cast(F, wrapper)

    return decorate
