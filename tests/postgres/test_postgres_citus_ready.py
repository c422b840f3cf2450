"""The schema stays Citus-ready: every table is keyed by agent, so it can be
distributed on ``agent_id`` with all of an agent's rows colocated (see
docs/postgres-guide.md, "Past one server"). Read from the server's catalog
after every migration ran, so a new table or index cannot slip by."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from kode_sdk.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "postgres-guide.md"

# Store bookkeeping, not agent data: a Citus deployment keeps it on the
# coordinator (a local table) — it is written only by migrations.
NOT_DISTRIBUTED = {"kode_schema_version"}


async def test_every_primary_key_and_unique_index_leads_with_agent_id(pg_url: str, pg_schema: str) -> None:
    async with PostgresStore(pg_url, schema=pg_schema):
        pass  # opening applies every migration
    with psycopg.connect(pg_url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1",
                [pg_schema],
            ).fetchall()
        ]
        unique = conn.execute(
            """
            SELECT t.relname, i.relname, i_x.indisprimary,
                   (SELECT a.attname FROM pg_attribute a
                     WHERE a.attrelid = t.oid AND a.attnum = i_x.indkey[0]) AS first_column
              FROM pg_index i_x
              JOIN pg_class i ON i.oid = i_x.indexrelid
              JOIN pg_class t ON t.oid = i_x.indrelid
              JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE n.nspname = %s AND i_x.indisunique
            """,
            [pg_schema],
        ).fetchall()
    data_tables = set(tables) - NOT_DISTRIBUTED
    assert {"agents", "messages", "tool_calls", "events", "agent_leases"} <= data_tables
    keyed = {table for table, _, primary, _ in unique if primary}
    assert data_tables <= keyed, f"tables without a primary key: {sorted(data_tables - keyed)}"
    offenders = [
        f"{table}.{index} starts with {first!r}"
        for table, index, _, first in unique
        if table in data_tables and first != "agent_id"
    ]
    assert offenders == [], offenders
    # The guide's Citus section names every table it distributes, and the one it does not.
    guide = GUIDE.read_text(encoding="utf-8")
    citus = guide[guide.index("## Past one server") : guide.index("## Troubleshooting")]
    unnamed = [table for table in sorted(tables) if f"`{table}`" not in citus and f"'{table}'" not in citus]
    assert unnamed == [], f"docs/postgres-guide.md (Citus) does not name {unnamed}"
