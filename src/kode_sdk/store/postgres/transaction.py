"""``store.transaction()`` on PostgreSQL: :class:`PostgresDriver`, one pooled
connection and one pipelined transaction for the whole step, which the
store's calls join (:data:`~kode_sdk.store.postgres.connections.PG_TX`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg.errors
from psycopg import AsyncConnection

from ..events import duplicate_seq_error
from ..transaction import TransactionDriver
from .connections import CONNECTION_ERRORS, PG_TX, pipelined_transaction
from .events import stored_seqs, write_events

if TYPE_CHECKING:
    from ..list_diff import SavedListCache
    from .connections import PostgresConnections

__all__ = ["PostgresDriver"]


class _Rollback(Exception):
    """Thrown into a pipelined transaction to end it with ROLLBACK."""


class PostgresDriver(TransactionDriver):
    """A PostgreSQL transaction: one pooled connection, one pipelined
    transaction (with the pooler prologue and the replica commit position,
    as every write), opened at the first call. Each call's statements are
    queued in the pipeline as it runs; the step paths fetch nothing, so the
    whole step travels in one round trip, at ``COMMIT``. After a failure the
    connection is closed rather than pooled (an aborted pipeline leaves
    psycopg's prepared-statement cache out of step with the server)."""

    atomic_on_crash = True

    def __init__(self, store: PostgresConnections, agent_id: str, caches: tuple[SavedListCache, ...]) -> None:
        self._store = store
        self._caches = caches  # the store's list caches, forgotten for the agent after a failure
        self._agent_id = agent_id
        self._pool: Any = None
        self._conn: AsyncConnection[Any] | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._seqs: list[int] = []

    async def _begin(self) -> AsyncConnection[Any]:
        if self._conn is not None:
            return self._conn
        store = self._store
        pool, conn = await store._getconn()
        stack = contextlib.AsyncExitStack()
        try:
            await stack.enter_async_context(pipelined_transaction(conn, store._prologue, store._on_commit))
        except BaseException as exc:
            await self._discard(pool, conn)
            if isinstance(exc, CONNECTION_ERRORS):
                raise store._connection_error(exc) from None
            raise
        self._pool, self._conn, self._stack = pool, conn, stack
        return conn

    async def _scoped(self, call: Callable[[], Any]) -> Any:
        conn = await self._begin()
        token = PG_TX.set((self._store, conn))
        try:
            return await call()
        except CONNECTION_ERRORS as exc:
            raise self._store._connection_error(exc) from None
        finally:
            PG_TX.reset(token)

    async def write(self, call: Callable[[], Any]) -> None:
        await self._scoped(call)

    async def write_events(self, agent_id: str, rows: list[Any], call: Callable[[], Any]) -> None:
        conn = await self._begin()
        self._seqs.extend(row.seq for row in rows)
        await write_events(conn, self._store._settings.schema, rows, [agent_id])

    async def read(self, call: Callable[[], Any]) -> Any:
        return await self._scoped(call)

    async def _discard(self, pool: Any, conn: AsyncConnection[Any]) -> None:
        with contextlib.suppress(Exception):
            await conn.close()
        with contextlib.suppress(Exception):
            await self._store._putconn(pool, conn)

    def _forget_caches(self) -> None:
        # Calls in the transaction may have cached a version a rollback undoes.
        for cache in self._caches:
            cache.drop(self._agent_id)

    async def commit(self) -> None:
        stack, conn, pool = self._stack, self._conn, self._pool
        self._stack = self._conn = None
        if stack is None or conn is None:
            return
        try:
            await stack.aclose()
        except psycopg.errors.UniqueViolation:
            self._forget_caches()
            stored = await self._stored_seqs(conn)
            await self._discard(pool, conn)
            raise duplicate_seq_error(self._agent_id, stored or self._seqs) from None
        except BaseException as exc:
            self._forget_caches()
            await self._discard(pool, conn)
            if isinstance(exc, CONNECTION_ERRORS):
                raise self._store._connection_error(exc) from None
            raise
        self._forget_caches()
        await self._store._putconn(pool, conn)

    async def _stored_seqs(self, conn: AsyncConnection[Any]) -> list[int]:
        if not self._seqs:
            return []
        with contextlib.suppress(Exception):
            return await stored_seqs(conn, self._store._prologue, self._agent_id, self._seqs, prepare=False)
        return []

    async def rollback(self) -> None:
        stack, conn, pool = self._stack, self._conn, self._pool
        self._stack = self._conn = None
        self._forget_caches()
        if stack is None or conn is None:
            return
        with contextlib.suppress(BaseException):
            await stack.__aexit__(_Rollback, _Rollback(), None)
        await self._discard(pool, conn)
