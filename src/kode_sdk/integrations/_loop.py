"""Run an adapter's store calls on one event loop, from blocking and async callers alike.

A kode store belongs to the event loop it was opened on (PostgreSQL pools are
bound to it). Frameworks call adapters from both worlds: LangGraph's
``graph.invoke`` calls the saver's blocking methods from the caller's thread,
``graph.ainvoke`` its async ones from the caller's loop. :class:`LoopHome`
remembers the loop that first used the store — the caller's loop, or for a
blocking first call a private daemon thread running its own loop — and sends
every later call there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["LoopHome"]


class LoopHome:
    """The one event loop an adapter's store is used on."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                # Daemon: an interpreter exiting without close() must not hang on it. Every
                # store write is committed before its call returns, so nothing acknowledged
                # is left behind in this loop.
                self._thread = threading.Thread(target=run, name=f"kode-{self._name}-loop", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the home loop and block until it is done (blocking callers)."""
        loop = self._loop
        if loop is None:
            loop = self._private_loop()
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
        if not loop.is_running() and running is None:
            # The home loop is an idle caller loop (e.g. the thread's default loop between two
            # Runner.run_sync calls): run the call on it here, as its owner would.
            return loop.run_until_complete(coro)
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def _check_alive(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> None:
        if loop.is_closed():
            coro.close()
            raise RuntimeError(
                f"{self._name}: the event loop this adapter's store was first used on is closed "
                "(e.g. an asyncio.run() that has returned); a store lives on one loop, so create the "
                "store and the adapter again for the new one"
            )

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

    def close(self) -> None:
        """Stop the private loop thread, if one was started."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop, self._thread = None, None
        if thread is not None and loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            loop.close()
