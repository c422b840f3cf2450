"""Physical backups of a store's database, consistent while writers run.

* **SQLite**: the online backup API (:meth:`sqlite3.Connection.backup`) copies
  every page in one step under a read transaction, so the copy is one
  consistent state even while other processes write (WAL readers do not block
  writers). The copy goes to a temporary file, passes ``PRAGMA
  integrity_check``, and only then takes the destination's name.
* **PostgreSQL**: ``pg_dump --format=custom`` (one repeatable-read snapshot)
  and ``pg_restore --clean --if-exists``, when those programs are installed.
  The password travels in ``PGPASSWORD``, never on a command line.

JSONStore directories have no physical backup here; use the portable
:mod:`~kode_sdk.ops.export` format instead.

>>> info = backup({"type": "sqlite", "db_path": "./data/agents.db"}, "./agents.bak")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KodeError, StoreConfigError

__all__ = ["BackupError", "BackupResult", "backup", "restore"]


class BackupError(KodeError, RuntimeError):
    """A backup or restore could not be made (the message says why)."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """Where a backup or restore went and how big it is."""

    backend: str
    path: str
    size_bytes: int
    integrity: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"backend": self.backend, "path": self.path, "sizeBytes": self.size_bytes, "integrity": self.integrity}


def backup(config: Mapping[str, Any], dest: str | os.PathLike[str]) -> BackupResult:
    """Back up the store ``config`` describes (a factory config dict) to ``dest``."""
    kind = str(config.get("type", "sqlite")).lower()
    if kind == "sqlite":
        return backup_sqlite(_sqlite_path(config), dest)
    if kind == "postgres":
        return backup_postgres(config, dest)
    raise BackupError(f"backup supports sqlite and postgres stores, not {kind!r}; use 'kode export' instead")


def restore(config: Mapping[str, Any], src: str | os.PathLike[str], *, force: bool = False) -> BackupResult:
    """Restore a backup made by :func:`backup` into the store ``config`` describes.

    A SQLite target that already holds data is replaced only with ``force``.
    """
    kind = str(config.get("type", "sqlite")).lower()
    if kind == "sqlite":
        return restore_sqlite(src, _sqlite_path(config), force=force)
    if kind == "postgres":
        return restore_postgres(config, src)
    raise BackupError(f"restore supports sqlite and postgres stores, not {kind!r}; use 'kode import' instead")


# --------------------------------------------------------------------------- sqlite


def _sqlite_path(config: Mapping[str, Any]) -> Path:
    path = config.get("db_path")
    if not path:
        raise StoreConfigError("store config: 'db_path' is required for a SQLite backup")
    return Path(path)


def _integrity(conn: sqlite3.Connection) -> str:
    rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(r[0]) for r in rows)


def backup_sqlite(db_path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> BackupResult:
    """Copy the SQLite database at ``db_path`` to ``dest`` with the online backup API."""
    source = Path(db_path)
    target = Path(dest)
    if not source.is_file():
        raise BackupError(f"SQLite database {str(source)!r} does not exist")
    if target.resolve() == source.resolve():
        raise BackupError("the backup destination is the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with (
            contextlib.closing(sqlite3.connect(source, timeout=30)) as src_conn,
            contextlib.closing(sqlite3.connect(partial)) as dst_conn,
        ):
            # pages=-1: every page in one step, under one read transaction,
            # so concurrent writers cannot make the copy restart or tear.
            src_conn.backup(dst_conn, pages=-1)
            # The copy is self-contained: no -wal file beside it.
            dst_conn.execute("PRAGMA journal_mode=DELETE")
            integrity = _integrity(dst_conn)
        if integrity != "ok":
            raise BackupError(f"the backup failed PRAGMA integrity_check: {integrity}")
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite backup failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult("sqlite", str(target), target.stat().st_size, integrity)


def restore_sqlite(
    src: str | os.PathLike[str], db_path: str | os.PathLike[str], *, force: bool = False
) -> BackupResult:
    """Copy the SQLite backup ``src`` into the database at ``db_path`` (backup API,
    so a process that has the target open sees a complete database)."""
    source = Path(src)
    target = Path(db_path)
    if not source.is_file():
        raise BackupError(f"backup file {str(source)!r} does not exist")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src_conn:
            integrity = _integrity(src_conn)
            if integrity != "ok":
                raise BackupError(f"the backup {str(source)!r} failed PRAGMA integrity_check: {integrity}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(target, timeout=30)) as dst_conn:
                tables = dst_conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
                if tables and not force:
                    raise BackupError(
                        f"{str(target)!r} already holds a database; pass force=True (--force) to replace it"
                    )
                src_conn.backup(dst_conn, pages=-1)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"SQLite restore failed: {exc}") from None
    return BackupResult("sqlite", str(target), target.stat().st_size, integrity)


# --------------------------------------------------------------------------- postgres


def _pg_env(config: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """A password-free conninfo string and an environment carrying the password."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    env = dict(os.environ)
    dsn = config.get("dsn")
    parts: dict[str, Any]
    if dsn is not None:
        try:
            parts = dict(conninfo_to_dict(str(dsn)))
        except Exception:
            raise StoreConfigError("store config: the PostgreSQL DSN could not be parsed") from None
    else:
        connection = config.get("connection")
        if isinstance(connection, str):
            parts = dict(conninfo_to_dict(connection))
        elif isinstance(connection, Mapping):
            parts = {
                ("dbname" if k == "database" else str(k)): v
                for k, v in connection.items()
                if k in ("host", "port", "database", "user", "password") and v is not None
            }
        else:
            raise StoreConfigError("store config: postgres needs 'dsn' or 'connection'")
    password = parts.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **{k: str(v) for k, v in parts.items()}), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (or not on PATH); install the PostgreSQL client tools")
    return path


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{what} failed (exit {proc.returncode}): {message}")


def backup_postgres(config: Mapping[str, Any], dest: str | os.PathLike[str]) -> BackupResult:
    """``pg_dump --format=custom`` of the store's database (its schema only, when set)."""
    conninfo, env = _pg_env(config)
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    args = [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={conninfo}"]
    if config.get("schema"):
        args.append(f"--schema={config['schema']}")
    try:
        _run(args, env, "pg_dump")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult("postgres", str(target), target.stat().st_size)


def restore_postgres(config: Mapping[str, Any], src: str | os.PathLike[str]) -> BackupResult:
    """``pg_restore --clean --if-exists`` of a :func:`backup_postgres` file, in one transaction."""
    source = Path(src)
    if not source.is_file():
        raise BackupError(f"backup file {str(source)!r} does not exist")
    conninfo, env = _pg_env(config)
    args = [
        _tool("pg_restore"),
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={conninfo}",
        str(source),
    ]
    _run(args, env, "pg_restore")
    return BackupResult("postgres", str(source), source.stat().st_size)
