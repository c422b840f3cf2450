"""One call's SQL transaction on the connection thread: ``BEGIN IMMEDIATE``
for writes (retried on the rare busy answer that does not wait), ``BEGIN`` for
reads, a SAVEPOINT when nested; and :data:`IN_UNIT`, set while the jobs of a
``store.transaction()`` run inside the unit's own transaction (see unit.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator

__all__ = ["INLINE", "IN_UNIT", "InlineBusy", "is_busy", "transaction"]

# BEGIN IMMEDIATE already waits busy_timeout (10 s) for the write lock; these
# retries only cover the rare SQLITE_BUSY SQLite returns without waiting
# (e.g. while another connection recovers the WAL).
_BUSY_RETRIES = 5

# Set on the connection thread while it runs the jobs of a store.transaction().
IN_UNIT = threading.local()

# Set on a caller's thread while it runs a write job inline (SqliteStore._hop):
# ``active``, ``wrote`` once a transaction of the job has committed, and
# ``waited`` once the job had to raise the busy timeout (0 for inline jobs)
# because it could no longer be handed to the connection thread.
INLINE = threading.local()


class InlineBusy(Exception):
    """An inline job found the write lock taken before it committed anything:
    the job goes to the connection thread instead, which waits for the lock."""


def is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[None]:
    """One transaction: ``BEGIN IMMEDIATE`` for writes (takes the write lock up
    front, so the transaction never fails half-way on a lock upgrade), plain
    ``BEGIN`` for reads (one consistent snapshot). Rolled back on any error.

    Inside an open transaction it is a SAVEPOINT, so the inner part is still
    all-or-nothing.
    """
    if conn.in_transaction:
        if getattr(IN_UNIT, "active", False):
            # A job of store.transaction(): the unit's own transaction is the
            # all-or-nothing boundary (a failing job fails the whole unit).
            yield
            return
        conn.execute("SAVEPOINT kode_call")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK TO kode_call")
                conn.execute("RELEASE kode_call")
            raise
        conn.execute("RELEASE kode_call")
        return
    if write:
        for attempt in range(_BUSY_RETRIES + 1):
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if getattr(INLINE, "active", False) and is_busy(exc):
                    if not INLINE.wrote:
                        raise InlineBusy from exc
                    # A later transaction of a job that already committed one
                    # cannot be handed over: it waits, as the thread would.
                    conn.execute(f"PRAGMA busy_timeout = {INLINE.busy_timeout_ms}")
                    INLINE.waited = True  # the store notes the timeout is raised
                if attempt == _BUSY_RETRIES or not is_busy(exc):
                    raise
                time.sleep(min(0.01 * 2**attempt, 0.5))
    else:
        conn.execute("BEGIN")
    try:
        yield
        conn.execute("COMMIT")
        if getattr(INLINE, "active", False):
            INLINE.wrote = True
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
