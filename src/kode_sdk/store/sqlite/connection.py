"""Opening a store's SQLite connections: the database file created owner-only,
the writer's connection (WAL, busy timeout, the SQL functions, migrations),
and the caller-thread read connections (``query_only``, one per thread).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from pathlib import Path

from ...errors import StoreClosedError, StoreConfigError, StoreConnectionError
from .fts import register_functions
from .schema import migrate

__all__ = ["CallerReaders", "open_writer"]

logger = logging.getLogger("kode_sdk.store.sqlite")

_FILE_MODE = 0o600  # the database and lock files: readable by their owner only
_BUSY_TIMEOUT_MS = 10_000
# The writer's own automatic checkpoint: a backstop only, at a size the
# background checkpointer (checkpointer.py) normally never lets the WAL reach.
_BACKSTOP_CHECKPOINT_PAGES = 10_000

# Held while a store creates its database file (see _create_private).
_CREATE_LOCK = threading.Lock()


def _create_private(path: Path) -> None:
    """Create the database file owner-only if it does not exist yet.

    Agent transcripts are private, so the file is made 0600 before SQLite
    opens it (SQLite gives the -wal and -shm files the database's mode). An
    existing file is never opened here: SQLite's locks are POSIX locks, owned
    by the process, and closing *any* descriptor of the file drops all of them,
    those of every connection this process has open on it. A process left
    without its lock lets another process, closing, take itself for the last
    connection and checkpoint and delete the WAL still in use here: the
    commits made here afterwards are lost. ``O_EXCL`` opens only a file this
    call creates, and the lock keeps other stores of this process from
    connecting to it before that descriptor is closed.
    """
    with _CREATE_LOCK:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
        except FileExistsError:
            return
        os.close(fd)


def open_writer(path: Path, *, create: bool) -> sqlite3.Connection:
    """The connection-thread connection to ``path``, schema migrated: the
    file and its folders created when missing if ``create``, else only an
    existing file opened (:class:`StoreConfigError` otherwise)."""
    target: str | Path = path
    if str(path) != ":memory:" and not create:
        # Open only what exists: a typo must not leave folders and a database behind.
        if not path.is_file():
            raise StoreConfigError(f"SQLite database {str(path)!r} does not exist (create=False: nothing created)")
        target = path.absolute().as_uri() + "?mode=rw"
    try:
        if str(path) != ":memory:" and create:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(path)
        conn = sqlite3.connect(
            # Used by one thread at a time: the connection thread, or a caller
            # running a write inline while that thread is idle (under its run lock).
            target,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
            uri=not create,
        )
    except (OSError, sqlite3.Error) as exc:
        raise StoreConnectionError(f"cannot open SQLite database {str(path)!r}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal" and str(path) != ":memory:":
            raise StoreConnectionError(f"SQLite database {str(path)!r} refused WAL mode (journal_mode={mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        # A backstop only: the Checkpointer moves the WAL into the file off the commit path.
        conn.execute(f"PRAGMA wal_autocheckpoint = {_BACKSTOP_CHECKPOINT_PAGES}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA cache_size = -32000")  # 32 MiB
        conn.execute("PRAGMA temp_store = MEMORY")
        register_functions(conn)
        migrate(conn)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise StoreConnectionError(f"cannot open SQLite database {str(path)!r}: {exc}") from exc
        raise
    return conn


class CallerReaders:
    """The read connections used on the callers' threads (see
    ``SqliteStore._read``): one a thread, opened on first use, all closed by
    :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def connection(self) -> sqlite3.Connection | None:
        """This thread's read connection (opened on first use), or None where
        there is none to have (``:memory:``, open failed). Raises
        :class:`StoreClosedError` after :meth:`close`."""
        if self._closed:
            raise StoreClosedError("sqlite store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if getattr(self._local, "failed", False) or str(self._path) == ":memory:":
            return None
        try:
            conn = sqlite3.connect(
                self._path.absolute().as_uri() + "?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,  # closed by close(), maybe from another thread
                cached_statements=256,
            )
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA cache_size = -8000")  # 8 MiB
        except sqlite3.Error as exc:  # e.g. a path the URI form cannot name: the hop still works
            logger.debug("no caller-thread reads for %r: %s", str(self._path), exc)
            self._local.failed = True
            return None
        with self._lock:
            if self._closed:  # closed meanwhile
                conn.close()
                raise StoreClosedError("sqlite store is closed")
            self._conns.append(conn)
        self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close every read connection; :meth:`connection` raises from now on."""
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
