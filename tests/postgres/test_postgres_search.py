"""PostgresStore's full-text index (schema version 2): what is specific to PostgreSQL.

The search contract itself is in kode_sdk.testing.search_suite."""

from __future__ import annotations

import json

import psycopg
import pytest

from kode_sdk.store import postgres as pgmod
from kode_sdk.store.postgres import PostgresStore
from kode_sdk.store.postgres import schema as pg_schema_module  # whose migrations() the store runs
from kode_sdk.store.search import search_request


async def test_a_version_1_schema_gains_the_search_index(
    pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    version_1 = [m for m in pgmod.migrations() if m[0] == 1]
    monkeypatch.setattr(pg_schema_module, "migrations", lambda: version_1)
    async with PostgresStore(pg_url, schema=pg_schema) as store:
        await store.list()  # schema created at version 1
    documents = [
        {"role": "user", "content": [{"type": "text", "text": "an old Crème message about persimmon"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "数据库里的 persimmon\u0000 nul"}]},
    ]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {pg_schema}")
        conn.execute("INSERT INTO agents (agent_id, created_at, updated_at, msg_len) VALUES ('old', 0, 0, 2)")
        for seq, doc in enumerate(documents):
            text = json.dumps(doc)
            # jsonb cannot hold U+0000: such a document keeps its exact text in raw.
            data, raw = (text.replace("\\u0000", ""), text) if "\\u0000" in text else (text, None)
            conn.execute(
                "INSERT INTO messages (agent_id, seq, role, block_types, created_at, data, raw)"
                " VALUES ('old', %s, %s, ARRAY['text'], %s, %s::jsonb, %s)",
                [seq, doc["role"], 1000 + seq, data, raw],
            )
    monkeypatch.undo()
    async with PostgresStore(pg_url, schema=pg_schema) as store:
        assert sorted(h.seq for h in await store.search_messages("persimmon")) == [0, 1]
        assert [h.seq for h in await store.search_messages("creme")] == [0]
        assert [h.seq for h in await store.search_messages("数据")] == [1]
        assert [h.seq for h in await store.search_messages("persimmon nul")] == [1]
        async with store._connection() as conn:
            cur = await conn.execute("SELECT version FROM kode_schema_version ORDER BY version")
            assert [v for (v,) in await cur.fetchall()] == [v for v, _, _ in pgmod.migrations()]
            cur = await conn.execute("SELECT count(*) FROM messages WHERE search IS NULL")
            assert await cur.fetchone() == (0,)


async def test_search_sql_uses_the_gin_index(store: PostgresStore) -> None:
    await store.save_messages("a", [{"role": "user", "content": [{"type": "text", "text": "durian"}]}])
    request = search_request("durian")
    query, params = pgmod.search_query(request)
    async with store._connection() as conn, conn.transaction():
        # A tiny table is cheapest to scan; forbid that to see what the index serves.
        await conn.execute("SET LOCAL enable_seqscan = off")
        cur = await conn.execute("EXPLAIN " + query, params)  # type: ignore[operator]
        plan = "\n".join(row[0] for row in await cur.fetchall())
    assert "messages_search" in plan, plan
