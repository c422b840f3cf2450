"""SqliteStore-specific tests: real SQLite files in tmp_path, no mocks.

The conformance suite (kode_sdk.testing) checks the Store contract; these
tests check what is particular to SQLite: incremental writes, the schema and
its migrations, query plans, event commits, locks in one process, and
bad input leaving stored data unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from kode_sdk.errors import (
    AgentNotFoundError,
    InvalidAgentIdError,
    LockTimeoutError,
    RecordValidationError,
    SchemaVersionError,
    StoreClosedError,
)
from kode_sdk.store.records import DATA_TABLES
from kode_sdk.store.schema_migrations import Migration
from kode_sdk.store.sqlite import SqliteStore, migrations, register_functions, schema, split_sql
from kode_sdk.store.sqlite.sql import UPDATE_INFO
from kode_sdk.store.sqlite.store import _EVENT_PAGE
from kode_sdk.store.sqlite.transactions import transaction
from kode_sdk.types import (
    AgentInfo,
    Message,
    ToolCallApproval,
    ToolCallAuditEntry,
    ToolCallRecord,
    ToolCallState,
)

# --------------------------------------------------------------------------- helpers


def msg(role: str, text: str) -> Message:
    return Message.model_validate({"role": role, "content": [{"type": "text", "text": text}]})


def tool_turn(n: int) -> list[Message]:
    tid = f"toolu_{n}"
    return [
        msg("user", f"question {n}"),
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
                "content": [{"type": "tool_result", "tool_use_id": tid, "content": "ok", "is_error": False}],
            }
        ),
    ]


def record(n: int, *, name: str = "bash_run", state: str = "completed", is_error: bool = False) -> ToolCallRecord:
    return ToolCallRecord.model_validate(
        {
            "id": f"toolu_{n}",
            "name": name,
            "input": {"cmd": f"echo {n}"},
            "state": state,
            "is_error": is_error,
            "result": {"stdout": str(n)},
            "created_at": 1_700_000_000_000 + n,
            "updated_at": 1_700_000_000_000 + n,
            "approval": {"required": n % 2 == 0},
        }
    )


def event(seq: int, channel: str = "progress", kind: str = "text_chunk") -> dict[str, Any]:
    return {
        "cursor": seq,
        "bookmark": {"seq": seq, "timestamp": 1_700_000_000_000 + seq},
        "event": {"channel": channel, "type": kind, "delta": f"d{seq}"},
    }


def info(agent_id: str, template_id: str = "assistant", **extra: Any) -> AgentInfo:
    return AgentInfo.model_validate({"agent_id": agent_id, "template_id": template_id, **extra})


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the database file directly, with a connection of our own."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "agents.db"


@pytest.fixture
async def store(db: Path) -> Any:
    s = SqliteStore(db)
    await s.open()
    yield s
    await s.close()


def install_write_log(db: Path) -> None:
    """Triggers recording every row written to messages / tool_calls, so a test
    can see exactly which positions a save rewrote."""
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS write_log (tbl TEXT, op TEXT, pos INTEGER);
        CREATE TRIGGER IF NOT EXISTS log_msg_ins AFTER INSERT ON messages
            BEGIN INSERT INTO write_log VALUES ('messages', 'insert', NEW.seq); END;
        CREATE TRIGGER IF NOT EXISTS log_msg_upd AFTER UPDATE ON messages
            BEGIN INSERT INTO write_log VALUES ('messages', 'update', NEW.seq); END;
        CREATE TRIGGER IF NOT EXISTS log_msg_del AFTER DELETE ON messages
            BEGIN INSERT INTO write_log VALUES ('messages', 'delete', OLD.seq); END;
        CREATE TRIGGER IF NOT EXISTS log_tc_ins AFTER INSERT ON tool_calls
            BEGIN INSERT INTO write_log VALUES ('tool_calls', 'insert', NEW.pos); END;
        CREATE TRIGGER IF NOT EXISTS log_tc_upd AFTER UPDATE ON tool_calls
            BEGIN INSERT INTO write_log VALUES ('tool_calls', 'update', NEW.pos); END;
        CREATE TRIGGER IF NOT EXISTS log_tc_del AFTER DELETE ON tool_calls
            BEGIN INSERT INTO write_log VALUES ('tool_calls', 'delete', OLD.pos); END;
        """
    )
    conn.close()


def take_write_log(db: Path) -> list[tuple[str, str, int]]:
    conn = sqlite3.connect(db)
    try:
        with conn:
            found = conn.execute("SELECT tbl, op, pos FROM write_log ORDER BY rowid").fetchall()
            conn.execute("DELETE FROM write_log")
        return found
    finally:
        conn.close()


# --------------------------------------------------------------------------- lifecycle and pragmas


async def test_constructor_does_no_io(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "agents.db"
    store = SqliteStore(target, file_store_base_dir=tmp_path / "store")
    assert not target.parent.exists()
    assert store.backend_name == "sqlite"
    await store.open()
    assert target.exists()
    await store.close()


async def test_open_sets_wal_and_pragmas(store: SqliteStore, db: Path) -> None:
    assert rows(db, "PRAGMA journal_mode")[0][0] == "wal"

    def pragmas(conn: sqlite3.Connection) -> tuple[Any, ...]:
        return tuple(
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("synchronous", "busy_timeout", "foreign_keys", "temp_store")
        )

    # synchronous NORMAL = 1, temp_store MEMORY = 2
    assert await store._hop(pragmas) == (1, 10_000, 1, 2)


async def test_worker_thread_is_named(store: SqliteStore) -> None:
    import threading

    assert await store._hop(lambda conn: threading.current_thread().name) == "kode-sqlite"


async def test_writes_run_inline_when_the_worker_is_idle(store: SqliteStore) -> None:
    import threading

    here = threading.current_thread().name
    assert await store._hop(lambda conn: threading.current_thread().name, inline=True) == here
    assert await store._hop(lambda conn: conn.execute("PRAGMA busy_timeout").fetchone()[0], inline=True) == 0
    assert await store._hop(lambda conn: conn.execute("PRAGMA busy_timeout").fetchone()[0]) == 10_000
    # Between jobs the writer waits for no lock: inline jobs need no PRAGMA.
    assert await store._hop(lambda conn: conn.execute("PRAGMA busy_timeout").fetchone()[0], inline=True) == 0


async def test_an_inline_write_never_holds_the_event_loop_on_a_lock(store: SqliteStore, db: Path) -> None:
    """Another connection holds the write lock: the write waits on the worker
    thread (the event loop keeps running) and lands once the lock is free."""
    await store.save_info("a", info("a"))
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def release_later() -> None:
        await asyncio.sleep(0.3)
        other.execute("COMMIT")

    ticking = asyncio.ensure_future(ticker())
    releasing = asyncio.ensure_future(release_later())
    started = time.monotonic()
    await store.append_messages("a", [msg("user", "after the lock")])
    waited = time.monotonic() - started
    ticking.cancel()
    await releasing
    other.close()
    assert waited >= 0.25, "the write did not wait for the other connection's lock"
    assert ticks >= 10, f"the event loop stalled while the write waited ({ticks} ticks in {waited:.2f} s)"
    assert [m.content[0]["text"] for m in await store.load_messages("a")] == ["after the lock"]


async def test_closed_store_refuses_calls(db: Path) -> None:
    store = SqliteStore(db)
    await store.save_messages("a", [msg("user", "hi")])
    await store.close()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.load_messages("a")
    with pytest.raises(StoreClosedError):
        await store.health_check()


# --------------------------------------------------------------------------- round trips


async def test_everything_round_trips_and_survives_reopen(db: Path) -> None:
    messages = [*tool_turn(1), msg("assistant", "nul \u0000 and astral \U0001f600"), msg("system", "big")]
    messages[-1].content[0]["n"] = 2**80
    records = [record(1), record(2, state="FAILED", is_error=True)]
    async with SqliteStore(db) as store:
        await store.save_info("agt", info("agt", metadata={"userId": "u1"}))
        await store.save_messages("agt", messages)
        await store.save_tool_call_records("agt", records)
        await store.save_todos("agt", {"todos": [{"id": "1", "title": "t"}], "version": 3})
        await store.save_history_window("agt", {"id": "w1", "messages": [messages[0]], "timestamp": 5})
        await store.save_compression_record(
            "agt", {"id": "c1", "window_id": "w1", "summary": "s", "ratio": 0.5, "timestamp": 6}
        )
        await store.save_recovered_file("agt", {"path": "a.txt", "content": "x", "mtime": 1, "timestamp": 2})
        await store.save_media_cache("agt", [{"key": "k", "provider": "p", "mime_type": "image/png", "size_bytes": 3}])
        await store.save_snapshot("agt", {"id": "s1", "messages": messages[:2], "created_at": 1000})
        for seq in range(5):
            await store.append_event("agt", event(seq, "monitor" if seq % 2 else "progress"))
    async with SqliteStore(db) as store:
        assert await store.load_messages("agt") == messages
        assert (await store.load_messages("agt"))[-1].content[0]["n"] == 2**80
        assert await store.load_tool_call_records("agt") == records
        todos = await store.load_todos("agt")
        assert todos is not None and todos.version == 3
        assert [w.id for w in await store.load_history_windows("agt")] == ["w1"]
        assert [c.id for c in await store.load_compression_records("agt")] == ["c1"]
        assert [f.path for f in await store.load_recovered_files("agt")] == ["a.txt"]
        assert [m.key for m in await store.load_media_cache("agt")] == ["k"]
        snapshot = await store.load_snapshot("agt", "s1")
        assert snapshot is not None and snapshot.messages == messages[:2]
        assert await store.load_snapshot("agt", "nope") is None
        assert [e.bookmark.seq async for e in store.read_events("agt")] == [0, 1, 2, 3, 4]
        loaded = await store.load_info("agt")
        assert loaded is not None and loaded.metadata == {"userId": "u1"}
        assert loaded.message_count == len(messages)


async def test_save_info_mismatched_id_is_rejected(store: SqliteStore) -> None:
    with pytest.raises(RecordValidationError, match="agent_id"):
        await store.save_info("a", info("b"))
    assert not await store.exists("a")


async def test_message_count_follows_latest_save(store: SqliteStore) -> None:
    await store.save_info("a", info("a", message_count=7))
    loaded = await store.load_info("a")
    assert loaded is not None and loaded.message_count == 7
    await store.save_messages("a", tool_turn(1))
    loaded = await store.load_info("a")
    assert loaded is not None and loaded.message_count == 3
    [session] = await store.query_sessions(agent_id="a")
    assert session.message_count == 3
    await store.append_messages("a", tool_turn(2))
    loaded = await store.load_info("a")
    assert loaded is not None and loaded.message_count == 6


async def test_saves_without_info_do_not_make_an_agent_exist(store: SqliteStore) -> None:
    await store.save_messages("ghost", [msg("user", "hi")])
    await store.append_event("ghost", event(1))
    assert not await store.exists("ghost")
    assert await store.list() == []
    assert await store.query_sessions() == []
    assert await store.load_info("ghost") is None
    assert len(await store.load_messages("ghost")) == 1


async def test_snapshots_newest_first_and_replace_by_id(store: SqliteStore) -> None:
    for sid, created in (("a", 3000), ("b", 1000), ("c", 3000)):
        await store.save_snapshot("agt", {"id": sid, "messages": [msg("user", sid)], "created_at": created})
    assert [s.id for s in await store.list_snapshots("agt")] == ["c", "a", "b"]
    await store.save_snapshot("agt", {"id": "b", "messages": [], "created_at": 5000})
    assert [s.id for s in await store.list_snapshots("agt")] == ["b", "c", "a"]
    stored = await store.load_snapshot("agt", "b")
    assert stored is not None and stored.messages == []


async def test_delete_removes_every_row_of_the_agent(store: SqliteStore, db: Path) -> None:
    for agent in ("gone", "kept"):
        await store.save_info(agent, info(agent))
        await store.save_messages(agent, tool_turn(1))
        await store.save_tool_call_records(agent, [record(1)])
        await store.save_todos(agent, {"todos": []})
        await store.save_history_window(agent, {"id": "w", "timestamp": 1})
        await store.save_compression_record(
            agent, {"id": "c", "window_id": "w", "summary": "s", "ratio": 1, "timestamp": 1}
        )
        await store.save_recovered_file(agent, {"path": "p", "content": "c", "mtime": 1, "timestamp": 1})
        await store.save_media_cache(agent, [{"key": "k", "provider": "p", "mime_type": "m", "size_bytes": 1}])
        await store.save_snapshot(agent, {"id": "s", "messages": []})
        await store.append_event(agent, event(1))
        await store.append_event(agent, event(2))
    await store.delete("gone")
    await store.delete("never-existed")
    tables = ["agents", *DATA_TABLES]
    for table in tables:
        assert rows(db, f"SELECT COUNT(*) FROM {table} WHERE agent_id = 'gone'") == [(0,)], table
        assert rows(db, f"SELECT COUNT(*) FROM {table} WHERE agent_id = 'kept'")[0][0] >= 1, table
    assert not await store.exists("gone")
    assert [e async for e in store.read_events("gone")] == []
    # The agent can be created again from scratch.
    await store.save_messages("gone", [msg("user", "again")])
    assert await store.load_messages("gone") == [msg("user", "again")]


# --------------------------------------------------------------------------- incremental saves


async def test_unchanged_prefix_is_not_rewritten_and_keeps_created_at(store: SqliteStore, db: Path) -> None:
    conversation = tool_turn(1)
    await store.save_messages("a", conversation)
    before = rows(db, "SELECT seq, rowid, created_at FROM messages WHERE agent_id = 'a' ORDER BY seq")
    install_write_log(db)
    await asyncio.sleep(0.01)  # so a rewrite would get a later created_at
    conversation += tool_turn(2)
    await store.save_messages("a", conversation)
    assert take_write_log(db) == [("messages", "insert", 3), ("messages", "insert", 4), ("messages", "insert", 5)]
    after = rows(db, "SELECT seq, rowid, created_at FROM messages WHERE agent_id = 'a' ORDER BY seq")
    assert after[:3] == before
    assert after[3][2] > before[2][2]
    # Saving the same list again writes nothing.
    await store.save_messages("a", conversation)
    assert take_write_log(db) == []
    assert await store.load_messages("a") == conversation


async def test_in_place_mutation_of_a_saved_message_is_persisted(store: SqliteStore, db: Path) -> None:
    conversation = tool_turn(1) + tool_turn(2)
    await store.save_messages("a", conversation)
    created = rows(db, "SELECT created_at FROM messages WHERE agent_id = 'a' AND seq = 1")
    install_write_log(db)
    conversation[1].content[0]["text"] = "edited in place"
    conversation[4].content[1]["input"]["cmd"] = "rm nothing"
    conversation[2].metadata = {"note": "set later"}
    await store.save_messages("a", conversation)
    assert sorted(take_write_log(db)) == [
        ("messages", "update", 1),
        ("messages", "update", 2),
        ("messages", "update", 4),
    ]
    assert rows(db, "SELECT created_at FROM messages WHERE agent_id = 'a' AND seq = 1") == created
    async with SqliteStore(db) as other:
        assert await other.load_messages("a") == conversation


async def test_in_place_mutation_of_a_saved_tool_call_is_persisted(store: SqliteStore, db: Path) -> None:
    records = [record(1), record(2), record(3)]
    await store.save_tool_call_records("a", records)
    install_write_log(db)
    records[0].audit_trail.append(ToolCallAuditEntry(state="sealed", timestamp=5))
    records[1].approval.note = "looked again"
    records[2].input["cmd"] = "changed"
    await store.save_tool_call_records("a", records)
    assert sorted(take_write_log(db)) == [
        ("tool_calls", "update", 0),
        ("tool_calls", "update", 1),
        ("tool_calls", "update", 2),
    ]
    records[0].audit_trail[0].note = "a nested model mutated in place"
    records[2].state = ToolCallState.SEALED
    await store.save_tool_call_records("a", records)
    assert sorted(take_write_log(db)) == [("tool_calls", "update", 0), ("tool_calls", "update", 2)]
    async with SqliteStore(db) as other:
        loaded = await other.load_tool_call_records("a")
    assert loaded == records
    assert loaded[0].audit_trail[0].note == "a nested model mutated in place"
    assert loaded[1].approval.note == "looked again"
    assert loaded[2].input == {"cmd": "changed"} and loaded[2].state is ToolCallState.SEALED


async def test_every_kind_of_in_place_change_is_seen(store: SqliteStore, db: Path) -> None:
    conversation = [msg("user", f"m{i}") for i in range(10)]
    conversation[3] = Message.model_validate({"role": "user", "content": "x", "cache_hint": {"ttl": 1}})
    records = [record(i) for i in range(10)]
    await store.save_messages("a", conversation)
    await store.save_tool_call_records("a", records)
    install_write_log(db)
    steps: list[tuple[Any, list[tuple[str, str, int]]]] = [
        # extra keys mutated / added in place (they live outside the field dict)
        (lambda: conversation[3].__pydantic_extra__["cache_hint"].update(ttl=2), [("messages", "update", 3)]),
        (lambda: setattr(conversation[5], "provider_note", "added"), [("messages", "update", 5)]),
        # a change at the head and one at the tail in the same save
        (
            lambda: (conversation[0].content.append({"type": "text", "text": "more"}), conversation[9].content.clear()),
            [("messages", "update", 0), ("messages", "update", 9)],
        ),
        # whole attribute replaced
        (lambda: setattr(conversation[7], "role", "assistant"), [("messages", "update", 7)]),
    ]
    for change, expected in steps:
        change()
        await store.save_messages("a", conversation)
        assert sorted(take_write_log(db)) == expected
    tool_steps: list[tuple[Any, list[tuple[str, str, int]]]] = [
        (
            lambda: setattr(records[2], "approval", ToolCallApproval(required=True, decision="deny")),
            [("tool_calls", "update", 2)],
        ),
        (
            lambda: records[4].audit_trail.append(ToolCallAuditEntry(state="pending", timestamp=1)),
            [("tool_calls", "update", 4)],
        ),
        (lambda: setattr(records[4].audit_trail[0], "flag", True), [("tool_calls", "update", 4)]),
        (lambda: setattr(records[6].approval, "reviewer", "extra on a nested model"), [("tool_calls", "update", 6)]),
        (lambda: setattr(records[9], "state", ToolCallState.FAILED), [("tool_calls", "update", 9)]),
        (lambda: records[1].result.update(stdout="changed"), [("tool_calls", "update", 1)]),
    ]
    for change, expected in tool_steps:
        change()
        await store.save_tool_call_records("a", records)
        assert sorted(take_write_log(db)) == expected
    async with SqliteStore(db) as other:
        assert await other.load_messages("a") == conversation
        assert await other.load_tool_call_records("a") == records
    # Nothing changed: nothing written.
    await store.save_messages("a", conversation)
    await store.save_tool_call_records("a", records)
    assert take_write_log(db) == []


async def test_truncation_and_rewrites(store: SqliteStore, db: Path) -> None:
    conversation = tool_turn(1) + tool_turn(2)
    await store.save_messages("a", conversation)
    install_write_log(db)
    shorter = [*conversation[:2], msg("assistant", "different")]
    await store.save_messages("a", shorter)
    assert sorted(take_write_log(db)) == [
        ("messages", "delete", 3),
        ("messages", "delete", 4),
        ("messages", "delete", 5),
        ("messages", "update", 2),
    ]
    assert await store.load_messages("a") == shorter
    await store.save_messages("a", [])
    assert await store.load_messages("a") == []
    assert rows(db, "SELECT message_count FROM agents WHERE agent_id = 'a'") == [(0,)]


async def test_tool_call_ids_moving_between_positions(store: SqliteStore) -> None:
    await store.save_tool_call_records("a", [record(1), record(2), record(3)])
    reordered = [record(3), record(1), record(4), record(2)]
    await store.save_tool_call_records("a", reordered)
    assert await store.load_tool_call_records("a") == reordered
    await store.save_tool_call_records("a", [record(2)])
    assert await store.load_tool_call_records("a") == [record(2)]


async def test_save_after_another_instance_changed_the_agent(db: Path) -> None:
    async with SqliteStore(db) as first, SqliteStore(db) as second:
        base = tool_turn(1)
        await first.save_messages("a", base)
        await first.save_tool_call_records("a", [record(1), record(2)])
        # Another instance (or process) rewrites the same agent ...
        await second.save_messages("a", [base[0], msg("assistant", "theirs")])
        await second.save_tool_call_records("a", [record(7)])
        # ... so the first one's cached copy is stale: its next save must not
        # diff against it.
        mine = [*base, msg("user", "mine")]
        await first.save_messages("a", mine)
        await first.save_tool_call_records("a", [record(1), record(2), record(3)])
        assert await second.load_messages("a") == mine
        assert await second.load_tool_call_records("a") == [record(1), record(2), record(3)]
        # And after a delete + re-create elsewhere.
        await second.delete("a")
        await second.save_messages("a", [msg("user", "fresh")])
        await first.save_messages("a", [msg("user", "fresh"), msg("user", "next")])
        assert await second.load_messages("a") == [msg("user", "fresh"), msg("user", "next")]


async def test_append_messages_to_a_new_agent(store: SqliteStore) -> None:
    await store.append_messages("fresh", tool_turn(1))
    await store.append_messages("fresh", [msg("user", "more")])
    assert await store.load_messages("fresh") == [*tool_turn(1), msg("user", "more")]
    await store.save_messages("fresh", tool_turn(1))
    assert await store.load_messages("fresh") == tool_turn(1)


async def test_append_messages_is_a_pure_append(store: SqliteStore, db: Path) -> None:
    await store.save_messages("a", tool_turn(1))
    install_write_log(db)
    await store.append_messages("a", tool_turn(2))
    assert take_write_log(db) == [("messages", "insert", 3), ("messages", "insert", 4), ("messages", "insert", 5)]
    assert await store.load_messages("a") == tool_turn(1) + tool_turn(2)
    # save_messages after append still diffs correctly (cache extended, not stale).
    await store.save_messages("a", tool_turn(1) + tool_turn(2) + [msg("user", "x")])
    assert take_write_log(db) == [("messages", "insert", 6)]


# --------------------------------------------------------------------------- events


async def test_events_read_in_seq_order_across_channels(store: SqliteStore) -> None:
    channels = ["progress", "control", "monitor"]
    for seq in range(30):
        await store.append_event("a", event(seq, channels[seq % 3]))
    seqs = [e.bookmark.seq async for e in store.read_events("a")]
    assert seqs == list(range(30))
    assert [e.bookmark.seq async for e in store.read_events("a", since={"seq": 26, "timestamp": 0})] == [27, 28, 29]
    assert [e.bookmark.seq async for e in store.read_events("a", channel="control")] == list(range(1, 30, 3))
    assert [e.bookmark.seq async for e in store.read_events("a", since=20, channel="monitor")] == [23, 26, 29]


async def test_events_paging_beyond_one_page(store: SqliteStore) -> None:
    total = _EVENT_PAGE * 2 + 7
    for seq in range(total):
        await store.append_event("a", event(seq, "monitor" if seq % 2 else "progress"))
    seqs = [e.bookmark.seq async for e in store.read_events("a")]
    assert seqs == list(range(total))


async def test_duplicate_event_seq_is_reported(store: SqliteStore) -> None:
    await store.append_event("a", event(1))
    await store.append_event("a", event(2))
    with pytest.raises(RecordValidationError, match="seq 2 already stored"):
        await store.append_event("a", event(2, "monitor"))
    with pytest.raises(RecordValidationError, match="seq 1 already stored"):
        await store.append_event("a", event(1))
    events = [e async for e in store.read_events("a")]
    assert [(e.bookmark.seq, e.channel) for e in events] == [(1, "progress"), (2, "progress")]


async def test_an_appended_event_is_committed_when_the_call_returns(db: Path) -> None:
    store = SqliteStore(db)
    for seq in (1, 2, 3):
        await store.append_event("a", event(seq))
        # Read with a separate connection, as another process would.
        assert [r[0] for r in rows(db, "SELECT seq FROM events WHERE agent_id = 'a' ORDER BY seq")] == list(
            range(1, seq + 1)
        )
    await store.append_events("a", [event(4), event(5, "monitor")])
    assert [r[0] for r in rows(db, "SELECT seq FROM events WHERE agent_id = 'a' ORDER BY seq")] == [1, 2, 3, 4, 5]
    await store.close()


async def test_a_call_cancelled_before_it_ran_writes_nothing(db: Path) -> None:
    import threading

    store = SqliteStore(db)
    await store.append_event("a", event(1))
    assert store._thread is not None
    release = threading.Event()
    # Occupy the connection thread, so the next call waits in its queue.
    busy, _ = store._thread.submit(lambda: release.wait(10))
    waiting = asyncio.ensure_future(store.append_event("a", event(2)))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting  # gives up while its job still waits in the queue
    release.set()
    await busy
    assert [e.bookmark.seq async for e in store.read_events("a")] == [1]
    await store.append_event("a", event(2))  # the seq is still free
    await store.close()


async def test_a_call_cancelled_while_it_runs_still_commits_whole(db: Path) -> None:
    import threading

    store = SqliteStore(db)
    await store.save_info("a", info("a"))
    started, release = threading.Event(), threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)
        with transaction(conn, write=True):
            conn.execute("UPDATE agents SET template_id = 'changed' WHERE agent_id = 'a'")

    running = asyncio.ensure_future(store._hop(slow))
    assert await asyncio.to_thread(started.wait, 10)
    running.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await running
    info_after = await store.load_info("a")  # queued behind the job: sees its commit
    assert info_after is not None and rows(db, "SELECT template_id FROM agents")[0][0] == "changed"
    await store.close()


async def test_events_of_another_writer_are_not_duplicated(db: Path) -> None:
    async with SqliteStore(db) as first, SqliteStore(db) as second:
        await first.append_event("a", event(1))
        await second.append_event("a", event(2, "monitor"))
        with pytest.raises(RecordValidationError, match="seq 2 already stored"):
            await first.append_event("a", event(2))
        await first.append_event("a", event(3))
        assert [(e.bookmark.seq, e.channel) async for e in first.read_events("a")] == [
            (1, "progress"),
            (2, "monitor"),
            (3, "progress"),
        ]


async def test_bad_event_input(store: SqliteStore) -> None:
    with pytest.raises(RecordValidationError):
        await store.append_event("a", {"cursor": 1, "bookmark": {"seq": 1, "timestamp": 1}, "event": {"type": "x"}})
    with pytest.raises(RecordValidationError, match="64-bit"):
        await store.append_event("a", event(2**70))
    with pytest.raises(RecordValidationError, match="channel"):
        [e async for e in store.read_events("a", channel="radio")]
    with pytest.raises(RecordValidationError, match="since"):
        [e async for e in store.read_events("a", since="yesterday")]


# --------------------------------------------------------------------------- queries


async def populate(store: SqliteStore) -> None:
    for n in range(6):
        agent = f"agent_{n}"
        await store.save_info(
            agent, info(agent, template_id=f"tpl-{n % 2}", created_at=1_000 + n, metadata={"userId": f"u{n % 3}"})
        )
        await store.save_messages(agent, tool_turn(n) + tool_turn(n + 100))
        await store.save_tool_call_records(
            agent, [record(n, is_error=n % 2 == 0), record(n + 100, name="fs_read", state="failed")]
        )
        await store.save_snapshot(agent, {"id": "s", "messages": []})


async def test_query_sessions_filters_and_orders(store: SqliteStore) -> None:
    await populate(store)
    found = await store.query_sessions(template_id="tpl-1")
    assert [s.agent_id for s in found] == ["agent_5", "agent_3", "agent_1"]
    assert [s.agent_id for s in await store.query_sessions(user_id="u0", sort_order="asc")] == ["agent_0", "agent_3"]
    window = await store.query_sessions(created_after=1_002, created_before=1_004)
    assert [s.agent_id for s in window] == ["agent_4", "agent_3", "agent_2"]
    page1 = await store.query_sessions(limit=4)
    page2 = await store.query_sessions(limit=4, offset=4)
    assert [s.agent_id for s in page1 + page2] == [f"agent_{n}" for n in range(5, -1, -1)]
    assert found[0].template_id == "tpl-1" and found[0].message_count == 6
    with pytest.raises(ValueError, match="sort_by"):
        await store.query_sessions(sort_by="agent_id; DROP TABLE agents")
    with pytest.raises(ValueError, match="sort_order"):
        await store.query_sessions(sort_order="sideways")


async def test_query_messages_newest_first_and_paging(store: SqliteStore) -> None:
    await populate(store)
    mine = await store.query_messages(agent_id="agent_2")
    assert [m.seq for m in mine] == [5, 4, 3, 2, 1, 0]
    assistant = await store.query_messages(agent_id="agent_2", role="assistant")
    assert [m.seq for m in assistant] == [4, 1]
    uses = await store.query_messages(content_type="tool_use", limit=100)
    assert len(uses) == 12 and all(any(b["type"] == "tool_use" for b in m.content) for m in uses)
    assert await store.query_messages(content_type="tool") == []
    seen = []
    for offset in range(0, 36, 5):
        seen += [(m.agent_id, m.seq) for m in await store.query_messages(limit=5, offset=offset)]
    assert len(seen) == 36 and len(set(seen)) == 36


async def test_query_tool_calls_filters(store: SqliteStore) -> None:
    await populate(store)
    errors = await store.query_tool_calls(tool_name="bash_run", is_error=True)
    assert sorted(c.agent_id for c in errors) == ["agent_0", "agent_2", "agent_4"]
    assert [c.created_at for c in errors] == sorted((c.created_at for c in errors), reverse=True)
    failed = await store.query_tool_calls(state="FAILED")
    assert {c.tool_name for c in failed} == {"fs_read"} and len(failed) == 6
    approved = await store.query_tool_calls(has_approval=True, agent_id="agent_2")
    assert [c.tool_call_id for c in approved] == ["toolu_102", "toolu_2"]
    assert approved[1].output == {"stdout": "2"}
    with pytest.raises(ValueError, match="state"):
        await store.query_tool_calls(state="melted")


async def test_aggregate_stats(store: SqliteStore) -> None:
    await populate(store)
    stats = await store.aggregate_stats("agent_1")
    assert stats.total_messages == 6
    assert stats.messages_by_role == {"user": 4, "assistant": 2}
    assert stats.total_tool_calls == 2
    assert stats.tool_calls_by_state == {"completed": 1, "failed": 1}
    assert stats.tool_calls_by_name == {"bash_run": 1, "fs_read": 1}
    assert stats.total_snapshots == 1
    empty = await store.aggregate_stats("nobody")
    assert empty.total_messages == 0 and empty.tool_calls_by_state == {} and empty.total_snapshots == 0


async def test_list_prefix_is_literal_and_case_sensitive(store: SqliteStore) -> None:
    for agent in ("agent_1", "agent_2", "agentX2", "AGENT_3", "agent"):
        await store.save_info(agent, info(agent))
    await store.save_messages("agent_9", [msg("user", "no info, not listed")])
    assert await store.list("agent_") == ["agent_1", "agent_2"]
    assert await store.list("agent%") == []
    assert await store.list("a_ent") == []
    assert await store.list("agent") == sorted(["agent", "agent_1", "agent_2", "agentX2"])
    assert await store.list("AGENT") == ["AGENT_3"]
    assert await store.list() == sorted(["agent_1", "agent_2", "agentX2", "AGENT_3", "agent"])
    assert await store.list("zzz") == []


# --------------------------------------------------------------------------- query plans


async def traced_sql(store: SqliteStore, call: Any) -> list[str]:
    """The SQL statements ``call`` ran, with parameters expanded (on the
    worker's connection and on this thread's read connection alike)."""
    statements: list[str] = []
    reader = store._readers.connection()
    await store._hop(lambda conn: conn.set_trace_callback(statements.append))
    if reader is not None:
        reader.set_trace_callback(statements.append)
    try:
        await call
    finally:
        await store._hop(lambda conn: conn.set_trace_callback(None))
        if reader is not None:
            reader.set_trace_callback(None)
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


async def test_w3_queries_are_index_reads(store: SqliteStore, db: Path) -> None:
    await populate(store)
    # Bulk up the tables so the planner has a reason to prefer indexes.
    for n in range(6, 60):
        agent = f"bulk_{n}"
        await store.save_info(agent, info(agent, template_id=f"tpl-{n % 5}"))
        await store.save_messages(agent, tool_turn(n) * 3)
        await store.save_tool_call_records(agent, [record(n), record(n + 1000, name="fs_grep")])
    await store._hop(lambda conn: conn.execute("ANALYZE"))
    calls = {
        "query_sessions": store.query_sessions(template_id="tpl-1", limit=20),
        "query_messages": store.query_messages(agent_id="agent_3", role="assistant", limit=50),
        "query_tool_calls": store.query_tool_calls(tool_name="bash_run", is_error=True, limit=10),
        "aggregate_stats": store.aggregate_stats("agent_3"),
        "list": store.list("agent_"),
    }
    conn = sqlite3.connect(db)
    try:
        for name, call in calls.items():
            statements = await traced_sql(store, call)
            assert statements, name
            for sql in statements:
                plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
                assert plan, sql
                for step in plan:
                    assert not step.startswith("SCAN"), f"{name}: {step!r} in plan of {sql}"
                    assert "TEMP B-TREE" not in step, f"{name}: {step!r} in plan of {sql}"
                # A WITHOUT ROWID table's own key is an index too ("USING PRIMARY KEY").
                assert any(step.startswith("SEARCH") and ("INDEX" in step or "PRIMARY KEY" in step) for step in plan), (
                    name,
                    plan,
                )
    finally:
        conn.close()


async def test_every_query_shape_reads_an_index(store: SqliteStore, db: Path) -> None:
    """Every filter combination of query_messages / query_tool_calls /
    query_sessions walks an index in the requested order: never a bare table
    scan, never a sort of all matching rows (a sort of the rows that share one
    created_at, "RIGHT PART OF ORDER BY", is fine: it stops at the limit)."""
    await populate(store)
    for n in range(6, 60):
        agent = f"bulk_{n}"
        await store.save_info(agent, info(agent, template_id=f"tpl-{n % 5}"))
        await store.save_messages(agent, tool_turn(n) * 3)
        await store.save_tool_call_records(agent, [record(n), record(n + 1000, name="fs_grep")])
    await store._hop(lambda conn: conn.execute("ANALYZE"))
    since = 1_000_000
    calls: dict[str, Any] = {}
    for agent in (None, "agent_3"):
        for role in (None, "assistant"):
            for after in (None, since):
                calls[f"messages agent={agent} role={role} after={after}"] = store.query_messages(
                    agent_id=agent, role=role, created_after=after, limit=50
                )
        calls[f"messages agent={agent} content_type"] = store.query_messages(agent_id=agent, content_type="tool_use")
        for name in (None, "bash_run"):
            for is_error in (None, True):
                calls[f"tool_calls agent={agent} name={name} is_error={is_error}"] = store.query_tool_calls(
                    agent_id=agent, tool_name=name, is_error=is_error, limit=10
                )
    for sort_by in ("created_at", "updated_at", "message_count"):
        calls[f"sessions sort={sort_by}"] = store.query_sessions(sort_by=sort_by, limit=20)
    calls["sessions template"] = store.query_sessions(template_id="tpl-1", limit=20)
    calls["sessions user"] = store.query_sessions(user_id="u1", limit=20)
    conn = sqlite3.connect(db)
    try:
        for name, call in calls.items():
            statements = await traced_sql(store, call)
            assert statements, name
            for sql in statements:
                plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
                uses_index = [
                    s for s in plan if s.startswith(("SEARCH", "SCAN")) and ("INDEX" in s or "PRIMARY KEY" in s)
                ]
                assert uses_index, (name, plan)
                for step in plan:
                    assert "TEMP B-TREE FOR ORDER BY" not in step, (name, plan)
                    if step.startswith("SCAN"):
                        assert "INDEX" in step, (name, plan)
    finally:
        conn.close()


# --------------------------------------------------------------------------- schema


async def test_schema_version_recorded_once(db: Path) -> None:
    async with SqliteStore(db):
        pass
    first = rows(db, "SELECT version, applied_at FROM schema_version")
    assert [v for v, _ in first] == [m.version for m in migrations()]
    async with SqliteStore(db):
        pass
    assert rows(db, "SELECT version, applied_at FROM schema_version") == first


async def test_newer_schema_is_refused(db: Path) -> None:
    async with SqliteStore(db) as store:
        await store.save_messages("a", [msg("user", "keep me")])
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (999, 0)")
    conn.commit()
    conn.close()
    store = SqliteStore(db)
    with pytest.raises(SchemaVersionError, match="999"):
        await store.open()
    health = await store.health_check()
    assert not health.healthy and "999" in (health.database.error or "")
    assert rows(db, "SELECT COUNT(*) FROM messages") == [(1,)]


async def test_old_database_is_upgraded_on_open(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with SqliteStore(db) as store:
        await store.save_messages("a", [msg("user", "old data")])
    shipped = migrations()
    extra = Migration(
        len(shipped) + 1,
        f"{len(shipped) + 1:04d}_test.sql",
        "CREATE TABLE upgrade_marker (x INTEGER); -- a comment; with a semicolon\n"
        "INSERT INTO upgrade_marker VALUES (1);",
    )
    monkeypatch.setattr(schema, "migrations", lambda: [*shipped, extra])
    async with SqliteStore(db) as store:
        assert await store.load_messages("a") == [msg("user", "old data")]
    assert rows(db, "SELECT x FROM upgrade_marker") == [(1,)]
    assert [v for (v,) in rows(db, "SELECT version FROM schema_version ORDER BY version")] == [
        *range(1, extra.version + 1)
    ]
    # Reopening does not run it again.
    async with SqliteStore(db):
        pass
    assert rows(db, "SELECT x FROM upgrade_marker") == [(1,)]


async def test_failed_migration_leaves_the_database_as_it_was(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with SqliteStore(db) as store:
        await store.save_messages("a", [msg("user", "old data")])
    shipped = migrations()
    broken = Migration(len(shipped) + 1, "broken.sql", "CREATE TABLE half_done (x); THIS IS NOT SQL;")
    monkeypatch.setattr(schema, "migrations", lambda: [*shipped, broken])
    with pytest.raises(SchemaVersionError, match=r"broken\.sql"):
        await SqliteStore(db).open()
    assert rows(db, "SELECT name FROM sqlite_master WHERE name = 'half_done'") == []
    assert max(v for (v,) in rows(db, "SELECT version FROM schema_version")) == len(shipped)


def test_split_sql_handles_comments_strings_and_triggers() -> None:
    script = """
    -- leading comment; with semicolon
    CREATE TABLE t (x TEXT DEFAULT 'a;b');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        INSERT INTO t VALUES ('x;y');
    END;
    /* trailing */
    """
    statements = split_sql(script)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


async def test_a_version_1_database_keeps_its_sessions_after_upgrading(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = migrations()
    monkeypatch.setattr(schema, "migrations", lambda: shipped[:1])
    async with SqliteStore(db) as store:
        await store.save_info("a", info("a", "tpl-a"))
        await store.save_info("b", info("b", "tpl-b"))
        await store.append_event("c", event(1))  # a row without info: never listed
    monkeypatch.setattr(schema, "migrations", lambda: shipped)
    async with SqliteStore(db) as store:
        assert await store.list() == ["a", "b"]
        assert [s.agent_id for s in await store.query_sessions(template_id="tpl-b")] == ["b"]
        assert await store.exists("a") and not await store.exists("c")
        await store.save_info("c", info("c", "tpl-a"))
        assert [s.agent_id for s in await store.query_sessions(template_id="tpl-a", sort_order="asc")] == ["a", "c"]
    assert max(v for (v,) in rows(db, "SELECT version FROM schema_version")) == len(shipped)


async def test_save_info_keeping_the_identity_writes_only_the_moving_indexes(store: SqliteStore, db: Path) -> None:
    first = info("a", "tpl", metadata={"userId": "u1"})
    await store.save_info("a", first)
    await store.save_info("a", first.model_copy(update={"message_count": 7}))  # fast path
    assert (await store.load_info("a")).message_count == 7  # type: ignore[union-attr]
    # A changed identity column goes through the full upsert, and the indexes follow.
    await store.save_info("a", first.model_copy(update={"template_id": "other", "metadata": {"userId": "u2"}}))
    assert [s.agent_id for s in await store.query_sessions(template_id="other")] == ["a"]
    assert await store.query_sessions(template_id="tpl") == []
    assert [s.agent_id for s in await store.query_sessions(user_id="u2")] == ["a"]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    # What the fast path's statement opens for writing (from SQLite's own plan):
    # the table, its key, and the two indexes whose columns move on every save.
    names = dict(rows(db, "SELECT rootpage, name FROM sqlite_master"))
    plan = rows(db, f"EXPLAIN {UPDATE_INFO}", (None,) * UPDATE_INFO.count("?"))
    written = sorted(names.get(step[3], step[3]) for step in plan if step[1] == "OpenWrite")
    assert written == ["agents", "agents_by_message_count", "agents_by_updated", "sqlite_autoindex_agents_1"]


def test_shipped_migrations_are_found() -> None:
    found = migrations()
    assert found[0].version == 1 and found[0].name == "0001_initial.sql"
    assert "CREATE TABLE agents" in found[0].sql


# --------------------------------------------------------------------------- locks (one process)


async def test_second_acquire_from_the_same_store_waits_then_times_out(store: SqliteStore) -> None:
    lock = await store.acquire_agent_lock("a", timeout_ms=1000)
    with pytest.raises(LockTimeoutError):
        await store.acquire_agent_lock("a", timeout_ms=100)
    other = await store.acquire_agent_lock("b", timeout_ms=100)  # other agents are independent
    waiter = asyncio.create_task(store.acquire_agent_lock("a", timeout_ms=5000))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await lock.release()
    second = await asyncio.wait_for(waiter, 5)
    assert not second.released
    await second()
    await other.release()
    await lock.release()  # twice is harmless


async def test_lock_from_another_store_on_the_same_file(db: Path) -> None:
    async with SqliteStore(db) as first, SqliteStore(db) as second:
        async with first.agent_lock("a", timeout_ms=1000):
            with pytest.raises(LockTimeoutError):
                await second.acquire_agent_lock("a", timeout_ms=50)
        lock = await second.acquire_agent_lock("a", timeout_ms=1000)
        await lock.release()


async def test_close_releases_held_locks(db: Path, tmp_path: Path) -> None:
    first = SqliteStore(db)
    await first.acquire_agent_lock("a")
    await first.close()
    async with SqliteStore(db) as second:
        lock = await second.acquire_agent_lock("a", timeout_ms=100)
        await lock.release()


async def test_lock_files_go_under_file_store_base_dir(db: Path, tmp_path: Path) -> None:
    base = tmp_path / "store"
    async with SqliteStore(db, file_store_base_dir=base) as store:
        async with store.agent_lock("agt:1", timeout_ms=100):
            assert (base / "locks" / "agt:1.lock").exists()
        health = await store.health_check()
        assert health.healthy and health.file_system.writable
    assert rows(db, "SELECT COUNT(*) FROM agents") == [(0,)]


# --------------------------------------------------------------------------- fork, health, consistency, metrics


async def test_batch_fork_copies_everything_in_one_go(store: SqliteStore) -> None:
    await store.save_info("src", info("src", lineage=["root"], metadata={"userId": "u"}))
    await store.save_messages("src", tool_turn(1))
    await store.save_tool_call_records("src", [record(1)])
    await store.save_todos("src", {"todos": [{"id": "1", "title": "t"}]})
    await store.save_snapshot("src", {"id": "s1", "messages": tool_turn(1)})
    await store.append_event("src", event(1))
    ids = await store.batch_fork("src", 3)
    assert len(set(ids)) == 3
    for new_id in ids:
        forked = await store.load_info(new_id)
        assert forked is not None
        assert forked.agent_id == new_id and forked.lineage == ["root", "src"]
        assert forked.metadata == {"userId": "u"} and forked.message_count == 3
        assert await store.load_messages(new_id) == tool_turn(1)
        assert await store.load_tool_call_records(new_id) == [record(1)]
        assert await store.load_todos(new_id) == await store.load_todos("src")
        assert [s.id for s in await store.list_snapshots(new_id)] == ["s1"]
        assert (await store.check_consistency(new_id)).consistent
        # The fork is independent: saving it does not touch the source.
        await store.save_messages(new_id, [msg("user", "diverged")])
    assert await store.load_messages("src") == tool_turn(1)
    with pytest.raises(AgentNotFoundError):
        await store.batch_fork("missing", 1)
    with pytest.raises(ValueError):
        await store.batch_fork("src", 0)


async def test_health_check(store: SqliteStore) -> None:
    health = await store.health_check()
    assert health.healthy and health.database.connected
    assert health.database.latency_ms is not None and health.database.latency_ms >= 0
    assert health.file_system.writable


async def test_health_check_reports_a_database_that_cannot_open(tmp_path: Path) -> None:
    not_a_db = tmp_path / "garbage.db"
    not_a_db.write_bytes(b"this is not an SQLite database" * 100)
    health = await SqliteStore(not_a_db).health_check()
    assert not health.healthy and not health.database.connected
    assert health.database.error


async def test_check_consistency_finds_real_problems(store: SqliteStore, db: Path) -> None:
    await store.save_info("a", info("a"))
    await store.save_messages("a", tool_turn(1))
    await store.save_tool_call_records("a", [record(1), record(2)])
    assert (await store.check_consistency("a")).issues == []
    conn = sqlite3.connect(db)
    register_functions(conn)  # the search index's triggers call them
    conn.execute("DELETE FROM messages WHERE agent_id = 'a' AND seq = 1")  # the tool_use message
    conn.execute("UPDATE tool_calls SET pos = 5 WHERE agent_id = 'a' AND pos = 1")
    conn.commit()
    conn.close()
    result = await store.check_consistency("a")
    assert not result.consistent
    text = " ".join(result.issues)
    assert "3 messages" in text or "2 are stored" in text
    assert "not contiguous" in text
    assert "toolu_1" in text
    unknown = await store.check_consistency("nobody")
    assert not unknown.consistent and "not found" in unknown.issues[0]


async def test_get_metrics_counts_operations_and_storage(store: SqliteStore, db: Path) -> None:
    await store.save_info("a", info("a"))
    await store.save_messages("a", tool_turn(1))
    await store.load_messages("a")
    await store.query_messages(agent_id="a")
    await store.delete("nobody")
    metrics = await store.get_metrics()
    assert metrics.operations.saves == 2
    assert metrics.operations.loads == 1
    assert metrics.operations.queries == 1
    assert metrics.operations.deletes == 1
    assert metrics.storage.total_agents == 1 and metrics.storage.total_messages == 3
    page_count, page_size = rows(db, "PRAGMA page_count")[0][0], rows(db, "PRAGMA page_size")[0][0]
    assert metrics.storage.db_size_bytes is not None
    assert metrics.storage.db_size_bytes >= page_count * page_size
    assert metrics.performance.max_latency_ms >= metrics.performance.p50_latency_ms > 0


async def test_concurrent_calls_on_one_store(store: SqliteStore) -> None:
    async def agent(n: int) -> None:
        conversation: list[Message] = []
        for turn in range(10):
            conversation += tool_turn(turn)
            await store.save_messages(f"c{n}", conversation)
            await store.append_event(f"c{n}", event(turn))

    await asyncio.gather(*(agent(n) for n in range(8)))
    for n in range(8):
        assert len(await store.load_messages(f"c{n}")) == 30
        assert [e.bookmark.seq async for e in store.read_events(f"c{n}")] == list(range(10))


# --------------------------------------------------------------------------- bad input


INVALID_IDS = ["", "../x", "a/b", "a b", ".", "..", "x" * 129, "nul\x00", None, 7]


@pytest.mark.parametrize("bad", INVALID_IDS)
async def test_invalid_agent_ids_are_refused_by_every_method(store: SqliteStore, bad: Any) -> None:
    calls = [
        store.save_messages(bad, []),
        store.append_messages(bad, []),
        store.load_messages(bad),
        store.save_tool_call_records(bad, []),
        store.load_tool_call_records(bad),
        store.save_todos(bad, {}),
        store.load_todos(bad),
        store.append_event(bad, event(1)),
        store.save_history_window(bad, {"id": "w", "timestamp": 1}),
        store.load_history_windows(bad),
        store.save_compression_record(bad, {}),
        store.load_compression_records(bad),
        store.save_recovered_file(bad, {}),
        store.load_recovered_files(bad),
        store.save_media_cache(bad, []),
        store.load_media_cache(bad),
        store.save_snapshot(bad, {}),
        store.load_snapshot(bad, "s"),
        store.list_snapshots(bad),
        store.save_info(bad, {}),
        store.load_info(bad),
        store.exists(bad),
        store.delete(bad),
        store.aggregate_stats(bad),
        store.check_consistency(bad),
        store.acquire_agent_lock(bad, 10),
        store.batch_fork(bad, 1),
        store.query_sessions(agent_id=bad) if bad is not None else store.load_info(bad),
        store.query_messages(agent_id=bad) if bad is not None else store.load_info(bad),
        store.query_tool_calls(agent_id=bad) if bad is not None else store.load_info(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidAgentIdError):
            await call
    with pytest.raises(InvalidAgentIdError):
        [e async for e in store.read_events(bad)]


async def test_bad_records_leave_stored_data_unchanged(store: SqliteStore) -> None:
    good = tool_turn(1)
    await store.save_info("a", info("a"))
    await store.save_messages("a", good)
    await store.save_tool_call_records("a", [record(1)])
    await store.save_todos("a", {"todos": [{"id": "1", "title": "keep"}]})
    bad_inputs = [
        (lambda: store.save_messages("a", [*good, {"role": "robot", "content": []}]), r"messages\[3\]\.role"),
        (lambda: store.save_messages("a", [*good, {"role": "user", "content": [{"type": "text"}]}]), r"messages\[3\]"),
        (
            lambda: store.save_messages("a", [{"role": "user", "content": [{"type": "text", "text": float("nan")}]}]),
            "text",
        ),
        (lambda: store.save_messages("a", "not a list"), "messages"),
        (
            lambda: store.append_messages("a", [{"role": "user", "content": [{"type": "text", "text": "\ud800"}]}]),
            "surrogate",
        ),
        (lambda: store.save_tool_call_records("a", [{"id": "", "name": "x"}]), r"records\[0\]\.id"),
        (
            lambda: store.save_tool_call_records("a", [{"id": "t", "name": "x", "duration_ms": float("inf")}]),
            "duration_ms",
        ),
        (lambda: store.save_todos("a", {"todos": [{"id": "1"}]}), "title"),
        (lambda: store.save_info("a", {"agent_id": "a"}), "templateId|template_id"),
        (
            lambda: store.save_info("a", {"agent_id": "a", "template_id": "t", "metadata": {"x": float("nan")}}),
            "metadata",
        ),
        (lambda: store.save_snapshot("a", {"messages": []}), "id"),
        (lambda: store.save_media_cache("a", [{"key": "k"}]), "provider"),
    ]
    for call, field in bad_inputs:
        with pytest.raises(RecordValidationError, match=field):
            await call()
    assert await store.load_messages("a") == good
    assert await store.load_tool_call_records("a") == [record(1)]
    todos = await store.load_todos("a")
    assert todos is not None and todos.todos[0].title == "keep"
    loaded = await store.load_info("a")
    assert loaded is not None and loaded.template_id == "assistant"
    assert await store.list_snapshots("a") == []


async def test_bad_lock_timeout(store: SqliteStore) -> None:
    # Bad query arguments are conformance tests (kode_sdk.testing.policy_suite).
    with pytest.raises(ValueError, match="timeout_ms"):
        await store.acquire_agent_lock("a", timeout_ms=-5)


# --------------------------------------------------------------------------- WAL checkpoints


def _rows_in_main_file(db: Path) -> int:
    # immutable=1 reads the database file alone and ignores the WAL: it sees
    # only what a checkpoint has already copied into the file.
    conn = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    except sqlite3.OperationalError:  # not even the schema copied yet
        return 0
    finally:
        conn.close()


def _wait_for_rows_in_main_file(db: Path, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (found := _rows_in_main_file(db)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


async def test_commits_reach_the_database_file_without_a_checkpoint_on_the_writer(db: Path) -> None:
    async with SqliteStore(db) as store:
        for n in range(100):  # far below the writer's own automatic checkpoint (10,000 pages)
            await store.append_messages("a", [msg("user", f"m{n}")])
        # The background checkpointer copies them into the file within about a second.
        assert await asyncio.to_thread(_wait_for_rows_in_main_file, db, 100, 10.0) == 100
        assert len(await store.load_messages("a")) == 100
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    wal = Path(f"{db}-wal")
    assert not await asyncio.to_thread(wal.exists)  # closed last: the WAL folded back into the file


async def test_a_driver_error_reaches_the_caller_as_a_kode_error(db: Path) -> None:
    """What the database refuses (here a trigger someone added) is a
    RecordValidationError, never a raw sqlite3 exception, and loses nothing."""
    async with SqliteStore(db) as first:
        await first.save_messages("a", [msg("user", "kept")])
    conn = sqlite3.connect(db)
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'refused here'); END")
    conn.commit()
    conn.close()
    async with SqliteStore(db) as store:
        with pytest.raises(RecordValidationError, match="refused here") as caught:
            await store.append_messages("a", [msg("user", "new")])
        assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
        assert [m.content for m in await store.load_messages("a")] == [[{"type": "text", "text": "kept"}]]


# --------------------------------------------------------------------------- caller-thread reads


async def test_caller_thread_reads_see_other_stores_commits_and_units_see_their_own(db: Path) -> None:
    async with SqliteStore(db) as writer, SqliteStore(db) as reader:
        assert await reader.list() == []  # opens the reader's caller-thread connection first
        await writer.save_info("a", info("a"))
        assert await reader.list() == ["a"]  # acknowledged by another store object: visible
        assert reader._readers.connection() is not None
        async with reader.transaction("b") as tx:
            await tx.save_info("b", info("b"))
            assert await tx.load_info("b") is not None  # the unit's own write, through the hop
            assert await writer.exists("b") is False  # uncommitted: invisible to others
        assert await writer.exists("b") is True


async def test_whole_lists_are_read_on_the_callers_thread_up_to_a_bound(db: Path) -> None:
    from kode_sdk.store.sqlite.store import INLINE_LIST_ROWS

    async with SqliteStore(db) as writer, SqliteStore(db) as reader:
        short = [msg("user", f"m{i}") for i in range(3)]
        long = [msg("user", f"m{i}") for i in range(INLINE_LIST_ROWS + 1)]
        await writer.save_messages("short", short)
        await writer.save_messages("long", long)
        hops: list[object] = []
        hop = reader._hop

        async def counted(job: Any, **options: Any) -> Any:
            hops.append(job)
            return await hop(job, **options)

        reader._hop = counted  # type: ignore[method-assign]
        assert await reader.load_messages("short") == short  # committed by another store: seen
        assert hops == []
        assert await reader.load_messages("long") == long  # past the bound: read whole on the worker
        assert len(hops) == 1
        async with reader.transaction("short") as tx:
            await tx.append_messages("short", [msg("user", "more")])
            assert len(await tx.load_messages("short")) == 4  # the unit's own write: through the hop


async def test_an_inline_job_that_had_to_wait_leaves_no_busy_timeout_behind(store: SqliteStore, db: Path) -> None:
    """A job that committed once inline and then finds the write lock taken
    cannot be handed to the worker: it waits (busy timeout raised), and the
    connection is back to waiting for nothing once the job ends."""
    import threading

    await store.save_info("a", info("a"))
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    here = threading.current_thread().name

    def job(conn: sqlite3.Connection) -> tuple[str, int]:
        with transaction(conn, write=True):
            conn.execute("UPDATE agents SET updated_at = 1 WHERE agent_id = 'a'")
        other.execute("BEGIN IMMEDIATE")
        threading.Timer(0.2, lambda: other.execute("COMMIT")).start()
        with transaction(conn, write=True):
            conn.execute("UPDATE agents SET updated_at = 2 WHERE agent_id = 'a'")
        return threading.current_thread().name, conn.execute("PRAGMA busy_timeout").fetchone()[0]

    try:
        assert await store._hop(job, inline=True) == (here, 10_000)
        assert await store._hop(lambda conn: conn.execute("PRAGMA busy_timeout").fetchone()[0], inline=True) == 0
        assert rows(db, "SELECT updated_at FROM agents WHERE agent_id = 'a'") == [(2,)]
    finally:
        other.close()
