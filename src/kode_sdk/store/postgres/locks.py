"""Agent locks on PostgreSQL: session advisory locks, keyed by a signed
64-bit BLAKE2b hash of ``schema`` + agent id, each on its own connection from
the store's lock pool (advisory locks are re-entrant per session, so two
acquires must not share one). The server does the waiting
(``SET lock_timeout`` + ``pg_advisory_lock``): no polling, and the next waiter
gets the lock the moment it is released. A lock dies with its connection.
Behind a transaction pooler the locks are leases instead (see
:mod:`kode_sdk.store.postgres.pooler`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg.errors
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...errors import LockTimeoutError
from ..locks import AgentLock
from .checkout import CONNECTION_ERRORS
from .pooler import LeaseAgentLock, acquire_lease

if TYPE_CHECKING:
    from .connections import PostgresConnections

__all__ = ["PostgresAgentLock", "acquire_advisory_lock", "acquire_lease_lock", "advisory_lock_key"]

logger = logging.getLogger("kode_sdk.store.postgres")


def advisory_lock_key(schema: str, agent_id: str) -> int:
    """The signed 64-bit advisory-lock key of ``agent_id`` in ``schema`` (BLAKE2b,
    stable across processes, machines and versions)."""
    digest = hashlib.blake2b(f"kode-sdk:{schema}:{agent_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def acquire_advisory_lock(
    store: PostgresConnections, agent_id: str, timeout_ms: int, forget: Callable[[AgentLock], None]
) -> AgentLock:
    """Wait up to ``timeout_ms`` for the agent's advisory lock on a connection
    of the lock pool, else raise :class:`LockTimeoutError`. The lock calls
    ``forget`` with itself when it is released."""
    key = advisory_lock_key(store._settings.schema, agent_id)
    deadline = time.monotonic() + timeout_ms / 1000
    try:
        pool, conn = await store._getconn(locks=True, wait_s=max(timeout_ms / 1000, store._settings.connect_timeout_s))
    except PoolTimeout:
        raise LockTimeoutError(agent_id, timeout_ms) from None
    got = False
    try:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", [key])
            row = await cur.fetchone()
            got = bool(row and row[0])
        else:
            # The server does the waiting: no polling, and the lock passes to
            # the next waiter the moment it is released. One round trip.
            try:
                async with conn.pipeline():
                    await conn.execute("SELECT set_config('lock_timeout', %s, false)", [f"{remaining_ms}ms"])
                    await conn.execute("SELECT pg_advisory_lock(%s)", [key])
                    await conn.execute("SELECT set_config('lock_timeout', '0', false)")
                got = True
            except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
                got = False
    except BaseException as exc:
        # Closing the session frees anything it might hold; the pool drops it.
        with contextlib.suppress(Exception):
            await conn.close()
        await store._putconn(pool, conn, locks=True)
        if isinstance(exc, CONNECTION_ERRORS):
            raise store._connection_error(exc) from None
        raise
    if not got:
        await store._putconn(pool, conn, locks=True)
        raise LockTimeoutError(agent_id, timeout_ms)
    return PostgresAgentLock(agent_id, key, conn, pool, store, forget)


async def acquire_lease_lock(
    store: PostgresConnections, agent_id: str, timeout_ms: int, forget: Callable[[LeaseAgentLock], None]
) -> LeaseAgentLock:
    """Behind a transaction pooler: the lock is a lease row (see
    :mod:`kode_sdk.store.postgres.pooler`), renewed while held; ``forget``
    is called with it once it is released or lost."""
    lock = await acquire_lease(agent_id, timeout_ms, store._settings.lock_lease_s, store._run_row, forget)
    if lock is None:
        raise LockTimeoutError(agent_id, timeout_ms)
    return lock


class PostgresAgentLock(AgentLock):
    """A held agent lock: a session advisory lock on a connection of its own."""

    def __init__(
        self,
        agent_id: str,
        key: int,
        conn: AsyncConnection[Any],
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        store: PostgresConnections,
        forget: Callable[[AgentLock], None],
    ) -> None:
        super().__init__(agent_id)
        self._key = key
        self._conn: AsyncConnection[Any] | None = conn
        self._pool = pool
        self._store = store
        self._forget = forget

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        self._forget(self)
        if conn is None:
            return
        try:
            cur = await conn.execute("SELECT pg_advisory_unlock(%s)", [self._key])
            row = await cur.fetchone()
            if not (row and row[0]):
                logger.warning("lock of agent %r was no longer held at release", self.agent_id)
        except Exception as exc:
            # The session is gone (or going): the server has freed the lock with it.
            logger.warning("lock of agent %r: connection lost before release (%s)", self.agent_id, type(exc).__name__)
            with contextlib.suppress(Exception):
                await conn.close()
        finally:
            # Returned exactly once; a closed connection is discarded by the pool.
            with contextlib.suppress(Exception):
                await self._store._putconn(self._pool, conn, locks=True)
