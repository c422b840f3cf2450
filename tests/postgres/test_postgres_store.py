"""PostgresStore against a real server: round trips, incremental writes,
events, queries and their plans, locks, configuration and secrets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
import pytest

from kode_sdk.errors import (
    AgentNotFoundError,
    InvalidAgentIdError,
    LockTimeoutError,
    RecordValidationError,
    SchemaVersionError,
    StoreClosedError,
    StoreConfigError,
    StoreConnectionError,
)
from kode_sdk.store import postgres as pgmod
from kode_sdk.store.postgres import PostgresStore, migrations
from kode_sdk.store.postgres.config import parse_connection, scrub_text
from kode_sdk.store.postgres.lists import MESSAGES, TOOL_CALLS, save_optimistic
from kode_sdk.store.queries import MessageQuery, SessionQuery, ToolCallQuery
from kode_sdk.testing import data
from kode_sdk.types import Message, ToolCallRecord

from .conftest import _free_port, drop_schema, new_schema_name

pytestmark = pytest.mark.postgres


def turn_messages(t: int) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": [{"type": "text", "text": f"question {t}"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": f"answer {t}"},
                {"type": "tool_use", "id": f"toolu_{t}", "name": "bash_run", "input": {"cmd": "ls"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": f"toolu_{t}", "content": "ok", "is_error": False}],
        },
    ]


def tool_call(i: int, *, name: str = "bash_run", is_error: bool = False, approval: bool = False) -> dict[str, Any]:
    return {
        "id": f"toolu_{i}",
        "name": name,
        "input": {"cmd": f"echo {i}"},
        "state": "FAILED" if is_error else "COMPLETED",
        "approval": {"required": approval, "decision": "allow" if approval else None},
        "result": {"out": i},
        "is_error": is_error,
        "created_at": 1_700_000_000_000 + i,
        "updated_at": 1_700_000_000_000 + i,
        "audit_trail": [{"state": "pending", "timestamp": 1}, {"state": "completed", "timestamp": 2}],
    }


def timeline(seq: int, channel: str = "progress", **extra: Any) -> dict[str, Any]:
    return {
        "cursor": seq,
        "bookmark": {"seq": seq, "timestamp": 1_700_000_000_000 + seq},
        "event": {"channel": channel, "type": "text_chunk", "delta": f"d{seq}", **extra},
    }


def info(agent_id: str, template: str = "tpl", **metadata: Any) -> dict[str, Any]:
    return {"agent_id": agent_id, "template_id": template, "metadata": metadata}


async def fetch(store: PostgresStore, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with store._connection() as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall()


# --------------------------------------------------------------------------- exact JSON


async def test_json_round_trip_is_exact(store: PostgresStore) -> None:
    weird = {
        "nul": "a\u0000b",
        "escaped_backslash_u": "\\u0000 is not NUL",
        "astral": "𝄞 🎉",
        "big": 2**80,
        "neg_big": -(2**70),
        "float_exp": 1e20,
        "tiny": 1.5e-7,
        "float": 0.1,
        "one": 1.0,
    }
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "x\u0000y", "meta": weird}], "metadata": weird},
        {"role": "assistant", "content": [{"type": "image", "source": {"data": "AAAA"}, "cache_control": {"t": 1}}]},
    ]
    await store.save_messages("agt-json", messages)
    loaded = await store.load_messages("agt-json")
    assert [m.model_dump() for m in loaded] == [Message.model_validate(m).model_dump() for m in messages]
    meta = loaded[0].metadata
    assert meta is not None
    assert type(meta["float_exp"]) is float and type(meta["one"]) is float and type(meta["big"]) is int
    assert meta["big"] == 2**80 and meta["nul"] == "a\u0000b"
    # The jsonb copy is queryable and holds no NUL; the exact text is in raw.
    rows = await fetch(store, "SELECT data->'metadata'->>'nul', raw IS NOT NULL FROM messages ORDER BY seq")
    assert rows == [("a\ufffdb", True), (None, False)]
    # A NUL inside an event survives too.
    await store.append_event("agt-json", timeline(1, tool_output="out\u0000put"))
    events = [t async for t in store.read_events("agt-json")]
    assert events[0].event["tool_output"] == "out\u0000put"


async def test_unencodable_input_is_refused_and_loses_nothing(store: PostgresStore) -> None:
    await store.save_messages("agt-bad", turn_messages(0))
    with pytest.raises(RecordValidationError):
        await store.save_messages("agt-bad", [{"role": "user", "content": [{"type": "text", "text": "\ud800"}]}])
    with pytest.raises(RecordValidationError):
        await store.save_messages("agt-bad", [{"role": "robot", "content": []}])
    assert len(await store.load_messages("agt-bad")) == 3
    with pytest.raises(InvalidAgentIdError):
        await store.load_messages("../etc")


# --------------------------------------------------------------------------- incremental writes


async def test_save_messages_rewrites_only_changed_positions(store: PostgresStore) -> None:
    history: list[dict[str, Any]] = []
    for t in range(3):
        history += turn_messages(t)
        await store.save_messages("agt-inc", history)
    before = dict(await fetch(store, "SELECT seq, xmin::text FROM messages WHERE agent_id = 'agt-inc'"))
    created = dict(await fetch(store, "SELECT seq, created_at FROM messages WHERE agent_id = 'agt-inc'"))

    history += turn_messages(3)
    history[4] = {"role": "assistant", "content": "edited"}
    await asyncio.sleep(0.005)  # a later millisecond for the new rows
    await store.save_messages("agt-inc", history)
    after = dict(await fetch(store, "SELECT seq, xmin::text FROM messages WHERE agent_id = 'agt-inc'"))
    created_after = dict(await fetch(store, "SELECT seq, created_at FROM messages WHERE agent_id = 'agt-inc'"))

    untouched = [seq for seq in before if before[seq] == after[seq]]
    assert untouched == [s for s in range(9) if s != 4]  # only position 4 was rewritten
    assert all(created_after[s] == created[s] for s in range(9))  # first-save times kept, 4 included
    assert all(created_after[s] > created[8] for s in range(9, 12))

    # Truncation deletes the tail; a shorter list loads back exactly.
    await store.save_messages("agt-inc", history[:5])
    assert [m.model_dump() for m in await store.load_messages("agt-inc")] == [
        Message.model_validate(m).model_dump() for m in history[:5]
    ]
    assert (await store.load_info("agt-inc")) is None  # no AgentInfo yet, saving still works


async def test_in_place_mutation_between_saves_is_detected(store: PostgresStore) -> None:
    messages = [Message.model_validate(m) for m in turn_messages(0)]
    await store.save_messages("agt-mut", messages)
    messages[0].content[0]["text"] = "changed in place"
    messages[1].content.append({"type": "text", "text": "appended in place"})
    await store.save_messages("agt-mut", messages)
    loaded = await store.load_messages("agt-mut")
    assert loaded[0].content[0]["text"] == "changed in place"
    assert loaded[1].content[-1]["text"] == "appended in place"

    records = [ToolCallRecord.model_validate(tool_call(i)) for i in range(3)]
    await store.save_tool_call_records("agt-mut", records)
    records[0].input["cmd"] = "rm -rf /tmp/x"  # nested JSON
    records[1].approval.note = "looked at it"  # nested model
    records[2].audit_trail.append(records[2].audit_trail[0].model_copy(update={"timestamp": 9}))
    await store.save_tool_call_records("agt-mut", records)
    assert await store.load_tool_call_records("agt-mut") == records


async def test_saves_from_two_store_instances_never_use_a_stale_cache(
    store: PostgresStore, pg_url: str, pg_schema: str
) -> None:
    async with PostgresStore(pg_url, schema=pg_schema) as other:
        await store.save_messages("agt-two", turn_messages(0))
        await other.save_messages("agt-two", turn_messages(1))  # a different list, same length
        await store.save_messages("agt-two", turn_messages(0) + turn_messages(2))
        loaded = await other.load_messages("agt-two")
    expected = turn_messages(0) + turn_messages(2)
    assert [m.model_dump() for m in loaded] == [Message.model_validate(m).model_dump() for m in expected]


async def test_append_messages_and_message_count(store: PostgresStore) -> None:
    await store.save_info("agt-app", info("agt-app"))
    await store.append_messages("agt-app", turn_messages(0))
    await store.append_messages("agt-app", turn_messages(1))
    loaded = await store.load_messages("agt-app")
    assert [m.model_dump() for m in loaded] == [
        Message.model_validate(m).model_dump() for m in turn_messages(0) + turn_messages(1)
    ]
    assert [r[0] for r in await fetch(store, "SELECT seq FROM messages ORDER BY seq")] == list(range(6))
    loaded_info = await store.load_info("agt-app")
    assert loaded_info is not None and loaded_info.message_count == 6
    # save_messages after append_messages diffs against the appended state.
    await store.save_messages("agt-app", turn_messages(0))
    assert len(await store.load_messages("agt-app")) == 3
    assert (await store.query_sessions(agent_id="agt-app"))[0].message_count == 3


async def test_tool_call_records_round_trip_and_incremental(store: PostgresStore) -> None:
    records = [tool_call(i) for i in range(5)]
    await store.save_tool_call_records("agt-tc", records)
    before = dict(await fetch(store, "SELECT pos, xmin::text FROM tool_calls"))
    records[2] = {**records[2], "state": "SEALED", "error": "boom"}
    await store.save_tool_call_records("agt-tc", records)
    after = dict(await fetch(store, "SELECT pos, xmin::text FROM tool_calls"))
    assert [p for p in before if before[p] != after[p]] == [2]
    loaded = await store.load_tool_call_records("agt-tc")
    assert loaded == [ToolCallRecord.model_validate(r) for r in records]
    await store.save_tool_call_records("agt-tc", records[:1])
    assert len(await store.load_tool_call_records("agt-tc")) == 1


# --------------------------------------------------------------------------- events


async def test_events_order_since_channel_and_duplicates(store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    channels = ["progress", "control", "monitor"]
    for seq in range(30):
        await store.append_event("agt-ev", timeline(seq, channels[seq % 3]))
    seqs = [t.bookmark.seq async for t in store.read_events("agt-ev")]
    assert seqs == list(range(30))  # read-your-writes, seq order across channels
    assert [t.bookmark.seq async for t in store.read_events("agt-ev", since={"seq": 26, "timestamp": 0})] == [
        27,
        28,
        29,
    ]
    monitor = [t.bookmark.seq async for t in store.read_events("agt-ev", channel="monitor")]
    assert monitor == list(range(2, 30, 3))
    with pytest.raises(RecordValidationError):
        [t async for t in store.read_events("agt-ev", channel="bogus")]
    with pytest.raises(RecordValidationError):
        await store.append_event("agt-ev", timeline(5))
    # A fresh store (no buffer knowledge) reports the duplicate as well.
    async with PostgresStore(pg_url, schema=pg_schema) as other:
        with pytest.raises(RecordValidationError):
            await other.append_event("agt-ev", timeline(29))
        assert len([t async for t in other.read_events("agt-ev")]) == 30


async def test_many_events_page_through_keyset(store: PostgresStore) -> None:
    for seq in range(2500):
        await store.append_event("agt-many", timeline(seq))
    seqs = [t.bookmark.seq async for t in store.read_events("agt-many", since=100)]
    assert seqs == list(range(101, 2500))


async def test_events_are_notified(store: PostgresStore, pg_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as listener:
        await listener.execute("LISTEN kode_events")
        await store.append_event("agt-notify", timeline(0))
        await store.append_event("agt-notify", timeline(1))
        got = []
        async for note in listener.notifies(timeout=5):
            if note.payload.startswith(f"{store.schema}:"):  # other stores may share the server
                got.append(note.payload)
            if len(got) == 2:
                break
    assert got == [f"{store.schema}:agt-notify"] * 2


async def test_tail_events_in_process(store: PostgresStore) -> None:
    await store.append_event("agt-tail", timeline(0))
    seen: list[int] = []

    async def consume() -> None:
        async with contextlib.aclosing(store.tail_events("agt-tail", poll_interval_s=0.2)) as events:
            async for item in events:
                seen.append(item.bookmark.seq)
                if len(seen) == 4:
                    return

    task = asyncio.create_task(consume())
    for seq in (1, 2, 3):
        await asyncio.sleep(0.05)
        await store.append_event("agt-tail", timeline(seq))
    await asyncio.wait_for(task, 10)
    assert seen == [0, 1, 2, 3]


# --------------------------------------------------------------------------- records


async def test_small_records_round_trip(store: PostgresStore) -> None:
    a = "agt-small"
    await store.save_todos(a, {"todos": [{"id": "1", "title": "write tests"}], "version": 3})
    todos = await store.load_todos(a)
    assert todos is not None and todos.version == 3 and todos.todos[0].title == "write tests"
    for i in (2, 1):
        await store.save_history_window(a, {"id": f"w{i}", "messages": turn_messages(i), "timestamp": i})
        await store.save_compression_record(
            a, {"id": f"c{i}", "window_id": f"w{i}", "summary": "s\u0000", "ratio": 0.5, "timestamp": i}
        )
        await store.save_recovered_file(a, {"path": f"/f{i}", "content": "x", "mtime": 1, "timestamp": i})
        await store.save_snapshot(a, {"id": f"s{i}", "messages": turn_messages(i), "created_at": 1_700_000_000_000 + i})
    assert [w.id for w in await store.load_history_windows(a)] == ["w2", "w1"]
    assert [c.summary for c in await store.load_compression_records(a)] == ["s\u0000", "s\u0000"]
    assert [f.path for f in await store.load_recovered_files(a)] == ["/f2", "/f1"]
    assert [s.id for s in await store.list_snapshots(a)] == ["s2", "s1"]  # newest first
    snap = await store.load_snapshot(a, "s1")
    assert snap is not None and snap.messages[0].content[0]["text"] == "question 1"
    assert await store.load_snapshot(a, "nope") is None
    media = [{"key": "k1", "provider": "anthropic", "mime_type": "image/png", "size_bytes": 10}]
    await store.save_media_cache(a, media)
    await store.save_media_cache(a, media)  # replaces, does not append
    assert [m.key for m in await store.load_media_cache(a)] == ["k1"]
    await store.delete(a)
    assert await store.load_todos(a) is None and await store.list_snapshots(a) == []
    assert await store.load_media_cache(a) == [] and await store.load_history_windows(a) == []


async def test_info_exists_list_and_delete(store: PostgresStore) -> None:
    for agent in ("agent_1", "agent_2", "AGENT-3", "agentX2", "other"):
        await store.save_info(agent, info(agent))
    await store.save_messages("agent_orphan", turn_messages(0))  # no info: does not exist
    assert await store.list("agent_") == ["agent_1", "agent_2"]
    assert await store.list() == sorted(["agent_1", "agent_2", "AGENT-3", "agentX2", "other"])
    assert await store.exists("agent_1") and not await store.exists("agent_orphan")
    with pytest.raises(RecordValidationError):
        await store.save_info("agent_1", info("agent_2"))
    await store.save_messages("agent_1", turn_messages(0))
    await store.append_event("agent_1", timeline(0))
    await store.delete("agent_1")
    assert not await store.exists("agent_1")
    assert await store.load_messages("agent_1") == []
    assert [t async for t in store.read_events("agent_1")] == []
    await store.delete("never-existed")
    loaded = await store.load_info("agent_2")
    assert loaded is not None and loaded.template_id == "tpl"


# --------------------------------------------------------------------------- queries


async def test_queries(store: PostgresStore) -> None:
    for i in range(6):
        agent = f"q-{i}"
        await store.save_info(
            agent,
            {**info(agent, template=f"t{i % 2}", userId=f"u{i % 3}"), "created_at": 1_700_000_000_000 + i},
        )
        await store.save_messages(agent, turn_messages(i))
        await store.save_tool_call_records(
            agent, [tool_call(i * 10 + k, name="fs_read" if k else "bash_run", is_error=k == 2) for k in range(3)]
        )
    sessions = await store.query_sessions(template_id="t0", limit=2)
    assert [s.agent_id for s in sessions] == ["q-4", "q-2"]
    page2 = await store.query_sessions(template_id="t0", limit=2, offset=2)
    assert [s.agent_id for s in page2] == ["q-0"]
    assert [s.agent_id for s in await store.query_sessions(user_id="u1", sort_order="asc")] == ["q-1", "q-4"]
    assert sessions[0].metadata == {"userId": "u1"} and sessions[0].message_count == 3
    with pytest.raises(ValueError):
        await store.query_sessions(sort_by="agent_id; DROP TABLE agents")

    msgs = await store.query_messages(agent_id="q-3", role="assistant")
    assert [(m.seq, m.content[0]["text"]) for m in msgs] == [(1, "answer 3")]
    results = await store.query_messages(content_type="tool_result", limit=100)
    assert len(results) == 6 and all(m.seq == 2 for m in results)

    errors = await store.query_tool_calls(is_error=True)
    assert [c.tool_call_id for c in errors] == [f"toolu_{i * 10 + 2}" for i in reversed(range(6))]
    bash = await store.query_tool_calls(tool_name="bash_run", limit=3)
    assert [c.tool_call_id for c in bash] == ["toolu_50", "toolu_40", "toolu_30"]  # newest first
    assert bash[0].output == {"out": 50} and bash[0].agent_id == "q-5"
    assert await store.query_tool_calls(state="failed", agent_id="q-1") == [c for c in errors if c.agent_id == "q-1"]

    stats = await store.aggregate_stats("q-1")
    assert stats.total_messages == 3 and stats.messages_by_role == {"user": 2, "assistant": 1}
    assert stats.tool_calls_by_state == {"completed": 2, "failed": 1}
    assert stats.tool_calls_by_name == {"bash_run": 1, "fs_read": 2}
    zero = await store.aggregate_stats("nobody")
    assert zero.total_messages == 0 and zero.tool_calls_by_state == {}


async def _scans(store: PostgresStore, query: str, params: Any) -> list[tuple[str, str]]:
    """(node type, table) of every table access in the plan of ``query``."""
    async with store._connection() as conn:
        cur = await conn.execute("EXPLAIN (FORMAT JSON) " + query, params)
        row = await cur.fetchone()
    assert row is not None
    found: list[tuple[str, str]] = []
    stack = [row[0][0]["Plan"]]
    while stack:
        node = stack.pop()
        if "Relation Name" in node:
            found.append((node["Node Type"], node["Relation Name"]))
        stack.extend(node.get("Plans", []))
    return found


async def test_every_w3_query_uses_an_index(store: PostgresStore) -> None:
    """Realistic volume (2,000 agents, 10,000 messages, 3,000 tool calls, 2,000
    snapshots), fresh
    statistics, default planner settings: each W3 query must be an index scan."""
    agents = [f"agent-{i:04d}" for i in range(2000)]
    tools = ("bash_run", "fs_read", "fs_write", "fs_grep")
    semaphore = asyncio.Semaphore(8)

    async def populate(index: int, agent: str) -> None:
        async with semaphore:
            await store.save_info(agent, info(agent, template=f"tpl-{index % 5}", userId=f"user-{index % 50}"))
            if index % 8 == 0:
                history: list[dict[str, Any]] = []
                for t in range(13):
                    history += turn_messages(t)
                await store.append_messages(agent, history[:40])
                await store.save_tool_call_records(
                    agent,
                    [tool_call(index * 100 + k, name=tools[k % 4], is_error=k % 7 == 0) for k in range(12)],
                )
                for k in range(8):
                    await store.save_snapshot(agent, {"id": f"s{k}", "messages": []})

    await asyncio.gather(*(populate(i, a) for i, a in enumerate(agents)))
    async with store._connection() as conn:
        await conn.execute("ANALYZE")

    plans = {
        "sessions": pgmod.sessions_query(SessionQuery(template_id="tpl-3", limit=20)),
        "messages": pgmod.messages_query(MessageQuery(agent_id="agent-0800", role="assistant", limit=50)),
        "tool_calls": pgmod.tool_calls_query(ToolCallQuery(tool_name="bash_run", is_error=True, limit=10)),
        "stats": (pgmod.STATS_QUERY, {"a": "agent-0800"}),
        "list": pgmod.list_query("agent-01"),
    }
    for name, (query, params) in plans.items():
        scans = await _scans(store, query, params)
        assert scans, name
        for node_type, table in scans:
            assert node_type in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), f"{name}: {scans}"
            assert table in ("agents", "messages", "tool_calls", "snapshots"), f"{name}: {scans}"
    assert len(await store.list("agent-01")) == 100


# --------------------------------------------------------------------------- fork, health, metrics


async def test_batch_fork(store: PostgresStore) -> None:
    await store.save_info("src", info("src", template="t", userId="u"))
    await store.save_messages("src", turn_messages(0))
    await store.save_tool_call_records("src", [tool_call(1)])
    await store.save_todos("src", {"todos": [{"id": "1", "title": "t"}]})
    await store.save_snapshot("src", {"id": "s1", "messages": turn_messages(0)})
    forks = await store.batch_fork("src", 3)
    assert len(set(forks)) == 3
    for fork in forks:
        child = await store.load_info(fork)
        assert child is not None and child.lineage == ["src"] and child.agent_id == fork
        assert await store.load_messages(fork) == await store.load_messages("src")
        assert await store.load_tool_call_records(fork) == await store.load_tool_call_records("src")
        assert await store.load_todos(fork) is not None and len(await store.list_snapshots(fork)) == 1
        assert (await store.check_consistency(fork)).consistent
        # A fork's incremental save works from the copied rows.
        await store.save_messages(fork, turn_messages(0) + turn_messages(1))
        assert len(await store.load_messages(fork)) == 6
    assert len(await store.load_messages("src")) == 3
    with pytest.raises(AgentNotFoundError):
        await store.batch_fork("missing", 1)


async def test_health_consistency_metrics(store: PostgresStore, tmp_path: Any) -> None:
    health = await store.health_check()
    assert health.healthy and health.database.connected and health.database.latency_ms is not None
    await store.save_info("agt-h", info("agt-h"))
    await store.save_messages("agt-h", turn_messages(0))
    assert (await store.check_consistency("agt-h")).consistent
    missing = await store.check_consistency("agt-missing")
    assert not missing.consistent and "not found" in missing.issues[0]
    async with store._connection() as conn:
        await conn.execute("DELETE FROM messages WHERE agent_id = 'agt-h' AND seq = 1")
    broken = await store.check_consistency("agt-h")
    assert not broken.consistent and len(broken.issues) == 2
    metrics = await store.get_metrics()
    assert metrics.storage.total_agents == 1 and metrics.storage.total_messages == 2
    assert metrics.storage.db_size_bytes is not None and metrics.storage.db_size_bytes > 0
    assert metrics.operations.saves >= 2 and metrics.performance.max_latency_ms > 0


# --------------------------------------------------------------------------- locks


async def test_lock_waits_even_from_the_same_store(store: PostgresStore) -> None:
    lock = await store.acquire_agent_lock("agt-lock", timeout_ms=1000)
    with pytest.raises(LockTimeoutError):
        await store.acquire_agent_lock("agt-lock", timeout_ms=150)
    with pytest.raises(LockTimeoutError):
        await store.acquire_agent_lock("agt-lock", timeout_ms=0)
    other = await store.acquire_agent_lock("agt-other", timeout_ms=0)  # distinct agents do not contend

    waiter = asyncio.create_task(store.acquire_agent_lock("agt-lock", timeout_ms=10_000))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await lock.release()
    await lock.release()  # harmless
    second = await asyncio.wait_for(waiter, 10)
    await second.release()
    await other()
    async with store.agent_lock("agt-lock", timeout_ms=1000) as held:
        assert not held.released
    assert held.released
    # Every lock connection went back to the pool with no lock left on it.
    # (pg_locks is server-wide: only this database's locks count, not other test runs'.)
    rows = await fetch(
        store,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    assert rows == [(0,)]


async def test_close_releases_held_locks(pg_url: str, pg_schema: str) -> None:
    first = PostgresStore(pg_url, schema=pg_schema)
    await first.acquire_agent_lock("agt-close")
    await first.close()
    async with PostgresStore(pg_url, schema=pg_schema) as second:
        lock = await second.acquire_agent_lock("agt-close", timeout_ms=2000)
        await lock.release()


# --------------------------------------------------------------------------- lifecycle, schema


async def test_lifecycle(pg_url: str, pg_schema: str) -> None:
    pg_store = PostgresStore(pg_url, schema=pg_schema)
    assert await pg_store.load_messages("x") == []  # opens lazily
    await pg_store.close()
    await pg_store.close()
    with pytest.raises(StoreClosedError):
        await pg_store.load_messages("x")
    with pytest.raises(StoreClosedError):
        await pg_store.health_check()


async def test_concurrent_opens_migrate_once_and_newer_schema_is_refused(pg_url: str, pg_schema: str) -> None:
    stores = [PostgresStore(pg_url, schema=pg_schema) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    rows = await fetch(stores[0], "SELECT version FROM kode_schema_version ORDER BY version")
    assert rows == [(version,) for version, _, _ in migrations()]
    await asyncio.gather(*(s.close() for s in stores))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {pg_schema}.kode_schema_version VALUES (99, '0099_future.sql', 0)")
    with pytest.raises(SchemaVersionError, match="99"):
        await PostgresStore(pg_url, schema=pg_schema).open()


# --------------------------------------------------------------------------- configuration and secrets

SECRET = "s3cr3t-Pa55word-xyz"


def test_config_errors_name_the_key_and_never_echo_the_password() -> None:
    cases: list[tuple[Any, str]] = [
        ({"host": "h", "port": "abc", "password": SECRET}, "port"),
        ({"host": "h", "max": 0, "password": SECRET}, "max"),
        ({"host": "h", "ssl": "sometimes", "password": SECRET}, "ssl"),
        ({"host": "h", "pasword": SECRET}, "pasword"),
        ({"host": "h", "password": SECRET, "idle_timeout_ms": -1}, "idle_timeout_ms"),
        (f"postgresql://u:{SECRET}@h:99999999/db", "port"),
        (f"host=h password={SECRET} bogus", "DSN"),
        (12, "connection"),
    ]
    for connection, key in cases:
        with pytest.raises(StoreConfigError) as caught:
            PostgresStore(connection)
        assert key in str(caught.value) and SECRET not in str(caught.value), str(caught.value)
    with pytest.raises(StoreConfigError, match="schema"):
        PostgresStore({"host": "h"}, schema="Bad-Name")
    settings = parse_connection({"host": "h", "password": SECRET, "ssl": True, "max": 3}, "s")
    assert "sslmode=require" in settings.conninfo and SECRET in settings.conninfo
    assert SECRET not in repr(settings) and settings.max_size == 3
    assert SECRET not in repr(PostgresStore({"host": "h", "password": SECRET}))
    tuned = parse_connection({"dsn": "postgresql://u@h/db", "synchronous_commit": "off"}, None)
    assert "synchronous_commit=off" in tuned.conninfo and "search_path=public" in tuned.conninfo
    with pytest.raises(StoreConfigError, match="synchronous_commit"):
        parse_connection({"host": "h", "synchronous_commit": "sometimes"}, None)
    assert scrub_text(f"password={SECRET} x") == "password=*** x"
    assert scrub_text(f"postgresql://u:{SECRET}@h/db") == "postgresql://u:***@h/db"


async def test_secrets_never_leak_from_a_failed_connection(caplog: pytest.LogCaptureFixture) -> None:
    port = _free_port()  # nothing listens there
    pg_store = PostgresStore(
        {"host": "127.0.0.1", "port": port, "user": "u", "password": SECRET, "connection_timeout_ms": 1000},
        schema=new_schema_name(),
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreConnectionError) as caught:
        await pg_store.open()
    health = await pg_store.health_check()
    assert not health.healthy and health.database.error
    texts = [str(caught.value), repr(caught.value), repr(pg_store), health.model_dump_json(), caplog.text]
    texts += [r.getMessage() for r in caplog.records]
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    for text in texts:
        assert SECRET not in text
    await pg_store.close()


async def test_password_is_accepted_and_hidden_on_a_live_server(pg_url: str, pg_schema: str) -> None:
    # Trust auth ignores the password: the store works, and nothing shows it.
    info_dict = psycopg.conninfo.conninfo_to_dict(pg_url)
    connection = {
        "host": info_dict.get("host", "127.0.0.1"),
        "port": int(info_dict.get("port", 5432)),
        "database": info_dict.get("dbname"),
        "user": info_dict.get("user"),
        "password": SECRET,
        "max": 3,
    }
    async with PostgresStore(connection, schema=pg_schema) as pg_store:
        health = await pg_store.health_check()
        assert health.healthy
        assert SECRET not in repr(pg_store) and SECRET not in health.model_dump_json()
        with pytest.raises(RecordValidationError) as caught:
            await pg_store.save_info("a", info("b"))
        assert SECRET not in str(caught.value)


def test_drop_schema_helper_is_idempotent(pg_url: str) -> None:
    name = new_schema_name()
    drop_schema(pg_url, name)
    drop_schema(pg_url, name)


async def test_a_stale_optimistic_write_changes_nothing(store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    await store.save_messages("agt-stale", turn_messages(0))
    await store.save_tool_call_records("agt-stale", [tool_call(1)])
    stale_messages = store._messages_cache.latest("agt-stale")
    stale_calls = store._tool_calls_cache.latest("agt-stale")
    assert stale_messages is not None and stale_calls is not None
    async with PostgresStore(pg_url, schema=pg_schema) as other:
        await other.save_messages("agt-stale", turn_messages(1) + turn_messages(2))
        await other.save_tool_call_records("agt-stale", [tool_call(2), tool_call(3)])
    before = await fetch(store, "SELECT seq, xmin::text, data::text FROM messages ORDER BY seq")
    calls_before = await fetch(store, "SELECT pos, xmin::text FROM tool_calls ORDER BY pos")
    items = [Message.model_validate(m) for m in turn_messages(5)]
    assert not await save_optimistic(store, MESSAGES, "agt-stale", items, 0, *stale_messages)
    records = [ToolCallRecord.model_validate(tool_call(9))]
    assert not await save_optimistic(store, TOOL_CALLS, "agt-stale", records, 0, *stale_calls)
    assert await fetch(store, "SELECT seq, xmin::text, data::text FROM messages ORDER BY seq") == before
    assert await fetch(store, "SELECT pos, xmin::text FROM tool_calls ORDER BY pos") == calls_before
    # The public call falls back to the locking path and saves correctly.
    await store.save_messages("agt-stale", turn_messages(5))
    assert [m.model_dump() for m in await store.load_messages("agt-stale")] == [m.model_dump() for m in items]


async def test_a_recreated_agent_never_matches_a_stale_cache(store: PostgresStore, pg_url: str, pg_schema: str) -> None:
    await store.save_messages("agt-aba", turn_messages(0))  # store caches version v+1 of this row
    async with PostgresStore(pg_url, schema=pg_schema) as other:
        await other.delete("agt-aba")
        # Re-created and saved once: with versions restarting at 0 this row would
        # carry the very version `store` has cached, with other content.
        await other.save_messages("agt-aba", turn_messages(7))
    await store.save_messages("agt-aba", turn_messages(0) + turn_messages(1))
    loaded = await store.load_messages("agt-aba")
    expected = turn_messages(0) + turn_messages(1)
    assert [m.model_dump() for m in loaded] == [Message.model_validate(m).model_dump() for m in expected]


async def test_a_driver_error_reaches_the_caller_as_a_kode_error(store: PostgresStore) -> None:
    """What the server refuses (here a trigger someone added) is a
    RecordValidationError, never a raw psycopg exception, and loses nothing."""
    await store.save_messages("agt-err", turn_messages(0))
    async with store._connection() as conn:
        await conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused here' USING ERRCODE = 'check_violation'; END $$"
        )
        await conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse()")
    with pytest.raises(RecordValidationError, match="refused here") as caught:
        await store.append_messages("agt-err", turn_messages(1))
    assert isinstance(caught.value.__cause__, psycopg.errors.CheckViolation)
    assert len(await store.load_messages("agt-err")) == len(turn_messages(0))


async def test_consistency_sees_records_of_every_kind(store: PostgresStore) -> None:
    # Every table of records.DATA_TABLES counts as "records", as in the SQLite
    # store: rows of an append-only kind alone, with no registry row, are not "not found".
    await store.save_history_window("agt-orphan", data.history_window("w1"))
    result = await store.check_consistency("agt-orphan")
    assert result.issues == ["agent 'agt-orphan' has records but no AgentInfo was saved (and no registry row)"]
    assert (await store.check_consistency("agt-nothing")).issues == ["agent 'agt-nothing' not found"]
