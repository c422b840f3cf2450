"""Running the schema migrations on open: ``kode_sdk/store/schema/postgres/NNNN_*.sql``
applied in order under ``pg_advisory_xact_lock`` (several workers may open at
once), each with its Python data step if it has one; a database newer than
this code raises :class:`~kode_sdk.errors.SchemaVersionError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, cast

import psycopg.errors
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from ... import jsoncodec
from ...errors import SchemaVersionError, StoreConfigError
from ..schema_migrations import Migration, discover, pending
from ..search import index_text
from .checkout import CONNECTION_ERRORS
from .config import PostgresSettings
from .sql import TS_CONFIG, now_ms

__all__ = ["migrate", "migrations"]

_MIGRATION_LOCK_KEY = int.from_bytes(hashlib.blake2b(b"kode-sdk:migrate", digest_size=8).digest(), "big", signed=True)


def migrations() -> list[Migration]:
    """The ordered migrations: ``(version, file name, SQL)`` from
    ``kode_sdk/store/schema/postgres/NNNN_name.sql``."""
    return discover("postgres")


async def _index_existing_messages(conn: AsyncConnection[Any]) -> None:
    """Migration 2's data step: index the messages stored before it, in batches
    read through a server-side cursor (same transaction as the DDL)."""
    reader = conn.cursor(name="kode_index_messages")
    await reader.execute("SELECT agent_id, seq, COALESCE(raw, data::text) FROM messages")
    while True:
        batch = await reader.fetchmany(1000)
        if not batch:
            break
        agents, seqs, texts = [], [], []
        for agent_id, seq, document in batch:
            agents.append(agent_id)
            seqs.append(seq)
            texts.append(index_text(jsoncodec.decode(document)))
        await conn.execute(
            f"UPDATE messages m SET search = to_tsvector({TS_CONFIG}, u.t)"
            " FROM unnest(%s::text[], %s::integer[], %s::text[]) AS u(a, s, t)"
            " WHERE m.agent_id = u.a AND m.seq = u.s",
            [agents, seqs, texts],
        )
    await reader.close()


# Python steps run right after a migration's SQL, in its transaction.
_MIGRATION_STEPS: dict[int, Callable[[AsyncConnection[Any]], Awaitable[None]]] = {2: _index_existing_messages}


async def migrate(pool: AsyncConnectionPool[AsyncConnection[Any]], settings: PostgresSettings, create: bool) -> None:
    """Bring ``settings.schema`` up to date (creating it unless ``create`` is
    false: then a schema without kode tables raises StoreConfigError)."""
    known = migrations()
    async with pool.connection() as conn, conn.transaction():
        # Serialises concurrent openers; released at commit.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK_KEY])
        schema = settings.schema
        if not create:
            cur = await conn.execute(
                "SELECT to_regclass(format('%%I.kode_schema_version', %s::text)) IS NOT NULL", [schema]
            )
            row = await cur.fetchone()
            if not (row and row[0]):
                raise StoreConfigError(
                    f"PostgreSQL store {settings.describe()} does not exist (no kode tables in"
                    f" schema {schema!r}; create=False: nothing created)"
                )
        cur = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
        if await cur.fetchone() is None:
            await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS kode_schema_version"
            " (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)"
        )
        cur = await conn.execute("SELECT version FROM kode_schema_version")
        applied = [int(row[0]) for row in await cur.fetchall()]
        for version, name, text in pending(known, applied, database=f"the database schema {schema!r}"):
            try:
                await conn.execute(cast(Any, text))
            except psycopg.errors.DatabaseError as exc:
                if isinstance(exc, CONNECTION_ERRORS):
                    raise
                raise SchemaVersionError(f"migration {name} failed: {settings.scrub(str(exc))}") from None
            step = _MIGRATION_STEPS.get(version)
            if step is not None:
                await step(conn)
            await conn.execute(
                "INSERT INTO kode_schema_version (version, name, applied_at) VALUES (%s, %s, %s)",
                [version, name, now_ms()],
            )
