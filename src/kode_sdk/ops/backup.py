"""Physical backups of a store's database, consistent while writers run.

* **SQLite**: the online backup API (:meth:`sqlite3.Connection.backup`) copies
  every page in one step under a read transaction, so the copy is one
  consistent state even while other processes write (WAL readers do not block
  writers). The copy goes to a temporary file, passes ``PRAGMA
  integrity_check``, and only then takes the destination's name.
* **PostgreSQL**: ``pg_dump --format=custom --schema=<the store's schema>`` (one
  repeatable-read snapshot of the store's tables, connected with the store's
  own parsed settings, ssl options included)
  and ``pg_restore --clean --if-exists``, when those programs are installed.
  The password travels in ``PGPASSWORD``, never on a command line.

Both refuse to replace a destination that already holds tables unless
``force`` is given (:class:`DestinationNotEmptyError`). Backups, dumps and
restored database files are created owner-only (0600) whatever the umask, as
the database itself is. No parent folder is ever created: a missing one is an
error.

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
from ..extras import import_extra
from ..store.factory import postgres_connection

__all__ = ["BackupError", "BackupResult", "DestinationNotEmptyError", "backup", "restore"]

_FILE_MODE = 0o600


class BackupError(KodeError, RuntimeError):
    """A backup or restore could not be made (the message says why)."""


class DestinationNotEmptyError(BackupError):
    """A restore would replace a database that holds tables, and ``force`` was not given."""


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

    A target that already holds tables (SQLite or PostgreSQL alike) is
    replaced only with ``force``; otherwise :class:`DestinationNotEmptyError`.
    """
    kind = str(config.get("type", "sqlite")).lower()
    if kind == "sqlite":
        return restore_sqlite(src, _sqlite_path(config), force=force)
    if kind == "postgres":
        return restore_postgres(config, src, force=force)
    raise BackupError(f"restore supports sqlite and postgres stores, not {kind!r}; use 'kode import' instead")


# --------------------------------------------------------------------------- sqlite


def _sqlite_path(config: Mapping[str, Any]) -> Path:
    path = config.get("db_path")
    if not path:
        raise StoreConfigError("store config: 'db_path' is required for a SQLite backup")
    return Path(path)


def _parent_must_exist(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise BackupError(f"folder {str(parent)!r} does not exist (create it first)")


def _create_private(path: Path) -> None:
    """Create ``path`` empty and owner-only, whatever the umask (it must not exist)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
    os.close(fd)


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
    _parent_must_exist(target)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        _create_private(partial)
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
            _parent_must_exist(target)
            with contextlib.suppress(FileExistsError):
                _create_private(target)
            with contextlib.closing(sqlite3.connect(target, timeout=30)) as dst_conn:
                tables = dst_conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
                if tables and not force:
                    raise DestinationNotEmptyError(
                        f"{str(target)!r} already holds a database ({tables} tables); "
                        "pass force=True (--force) to replace it"
                    )
                src_conn.backup(dst_conn, pages=-1)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"SQLite restore failed: {exc}") from None
    return BackupResult("sqlite", str(target), target.stat().st_size, integrity)


# --------------------------------------------------------------------------- postgres


def _pg_settings(config: Mapping[str, Any]) -> Any:
    """The store's :class:`~kode_sdk.store.postgres.config.PostgresSettings`,
    parsed by the one parser the store itself uses (ssl options and schema
    included)."""
    postgres_config = import_extra("kode_sdk.store.postgres.config", "postgres")
    connection, schema = postgres_connection(config)
    return postgres_config.parse_connection(connection, schema)


def _pg_env(config: Mapping[str, Any]) -> tuple[str, dict[str, str], str]:
    """A password-free conninfo string, an environment carrying the password,
    and the store's schema."""
    conninfo_module = import_extra("psycopg.conninfo", "postgres")
    settings = _pg_settings(config)
    parts = dict(conninfo_module.conninfo_to_dict(settings.conninfo))
    # The store's session settings (search_path, jit, ...) are not the tools':
    # pg_dump and pg_restore set their own.
    parts.pop("options", None)
    env = dict(os.environ)
    password = parts.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return conninfo_module.make_conninfo("", **{k: str(v) for k, v in parts.items()}), env, str(settings.schema)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (or not on PATH); install the PostgreSQL client tools")
    return path


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    # umask 077: whatever the tool creates is owner-only.
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False, umask=0o077)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{what} failed (exit {proc.returncode}): {message}")


def backup_postgres(config: Mapping[str, Any], dest: str | os.PathLike[str]) -> BackupResult:
    """``pg_dump --format=custom`` of the store's schema (``kode`` unless the
    config names another): the store's tables, not the rest of the database."""
    conninfo, env, schema = _pg_env(config)
    target = Path(dest)
    _parent_must_exist(target)
    partial = target.with_name(target.name + ".partial")
    args = [
        _tool("pg_dump"),
        "--format=custom",
        "--no-owner",
        f"--schema={schema}",
        f"--file={partial}",
        f"--dbname={conninfo}",
    ]
    try:
        partial.unlink(missing_ok=True)
        _create_private(partial)  # pg_dump keeps the mode of the file it overwrites
        _run(args, env, "pg_dump")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult("postgres", str(target), target.stat().st_size)


def _postgres_tables(schema: str, conninfo: str, env: Mapping[str, str]) -> int:
    """How many tables of the store's schema the restore would replace."""
    psycopg = import_extra("psycopg", "postgres")
    try:
        with psycopg.connect(conninfo, password=env.get("PGPASSWORD"), connect_timeout=10) as conn:
            row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone()
    except psycopg.Error as exc:
        raise BackupError(f"cannot reach the PostgreSQL database to restore into: {type(exc).__name__}") from None
    return int(row[0]) if row else 0


def restore_postgres(config: Mapping[str, Any], src: str | os.PathLike[str], *, force: bool = False) -> BackupResult:
    """``pg_restore --clean --if-exists`` of a :func:`backup_postgres` file, in one transaction.

    A database (or the store's schema) that already holds tables is replaced
    only with ``force``, as for SQLite.
    """
    source = Path(src)
    if not source.is_file():
        raise BackupError(f"backup file {str(source)!r} does not exist")
    conninfo, env, schema = _pg_env(config)
    tables = _postgres_tables(schema, conninfo, env)
    if tables and not force:
        raise DestinationNotEmptyError(
            f"schema {schema!r} already holds {tables} tables; pass force=True (--force) to replace them"
        )
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
