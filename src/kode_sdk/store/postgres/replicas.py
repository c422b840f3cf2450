"""Read replicas of :class:`~kode_sdk.store.postgres.PostgresStore`: which
reads go where, and how a store still sees its own writes.

``connection={"replicas": [dsn, ...]}`` (or ``KODE_POSTGRES_REPLICAS``,
comma-separated) sends the query API, ``aggregate_stats`` and ``list`` to a
streaming replica (round robin); loads, writes and locks stay on the primary.

Read-your-writes: after each of its write transactions the store notes the
primary's WAL insert position (queued after ``COMMIT`` in the same pipeline,
so no extra round trip), which is at or past its commit record. Before a
routed read, if the replica has not yet been seen at or past that position,
it is asked (``pg_last_wal_replay_lsn()``) every few ms for at most
:data:`REPLICA_WAIT_S`; a replica still behind then, or one that does not
answer, is skipped and the read goes to the primary. So a store never reads
older data than it wrote; other writers' commits show on the replica after
its usual lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

__all__ = ["REPLICA_WAIT_S", "ReplicaRouter", "lsn_value"]

logger = logging.getLogger("kode_sdk.store.postgres")

REPLICA_WAIT_S = 0.25
"""How long a read waits for a replica to replay the store's last commit
before it reads the primary instead."""
_POLL_S = 0.005
_DOWN_S = 5.0  # a replica that failed is skipped this long, so reads do not wait on it each time
_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, PoolClosed)


def lsn_value(text: str) -> int:
    """``'16/B374D848'`` as an int, for comparing WAL positions."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class ReplicaRouter:
    """The replica pools of one store, and the WAL position its reads must see.

    ``new_pool(conninfo)`` builds an unopened pool like the store's own;
    ``getconn(pool, timeout)`` takes a live connection from one.
    Counters in :attr:`reads` (``replica``, ``primary``) say where routed
    reads went."""

    def __init__(
        self,
        conninfos: tuple[str, ...],
        new_pool: Callable[[str], AsyncConnectionPool[AsyncConnection[Any]]],
        getconn: Callable[[AsyncConnectionPool[AsyncConnection[Any]], float | None], Awaitable[AsyncConnection[Any]]],
    ) -> None:
        self._conninfos = conninfos
        self._new_pool = new_pool
        self._getconn = getconn
        self._pools: list[AsyncConnectionPool[AsyncConnection[Any]]] = []
        self._seen: list[int] = []  # replay position each replica was last seen at
        self._down_until: list[float] = []
        self._next = 0
        self._current = -1
        self._written = 0  # the primary's insert position after this store's last commit
        self.reads = {"replica": 0, "primary": 0}

    @property
    def written_lsn(self) -> int:
        """The WAL position routed reads must see (0: nothing written yet)."""
        return self._written

    async def open(self) -> None:
        """Create the pools; they connect on first use (a replica that is
        down costs nothing until a read tries it)."""
        for conninfo in self._conninfos:
            pool = self._new_pool(conninfo)
            await pool.open(wait=False)
            self._pools.append(pool)
            self._seen.append(0)
            self._down_until.append(0.0)

    async def close(self) -> None:
        """Close every replica pool."""
        pools, self._pools = self._pools, []
        for pool in pools:
            with contextlib.suppress(Exception):
                await pool.close()

    def mark_down(self, index: int | None = None) -> None:
        """Skip replica ``index`` (default: the one used last) for a few seconds."""
        chosen = self._current if index is None else index
        if 0 <= chosen < len(self._down_until):
            self._down_until[chosen] = time.monotonic() + _DOWN_S

    def note_commit(self, lsn_text: str | None) -> None:
        """Record the primary's insert position after one of this store's commits."""
        if lsn_text:
            self._written = max(self._written, lsn_value(lsn_text))

    async def _caught_up(self, index: int, conn: AsyncConnection[Any]) -> bool:
        target = self._written
        if target <= self._seen[index]:
            return True
        deadline = time.monotonic() + REPLICA_WAIT_S
        while True:
            cur = await conn.execute("SELECT pg_last_wal_replay_lsn()::text")
            row = await cur.fetchone()
            if row is None or row[0] is None:
                return False  # not a standby (or not replaying): cannot tell
            replayed = lsn_value(str(row[0]))
            self._seen[index] = max(self._seen[index], replayed)
            if replayed >= target:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)

    @contextlib.asynccontextmanager
    async def replica_connection(self, timeout_s: float) -> AsyncIterator[AsyncConnection[Any] | None]:
        """A connection to a replica that has replayed this store's last
        commit, or None (no replica, or none caught up in time or reachable):
        then the caller reads the primary."""
        if not self._pools:
            yield None
            return
        now = time.monotonic()
        up = [i for i in range(len(self._pools)) if self._down_until[i] <= now]
        if not up:
            self.reads["primary"] += 1
            yield None
            return
        index = up[self._next % len(up)]
        self._next += 1
        pool = self._pools[index]
        try:
            conn = await self._getconn(pool, timeout_s)
        except _ERRORS as exc:
            logger.warning("read replica %d unreachable, reading the primary: %s", index, type(exc).__name__)
            self.mark_down(index)
            self.reads["primary"] += 1
            yield None
            return
        self._current = index
        try:
            try:
                ready = await self._caught_up(index, conn)
            except _ERRORS as exc:
                logger.warning("read replica %d failed, reading the primary: %s", index, type(exc).__name__)
                self.mark_down(index)
                ready = False
            if not ready:
                self.reads["primary"] += 1
                yield None
                return
            self.reads["replica"] += 1
            yield conn
        finally:
            await pool.putconn(conn)
