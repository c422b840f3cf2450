"""Run the conformance suite through :mod:`kode_sdk.sync`.

:class:`AsyncOverSync` turns a blocking store back into an object with the
async protocol: each call runs the blocking method on a worker thread, one
thread per asyncio task (a task's calls all come from its own thread, as a
request's calls do in a threaded web server), so the suite exercises the
facade from many threads at once, and ``agent_lock`` blocks nested within a
task are nested within a thread (the facade nests them per thread)::

    from kode_sdk import sync
    from kode_sdk.testing import ExtendedStoreConformance
    from kode_sdk.testing.sync_adapter import AsyncOverSync

    class TestMyStoreThroughSync(ExtendedStoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: AsyncOverSync(sync.SyncExtendedStore(lambda: MyStore(tmp_path / "data")))

Methods are looked up by name on the blocking store, so a method added to the
protocols (and generated into :mod:`kode_sdk.sync`) is tested with no change here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from ..store.locks import AgentLock
from ..sync import SyncAgentLock
from ..sync._facade import Facade, Wrapped

__all__ = ["AsyncLockOverSync", "AsyncOverSync", "AsyncOverWrapped"]

T = TypeVar("T")

# Each asyncio task's own worker thread (one-thread executor), shut down when the task ends.
_task_threads: weakref.WeakKeyDictionary[asyncio.Task[Any], concurrent.futures.ThreadPoolExecutor] = (
    weakref.WeakKeyDictionary()
)


async def _in_task_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread``, but every call of one task runs on the same thread."""
    task = asyncio.current_task()
    assert task is not None, "called outside an asyncio task"
    executor = _task_threads.get(task)
    if executor is None:
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kode-sync-adapter")
        _task_threads[task] = executor
        task.add_done_callback(lambda _: executor.shutdown(wait=False))
    run = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, run)


# One async wrapper per blocking lock, so a nested block yields the outer block's object.
_lock_wrappers: weakref.WeakKeyDictionary[SyncAgentLock, AsyncLockOverSync] = weakref.WeakKeyDictionary()


class AsyncLockOverSync(AgentLock):
    """An :class:`~kode_sdk.AgentLock` over a :class:`SyncAgentLock`."""

    def __init__(self, lock: SyncAgentLock) -> None:
        super().__init__(lock.agent_id)
        self._lock = lock

    @property
    def released(self) -> bool:
        """True once released."""
        return self._lock.released

    async def release(self) -> None:
        """Release on a worker thread."""
        await _in_task_thread(self._lock.release)


class AsyncOverWrapped:
    """An object with async methods over its generated blocking class
    (e.g. a transaction): methods run on a worker thread, attributes pass through."""

    def __init__(self, wrapped: Wrapped) -> None:
        self._wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._wrapped, name)
        if not inspect.ismethod(value):
            return value

        async def run(*args: Any, **kwargs: Any) -> Any:
            return _async_value(await _in_task_thread(value, *args, **kwargs))

        return run


def _async_value(value: Any) -> Any:
    if isinstance(value, SyncAgentLock):
        wrapper = _lock_wrappers.get(value)
        if wrapper is None:
            wrapper = _lock_wrappers[value] = AsyncLockOverSync(value)
        return wrapper
    if isinstance(value, Wrapped):
        return AsyncOverWrapped(value)
    return value


def _kind(method: Callable[..., Any]) -> str:
    returns = str(inspect.signature(method).return_annotation)
    if returns.startswith(("Iterator[", "collections.abc.Iterator[")):
        return "iterator"
    if returns.startswith(("AbstractContextManager[", "contextlib.AbstractContextManager[")):
        return "context"
    return "call"


class AsyncOverSync:
    """The async store protocol over a blocking store (for the conformance suite)."""

    def __init__(self, store: Facade) -> None:
        self.sync_store = store

    async def open(self) -> None:
        """Blocking ``open`` on a worker thread."""
        await _in_task_thread(self.sync_store.open)

    async def close(self) -> None:
        """Blocking ``close`` on a worker thread."""
        await _in_task_thread(self.sync_store.close)

    async def __aenter__(self) -> AsyncOverSync:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        method = getattr(self.sync_store, name)
        kind = _kind(method)
        if kind == "iterator":
            return _iterator(method)
        if kind == "context":
            return _context(method)

        async def run(*args: Any, **kwargs: Any) -> Any:
            return _async_value(await _in_task_thread(method, *args, **kwargs))

        return run


def _iterator(method: Callable[..., Iterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def iterate(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        items = await _in_task_thread(method, *args, **kwargs)
        done = object()
        try:
            while (item := await _in_task_thread(next, items, done)) is not done:
                yield item
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                await _in_task_thread(close)

    return iterate


def _context(method: Callable[..., contextlib.AbstractContextManager[Any]]) -> Callable[..., Any]:
    @contextlib.asynccontextmanager
    async def context(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        manager = method(*args, **kwargs)
        value = await _in_task_thread(manager.__enter__)
        try:
            yield _async_value(value)
        except BaseException as exc:
            if not await _in_task_thread(manager.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            await _in_task_thread(manager.__exit__, None, None, None)

    return context
