"""The one event-loop thread behind :mod:`kode_sdk.sync`.

Every blocking call hands a coroutine to this loop and waits for its result.
One loop for the whole process, because an async store belongs to the loop it
was opened on (its pool, timers and futures are bound to it): calling it with
``asyncio.run()`` per call strands buffered events on a dead loop and leaves
PostgreSQL connections to a loop that no longer runs.

The loop thread is a daemon, so it never keeps a program alive; an ``atexit``
hook closes every store still open before the interpreter goes down, which
writes whatever a store acknowledged but still buffers (events). After
``os.fork()`` the child starts a new loop of its own on first use and never
touches what the parent's loop owned (see :func:`generation`); a
``multiprocessing`` child, which ends with ``os._exit()``, gets the same close
from multiprocessing's exit finalizers. A process ended by ``os._exit()``
otherwise, or killed, skips every exit hook: what a store buffers then is lost
(at most the last few milliseconds of events), as with the async store.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import concurrent.futures.thread  # imported now: importing it at exit fails
import contextlib
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from ..errors import StoreClosedError

__all__ = ["call", "generation", "iterate", "track", "untrack"]

logger = logging.getLogger("kode_sdk.sync")

P = ParamSpec("P")
T = TypeVar("T")

#: How long the exit hook waits for each store to close (a PostgreSQL server
#: that stopped answering must not hang the interpreter's exit forever).
EXIT_CLOSE_TIMEOUT_S = 30.0


class _Loop:
    """An asyncio loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), name="kode-sdk-sync", daemon=True)
        self.thread.start()
        started.wait()

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(started.set)
        self.loop.run_forever()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class _ThreadPerCall(concurrent.futures.ThreadPoolExecutor):
    """Runs each job on a new daemon thread: the executor the loop uses while
    the interpreter exits, when ThreadPoolExecutor no longer accepts jobs.
    (A subclass only because ``loop.set_default_executor`` insists on one.)"""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=run, name="kode-sdk-sync-exit", daemon=True).start()
        return future


_lock = threading.Lock()
_current: _Loop | None = None
_stopped = False
_generation = 0
# Inner async stores that are (or may be) open: the exit hook closes them.
# Strong references on purpose: a facade dropped without close() must not
# take acknowledged-but-buffered events with it.
_open_stores: dict[int, Any] = {}
# Stores the parent process owned at fork time. Kept alive and never touched
# in the child: closing or collecting them there could close descriptors and
# sockets that belong to the parent's connections.
_inherited: list[Any] = []


def _loop() -> _Loop:
    global _current
    current = _current
    if current is not None:
        return current
    with _lock:
        if _stopped:
            raise StoreClosedError("kode_sdk.sync is shut down (the interpreter is exiting)")
        if _current is None:
            _current = _Loop()
            _register_multiprocessing_exit()
        return _current


def _register_multiprocessing_exit() -> None:
    # A multiprocessing child ends with os._exit(), which skips atexit; it
    # runs multiprocessing's own finalizers first (the registry is cleared when
    # the child starts, hence registering here, on first use in each process).
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        mp_util.Finalize(None, _close_all_at_exit, exitpriority=100)


def generation() -> int:
    """A number that changes in a forked child: a store made under another
    generation belongs to the parent's loop and must not be used."""
    return _generation


def in_loop_thread() -> bool:
    """True when called from the facade's own loop thread."""
    current = _current
    return current is not None and threading.current_thread() is current.thread


def call(fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``await fn(*args, **kwargs)`` on the loop thread and return its result.

    Safe from any number of threads at once. Called from the loop thread
    itself it raises ``RuntimeError`` instead of deadlocking.
    """
    if in_loop_thread():
        raise RuntimeError(
            "kode_sdk.sync was called from its own event-loop thread (inside a coroutine it runs); "
            "await the async store there instead"
        )
    loop = _loop().loop

    async def run() -> T:
        return await fn(*args, **kwargs)

    # A plain lock as the one-shot signal and the task itself as the result:
    # half the cost of run_coroutine_threadsafe's concurrent Future and the
    # callbacks chaining it to the task (~65 against ~125 us a call here).
    done = threading.Lock()
    done.acquire()
    started: list[asyncio.Task[T]] = []

    def start() -> None:
        task = loop.create_task(run())
        started.append(task)
        task.add_done_callback(lambda _: done.release())

    try:
        loop.call_soon_threadsafe(start)
        done.acquire()
    except BaseException:
        # KeyboardInterrupt or the like while waiting: stop the call instead of
        # leaving it to finish unobserved (a write that started still commits whole).
        loop.call_soon_threadsafe(lambda: started and started[0].cancel())
        raise
    return started[0].result()


#: Most items an iterator hands over per hop between threads.
ITERATE_BATCH = 256


def iterate(fn: Callable[P, AsyncIterator[T]], /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
    """Iterate ``fn(*args, **kwargs)`` (an async iterator, made on the loop
    thread); closing the returned iterator, or dropping it before the end,
    closes the async one on the loop.

    Items come over in batches: each hop takes every item the async iterator
    can give without waiting (up to :data:`ITERATE_BATCH`), so reading a long
    list costs a few thread hops, not one per item, while an iterator that
    waits for new items (a live tail) hands over each one as soon as it has it.
    """
    source: AsyncIterator[T] | None = None
    pending: asyncio.Future[T] | None = None

    async def batch() -> tuple[list[T], bool]:
        nonlocal source, pending
        if source is None:
            source = fn(*args, **kwargs)
        items: list[T] = []
        while len(items) < ITERATE_BATCH:
            if pending is None:
                pending = asyncio.ensure_future(source.__anext__())
            if items and not pending.done():
                await asyncio.sleep(0)  # one loop turn: enough for an item already at hand
                if not pending.done():
                    break  # it is waiting for something: hand over what we have
            if items and pending.exception() is not None and not isinstance(pending.exception(), StopAsyncIteration):
                break  # deliver the items first; the next hop raises the error
            try:
                item = await pending
            except StopAsyncIteration:
                pending = None
                return items, True
            pending = None
            items.append(item)
        return items, False

    async def close() -> None:
        nonlocal pending
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        pending = None
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()

    finished = False
    try:
        while not finished:
            items, finished = call(batch)
            yield from items
    finally:
        if not finished and source is not None and not _stopped:
            try:
                call(close)
            except Exception:  # the consumer's own exception, if any, matters more
                logger.debug("closing an abandoned iterator failed", exc_info=True)


def track(store: Any) -> None:
    """Remember ``store`` as possibly open: the exit hook closes it."""
    with _lock:
        _open_stores[id(store)] = store


def untrack(store: Any) -> None:
    """Forget ``store`` (it was closed)."""
    with _lock:
        _open_stores.pop(id(store), None)


def _close_all_at_exit() -> None:
    global _stopped, _current
    with _lock:
        # From here on a new call raises StoreClosedError instead of queueing
        # onto a loop that is about to stop (and would never answer).
        _stopped = True
        stores = list(_open_stores.values())
        _open_stores.clear()
        current, _current = _current, None
    if current is None:
        return
    # By now the standard thread pool refuses work ("cannot schedule new
    # futures after interpreter shutdown"), and closing a store may hop to a
    # thread (SQLite stops its checkpointer that way): give the loop an
    # executor that still can.
    current.loop.call_soon_threadsafe(current.loop.set_default_executor, _ThreadPerCall())
    for store in stores:
        future = asyncio.run_coroutine_threadsafe(store.close(), current.loop)
        try:
            future.result(timeout=EXIT_CLOSE_TIMEOUT_S)
        except Exception:
            logger.warning("kode_sdk.sync: closing %r at exit failed", store, exc_info=True)
    current.stop()


def _after_fork_in_child() -> None:
    global _current, _lock, _generation, _stopped
    # The parent's loop thread does not exist here; its lock may have been
    # held by a thread that does not exist either.
    _lock = threading.Lock()
    _inherited.extend(_open_stores.values())
    _inherited.append(_current)
    _current = None
    _stopped = False
    _generation += 1
    _open_stores.clear()


atexit.register(_close_all_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
