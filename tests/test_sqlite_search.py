"""SqliteStore's full-text index (schema version 4): what is specific to SQLite.

The search contract itself is in kode_sdk.testing.search_suite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kode_sdk.store.sqlite import SqliteStore, migrations, register_functions, schema
from kode_sdk.types import Message


def text(role: str, body: str) -> Message:
    return Message.model_validate({"role": role, "content": [{"type": "text", "text": body}]})


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "agents.db"


async def test_a_version_3_database_gains_the_search_index(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = [m for m in migrations() if m.version <= 3]
    monkeypatch.setattr(schema, "migrations", lambda: before)
    long_text = "Ünïcode padding so the row is stored compressed. " * 10
    async with SqliteStore(db) as store:
        await store.save_messages("a", [text("user", "short kumquat"), text("assistant", f"{long_text} kumquat")])
        await store.save_messages("b", [text("user", "数据库 kumquat")])
    assert "messages_search" not in {n for (n,) in rows(db, "SELECT name FROM sqlite_master")}
    assert {t for (t,) in rows(db, "SELECT typeof(data) FROM messages")} == {"text", "blob"}

    monkeypatch.undo()
    async with SqliteStore(db) as store:
        found = {(h.agent_id, h.seq) for h in await store.search_messages("kumquat")}
        assert found == {("a", 0), ("a", 1), ("b", 0)}
        assert [(h.agent_id, h.seq) for h in await store.search_messages("数据")] == [("b", 0)]
        assert [(h.agent_id, h.seq) for h in await store.search_messages("unicode padding")] == [("a", 1)]
    assert [v for (v,) in rows(db, "SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3, 4]


async def test_the_index_follows_vacuum_and_stays_sound(db: Path) -> None:
    async with SqliteStore(db) as store:
        for i in range(30):
            await store.save_messages(f"a{i}", [text("user", f"quince number{i}")])
        for i in range(0, 30, 2):
            await store.delete(f"a{i}")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("VACUUM")  # may renumber rowids the index refers to: it must not
    conn.close()
    async with SqliteStore(db) as store:
        hits = await store.search_messages("quince", limit=100)
        assert sorted(h.agent_id for h in hits) == sorted(f"a{i}" for i in range(1, 30, 2))
        for i in range(1, 30, 2):
            [hit] = await store.search_messages(f"number{i}")
            assert hit.agent_id == f"a{i}" and hit.snippet == f"quince number{i}"
        await store._hop(
            lambda conn: conn.execute("INSERT INTO messages_search (messages_search) VALUES ('integrity-check')")
        )


async def test_a_connection_writing_messages_needs_the_functions(db: Path) -> None:
    async with SqliteStore(db) as store:
        await store.save_messages("a", [text("user", "medlar")])
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.OperationalError, match="kode_index_text"):
        conn.execute("DELETE FROM messages")
    conn.rollback()
    register_functions(conn)
    conn.execute("UPDATE messages SET data = ? WHERE agent_id = 'a'", ['{"role":"user","content":[]}'])
    conn.commit()
    conn.close()
    async with SqliteStore(db) as store:
        assert await store.search_messages("medlar") == []
        await store.save_messages("a", [text("user", "medlar again")])
        assert [h.snippet for h in await store.search_messages("medlar")] == ["medlar again"]


async def test_search_reads_the_index_not_every_message(db: Path) -> None:
    async with SqliteStore(db) as store:
        await store.save_info("a", {"agent_id": "a", "template_id": "t", "metadata": {"userId": "u"}})
        await store.save_messages("a", [text("user", "loquat")])
        statements: list[str] = []
        await store._hop(lambda conn: conn.set_trace_callback(statements.append))
        for filters in ({}, {"agent_id": "a"}, {"template_id": "t", "user_id": "u", "role": "user"}):
            await store.search_messages("loquat", **filters)
        await store._hop(lambda conn: conn.set_trace_callback(None))
        searches = [s for s in statements if "MATCH" in s or "rowid IN" in s]
        assert len([s for s in searches if "MATCH" in s]) == 3

        def plans(conn: sqlite3.Connection) -> list[list[str]]:
            out = []
            for sql in searches:
                # The traced text has its parameters inlined: plan it as it ran.
                out.append([row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")])
            return out

        for sql, plan in zip(searches, await store._hop(plans), strict=True):
            if "MATCH" in sql:
                assert any("VIRTUAL TABLE INDEX" in step for step in plan), plan
            else:  # the rows of the page, by rowid
                assert plan == ["SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)"], plan
            # Never a scan of the messages table.
            assert not any(step.split()[:2] in (["SCAN", "m"], ["SCAN", "messages"]) for step in plan), plan


@pytest.mark.parametrize(
    "text",
    [
        "Hello, World! snake_case kebab-case CamelCase x86_64 v1.2.3 3.14 1e10",
        "path/to/file.txt user@example.com https://example.com/a?b=c#d",
        "tabs\tand\nnewlines\r\n and \x00 NUL, \x1b[31m escapes, 'quotes' \"double\" (parens) [brackets]",
        "ALLCAPS lower MiXeD 0123 abc123 123abc ___ --- ... ~!@#$%^&*()+={}|:;<>,?",
        "a" * 200 + " " + "b" * 199,
    ],
)
def test_plain_ascii_goes_to_fts5_as_is_and_splits_into_the_same_words(text: str) -> None:
    # The write path gives FTS5 ASCII text untouched (sqlite.fts.index_text_of):
    # its unicode61 tokenizer must find exactly search.tokens' words.
    from kode_sdk.store.search import tokens
    from kode_sdk.store.sqlite.fts import index_text_of

    wire = {"role": "user", "content": [{"type": "text", "text": text}]}
    indexed = index_text_of(json.dumps(wire))
    assert indexed == text  # passed through
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    conn.execute("INSERT INTO t (rowid, body) VALUES (1, ?)", [indexed])
    words = [term for (term,) in conn.execute("SELECT term FROM v ORDER BY offset")]
    assert words == tokens(text)


def test_long_runs_and_other_scripts_go_through_the_tokenizer() -> None:
    from kode_sdk.store.sqlite.fts import index_text_of

    for text, expected in (("x" * 450, " ".join(["x" * 200, "x" * 200, "x" * 50])), ("Café 数据", "cafe 数 据")):
        wire = {"role": "user", "content": [{"type": "text", "text": text}]}
        assert index_text_of(json.dumps(wire, ensure_ascii=False)) == expected


async def test_writes_queue_and_any_store_on_the_file_catches_the_index_up(db: Path) -> None:
    async with SqliteStore(db) as writer, SqliteStore(db) as reader:
        await writer.save_messages("a", [text("user", f"rambutan {i}") for i in range(5)])
        assert rows(db, "SELECT count(*) FROM messages_search_pending") == [(5,)]
        # Another connection's search indexes what is queued, then finds it.
        assert sorted(h.seq for h in await reader.search_messages("rambutan")) == [0, 1, 2, 3, 4]
        assert rows(db, "SELECT count(*) FROM messages_search_pending") == [(0,)]
        # Rewriting and deleting indexed rows (by the other store) is seen at once.
        await writer.save_messages("a", [text("user", "rambutan 0"), text("user", "lychee 1")])
        assert sorted(h.seq for h in await reader.search_messages("rambutan")) == [0]
        assert [h.seq for h in await reader.search_messages("lychee")] == [1]
        await writer.delete("a")
        assert await reader.search_messages("rambutan") == []
        assert await reader.search_messages("lychee") == []
        await reader._hop(
            lambda conn: conn.execute("INSERT INTO messages_search (messages_search) VALUES ('integrity-check')")
        )
