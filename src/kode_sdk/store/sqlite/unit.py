"""``store.transaction()`` on SQLite: each call's job is queued while the
unit runs, and the commit runs them all in one ``BEGIN IMMEDIATE`` (on the
caller's thread while the connection thread is idle, else in one hop to it);
a read inside the unit sees its writes.
"""

from __future__ import annotations

import contextvars
import sqlite3
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from ..events import PendingEvent
from ..transaction import TransactionDriver
from .transactions import IN_UNIT, transaction

__all__ = ["TX_SCOPE", "SqliteDriver", "TxScope"]

T = TypeVar("T")


def _run_jobs(conn: sqlite3.Connection, jobs: list[Callable[[sqlite3.Connection], Any]]) -> Any:
    """Run ``jobs`` in order inside the unit's open transaction (their own
    transactions are part of it); returns the last one's result."""
    result = None
    IN_UNIT.active = True
    try:
        for job in jobs:
            result = job(conn)
    finally:
        IN_UNIT.active = False
    return result


class UnitStore(Protocol):
    """What a :class:`SqliteDriver` needs of its store (a SqliteStore)."""

    async def _hop(self, job: Callable[[sqlite3.Connection], T], *, inline: bool = False) -> T: ...

    async def _commit_events(self, rows: list[PendingEvent]) -> None: ...


class _Rollback(Exception):
    """Carries a read's result out of a transaction that must not commit."""

    def __init__(self, result: Any) -> None:
        super().__init__()
        self.result = result


class TxScope:
    """While a transaction's call runs: ``collecting`` queues the store's
    jobs; otherwise each job runs after the queued ones in a transaction that
    is rolled back (a read that sees the transaction's writes)."""

    def __init__(self, store: UnitStore, jobs: list[Callable[[sqlite3.Connection], Any]], collecting: bool):
        self.store = store
        self.jobs = jobs
        self.collecting = collecting

    def through(self, job: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
        pending = list(self.jobs)

        def run(conn: sqlite3.Connection) -> T:
            try:
                with transaction(conn, write=True):
                    raise _Rollback(_run_jobs(conn, [*pending, job]))
            except _Rollback as done:
                return cast(T, done.result)

        return run


TX_SCOPE: contextvars.ContextVar[TxScope | None] = contextvars.ContextVar("kode_sqlite_tx", default=None)


class SqliteDriver(TransactionDriver):
    """A SQLite transaction: each call's job is queued (validated, not run);
    the commit runs them all in one ``BEGIN IMMEDIATE`` (inline or one hop).
    (The jobs' own transactions become savepoints inside it.) A job that
    refreshes an in-memory cache does so under a new random row version, so
    a rollback leaves at worst a cache entry no stored version matches."""

    atomic_on_crash = True

    def __init__(self, store: UnitStore) -> None:
        self._store = store
        self._jobs: list[Callable[[sqlite3.Connection], Any]] = []

    async def _scoped(self, call: Callable[[], Any], *, collecting: bool) -> Any:
        token = TX_SCOPE.set(TxScope(self._store, self._jobs, collecting))
        try:
            return await call()
        finally:
            TX_SCOPE.reset(token)

    async def write(self, call: Callable[[], Any]) -> None:
        await self._scoped(call, collecting=True)

    async def write_events(self, agent_id: str, rows: list[Any], call: Callable[[], Any]) -> None:
        # Straight to the committer's job, not through the group commit queue.
        await self._scoped(lambda: self._store._commit_events(rows), collecting=True)

    async def read(self, call: Callable[[], Any]) -> Any:
        return await self._scoped(call, collecting=False)

    async def commit(self) -> None:
        jobs, self._jobs = self._jobs, []
        if not jobs:
            return

        def run(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                _run_jobs(conn, jobs)

        await self._store._hop(run, inline=True)

    async def rollback(self) -> None:
        self._jobs = []
