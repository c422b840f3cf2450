"""Agent locks: the ``async with`` block over a backend's acquire/release, and the retry backoff."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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
        state = "released" if self.released else "held"
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
