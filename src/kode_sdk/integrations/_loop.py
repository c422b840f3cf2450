"""Run an adapter's store calls on one event loop, from blocking and async callers alike.

A kode store belongs to the event loop it was opened on (PostgreSQL pools are
bound to it). Frameworks call adapters from both worlds: LangGraph's
``graph.invoke`` calls the saver's blocking methods from the caller's thread,
``graph.ainvoke`` its async ones from the caller's loop. :class:`LoopHome`
remembers the loop that first used the store and sends every later call there:

- the caller's loop, when an async method came first;
- for a blocking first call, the event-loop thread of :mod:`kode_sdk.sync`
  (one per process, a daemon; it closes the stores it tracks at exit and
  starts afresh in a forked child), so the blocking API and the adapters share
  one loop thread and its exit and fork handling.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..sync import _runner

T = TypeVar("T")

__all__ = ["LoopHome"]


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


class LoopHome:
    """The one event loop an adapter's store is used on."""

    def __init__(self, name: str, store: Any = None) -> None:
        self._name = name
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_sync_thread = False
        self._generation = _runner.generation()
        self._lock = threading.Lock()

    def _check_alive(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> None:
        if self._on_sync_thread and self._generation != _runner.generation():
            coro.close()
            raise RuntimeError(
                f"{self._name}: this adapter's store belongs to the parent process (os.fork() since); "
                "create the store and the adapter again in the child"
            )
        if loop.is_closed():
            coro.close()
            raise RuntimeError(
                f"{self._name}: the event loop this adapter's store was first used on is closed "
                "(e.g. an asyncio.run() that has returned); a store lives on one loop, so create the "
                "store and the adapter again for the new one"
            )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the home loop and block until it is done (blocking callers)."""
        with self._lock:
            if self._loop is None:
                # First use is blocking: the store lives on kode_sdk.sync's loop thread.
                self._loop = _runner.call(_running_loop)
                self._on_sync_thread = True
                self._generation = _runner.generation()
                if self._store is not None:
                    _runner.track(self._store)
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError(
                f"{self._name}: a blocking method was called inside a running event loop; "
                "use the async method (e.g. graph.ainvoke instead of graph.invoke)"
            )
        self._check_alive(loop, coro)
        if self._on_sync_thread:
            return _runner.call(lambda: coro)
        if not loop.is_running() and running is None:
            # The home loop is an idle caller loop (e.g. the thread's default loop between two
            # Runner.run_sync calls): run the call on it here, as its owner would.
            return loop.run_until_complete(coro)
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the home loop (async callers); the first caller's loop becomes home."""
        running = asyncio.get_running_loop()
        with self._lock:
            if self._loop is None:
                self._loop = running
        if self._loop is running:
            return await coro
        self._check_alive(self._loop, coro)
        if not self._loop.is_running():
            coro.close()
            raise RuntimeError(
                f"{self._name}: the store lives on another event loop that is not running now; "
                "use one loop for the adapter (or its blocking methods from outside any loop)"
            )
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def closed(self) -> None:
        """The adapter closed its store: the exit hook need not."""
        if self._store is not None and self._on_sync_thread:
            _runner.untrack(self._store)
