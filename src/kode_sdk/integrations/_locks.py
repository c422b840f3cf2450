"""Per-key locks for an adapter's read-modify-write steps inside one process.

LangGraph runs the tasks of a step in parallel and stores each task's writes
as it finishes, so two ``put_writes`` for one checkpoint can overlap; each
reads the checkpoint's writes, adds its own and saves them. Without a lock one
would overwrite the other. The lock is an ``asyncio.Lock`` per key, taken on
the adapter's home loop; a key's lock is dropped once nobody holds or waits
for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["KeyedLocks"]


class KeyedLocks:
    """``async with locks.hold(key):`` — one holder per key at a time."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the block."""
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
