"""SqliteStore's compact format (schema version 2): compressed JSON documents,
the slimmer message indexes, created_at never decreasing along a list, and
the upgrade of a version-1 database in place."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kode_sdk.errors import StoreCorruptionError
from kode_sdk.store.sqlite import SqliteStore, migrations, register_functions, schema, sql
from kode_sdk.store.sqlite import store as store_module
from kode_sdk.store.sqlite.blob import DICTIONARY_V1, MIN_PACKED_BYTES, pack, unpack
from kode_sdk.types import AgentInfo, ConsistencyCheckResult, Message, ToolCallRecord

LONG = 'The quick brown fox jumps over the lazy dog; ünïcödé ✓ and "quotes" \\ too. ' * 8


def text(role: str, body: str) -> Message:
    return Message.model_validate({"role": role, "content": [{"type": "text", "text": body}]})


def turn(n: int, body: str = LONG) -> list[Message]:
    tid = f"toolu_{n}"
    return [
        text("user", f"{n}: {body}"),
        Message.model_validate(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"answer {n}"},
                    {"type": "tool_use", "id": tid, "name": "bash_run", "input": {"cmd": f"echo {n}"}},
                ],
            }
        ),
        Message.model_validate(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tid, "content": body, "is_error": False}],
            }
        ),
    ]


def record(n: int) -> ToolCallRecord:
    return ToolCallRecord.model_validate(
        {
            "id": f"toolu_{n}",
            "name": "bash_run",
            "input": {"cmd": f"echo {n}"},
            "state": "completed",
            "result": {"stdout": LONG},
            "created_at": 1_700_000_000_000 + n,
            "updated_at": 1_700_000_000_000 + n,
        }
    )


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "agents.db"


async def write_everything(store: SqliteStore, agent: str) -> dict[str, Any]:
    """Save one of every kind of record; return what each load should give back."""
    messages = turn(1) + turn(2, "short")
    records = [record(1), record(2)]
    await store.save_info(agent, AgentInfo.model_validate({"agent_id": agent, "template_id": "tpl"}))
    await store.save_messages(agent, messages)
    await store.save_tool_call_records(agent, records)
    await store.save_todos(agent, {"todos": [{"id": "t1", "title": LONG, "status": "pending"}]})
    await store.save_history_window(agent, {"id": "w1", "messages": turn(3), "timestamp": 5})
    await store.save_compression_record(
        agent, {"id": "c1", "window_id": "w1", "summary": LONG, "ratio": 0.5, "timestamp": 6}
    )
    await store.save_recovered_file(agent, {"path": "/a.txt", "content": LONG, "mtime": 1, "timestamp": 2})
    await store.save_media_cache(agent, [{"key": "k", "provider": "p", "mime_type": "image/png", "size_bytes": 3}])
    await store.save_snapshot(agent, {"id": "s1", "messages": turn(4), "created_at": 1_700_000_000_000})
    await store.save_snapshot(agent, {"id": "s2", "messages": [], "created_at": 1_700_000_000_001})
    await store.append_event(
        agent,
        {
            "cursor": 0,
            "bookmark": {"seq": 0, "timestamp": 1},
            "event": {"channel": "progress", "type": "text_chunk_end", "text": LONG},
        },
    )
    return {
        "messages": messages,
        "records": records,
        "todos": await store.load_todos(agent),
        "windows": await store.load_history_windows(agent),
        "compressions": await store.load_compression_records(agent),
        "files": await store.load_recovered_files(agent),
        "media": await store.load_media_cache(agent),
        "snapshots": await store.list_snapshots(agent),
        "events": [e async for e in store.read_events(agent)],
    }


async def read_everything(store: SqliteStore, agent: str) -> dict[str, Any]:
    return {
        "messages": await store.load_messages(agent),
        "records": await store.load_tool_call_records(agent),
        "todos": await store.load_todos(agent),
        "windows": await store.load_history_windows(agent),
        "compressions": await store.load_compression_records(agent),
        "files": await store.load_recovered_files(agent),
        "media": await store.load_media_cache(agent),
        "snapshots": await store.list_snapshots(agent),
        "events": [e async for e in store.read_events(agent)],
    }


# --------------------------------------------------------------------------- the blob format


def test_dictionary_of_format_1_never_changes() -> None:
    # Blobs already written can only be read with exactly these bytes.
    assert hashlib.sha256(DICTIONARY_V1).hexdigest()[:16] == "9a3a9d2008e6a1f7"


def test_pack_keeps_small_documents_as_text_and_round_trips_large_ones() -> None:
    small = b'{"role":"user","content":[]}'
    assert pack(small) == small.decode()
    assert unpack(pack(small)) == small.decode()
    large = ('{"role":"user","content":[{"type":"text","text":"' + LONG + '"}]}').encode()
    assert len(large) >= MIN_PACKED_BYTES
    packed = pack(large)
    assert isinstance(packed, bytes) and packed[0] == 1 and len(packed) < len(large)
    assert unpack(packed) == large
    # Random bytes that zstd cannot shrink stay text.
    incompressible = ('"' + "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(200)) + '"').encode()
    value = pack(incompressible)
    assert unpack(value) in (incompressible, incompressible.decode())


def test_unreadable_blobs_raise_corruption_errors() -> None:
    with pytest.raises(StoreCorruptionError, match="format byte 9"):
        unpack(b"\x09abc")
    with pytest.raises(StoreCorruptionError, match="decompressed"):
        unpack(b"\x01not zstd at all")
    with pytest.raises(StoreCorruptionError):
        unpack(b"")


# --------------------------------------------------------------------------- the store


async def test_large_documents_are_blobs_small_ones_text(db: Path) -> None:
    async with SqliteStore(db) as store:
        written = await write_everything(store, "a")
        assert await read_everything(store, "a") == written
    kinds = dict(rows(db, "SELECT seq, typeof(data) FROM messages WHERE agent_id = 'a'"))
    assert kinds[0] == "blob" and kinds[3] == "text"  # "2: short" stays text
    for table in ("tool_calls", "todos", "history_windows", "compression_records", "recovered_files", "snapshots"):
        assert "blob" in {k for (k,) in rows(db, f"SELECT typeof(data) FROM {table}")}, table
    # Events stay text (small, written on the hot path).
    assert {k for (k,) in rows(db, "SELECT typeof(data) FROM events")} == {"text"}
    # What the file holds is the same JSON the store was given.
    (blob,) = rows(db, "SELECT data FROM messages WHERE agent_id = 'a' AND seq = 0")[0]
    assert Message.model_validate_json(unpack(blob)) == written["messages"][0]


async def test_batch_fork_and_consistency_read_compressed_rows(db: Path) -> None:
    async with SqliteStore(db) as store:
        written = await write_everything(store, "a")
        (fork,) = await store.batch_fork("a", 1)
        assert await store.load_messages(fork) == written["messages"]
        assert await store.load_tool_call_records(fork) == written["records"]
        assert await store.list_snapshots(fork) == written["snapshots"]
        assert (await store.check_consistency("a")).consistent
        assert (await store.check_consistency(fork)).consistent


async def test_a_damaged_blob_is_reported_not_loaded_as_empty(db: Path) -> None:
    async with SqliteStore(db) as store:
        await store.save_messages("a", turn(1))
    conn = sqlite3.connect(db)
    register_functions(conn)  # the search index's triggers call them
    conn.execute("UPDATE messages SET data = X'09AABB' WHERE agent_id = 'a' AND seq = 0")
    conn.commit()
    conn.close()
    async with SqliteStore(db) as store:
        with pytest.raises(StoreCorruptionError):
            await store.load_messages("a")
        result = await store.check_consistency("a")
        assert not result.consistent and any("Message 0" in issue for issue in result.issues), result.issues


async def test_created_at_never_decreases_when_the_clock_steps_back(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0]
    monkeypatch.setattr(store_module, "now_ms", lambda: clock[0])
    async with SqliteStore(db) as store:
        clock[0] = 2_000_000
        await store.append_messages("a", [text("user", "one")])
        clock[0] = 1_000_000  # the clock steps back
        await store.append_messages("a", [text("user", "two")])
        clock[0] = 1_500_000
        await store.save_messages("a", [text("user", m) for m in ("one", "two", "three")])
        clock[0] = 3_000_000
        await store.append_messages("a", [text("user", "four")])
        created = [
            c
            for (c,) in await store._hop(lambda c: c.execute("SELECT created_at FROM messages ORDER BY seq").fetchall())
        ]
        assert created == [2_000_000, 2_000_000, 2_000_000, 3_000_000]
        newest = await store.query_messages(agent_id="a", limit=10)
        assert [m.content[0]["text"] for m in newest] == ["four", "three", "two", "one"]
        assert [m.seq for m in await store.query_messages(agent_id="a", limit=2, offset=1)] == [2, 1]
        assert [m.seq for m in await store.query_messages(agent_id="a", created_after=2_500_000)] == [3]
        assert _only_missing_info(await store.check_consistency("a"))


# --------------------------------------------------------------------------- upgrade from version 1


async def test_a_version_1_database_upgrades_in_place(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    version_1 = [m for m in migrations() if m.version == 1]
    monkeypatch.setattr(schema, "migrations", lambda: version_1)
    # Version-1 code wrote every document as JSON text.
    monkeypatch.setattr(sql, "pack", lambda document: document.decode("utf-8"))
    async with SqliteStore(db) as store:
        written = await write_everything(store, "a")
        await write_everything(store, "b")
        await store.save_messages("c", [text("user", f"m{i}") for i in range(4)])
    # A version-1 writer whose clock stepped back: c's last two rows are older.
    conn = sqlite3.connect(db)
    conn.execute("UPDATE messages SET created_at = 1000 WHERE agent_id = 'c' AND seq >= 2")
    conn.execute("UPDATE messages SET created_at = 2000 WHERE agent_id = 'c' AND seq < 2")
    conn.commit()
    conn.close()
    assert {k for (k,) in rows(db, "SELECT typeof(data) FROM messages")} == {"text"}
    old_indexes = {n for (n,) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "messages_by_agent_role" in old_indexes

    monkeypatch.undo()
    async with SqliteStore(db) as store:
        assert await read_everything(store, "a") == written
        # Old rows are read as they are, not rewritten.
        assert {k for (k,) in rows(db, "SELECT typeof(data) FROM messages")} == {"text"}
        # Queries of every kind work on the upgraded file.
        assert [m.seq for m in await store.query_messages(agent_id="a", role="user", limit=2)] == [5, 3]
        assert len(await store.query_messages(role="assistant", limit=50)) == 4
        assert [s.agent_id for s in await store.query_sessions(template_id="tpl")] == ["b", "a"]
        assert await store.list("") == ["a", "b"]
        stats = await store.aggregate_stats("a")
        assert stats.messages_by_role == {"user": 4, "assistant": 2} and stats.total_snapshots == 2
        assert [r.tool_call_id for r in await store.query_tool_calls(agent_id="b")] == ["toolu_2", "toolu_1"]
        # c's created_at was raised to the row before it, so seq order is time order.
        assert [c for (c,) in rows(db, "SELECT created_at FROM messages WHERE agent_id = 'c' ORDER BY seq")] == [
            2000
        ] * 4
        assert _only_missing_info(await store.check_consistency("c"))
        # New writes after the upgrade are compressed; old and new rows read together.
        more = turn(9)
        await store.append_messages("a", more)
        assert await store.load_messages("a") == written["messages"] + more
        assert {k for (k,) in rows(db, "SELECT typeof(data) FROM messages WHERE agent_id = 'a'")} == {"text", "blob"}
    assert [v for (v,) in rows(db, "SELECT version FROM schema_version ORDER BY version")] == [
        m.version for m in migrations()
    ]
    indexes = {n for (n,) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'")}
    assert indexes == {"sqlite_autoindex_messages_1", "messages_by_time"}
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert rows(db, "PRAGMA foreign_key_check") == []


def _only_missing_info(result: ConsistencyCheckResult) -> bool:
    """Consistent but for the missing AgentInfo these agents never had (reported since issue 11)."""
    return [issue for issue in result.issues if "AgentInfo" not in issue] == []
