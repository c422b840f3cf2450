"""What every blocking store shares: which async store it drives, its
lifecycle, and the blocking forms of locks and ``async with`` blocks.

The per-method code is generated (``_generated.py``); this module is the
hand-written part it builds on.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, ClassVar, Generic, ParamSpec, TypeVar

from ..errors import StoreClosedError
from ..store.locks import AgentLock
from . import _runner

__all__ = ["Facade", "StoreSource", "SyncAgentLock", "SyncContext", "SyncLockBlock", "Wrapped"]

P = ParamSpec("P")
T = TypeVar("T")
U = TypeVar("U")
F = TypeVar("F", bound="Facade")

#: An async store, or a zero-argument callable making one (plain or async).
#: With a callable, a forked child process gets a store of its own from it.
StoreSource = Any


class SyncAgentLock:
    """A held agent lock, blocking form of :class:`kode_sdk.AgentLock`.

    ``lock.release()`` or ``lock()`` frees it (twice is harmless); also a
    ``with`` block.
    """

    def __init__(self, lock: AgentLock) -> None:
        self._lock = lock

    @property
    def agent_id(self) -> str:
        """The agent this lock is for."""
        return self._lock.agent_id

    @property
    def released(self) -> bool:
        """True once the lock has been released."""
        return self._lock.released

    def release(self) -> None:
        """Free the lock so another waiter can take it."""
        _runner.call(self._lock.release)

    def __call__(self) -> None:
        self.release()

    def __enter__(self) -> SyncAgentLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<SyncAgentLock agent_id={self.agent_id!r} {'released' if self.released else 'held'}>"


class SyncContext(Generic[T, U]):
    """A ``with`` block over an async context manager, entered and exited on
    the loop thread; ``wrap`` turns what it yields into its blocking form."""

    def __init__(
        self,
        make: Callable[[], AbstractAsyncContextManager[T]],
        wrap: Callable[[T], U],
    ) -> None:
        self._make = make
        self._wrap = wrap
        self._context: AbstractAsyncContextManager[T] | None = None

    def __enter__(self) -> U:
        async def enter() -> T:
            # Made on the loop: an async context manager may bind to the running loop.
            self._context = self._make()
            return await self._context.__aenter__()

        return self._wrap(_runner.call(enter))

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._context is not None, "__exit__ without __enter__"
        return _runner.call(self._context.__aexit__, exc_type, exc, tb)


def _identity(value: T) -> T:
    return value


def sync_context(
    fn: Callable[P, AbstractAsyncContextManager[T]], /, *args: P.args, **kwargs: P.kwargs
) -> SyncContext[T, T]:
    """``with`` form of an async context manager; yields what it yields."""
    return SyncContext(lambda: fn(*args, **kwargs), _identity)


class _Held:
    """A lock this thread holds through a ``with`` block, and how deep it nests."""

    def __init__(self, lock: SyncAgentLock, context: SyncContext[AgentLock, SyncAgentLock]) -> None:
        self.lock = lock
        self.context = context
        self.depth = 1


# Per thread: (async store, agent id) -> the lock its outermost ``with`` block holds.
_thread_locks = threading.local()


def _held_by_this_thread() -> dict[tuple[object, str], _Held]:
    held: dict[tuple[object, str], _Held] | None = getattr(_thread_locks, "held", None)
    if held is None:
        held = _thread_locks.held = {}
    return held


class SyncLockBlock:
    """``with store.agent_lock(a):`` that nests per calling thread.

    Each blocking call is a task of its own on the loop thread, so the async
    store's per-task nesting cannot see that two blocks come from the same
    caller; this does it per thread instead. Inside a block, the same thread
    entering ``agent_lock(a)`` of the same store again reuses the held lock
    (e.g. a helper that takes the lock itself, called under a caller's
    block), and the outermost block frees it. Other threads, other store
    objects and other processes wait as before.
    """

    def __init__(self, key: tuple[object, str], make: Callable[[], AbstractAsyncContextManager[AgentLock]]) -> None:
        self._key = key
        self._make = make
        self._held: _Held | None = None
        self._outermost = False

    def __enter__(self) -> SyncAgentLock:
        held = _held_by_this_thread()
        current = held.get(self._key)
        if current is not None and not current.lock.released:
            current.depth += 1
            self._held, self._outermost = current, False
            return current.lock
        context = SyncContext(self._make, SyncAgentLock)
        lock = context.__enter__()
        self._held, self._outermost = _Held(lock, context), True
        held[self._key] = self._held
        return lock

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        current = self._held
        assert current is not None, "__exit__ without __enter__"
        current.depth -= 1
        if not self._outermost:
            return None
        held = _held_by_this_thread()
        if held.get(self._key) is current:
            del held[self._key]
        return current.context.__exit__(exc_type, exc, tb)


def lock_context(
    fn: Callable[P, AbstractAsyncContextManager[AgentLock]], /, *args: P.args, **kwargs: P.kwargs
) -> SyncLockBlock:
    """``with`` form of ``agent_lock``-shaped methods (``fn(agent_id, ...)``
    yielding an :class:`AgentLock`): blocks nest per calling thread, per
    store object and agent id (see :class:`SyncLockBlock`)."""
    agent_id = args[0] if args else kwargs["agent_id"]
    # fn is bound to the async store; a facade drives exactly one, so it names the store object.
    owner = getattr(fn, "__self__", fn)
    return SyncLockBlock((owner, str(agent_id)), lambda: fn(*args, **kwargs))


def wrapped_context(
    wrap: Callable[[T], U], fn: Callable[P, AbstractAsyncContextManager[T]], /, *args: P.args, **kwargs: P.kwargs
) -> SyncContext[T, U]:
    """``with`` form of an async context manager yielding an object with async
    methods; ``wrap`` is its generated blocking class."""
    return SyncContext(lambda: fn(*args, **kwargs), wrap)


class Wrapped:
    """Base of the generated blocking classes for objects with async methods
    (other than stores and locks): methods are generated, other attributes are
    read from the wrapped object."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.wrapped, name)
        if inspect.iscoroutinefunction(value):
            raise AttributeError(f"{type(self).__name__} has no blocking form of {name!r}")
        return value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self.wrapped!r}>"


def acquire_lock(fn: Callable[P, Awaitable[AgentLock]], /, *args: P.args, **kwargs: P.kwargs) -> SyncAgentLock:
    """Blocking ``await fn(...)`` for a method returning an :class:`AgentLock`."""
    return SyncAgentLock(_runner.call(fn, *args, **kwargs))


class Facade:
    """Drives one async store from blocking code, on the :mod:`kode_sdk.sync` loop thread.

    ``store`` is an async store (unopened, or opened only through a facade),
    or a zero-argument callable making one. Prefer a callable (the factories
    pass one): after ``os.fork()`` the child then makes a store of its own; a
    store instance already opened in the parent cannot be used in the child.
    """

    def __init__(self, store: StoreSource) -> None:
        self._guard = threading.Lock()
        _facades.add(self)
        self._closed = False
        self._orphaned = False
        self._generation = _runner.generation()
        if isinstance(store, type) or (callable(store) and not hasattr(store, "open")):
            self._factory: Callable[[], Any] | None = store
            self._store: Any = None
        else:
            self._factory = None
            self._store = store
            _runner.track(store)

    #: The async protocol this class mirrors (set by each generated class).
    _protocol: ClassVar[type] = object

    @classmethod
    def _made_by(cls: type[F], factory: Callable[[], Any]) -> F:
        """Build through ``factory`` now, so a bad config raises here; the
        result is the richest blocking class the store supports (a SQLite
        store from ``create_store`` is a :class:`SyncExtendedStore`), as the
        async factories return the backend's full class."""
        facade = cls(factory)
        store = facade._inner()
        best: type[F] = cls
        pending = list(cls.__subclasses__())
        while pending:
            sub = pending.pop()
            pending.extend(sub.__subclasses__())
            # Only the generated classes (each names its protocol), never a user's subclass.
            if "_protocol" in vars(sub) and issubclass(sub, best) and isinstance(store, sub._protocol):
                best = sub
        facade.__class__ = best
        return facade

    def _inner(self) -> Any:
        store = self._store
        if store is not None and self._generation == _runner.generation():
            return store
        with self._guard:
            if self._generation != _runner.generation():
                self._after_fork()
            if self._store is None:
                if self._closed:
                    raise StoreClosedError("store is closed")
                if self._orphaned or self._factory is None:
                    raise StoreClosedError(
                        "this kode_sdk.sync store was opened before os.fork(); in the child process make a new one "
                        "(stores from kode_sdk.sync.create_store / create_extended_store do this by themselves)"
                    )
                made = self._factory()
                if inspect.isawaitable(made):
                    made = _runner.call(_await, made)
                _runner.track(made)
                self._store = made
            return self._store

    def _after_fork(self) -> None:
        self._generation = _runner.generation()
        inherited, self._store = self._store, None
        if inherited is None or self._closed:
            return
        if getattr(inherited, "_state", None) == "new":
            # Never opened: no thread, socket or loop of the parent's in it.
            self._store = inherited
            _runner.track(inherited)
        elif self._factory is None:
            self._orphaned = True

    def open(self) -> None:
        """Open the store (create files, connect, migrate). Idempotent."""
        _runner.call(self._inner().open)

    def close(self) -> None:
        """Write what is buffered and release every resource. Closing twice is harmless."""
        with self._guard:
            self._closed = True
            store = self._store if self._generation == _runner.generation() else None
        if store is None:
            return
        with contextlib.suppress(StoreClosedError):  # the interpreter is exiting: the exit hook closed it
            _runner.call(store.close)
        _runner.untrack(store)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def __enter__(self: F) -> F:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self._store!r}>"


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


# Every facade, so a forked child can replace their locks: one may have been
# held by a parent thread that does not exist in the child.
_facades: weakref.WeakSet[Facade] = weakref.WeakSet()


def _new_locks_in_child() -> None:
    for facade in list(_facades):
        facade._guard = threading.Lock()


os.register_at_fork(after_in_child=_new_locks_in_child)
