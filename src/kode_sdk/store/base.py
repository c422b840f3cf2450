"""What every backend shares: the Store protocols, agent-id validation, the
store lifecycle, metrics, the snapshots and list diff behind incremental saves,
event validation and group commit, and the small rules of the query API.

A backend subclasses :class:`BaseStore`, implements the ``_open``/``_close``
hooks and decorates each public method with :func:`operation`, which opens the
store on first use, refuses calls after ``close()``, validates the agent id and
records the call in :class:`Metrics`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import itertools
import logging
import math
import operator
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, Protocol, TypeVar, cast, runtime_checkable
from uuid import UUID

from pydantic import BaseModel

from .. import jsoncodec
from ..errors import (
    InvalidAgentIdError,
    KodeError,
    RecordValidationError,
    StoreClosedError,
)
from ..types import (
    CHANNELS,
    AgentInfo,
    AgentStats,
    Bookmark,
    CompressionRecord,
    ConsistencyCheckResult,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    MessageHit,
    OperationCounts,
    PerformanceMetrics,
    RecoveredFile,
    SessionInfo,
    Snapshot,
    StorageMetrics,
    StoredMessage,
    StoredToolCall,
    StoreHealthStatus,
    StoreMetrics,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
    ToolCallState,
    now_utc,
)
from .policy import (
    ARGUMENT_RULES,
    DriverErrorKind,
    OpKind,
    check_page,
    check_sort,
    driver_error,
    kind_of,
    time_bound,
)
from .results import message_from_wire
from .transaction import BufferedDriver, StoreTransaction, TransactionDriver, upserted

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "AgentLock",
    "BaseStore",
    "EventCommitter",
    "ExactNumber",
    "ExtendedStore",
    "Metrics",
    "OpKind",
    "PendingEvent",
    "QueryableStore",
    "SavedListCache",
    "Store",
    "StoreTransaction",
    "changed_positions",
    "check_channel",
    "check_int64",
    "check_page",
    "check_sort",
    "coerce_list",
    "created_at_clauses",
    "duplicate_seq_error",
    "event_row",
    "event_rows",
    "fork_agent_ids",
    "message_from_wire",
    "message_keys",
    "message_snapshot",
    "message_snapshot_from_wire",
    "message_to_wire",
    "operation",
    "prefix_upper_bound",
    "share_copy",
    "since_seq",
    "stats_from_counts",
    "time_bound",
    "tool_call_keys",
    "tool_call_snapshot",
    "updated_snapshots",
    "user_id_of",
    "validate_agent_id",
]

logger = logging.getLogger("kode_sdk.store")

# --------------------------------------------------------------------------- agent ids

MAX_AGENT_ID_LENGTH = 128
_AGENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def validate_agent_id(agent_id: object) -> str:
    """Return ``agent_id`` if it is a valid agent id, else raise
    :class:`InvalidAgentIdError` saying why.

    Valid: a ``str`` of 1–128 characters from ``[A-Za-z0-9._:-]``, not ``.`` or
    ``..``. No valid id can name a path outside a store's directory.

    >>> validate_agent_id("agt:demo-1")
    'agt:demo-1'
    """
    if type(agent_id) is str and _AGENT_ID.fullmatch(agent_id) and agent_id not in (".", ".."):
        return agent_id
    raise InvalidAgentIdError(_agent_id_problem(agent_id))


def _agent_id_problem(agent_id: object) -> str:
    if type(agent_id) is not str:  # a str subclass could override comparisons or hashing
        return f"invalid agent id: expected a str, got {type(agent_id).__name__}"
    shown = repr(agent_id if len(agent_id) <= 40 else agent_id[:40] + "…")
    if not agent_id:
        return "invalid agent id '': must not be empty"
    if len(agent_id) > MAX_AGENT_ID_LENGTH:
        return f"invalid agent id {shown}: {len(agent_id)} characters, at most {MAX_AGENT_ID_LENGTH} allowed"
    if agent_id in (".", ".."):
        return f"invalid agent id {shown}: '.' and '..' are reserved"
    bad = next(ch for ch in agent_id if not _AGENT_ID.fullmatch(ch))
    return f"invalid agent id {shown}: character {bad!r} is not allowed (use A-Z a-z 0-9 . _ : -)"


# --------------------------------------------------------------------------- metrics


# Latency buckets in ms: 10 per decade from 10 µs to 100 s. Bounded memory,
# percentiles within one bucket (~26 %) of the truth, exact min/max/avg.
_BUCKET_BOUNDS_MS: tuple[float, ...] = tuple(10 ** (e / 10) for e in range(-20, 51))


class Metrics:
    """Counters per operation kind and a bounded latency histogram.

    ``record`` is called by :func:`operation` for every public store call.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {"saves": 0, "loads": 0, "queries": 0, "deletes": 0, "other": 0}
        self.by_method: dict[str, int] = {}
        self.errors = 0
        self._buckets = [0] * (len(_BUCKET_BOUNDS_MS) + 1)
        self._n = 0
        self._sum_ms = 0.0
        self._min_ms = math.inf
        self._max_ms = 0.0

    def record(self, kind: str, method: str, elapsed_ms: float, ok: bool = True) -> None:
        """Count one call of ``method`` (of ``kind``) that took ``elapsed_ms``."""
        self.counts[kind] += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1
        if not ok:
            self.errors += 1
        self._buckets[bisect.bisect_left(_BUCKET_BOUNDS_MS, elapsed_ms)] += 1
        self._n += 1
        self._sum_ms += elapsed_ms
        self._min_ms = min(self._min_ms, elapsed_ms)
        self._max_ms = max(self._max_ms, elapsed_ms)

    def percentile(self, q: float) -> float:
        """Latency (ms) below which a fraction ``q`` of calls fell, from the histogram."""
        if self._n == 0:
            return 0.0
        rank = q * self._n
        seen = 0
        for index, count in enumerate(self._buckets):
            seen += count
            if seen >= rank and count:
                upper = _BUCKET_BOUNDS_MS[index] if index < len(_BUCKET_BOUNDS_MS) else self._max_ms
                lower = _BUCKET_BOUNDS_MS[index - 1] if index > 0 else 0.0
                # Interpolate inside the bucket, then clamp to what was observed.
                within = (rank - (seen - count)) / count
                value = lower + (upper - lower) * within
                return min(max(value, self._min_ms), self._max_ms)
        return self._max_ms

    def operations(self) -> OperationCounts:
        """The counters as an :class:`OperationCounts`."""
        return OperationCounts(
            saves=self.counts["saves"],
            loads=self.counts["loads"],
            queries=self.counts["queries"],
            deletes=self.counts["deletes"],
        )

    def performance(self) -> PerformanceMetrics:
        """The latency summary as a :class:`PerformanceMetrics`."""
        if self._n == 0:
            return PerformanceMetrics()
        return PerformanceMetrics(
            avg_latency_ms=self._sum_ms / self._n,
            min_latency_ms=self._min_ms,
            max_latency_ms=self._max_ms,
            p50_latency_ms=self.percentile(0.50),
            p95_latency_ms=self.percentile(0.95),
            p99_latency_ms=self.percentile(0.99),
        )

    def snapshot(self, storage: StorageMetrics) -> StoreMetrics:
        """A :class:`StoreMetrics` of these counters plus ``storage``."""
        return StoreMetrics(
            operations=self.operations(),
            performance=self.performance(),
            storage=storage,
            collected_at=now_utc(),
        )

    def prometheus(self, storage: StorageMetrics | None = None, *, backend: str = "store") -> str:
        """These metrics in the Prometheus text exposition format (version 0.0.4)."""
        label = f'backend="{backend}"'
        lines = [
            "# HELP kode_store_operations_total Store calls by kind.",
            "# TYPE kode_store_operations_total counter",
        ]
        for kind, count in self.counts.items():
            lines.append(f'kode_store_operations_total{{{label},kind="{kind}"}} {count}')
        lines += [
            "# HELP kode_store_method_calls_total Store calls by method.",
            "# TYPE kode_store_method_calls_total counter",
        ]
        for method, count in sorted(self.by_method.items()):
            lines.append(f'kode_store_method_calls_total{{{label},method="{method}"}} {count}')
        lines += [
            "# HELP kode_store_errors_total Store calls that raised.",
            "# TYPE kode_store_errors_total counter",
            f"kode_store_errors_total{{{label}}} {self.errors}",
            "# HELP kode_store_call_duration_seconds Latency of store calls.",
            "# TYPE kode_store_call_duration_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip(_BUCKET_BOUNDS_MS, self._buckets, strict=False):
            cumulative += count
            lines.append(f'kode_store_call_duration_seconds_bucket{{{label},le="{bound / 1000:.6g}"}} {cumulative}')
        lines.append(f'kode_store_call_duration_seconds_bucket{{{label},le="+Inf"}} {self._n}')
        lines.append(f"kode_store_call_duration_seconds_sum{{{label}}} {self._sum_ms / 1000:.9g}")
        lines.append(f"kode_store_call_duration_seconds_count{{{label}}} {self._n}")
        if storage is not None:
            for name, value in (
                ("agents", storage.total_agents),
                ("messages", storage.total_messages),
                ("tool_calls", storage.total_tool_calls),
            ):
                lines += [f"# TYPE kode_store_{name} gauge", f"kode_store_{name}{{{label}}} {value}"]
            if storage.db_size_bytes is not None:
                lines += [
                    "# TYPE kode_store_db_size_bytes gauge",
                    f"kode_store_db_size_bytes{{{label}}} {storage.db_size_bytes}",
                ]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- lifecycle

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
                agent_id = args[0] if args else kwargs.get("agent_id")
                validate_agent_id(agent_id)
                if writes:
                    self._before_write(cast(str, agent_id))
            started = time.perf_counter()
            ok = False
            try:
                if rule is not None:
                    # Inside the try: a refused call is counted, as an error of its kind.
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
                validate_agent_id(args[0] if args else kwargs.get("agent_id"))
            started = time.perf_counter()
            ok = False
            try:
                async for item in fn(self, *args, **kwargs):
                    yield item
                ok = True
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


# --------------------------------------------------------------------------- locks


class AgentLock:
    """A held agent lock. ``await lock.release()`` (or ``await lock()``) frees it;
    releasing twice is harmless. Also an async context manager.

    Backends subclass it and implement :meth:`_release`.
    """

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self._released = False

    @property
    def released(self) -> bool:
        """True once the lock has been released."""
        return self._released

    async def release(self) -> None:
        """Free the lock so another waiter can take it."""
        if self._released:
            return
        self._released = True
        await self._release()

    async def __call__(self) -> None:
        await self.release()

    async def __aenter__(self) -> AgentLock:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.release()

    async def _release(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<{type(self).__name__} agent_id={self.agent_id!r} {state}>"


async def wait_with_backoff(
    attempt: Callable[[], Awaitable[bool]], timeout_ms: int, *, first_delay_s: float = 0.001, max_delay_s: float = 0.05
) -> bool:
    """Call ``attempt`` until it returns True or ``timeout_ms`` has passed,
    sleeping with exponential backoff between tries. Returns the last outcome."""
    if timeout_ms < 0:
        raise ValueError(f"timeout_ms must be >= 0, got {timeout_ms}")
    deadline = time.monotonic() + timeout_ms / 1000
    delay = first_delay_s
    while True:
        if await attempt():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, max_delay_s)


# --------------------------------------------------------------------------- record input


R = TypeVar("R", Message, ToolCallRecord, MediaCacheRecord)


def coerce_list(model: type[R], items: object, field_name: str) -> list[R]:
    """Validate a list argument item by item (models pass through untouched).

    Raises :class:`RecordValidationError` naming ``field_name[i]``.
    """
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        raise RecordValidationError(
            f"{field_name}: expected a list of {model.__name__}, got {type(items).__name__}", field=field_name
        )
    if type(items) is list and set(map(type, items)) <= {model}:
        return list(items)  # all validated already: no Python-level loop (hot path of save_*)
    out: list[R] = []
    for index, item in enumerate(items):
        out.append(item if type(item) is model else model.coerce(item, f"{field_name}[{index}]"))
    return out


def message_to_wire(message: Message) -> dict[str, Any]:
    """The KODE wire shape of a message, built directly (faster than model_dump)."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.metadata is not None:
        wire["metadata"] = message.metadata
    extra = message.__pydantic_extra__
    if extra:
        wire.update(extra)
    return wire


# --------------------------------------------------------------------------- incremental saves
#
# An incremental save compares the list being saved with *snapshots* of the
# list saved last and writes only the positions that differ.
#
# A key (message_keys, tool_call_keys) is an object's state as it holds it,
# read without copying: plain dicts, lists and tuples, so a comparison runs in
# C, with no pydantic ``__eq__`` and no Python call per position. A snapshot
# (message_snapshot, tool_call_snapshot) compares equal to the key of an
# unchanged object but is independent of it: containers are copied, immutable
# leaves shared (share_copy). A caller mutating a saved object in place
# therefore still differs from its snapshot, while an unchanged string compares
# by identity, without reading its bytes: comparing a 600-message history reads
# pointers, not its 800 KB of text.
#
# What cannot be avoided: the caller hands over the whole list, and any of its
# objects may have been mutated in place, so every save still reads every
# position once (O(history), in C). append_messages is the O(1) way to grow.
#
# In a backend (``cached`` from a SavedListCache, version-checked in the write
# transaction; on a miss, snapshots of the stored rows):
#
#     changed = changed_positions(message_keys(messages), cached)
#     ... write messages[i] for i in changed, delete positions >= len(messages) ...
#     cache.put(agent_id, version, updated_snapshots(cached, messages, changed, message_snapshot))

T = TypeVar("T")

_IMMUTABLE_LEAVES = (str, int, float, bool, bytes, date, dt_time, timedelta, Decimal, UUID, Enum)
# The last positions, those an agent loop edits (a tool call moving from
# executing to completed, the messages of the current turn), are compared one
# by one, so editing them keeps the one-comparison fast path for the rest.
_TAIL = 4
_MODEL_PARTS = operator.attrgetter("__dict__", "__pydantic_extra__")
_RECORD_PARTS = operator.attrgetter(
    "__dict__", "__pydantic_extra__", "approval.__dict__", "approval.__pydantic_extra__", "audit_trail"
)


class ExactNumber:
    """A number in a diff snapshot that equals only a number of the same JSON kind.

    Python says ``0 == False == 0.0`` and ``1 == True == 1.0``; JSON tells
    ``0``, ``false`` and ``0.0`` apart. An incremental save comparing the new
    list with a snapshot by plain ``==`` would take such a change for "unchanged"
    and never write it. Snapshots hold numbers wrapped in this class, so a
    comparison in C (``new == snapshot``) falls back to :meth:`__eq__` for them
    and stays exact; strings and ``None`` stay shared, compared as before.

    >>> [0, 1.0] == [ExactNumber(0), ExactNumber(1.0)], [False, 1] == [ExactNumber(0), ExactNumber(1.0)]
    (True, False)
    """

    __slots__ = ("value",)

    def __init__(self, value: bool | int | float) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if type(other) is ExactNumber:
            other = other.value
        value = self.value
        if type(other) is not type(value) or other != value:
            return False
        return type(value) is not float or math.copysign(1.0, value) == math.copysign(1.0, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ExactNumber({self.value!r})"


class _NeverEqual:
    """Stands in for a value that cannot be snapshotted (an object of unknown
    type, maybe mutable): compares unequal to everything, so its position is
    always rewritten."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]


def share_copy(value: Any) -> Any:
    """A copy of ``value`` that no later mutation of ``value`` can change,
    sharing what cannot change: dicts, lists and tuples are copied (a dict or
    list subclass becomes a plain one), immutable leaves (``str``, numbers,
    ``datetime``, enums, ...) are the same objects. A value of any other type
    becomes a placeholder equal to nothing.

    >>> content = [{"type": "text", "text": "hi"}]
    >>> copy = share_copy(content)
    >>> copy == content, copy[0] is content[0], copy[0]["text"] is content[0]["text"]
    (True, False, True)
    """
    kind = type(value)
    # Exact types first: JSON is nearly all str, dict and list.
    if kind is str or value is None:
        return value
    if kind is int or kind is bool or kind is float:
        return ExactNumber(value)  # so 0 / False / 0.0 stay different (see ExactNumber)
    if kind is dict:
        return {key: share_copy(item) for key, item in value.items()}
    if kind is list:
        return [share_copy(item) for item in value]
    if kind is tuple:
        return tuple(share_copy(item) for item in value)
    if isinstance(value, _IMMUTABLE_LEAVES):
        return value
    if isinstance(value, dict):
        return {key: share_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [share_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(share_copy(item) for item in value)
    return _NeverEqual()


def message_keys(messages: Sequence[Message]) -> list[Any]:
    """The comparison keys of ``messages`` (no copy; built in C), for
    :func:`changed_positions`. Compare them, never keep them: they alias the
    messages' own dicts."""
    return list(map(_MODEL_PARTS, messages))


def message_snapshot(message: Message) -> Any:
    """An independent snapshot of ``message``, equal to its key while the
    message is unchanged (and to nothing once it is mutated in place)."""
    return share_copy(message.__dict__), share_copy(message.__pydantic_extra__)


_MESSAGE_FIELDS = frozenset(Message.model_fields)


def message_snapshot_from_wire(wire: dict[str, Any]) -> Any:
    """The snapshot of the message :func:`message_to_wire` gave ``wire`` (as read
    back from storage, e.g. to rebuild a cache after a miss). ``wire`` becomes
    part of the snapshot: pass one nobody else holds (freshly decoded)."""
    fields = {"role": wire["role"], "content": wire["content"], "metadata": wire.get("metadata")}
    extra = {key: value for key, value in wire.items() if key not in _MESSAGE_FIELDS}
    # Numbers must become ExactNumber like in any snapshot; containers are fresh already.
    return share_copy(fields), share_copy(extra)


def _loose_parts(value: Any) -> tuple[Any, Any]:
    # A model built with model_construct may hold plain dicts where models belong.
    return getattr(value, "__dict__", value), getattr(value, "__pydantic_extra__", None)


def _tool_call_key(record: ToolCallRecord) -> tuple[Any, ...]:
    try:
        fields, extra, approval, approval_extra, trail = _RECORD_PARTS(record)
        return fields, extra, approval, approval_extra, list(map(_MODEL_PARTS, trail))
    except AttributeError:
        return (
            record.__dict__,
            record.__pydantic_extra__,
            *_loose_parts(record.approval),
            [_loose_parts(entry) for entry in record.audit_trail],
        )


def tool_call_keys(records: Sequence[ToolCallRecord]) -> list[Any]:
    """The comparison keys of ``records`` (no copy), for :func:`changed_positions`:
    the record's fields, its approval's and each audit entry's, so an in-place
    change to any of them shows."""
    return list(map(_tool_call_key, records))


def tool_call_snapshot(record: ToolCallRecord) -> Any:
    """An independent snapshot of ``record``, equal to its key while the record
    is unchanged. ``snapshot[0]`` is the record's field dict (``snapshot[0]["id"]``
    is its id)."""
    fields, extra, approval, approval_extra, trail = _tool_call_key(record)
    # The approval and the audit entries stay shared in the field dict (then
    # they compare by identity): their own state is snapshotted beside it.
    shared: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "approval" and isinstance(value, BaseModel):
            shared[name] = value
        elif name == "audit_trail" and type(value) is list:
            shared[name] = list(value)
        else:
            shared[name] = _field_copy(name, value, _RECORD_JSON_FIELDS)
    approval_copy = (
        {name: _field_copy(name, value, _APPROVAL_JSON_FIELDS) for name, value in approval.items()}
        if type(approval) is dict
        else share_copy(approval)
    )
    trail_copy = [
        ({n: _field_copy(n, v, frozenset()) for n, v in entry.items()}, share_copy(entry_extra))
        if type(entry) is dict
        else share_copy((entry, entry_extra))
        for entry, entry_extra in trail
    ]
    return shared, share_copy(extra), approval_copy, share_copy(approval_extra), trail_copy


# Fields holding free JSON, where a number may change kind (1 -> true -> 1.0)
# between saves; every other field of these models is typed, so pydantic fixed
# its kind and its scalar can be shared as it is, compared in C, not through
# ExactNumber (a third of a 200-record diff otherwise).
_RECORD_JSON_FIELDS = frozenset({"input", "result"})
_APPROVAL_JSON_FIELDS = frozenset({"meta"})


def _field_copy(name: str, value: Any, json_fields: frozenset[str]) -> Any:
    if name in json_fields:
        return share_copy(value)
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    return share_copy(value)


def changed_positions(keys: list[Any], snapshots: list[Any]) -> list[int]:
    """Ascending positions of ``keys`` to write: those that differ from
    ``snapshots`` (the list saved last) and those beyond its end. Positions of
    ``snapshots`` at or beyond ``len(keys)`` are the caller's to delete.

    The common case, an unchanged head, is one list comparison in C.

    >>> changed_positions([1, 2, 3, 4, 5, 6, 7], [1, 2, 9, 4, 5, 6])
    [2, 6]
    """
    shared = min(len(keys), len(snapshots))
    head = max(0, shared - _TAIL)
    # Snapshots on the left: their placeholders for unknown objects then decide
    # (equal to nothing), not the ``__eq__`` of what the caller holds.
    start = head if snapshots[:head] == keys[:head] else 0
    differs = map(operator.ne, snapshots[start:shared], keys[start:shared])
    changed = list(itertools.compress(range(start, shared), differs))
    changed.extend(range(shared, len(keys)))
    return changed


def updated_snapshots(
    snapshots: list[Any], items: Sequence[T], changed: Iterable[int], snapshot: Callable[[T], Any]
) -> list[Any]:
    """The snapshots after saving ``items``: a new list, ``snapshots`` cut to
    ``len(items)`` with each ``changed`` position (from :func:`changed_positions`)
    snapshotted afresh."""
    out = snapshots[: len(items)]
    for index in changed:
        fresh = snapshot(items[index])
        if index < len(out):
            out[index] = fresh
        else:
            out.append(fresh)
    return out


class SavedListCache:
    """Per-agent copies of the lists last saved, so a save can be diffed
    without reading the database. Bounded (LRU over agents).

    Entries carry the ``version`` the store had after the save; a backend
    compares it with the version in the database inside its write transaction,
    so a save by another process or store instance is never missed.
    """

    def __init__(self, max_agents: int = 512) -> None:
        self._max = max_agents
        self._entries: OrderedDict[str, tuple[int, list[Any]]] = OrderedDict()

    def get(self, agent_id: str, version: int) -> list[Any] | None:
        """The cached list for ``agent_id`` if it is at ``version``, else None."""
        entry = self._entries.get(agent_id)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(agent_id)
        return entry[1]

    def latest(self, agent_id: str) -> tuple[int, list[Any]] | None:
        """``(version, items)`` cached for ``agent_id``, whatever the version
        (for an optimistic write that checks the version in its own SQL)."""
        entry = self._entries.get(agent_id)
        if entry is not None:
            self._entries.move_to_end(agent_id)
        return entry

    def put(self, agent_id: str, version: int, items: list[Any]) -> None:
        """Remember ``items`` as the state of ``agent_id`` at ``version``."""
        self._entries[agent_id] = (version, items)
        self._entries.move_to_end(agent_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, agent_id: str) -> None:
        """Forget ``agent_id`` (after a delete, or a failed write)."""
        self._entries.pop(agent_id, None)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()


# --------------------------------------------------------------------------- events

#: The range of an event's ``seq`` and ``timestamp``: 64-bit signed, what the
#: SQL backends' BIGINT/INTEGER columns hold. Checked here, above the backends,
#: so every backend refuses the same events (a JSON log could hold 2**70; a
#: database column cannot).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(slots=True)
class PendingEvent:
    """One validated, encoded event on its way to the database."""

    agent_id: str
    seq: int
    channel: str
    event_type: str
    timestamp: int
    data: str  # the Timeline's wire JSON


def check_int64(value: int, field: str) -> int:
    """Refuse an integer a 64-bit column cannot hold, naming the field."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise RecordValidationError(f"{field}: {value} is outside the 64-bit integer range", field=field)
    return value


def event_row(agent_id: str, timeline: Timeline, field: str = "timeline") -> PendingEvent:
    """Encode a validated timeline for storage, after checking its bounds."""
    seq = check_int64(timeline.bookmark.seq, f"{field}.bookmark.seq")
    timestamp = check_int64(timeline.bookmark.timestamp, f"{field}.bookmark.timestamp")
    return PendingEvent(
        agent_id=agent_id,
        seq=seq,
        channel=timeline.event["channel"],
        event_type=timeline.event["type"],
        timestamp=timestamp,
        data=jsoncodec.dumps(
            {
                "cursor": timeline.cursor,
                "bookmark": {"seq": seq, "timestamp": timestamp},
                "event": timeline.event,
                **(timeline.__pydantic_extra__ or {}),
            },
            "timeline",
        ),
    )


def event_rows(agent_id: str, timelines: object, *, single: bool = False) -> list[PendingEvent]:
    """Validate and encode what ``append_event`` (``single``: one timeline) or
    ``append_events`` (a sequence of them) was given.

    Every check happens here, before anything is queued or sent: the record
    shape, the 64-bit bounds, and a seq repeated inside the batch. An error
    names the item (``timelines[3].bookmark.seq: ...``).
    """
    if single:
        return [event_row(agent_id, Timeline.coerce(timelines, "timeline"))]
    if isinstance(timelines, (str, bytes, Mapping)) or not isinstance(timelines, Iterable):
        raise RecordValidationError(
            f"timelines: expected a list of timelines, got {type(timelines).__name__}", field="timelines"
        )
    rows: list[PendingEvent] = []
    seen: set[int] = set()
    for i, item in enumerate(timelines):
        field = f"timelines[{i}]"
        row = event_row(agent_id, Timeline.coerce(item, field), field)
        if row.seq in seen:
            raise RecordValidationError(
                f"{field}.bookmark.seq: seq {row.seq} appears twice in this batch", field=f"{field}.bookmark.seq"
            )
        seen.add(row.seq)
        rows.append(row)
    return rows


def duplicate_seq_error(agent_id: str, seqs: Iterable[int]) -> RecordValidationError:
    """The error for an append whose seq(s) the agent already has stored."""
    found = sorted(seqs)
    shown = ", ".join(str(seq) for seq in found[:10]) + (", ..." if len(found) > 10 else "")
    noun = "seq" if len(found) == 1 else "seqs"
    return RecordValidationError(
        f"timeline.bookmark.seq: {noun} {shown} already stored for agent {agent_id!r}; "
        "nothing of this call was written",
        field="timeline.bookmark.seq",
    )


def since_seq(since: Any) -> int | None:
    """The ``seq`` a ``read_events(since=...)`` argument names: a
    :class:`~kode_sdk.types.Bookmark`, a dict with ``seq``, a :class:`Timeline`,
    or a plain int. ``None`` means from the start."""
    if since is None:
        return None
    if isinstance(since, bool):
        raise RecordValidationError("since: expected a Bookmark or an int seq, got a bool", field="since")
    if isinstance(since, int):
        return since
    if isinstance(since, Timeline):
        return since.bookmark.seq
    seq = getattr(since, "seq", None)
    if seq is None and isinstance(since, Mapping):
        seq = since.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool):
        return seq
    raise RecordValidationError(
        f"since: expected a Bookmark, a dict with an int 'seq', or an int; got {type(since).__name__}", field="since"
    )


def check_channel(channel: str | None) -> str | None:
    """Validate a ``read_events(channel=...)`` filter."""
    if channel is None or channel in CHANNELS:
        return channel
    raise RecordValidationError(f"channel: {channel!r} is not one of 'progress', 'control', 'monitor'", field="channel")


def timeline_from_wire(wire: dict[str, Any]) -> Timeline:
    """Rebuild a :class:`Timeline` from JSON this library wrote."""
    bookmark = wire.pop("bookmark")
    return Timeline.model_construct(bookmark=Bookmark.model_construct(**bookmark), **wire)


class EventCommitter:
    """Group commit for event appends: callers that append *at the same time*
    share one commit, and every caller returns only once its own events are
    committed (nothing is acknowledged from a queue).

    The first caller commits its batch alone, at once (no added latency).
    Callers arriving while a commit is in flight wait; when it ends, all of
    them are committed together in one transaction. If that joint commit
    fails (a duplicate seq, a value the database refuses), each batch is
    retried in a transaction of its own, so an error reaches only the caller
    whose batch caused it and every other batch is stored.

    ``commit(rows)`` is the backend's: write ``rows`` (possibly of several
    agents) in one transaction, or raise and write nothing.
    """

    def __init__(self, commit: Callable[[list[PendingEvent]], Awaitable[None]]) -> None:
        self._commit = commit
        self._busy = False
        self._waiting: list[tuple[list[PendingEvent], asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def append(self, rows: list[PendingEvent]) -> None:
        """Commit ``rows`` (one caller's batch); return once committed."""
        if self._busy:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((rows, future))
            await future
            return
        self._busy = True
        try:
            await self._commit(rows)
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._waiting:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                group = [(rows, future) for rows, future in group if not future.done()]  # cancelled callers
                if len(group) > 1:
                    try:
                        await self._commit([row for rows, _ in group for row in rows])
                    except Exception:
                        pass  # retried one batch at a time below
                    else:
                        for _, future in group:
                            if not future.done():
                                future.set_result(None)
                        continue
                for rows, future in group:
                    try:
                        await self._commit(rows)
                    except Exception as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(None)
        except BaseException as exc:  # cancelled (the loop is ending): nobody waits in vain
            for _, future in self._waiting:
                if not future.done():
                    future.set_exception(StoreClosedError(f"event commit interrupted: {exc!r}"))
            self._waiting = []
            raise
        finally:
            self._busy = False

    async def wait_idle(self) -> None:
        """Wait until every commit in flight has ended (before closing)."""
        while self._busy:
            drainer = self._drainer
            if drainer is not None and not drainer.done():
                with contextlib.suppress(Exception):
                    await asyncio.shield(drainer)
            else:
                await asyncio.sleep(0.001)


# --------------------------------------------------------------------------- queries

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def created_at_clauses(
    created_after: datetime | int | None, created_before: datetime | int | None, placeholder: str
) -> tuple[list[str], list[int]]:
    """SQL conditions (inclusive) and parameters for the ``created_after`` /
    ``created_before`` filters, in the backend's ``placeholder`` style (``?``,
    ``%s``). Bounds are clamped to the BIGINT range every stored timestamp is
    in, which keeps the result the same and the parameter bindable.

    >>> created_at_clauses(0, None, "?")
    (['created_at >= ?'], [0])
    """
    clauses: list[str] = []
    params: list[int] = []
    for value, name, operator_ in (
        (created_after, "created_after", ">="),
        (created_before, "created_before", "<="),
    ):
        bound = time_bound(value, name)
        if bound is not None:
            clauses.append(f"created_at {operator_} {placeholder}")
            params.append(max(min(bound, _INT64_MAX), _INT64_MIN))
    return clauses, params


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``,
    so ``list(prefix)`` is an index range ``[prefix, upper)`` — no LIKE, no
    wildcards, case-sensitive. ``None`` means unbounded.

    >>> prefix_upper_bound("agent_")
    'agent`'
    """
    chars = list(prefix)
    while chars:
        last = ord(chars[-1])
        if last < 0x10FFFF:
            # Skip the surrogate block: not valid in stored text.
            nxt = last + 1 if last + 1 != 0xD800 else 0xE000
            chars[-1] = chr(nxt)
            return "".join(chars)
        chars.pop()
    return None


def user_id_of(metadata: Mapping[str, Any] | None) -> str | None:
    """The user an agent belongs to: ``metadata["userId"]`` or ``metadata["user_id"]``."""
    if not metadata:
        return None
    value = metadata.get("userId", metadata.get("user_id"))
    return value if isinstance(value, str) else (None if value is None else str(value))


def stats_from_counts(
    *,
    total_messages: int,
    total_snapshots: int,
    messages_by_role: Mapping[str, int],
    tool_calls_by_state: Mapping[str, int],
    tool_calls_by_name: Mapping[str, int],
) -> AgentStats:
    """Build :class:`AgentStats`, leaving out zero counts."""
    by_state = {str(ToolCallState(k).value): v for k, v in tool_calls_by_state.items() if v}
    return AgentStats(
        total_messages=total_messages,
        total_tool_calls=sum(by_state.values()),
        total_snapshots=total_snapshots,
        tool_calls_by_state=by_state,
        tool_calls_by_name={k: v for k, v in tool_calls_by_name.items() if v},
        messages_by_role={k: v for k, v in messages_by_role.items() if v},
    )


def fork_agent_ids(source: str, count: int) -> list[str]:
    """``count`` fresh, valid agent ids derived from ``source``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int; got {count!r}")
    stem = source[: MAX_AGENT_ID_LENGTH - 22]
    return [f"{stem}.fork-{secrets.token_hex(8)}" for _ in range(count)]


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class Store(Protocol):
    """What every backend offers. All methods are ``async``."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def save_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None: ...
    async def load_messages(self, agent_id: str) -> list[Message]: ...
    async def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None: ...

    async def save_tool_call_records(
        self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]
    ) -> None: ...
    async def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None: ...
    async def load_tool_call_records(self, agent_id: str) -> list[ToolCallRecord]: ...

    async def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None: ...
    async def load_todos(self, agent_id: str) -> TodoSnapshot | None: ...

    async def append_event(self, agent_id: str, timeline: Timeline | Mapping[str, Any]) -> None: ...
    async def append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None: ...
    def read_events(
        self, agent_id: str, *, since: Any = None, channel: str | None = None
    ) -> AsyncIterator[Timeline]: ...

    async def save_history_window(self, agent_id: str, window: HistoryWindow | Mapping[str, Any]) -> None: ...
    async def load_history_windows(self, agent_id: str) -> list[HistoryWindow]: ...
    async def save_compression_record(self, agent_id: str, record: CompressionRecord | Mapping[str, Any]) -> None: ...
    async def load_compression_records(self, agent_id: str) -> list[CompressionRecord]: ...
    async def save_recovered_file(self, agent_id: str, file: RecoveredFile | Mapping[str, Any]) -> None: ...
    async def load_recovered_files(self, agent_id: str) -> list[RecoveredFile]: ...
    async def save_media_cache(
        self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]
    ) -> None: ...
    async def load_media_cache(self, agent_id: str) -> list[MediaCacheRecord]: ...

    async def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None: ...
    async def load_snapshot(self, agent_id: str, snapshot_id: str) -> Snapshot | None: ...
    async def list_snapshots(self, agent_id: str) -> list[Snapshot]: ...

    async def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None: ...
    async def load_info(self, agent_id: str) -> AgentInfo | None: ...

    async def exists(self, agent_id: str) -> bool: ...
    async def delete(self, agent_id: str) -> None: ...
    async def list(self, prefix: str | None = None) -> list[str]: ...

    def transaction(self, agent_id: str) -> contextlib.AbstractAsyncContextManager[StoreTransaction]: ...


@runtime_checkable
class QueryableStore(Store, Protocol):
    """A store that answers questions across agents."""

    async def query_sessions(
        self,
        *,
        agent_id: str | None = None,
        template_id: str | None = None,
        user_id: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: str = "desc",
    ) -> list[SessionInfo]: ...

    async def query_messages(
        self,
        *,
        agent_id: str | None = None,
        role: str | None = None,
        content_type: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredMessage]: ...

    async def query_tool_calls(
        self,
        *,
        agent_id: str | None = None,
        tool_name: str | None = None,
        is_error: bool | None = None,
        has_approval: bool | None = None,
        state: ToolCallState | str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredToolCall]: ...

    async def aggregate_stats(self, agent_id: str) -> AgentStats: ...

    async def search_messages(
        self,
        query: str,
        *,
        agent_id: str | None = None,
        template_id: str | None = None,
        user_id: str | None = None,
        role: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[MessageHit]: ...


@runtime_checkable
class ExtendedStore(QueryableStore, Protocol):
    """A queryable store with operations support: health, metrics, locks, forks."""

    async def health_check(self) -> StoreHealthStatus: ...
    async def check_consistency(self, agent_id: str) -> ConsistencyCheckResult: ...
    async def get_metrics(self) -> StoreMetrics: ...
    async def acquire_agent_lock(self, agent_id: str, timeout_ms: int = 30_000) -> AgentLock: ...
    def agent_lock(
        self, agent_id: str, timeout_ms: int = 30_000
    ) -> contextlib.AbstractAsyncContextManager[AgentLock]: ...
    async def batch_fork(self, agent_id: str, count: int) -> list[str]: ...
