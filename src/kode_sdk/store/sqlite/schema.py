"""The SQLite schema: the migrations shipped under
``kode_sdk/store/schema/sqlite`` (found by :mod:`~kode_sdk.store.schema_migrations`),
split into statements and applied on open, one transaction each.
"""

from __future__ import annotations

import logging
import re
import sqlite3

from ...errors import SchemaVersionError
from ..schema_migrations import Migration, discover, pending
from .sql import now_ms
from .transactions import transaction

__all__ = ["migrate", "migrations", "split_sql"]

logger = logging.getLogger("kode_sdk.store.sqlite")


def split_sql(script: str) -> list[str]:
    """Split an SQL script into single statements (``;`` inside strings,
    comments and trigger bodies is handled by ``sqlite3.complete_statement``)."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if _has_code(statement):
                statements.append(statement)
            buffer = ""
    if _has_code(buffer[:-1]):
        raise SchemaVersionError(f"migration script ends with an incomplete statement: {buffer[:80]!r}")
    return statements


_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_LINE_COMMENT = re.compile(r"--[^\n]*")


def _has_code(text: str) -> bool:
    """True unless ``text`` is only comments, whitespace and semicolons."""
    bare = _LINE_COMMENT.sub("", _BLOCK_COMMENT.sub("", text))
    return bool(bare.replace(";", "").strip())


def migrations() -> list[Migration]:
    """The SQLite migrations shipped with this package, in version order
    (files ``NNNN_name.sql`` under ``kode_sdk/store/schema/sqlite``)."""
    return discover("sqlite")


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations ``conn``'s database has not recorded yet."""
    known = migrations()
    with transaction(conn, write=True):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
        )
        applied = [v for (v,) in conn.execute("SELECT version FROM schema_version")]
    for migration in pending(known, applied, database="the SQLite database"):
        # One transaction per migration; re-check inside it, as another
        # process may have applied it since we looked.
        with transaction(conn, write=True):
            if conn.execute("SELECT 1 FROM schema_version WHERE version = ?", (migration.version,)).fetchone():
                continue
            try:
                for statement in split_sql(migration.sql):
                    conn.execute(statement)
            except sqlite3.Error as exc:
                raise SchemaVersionError(f"SQLite migration {migration.name} failed: {exc}") from exc
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (migration.version, now_ms())
            )
        logger.info("applied SQLite migration %s", migration.name)
