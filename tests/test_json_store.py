"""JSONStore against real files: round trips, crash recovery, concurrency, queries."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kode_sdk.errors import (
    InvalidAgentIdError,
    RecordValidationError,
    StoreClosedError,
    StoreCorruptionError,
)
from kode_sdk.store import json_files
from kode_sdk.store.base import QueryableStore, Store
from kode_sdk.store.json_store import JSONStore
from kode_sdk.types import (
    AgentInfo,
    CompressionRecord,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    RecoveredFile,
    Snapshot,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
    ToolCallState,
    now_utc,
)

BIG = 2**80 + 7
WEIRD = 'nul\u0000 astral \U0001f600 \u2028 line\nbreak "quote" \\ end'


def message(role: str, text: str, **extra: Any) -> Message:
    return Message.model_validate({"role": role, "content": [{"type": "text", "text": text}], **extra})


def rich_messages() -> list[Message]:
    return [
        Message.model_validate(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": WEIRD, "cache_control": {"type": "ephemeral"}},
                    {"type": "image", "source": {"type": "base64", "data": "AAAA"}, "big": BIG},
                ],
                "metadata": {"n": -BIG, "s": WEIRD},
                "providerExtra": [1, 2.5, None, True],
            }
        ),
        Message.model_validate(
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "tool_use", "id": "toolu_1", "name": "fs_read", "input": {"path": WEIRD, "n": BIG}},
                ],
            }
        ),
        Message.model_validate(
            {
                "role": "user",
                "content": [{"type": "tool_result", "toolUseId": "toolu_1", "content": WEIRD, "isError": True}],
            }
        ),
        message("system", "be brief"),
    ]


def tool_call(call_id: str, name: str = "bash_run", **fields: Any) -> ToolCallRecord:
    base: dict[str, Any] = {"id": call_id, "name": name, "input": {"cmd": WEIRD, "n": BIG}, "state": "completed"}
    base.update(fields)
    return ToolCallRecord.model_validate(base)


def event(seq: int, channel: str = "progress", **data: Any) -> Timeline:
    return Timeline.model_validate(
        {
            "cursor": seq,
            "bookmark": {"seq": seq, "timestamp": 1_700_000_000_000 + seq},
            "event": {"channel": channel, "type": "text_chunk", **data},
        }
    )


def info(agent_id: str, **fields: Any) -> AgentInfo:
    return AgentInfo.model_validate({"agent_id": agent_id, "template_id": "assistant", **fields})


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
async def store(base: Path) -> AsyncIterator[JSONStore]:
    async with JSONStore(base) as opened:
        yield opened


async def reopen(base: Path) -> JSONStore:
    fresh = JSONStore(base)
    await fresh.open()
    return fresh


async def collect(iterator: AsyncIterator[Timeline]) -> list[Timeline]:
    return [item async for item in iterator]


# Plain-function file helpers: inspecting the tree from a test is meant to block.


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def tree(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*"))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def append_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)


# --------------------------------------------------------------------------- basics


def test_constructor_does_no_io_and_satisfies_the_protocols(base: Path) -> None:
    store = JSONStore(base)
    assert not base.exists()
    assert store.backend_name == "json"
    assert isinstance(store, Store)
    assert isinstance(store, QueryableStore)


def test_every_record_kind_has_a_place_in_the_layout() -> None:
    from kode_sdk.store.json_layout import KIND_FILES
    from kode_sdk.store.records import RECORD_KINDS

    assert list(KIND_FILES) == [kind.name for kind in RECORD_KINDS]


async def test_append_only_kinds_keep_one_file_per_saved_record(base: Path) -> None:
    from kode_sdk.testing import data

    async with JSONStore(base) as store:
        await store.save_history_window("a", data.history_window("w/1"))
        await store.save_history_window("a", data.history_window("w/1"))
        await store.save_compression_record("a", data.compression_record("r1"))
        await store.save_recovered_file("a", data.recovered_file("src/a.py"))
    assert names(base / "a" / "history" / "windows") == ["000000000001.w%2F1.json", "000000000002.w%2F1.json"]
    assert names(base / "a" / "history" / "compressions") == ["000000000001.r1.json"]
    assert names(base / "a" / "history" / "recovered") == ["000000000001.src%2Fa%2Epy.json"]


async def test_append_only_files_of_the_earlier_layout_load_first(base: Path) -> None:
    # Before positions were kept, a record's file was ``<key>.json`` (a
    # recovered file's ``<timestamp>-<path>.json``), loaded oldest timestamp
    # first. Such files still load, before every record saved since.
    from kode_sdk.testing import data
    from kode_sdk.types import HistoryWindow, RecoveredFile

    windows = base / "a" / "history" / "windows"
    recovered = base / "a" / "history" / "recovered"
    async with JSONStore(base) as store:
        await store.save_info("a", info("a"))
        windows.mkdir(parents=True)
        recovered.mkdir(parents=True)
        old_late, old_early = data.history_window("w2", offset_ms=50), data.history_window("w1", offset_ms=0)
        for window in (old_late, old_early):
            (windows / f"{window['id']}.json").write_bytes(
                HistoryWindow.model_validate(window).model_dump_json(by_alias=True).encode()
            )
        old_file = data.recovered_file("src/a.py")
        (recovered / f"{old_file['timestamp']}-src%2Fa%2Epy.json").write_bytes(
            RecoveredFile.model_validate(old_file).model_dump_json(by_alias=True).encode()
        )
        new = data.history_window("w0", offset_ms=-10)
        await store.save_history_window("a", new)
        await store.save_recovered_file("a", data.recovered_file("src/b.py"))
        loaded = await store.load_history_windows("a")
        assert [w.id for w in loaded] == ["w1", "w2", "w0"]
        assert [f.path for f in await store.load_recovered_files("a")] == ["src/a.py", "src/b.py"]
    assert names(windows) == ["000000000001.w0.json", "w1.json", "w2.json"]


async def test_open_creates_base_dir_private(base: Path) -> None:
    store = JSONStore(base)
    await store.open()
    await store.open()  # idempotent
    assert mode_of(base) == 0o700
    await store.close()


async def test_closed_store_refuses_every_call(base: Path) -> None:
    store = JSONStore(base)
    await store.save_messages("a", [message("user", "hi")])  # opens lazily
    await store.close()
    await store.close()  # harmless
    with pytest.raises(StoreClosedError):
        await store.load_messages("a")
    with pytest.raises(StoreClosedError):
        await store.list()
    with pytest.raises(StoreClosedError):
        await collect(store.read_events("a"))
    with pytest.raises(StoreClosedError):
        await store.open()


# --------------------------------------------------------------------------- round trips


async def test_messages_round_trip_exactly_across_reopen(store: JSONStore, base: Path) -> None:
    saved = rich_messages()
    await store.save_messages("agt-1", saved)
    assert await store.load_messages("agt-1") == saved
    again = await reopen(base)
    loaded = await again.load_messages("agt-1")
    assert loaded == saved
    assert loaded[0].content[1]["big"] == BIG
    assert loaded[0].__pydantic_extra__ == {"providerExtra": [1, 2.5, None, True]}
    assert loaded[2].content[0] == {"type": "tool_result", "tool_use_id": "toolu_1", "content": WEIRD, "is_error": True}
    await again.close()


async def test_save_messages_replaces_shrinks_and_rewrites(store: JSONStore) -> None:
    msgs = [message("user", f"m{i}") for i in range(5)]
    await store.save_messages("a", msgs)
    await store.save_messages("a", msgs[:2])
    assert await store.load_messages("a") == msgs[:2]
    changed = [message("user", "other"), *msgs[1:4]]
    await store.save_messages("a", changed)
    assert await store.load_messages("a") == changed
    await store.save_messages("a", [])
    assert await store.load_messages("a") == []


async def test_append_messages_appends(store: JSONStore, base: Path) -> None:
    await store.append_messages("a", [message("user", "1")])
    await store.append_messages("a", [message("assistant", "2"), message("user", "3")])
    other = await reopen(base)  # a cold cache appends correctly too
    await other.append_messages("a", [message("user", "4")])
    await other.close()
    await store.append_messages("a", [message("user", "5")])  # this store's cache is stale now
    assert [m.content[0]["text"] for m in await store.load_messages("a")] == ["1", "2", "3", "4", "5"]


async def test_caller_mutating_a_saved_message_is_seen_on_the_next_save(store: JSONStore) -> None:
    msgs = [message("user", "a"), message("user", "b")]
    await store.save_messages("a", msgs)
    msgs[0].content[0]["text"] = "changed in place"
    await store.save_messages("a", msgs)
    assert (await store.load_messages("a"))[0].content[0]["text"] == "changed in place"


async def test_tool_calls_round_trip(store: JSONStore, base: Path) -> None:
    now = now_utc()
    records = [
        tool_call(
            "toolu_1",
            state="APPROVAL_REQUIRED",
            approval={"required": True, "decision": "allow", "decidedBy": "me", "decidedAt": now, "meta": {"k": BIG}},
            result={"out": WEIRD},
            isError=False,
            startedAt=now,
            completedAt=now,
            durationMs=12.5,
            createdAt=now,
            updatedAt=now,
            auditTrail=[{"state": "pending", "timestamp": 1}, {"state": "completed", "timestamp": 2, "note": WEIRD}],
            vendorField={"x": 1},
        ),
        tool_call("toolu_2", name="fs_read", createdAt=now, updatedAt=now),
    ]
    await store.save_tool_call_records("a", records)
    again = await reopen(base)
    assert await again.load_tool_call_records("a") == records
    await again.close()
    await store.save_tool_call_records("a", records[1:])
    assert await store.load_tool_call_records("a") == records[1:]


async def test_single_records_round_trip(store: JSONStore, base: Path) -> None:
    now = now_utc()
    todos = TodoSnapshot.model_validate(
        {
            "todos": [{"id": "t1", "title": WEIRD, "status": "in_progress", "createdAt": now, "updatedAt": now}],
            "version": 3,
            "updatedAt": now,
        }
    )
    agent = info(
        "a",
        created_at=now,
        lineage=["p"],
        metadata={"userId": "u1", "n": BIG},
        breakpoint="TOOL_PENDING",
        last_bookmark={"seq": 4, "timestamp": 5},
        extraKey="kept",
    )
    window = HistoryWindow.model_validate(
        {
            "id": "w/1",
            "messages": rich_messages(),
            "events": [event(1).model_dump()],
            "timestamp": 10,
            "stats": {"messageCount": 4, "tokenCount": 100, "eventCount": 1},
        }
    )
    compression = CompressionRecord.model_validate(
        {
            "id": "c1",
            "windowId": "w/1",
            "summary": WEIRD,
            "ratio": 0.25,
            "recoveredFiles": ["a.txt"],
            "timestamp": 11,
            "config": {"model": "m", "prompt": "p", "threshold": 0.5},
        }
    )
    recovered = RecoveredFile.model_validate({"path": "/etc/../a.txt", "content": WEIRD, "mtime": 1, "timestamp": 12})
    media = [
        MediaCacheRecord.model_validate(
            {
                "key": "k1",
                "provider": "anthropic",
                "mimeType": "image/png",
                "sizeBytes": BIG,
                "fileId": "f",
                "createdAt": now,
            }
        )
    ]
    await store.save_todos("a", todos)
    await store.save_info("a", agent)
    await store.save_history_window("a", window)
    await store.save_compression_record("a", compression)
    await store.save_recovered_file("a", recovered)
    await store.save_media_cache("a", media)
    again = await reopen(base)
    assert await again.load_todos("a") == todos
    assert await again.load_info("a") == agent
    assert await again.load_history_windows("a") == [window]
    assert await again.load_compression_records("a") == [compression]
    assert await again.load_recovered_files("a") == [recovered]
    assert await again.load_media_cache("a") == media
    await again.close()


async def test_unknown_agent_loads_empty(store: JSONStore, base: Path) -> None:
    assert await store.load_messages("nobody") == []
    assert await store.load_tool_call_records("nobody") == []
    assert await store.load_todos("nobody") is None
    assert await store.load_info("nobody") is None
    assert await store.load_snapshot("nobody", "s") is None
    assert await store.list_snapshots("nobody") == []
    assert await store.load_history_windows("nobody") == []
    assert await store.load_compression_records("nobody") == []
    assert await store.load_recovered_files("nobody") == []
    assert await store.load_media_cache("nobody") == []
    assert await collect(store.read_events("nobody")) == []
    assert not await store.exists("nobody")
    await store.delete("nobody")
    stats = await store.aggregate_stats("nobody")
    assert stats.total_messages == stats.total_tool_calls == stats.total_snapshots == 0
    assert names(base) == []  # reads created nothing


@pytest.mark.parametrize(
    "snapshot_id",
    ["s1", ".", "..", "a/b", "../../escape", "%41", "A", "ünï cödé", "x" * 300, "y" * 300, "a\u0000b", "CON"],
)
async def test_snapshot_ids_are_safe_file_names(store: JSONStore, base: Path, snapshot_id: str) -> None:
    snap = Snapshot.model_validate(
        {
            "id": snapshot_id,
            "messages": rich_messages(),
            "lastSfpIndex": 2,
            "lastBookmark": {"seq": 1, "timestamp": 2},
            "metadata": {"label": WEIRD},
        }
    )
    await store.save_snapshot("a", snap)
    assert await store.load_snapshot("a", snapshot_id) == snap
    assert await store.list_snapshots("a") == [snap]
    names = os.listdir(base / "a" / "snapshots")
    assert len(names) == 1 and len(names[0]) < 200 and "/" not in names[0] and not names[0].startswith(".")


async def test_distinct_long_snapshot_ids_do_not_collide(store: JSONStore) -> None:
    ids = ["x" * 300, "x" * 299 + "y", "%41", "A"]
    for index, sid in enumerate(ids):
        await store.save_snapshot("a", {"id": sid, "messages": [], "createdAt": 1000 + index})
    assert [s.id for s in await store.list_snapshots("a")] == list(reversed(ids))  # newest first
    for sid in ids:
        snap = await store.load_snapshot("a", sid)
        assert snap is not None and snap.id == sid


async def test_events_round_trip_in_seq_order_across_channels(store: JSONStore, base: Path) -> None:
    channels = ["progress", "control", "monitor"]
    saved = [event(seq, channels[seq % 3], delta=WEIRD, n=BIG) for seq in range(12)]
    for item in saved:
        await store.append_event("a", item)
    assert await collect(store.read_events("a")) == saved
    again = await reopen(base)
    assert await collect(again.read_events("a")) == saved
    assert await collect(again.read_events("a", since=saved[8].bookmark)) == saved[9:]
    assert await collect(again.read_events("a", since=8, channel="monitor")) == [saved[11]]
    assert await collect(again.read_events("a", channel="control")) == saved[1::3]
    with pytest.raises(RecordValidationError):
        await again.append_event("a", event(5, "control"))  # seq stored on another channel, by another store
    with pytest.raises(RecordValidationError):
        await collect(again.read_events("a", channel="nope"))
    await again.close()


async def test_events_with_unordered_seqs_are_read_in_seq_order(store: JSONStore) -> None:
    for seq in (5, 3, 9, 1, 7):
        await store.append_event("a", event(seq))
    assert [e.bookmark.seq for e in await collect(store.read_events("a"))] == [1, 3, 5, 7, 9]
    assert [e.bookmark.seq for e in await collect(store.read_events("a", since=4))] == [5, 7, 9]


async def test_bad_input_raises_and_loses_nothing(store: JSONStore) -> None:
    good = [message("user", "keep me")]
    await store.save_messages("a", good)
    with pytest.raises(RecordValidationError, match=r"messages\[1\]"):
        await store.save_messages("a", [*good, {"role": "robot", "content": []}])
    with pytest.raises(RecordValidationError):
        await store.save_messages(
            "a", [{"role": "user", "content": [{"type": "text", "text": "x", "f": float("nan")}]}]
        )
    with pytest.raises(RecordValidationError):
        await store.append_event(
            "a",
            {
                "cursor": 1,
                "bookmark": {"seq": 1, "timestamp": 0},
                "event": {"channel": "progress", "type": "x", "v": float("inf")},
            },
        )
    with pytest.raises(RecordValidationError):
        await store.save_messages("a", [{"role": "user", "content": "lone \ud800 surrogate"}])
    with pytest.raises(RecordValidationError, match="agent_id"):
        await store.save_info("a", info("b"))
    assert await store.load_messages("a") == good
    assert await store.load_info("a") is None
    assert not await store.exists("a")


# --------------------------------------------------------------------------- message bookkeeping


async def test_message_count_follows_the_latest_save(store: JSONStore) -> None:
    await store.save_info("a", info("a"))
    await store.save_messages("a", [message("user", str(i)) for i in range(3)])
    loaded = await store.load_info("a")
    assert loaded is not None and loaded.message_count == 3
    await store.append_messages("a", [message("user", "x")])
    loaded = await store.load_info("a")
    assert loaded is not None and loaded.message_count == 4
    await store.save_messages("a", [message("user", "only")])
    [session] = await store.query_sessions(agent_id="a")
    assert session.message_count == 1
    await store.save_info("a", info("a", message_count=7))  # the latest call wins
    loaded = await store.load_info("a")
    assert loaded is not None and loaded.message_count == 7


async def test_messages_keep_their_first_save_time(store: JSONStore) -> None:
    msgs = [message("user", "first"), message("assistant", "second")]
    await store.save_messages("a", msgs)
    before = await store.query_messages(agent_id="a")
    await asyncio.sleep(0.005)  # let the clock move so a rewrite would show
    msgs.append(message("user", "third"))
    await store.save_messages("a", msgs)
    msgs[1] = message("assistant", "second, edited")
    await store.save_messages("a", msgs)
    after = {m.seq: m for m in await store.query_messages(agent_id="a")}
    first_times = {m.seq: m.created_at for m in before}
    assert after[0].created_at == first_times[0]
    assert after[1].created_at > first_times[1]  # changed message: saved anew
    assert after[2].created_at > first_times[0]


# --------------------------------------------------------------------------- agent ids and containment

BAD_IDS = ["", "../x", "a/b", "..", ".", "x" * 200, "a\u0000b", "a\\b", "/abs", 5]

CALLS: dict[str, Callable[[JSONStore, Any], Awaitable[Any]]] = {
    "save_messages": lambda s, a: s.save_messages(a, []),
    "append_messages": lambda s, a: s.append_messages(a, []),
    "load_messages": lambda s, a: s.load_messages(a),
    "save_tool_call_records": lambda s, a: s.save_tool_call_records(a, []),
    "load_tool_call_records": lambda s, a: s.load_tool_call_records(a),
    "save_todos": lambda s, a: s.save_todos(a, {"todos": []}),
    "load_todos": lambda s, a: s.load_todos(a),
    "append_event": lambda s, a: s.append_event(a, event(1)),
    "read_events": lambda s, a: collect(s.read_events(a)),
    "save_history_window": lambda s, a: s.save_history_window(a, {"id": "w", "timestamp": 1}),
    "load_history_windows": lambda s, a: s.load_history_windows(a),
    "save_compression_record": lambda s, a: s.save_compression_record(
        a, {"id": "c", "windowId": "w", "summary": "", "ratio": 1, "timestamp": 1}
    ),
    "load_compression_records": lambda s, a: s.load_compression_records(a),
    "save_recovered_file": lambda s, a: s.save_recovered_file(
        a, {"path": "p", "content": "", "mtime": 1, "timestamp": 1}
    ),
    "load_recovered_files": lambda s, a: s.load_recovered_files(a),
    "save_media_cache": lambda s, a: s.save_media_cache(a, []),
    "load_media_cache": lambda s, a: s.load_media_cache(a),
    "save_snapshot": lambda s, a: s.save_snapshot(a, {"id": "s", "messages": []}),
    "load_snapshot": lambda s, a: s.load_snapshot(a, "s"),
    "list_snapshots": lambda s, a: s.list_snapshots(a),
    "save_info": lambda s, a: s.save_info(a, {"agentId": a, "templateId": "t"}),
    "load_info": lambda s, a: s.load_info(a),
    "exists": lambda s, a: s.exists(a),
    "delete": lambda s, a: s.delete(a),
    "aggregate_stats": lambda s, a: s.aggregate_stats(a),
    "query_sessions": lambda s, a: s.query_sessions(agent_id=a),
    "query_messages": lambda s, a: s.query_messages(agent_id=a),
    "query_tool_calls": lambda s, a: s.query_tool_calls(agent_id=a),
}


@pytest.mark.parametrize("method", sorted(CALLS))
async def test_every_method_rejects_invalid_agent_ids(tmp_path: Path, method: str) -> None:
    base = tmp_path / "store"
    async with JSONStore(base) as store:
        for bad in BAD_IDS:
            with pytest.raises(InvalidAgentIdError):
                await CALLS[method](store, bad)
        await CALLS[method](store, "ok.agent:1-x_y")
    assert names(tmp_path) == ["store"]
    for path in tree(base):
        assert path.relative_to(base).parts[0] == "ok.agent:1-x_y"


async def test_a_planted_symlink_cannot_lead_outside(store: JSONStore, base: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (base / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidAgentIdError, match="resolves outside"):
        await store.save_messages("evil", [message("user", "x")])
    assert list(outside.iterdir()) == []
    assert await store.list() == []


async def test_files_are_private(store: JSONStore, base: Path) -> None:
    await store.save_info("a", info("a"))
    await store.save_messages("a", rich_messages())
    await store.save_tool_call_records("a", [tool_call("t")])
    await store.append_event("a", event(1))
    await store.save_snapshot("a", {"id": "s", "messages": []})
    await store.save_history_window("a", {"id": "w", "timestamp": 1})
    await store.save_compression_record("a", {"id": "c", "windowId": "w", "summary": "", "ratio": 1, "timestamp": 1})
    await store.save_recovered_file("a", {"path": "p", "content": "", "mtime": 1, "timestamp": 1})
    await store.save_todos("a", {"todos": []})
    await store.save_media_cache("a", [])
    paths = tree(base)
    assert len(paths) > 15
    for path in paths:
        assert mode_of(path) == (0o700 if path.is_dir() else 0o600), path


# --------------------------------------------------------------------------- existence, list, delete


async def test_exists_list_and_delete(store: JSONStore, base: Path) -> None:
    for agent_id in ("agent_1", "agent_2", "AGENT-3", "agentX2", "other"):
        await store.save_info(agent_id, info(agent_id))
    await store.save_messages("no-info", [message("user", "x")])
    assert await store.list() == sorted(["agent_1", "agent_2", "AGENT-3", "agentX2", "other"])
    assert await store.list("agent_") == ["agent_1", "agent_2"]
    assert await store.exists("agent_1") and not await store.exists("no-info")

    await store.save_messages("agent_1", rich_messages())
    await store.append_event("agent_1", event(1))
    await store.save_snapshot("agent_1", {"id": "s", "messages": []})
    await store.delete("agent_1")
    assert not (base / "agent_1").exists()
    assert not any(name.startswith("~trash") for name in names(base))
    assert not await store.exists("agent_1")
    assert await store.load_messages("agent_1") == []
    assert await store.list_snapshots("agent_1") == []
    await store.append_event("agent_1", event(1))  # the seq is free again after delete
    assert [e.bookmark.seq for e in await collect(store.read_events("agent_1"))] == [1]


async def test_delete_by_another_store_is_seen(store: JSONStore, base: Path) -> None:
    await store.save_messages("a", [message("user", "old")])
    await store.append_event("a", event(1))
    other = await reopen(base)
    await other.delete("a")
    await other.close()
    assert await store.load_messages("a") == []
    await store.save_messages("a", [message("user", "new")])  # the stale cache must not be used
    await store.append_event("a", event(1))
    assert [m.content[0]["text"] for m in await store.load_messages("a")] == ["new"]
    assert len(await collect(store.read_events("a"))) == 1


# --------------------------------------------------------------------------- crash recovery


def _todos(version: int) -> TodoSnapshot:
    return TodoSnapshot.model_validate(
        {
            "todos": [{"id": "t", "title": f"v{version}", "createdAt": 1, "updatedAt": 2}],
            "version": version,
            "updatedAt": 3,
        }
    )


def _todo_op(version: int) -> json_files.Replace:
    return json_files.Replace("runtime/todos.json", json.dumps(_todos(version).to_wire()).encode())


async def test_complete_journal_is_rolled_forward(base: Path) -> None:
    store = await reopen(base)
    await store.save_todos("a", _todos(1))
    await store.close()
    # A crash right after the journal became durable: nothing applied yet.
    fd = json_files.write_journal(base / "a", [_todo_op(2)])
    os.close(fd)
    store = await reopen(base)
    assert await store.load_todos("a") == _todos(2)
    assert (base / "a" / json_files.JOURNAL_NAME).stat().st_size == 0
    await store.close()


async def test_half_applied_transaction_is_completed_by_the_next_call(store: JSONStore, base: Path) -> None:
    await store.save_info("a", info("a"))
    await store.save_messages("a", [message("user", "1")])
    meta = json.loads((base / "a" / "meta.json").read_text())
    meta["info"]["messageCount"] = 2
    ops: list[json_files.Op] = [
        json_files.Append(
            "runtime/messages.jsonl",
            (base / "a" / "runtime/messages.jsonl").stat().st_size,
            b'{"seq":1,"createdAt":5,"message":{"role":"user","content":[{"type":"text","text":"2"}]}}\n',
        ),
        json_files.Replace("meta.json", json.dumps(meta).encode()),
    ]
    # Another process died after applying the first operation of two; this store is still open.
    os.close(json_files.write_journal(base / "a", ops))
    json_files.apply_ops(base / "a", ops[:1])
    loaded_info = await store.load_info("a")
    assert loaded_info is not None and loaded_info.message_count == 2
    assert [m.content[0]["text"] for m in await store.load_messages("a")] == ["1", "2"]
    json_files.apply_ops(base / "a", ops)  # replaying is idempotent
    assert [m.content[0]["text"] for m in await store.load_messages("a")] == ["1", "2"]


async def test_truncated_journal_is_set_aside(base: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = await reopen(base)
    await store.save_todos("a", _todos(1))
    await store.close()
    journal = base / "a" / json_files.JOURNAL_NAME
    os.close(json_files.write_journal(base / "a", [_todo_op(2)]))
    blob = journal.read_bytes()
    journal.write_bytes(blob[: len(blob) - 30])  # the crash came while the journal was being written
    (base / "a" / ".tmp.deadbeef").write_bytes(b"half a file")
    with caplog.at_level(logging.WARNING, logger="kode_sdk.store.json"):
        store = await reopen(base)
    assert await store.load_todos("a") == _todos(1)
    assert "truncated or corrupt" in caplog.text
    names = os.listdir(base / "a")
    assert any(n.startswith("journal.wal.corrupt-") for n in names)
    assert ".tmp.deadbeef" not in names
    assert journal.stat().st_size == 0
    await store.save_todos("a", _todos(3))
    assert await store.load_todos("a") == _todos(3)
    await store.close()


def test_journal_codec_detects_every_kind_of_damage() -> None:
    ops: list[json_files.Op] = [json_files.Replace("a.json", b"{}"), json_files.Append("b.log", 3, b"xyz\n")]
    blob = json_files.encode_journal(ops)
    assert json_files.decode_journal(blob) == ops
    assert json_files.decode_journal(b"") is None
    for cut in range(1, len(blob)):
        assert json_files.decode_journal(blob[:cut]) is None
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x01
    assert json_files.decode_journal(bytes(flipped)) is None


async def test_journal_cannot_write_outside_its_agent(base: Path) -> None:
    store = await reopen(base)
    await store.save_todos("a", _todos(1))
    await store.close()
    os.close(json_files.write_journal(base / "a", [json_files.Replace("../b/meta.json", b"{}")]))
    store = await reopen(base)
    assert not (base / "b").exists()
    assert any(n.startswith("journal.wal.corrupt-") for n in os.listdir(base / "a"))
    await store.close()


async def test_interrupted_delete_is_finished_on_open(base: Path) -> None:
    store = await reopen(base)
    await store.save_info("a", info("a"))
    await store.close()
    os.rename(base / "a", base / f"{json_files.TRASH_PREFIX}a-0123")
    store = await reopen(base)
    assert names(base) == []
    assert await store.list() == []
    await store.close()


@pytest.mark.parametrize(
    ("relative", "load"),
    [
        ("meta.json", lambda s: s.load_info("a")),
        ("runtime/messages.jsonl", lambda s: s.load_messages("a")),
        ("runtime/tool-calls.jsonl", lambda s: s.load_tool_call_records("a")),
        ("runtime/todos.json", lambda s: s.load_todos("a")),
        ("snapshots/s.json", lambda s: s.load_snapshot("a", "s")),
    ],
)
async def test_corrupt_files_are_reported_not_loaded_as_empty(
    store: JSONStore, base: Path, relative: str, load: Callable[[JSONStore], Awaitable[Any]]
) -> None:
    await store.save_info("a", info("a"))
    await store.save_messages("a", [message("user", "x")])
    await store.save_tool_call_records("a", [tool_call("t")])
    await store.save_todos("a", _todos(1))
    await store.save_snapshot("a", {"id": "s", "messages": []})
    path = base / "a" / relative
    path.write_bytes(path.read_bytes()[:-7])
    fresh = await reopen(base)
    with pytest.raises(StoreCorruptionError, match=relative.split("/")[-1]):
        await load(fresh)
    await fresh.close()


async def test_saving_a_whole_list_over_a_corrupt_file_keeps_the_damaged_copy(
    store: JSONStore, base: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await store.save_messages("a", [message("user", "x")])
    path = base / "a" / "runtime" / "messages.jsonl"
    path.write_bytes(b"garbage")
    fresh = await reopen(base)
    with pytest.raises(StoreCorruptionError):
        await fresh.append_messages("a", [message("user", "y")])  # appending needs the old list
    with caplog.at_level(logging.WARNING, logger="kode_sdk.store.json"):
        await fresh.save_messages("a", [message("user", "z")])
    assert [m.content[0]["text"] for m in await fresh.load_messages("a")] == ["z"]
    [aside] = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    assert aside.read_bytes() == b"garbage"
    assert "damaged" in caplog.text or "not a kode list file" in caplog.text
    await fresh.close()


async def test_torn_event_line_is_ignored_then_moved_aside(store: JSONStore, base: Path) -> None:
    await store.append_event("a", event(1))
    log = base / "a" / "events" / "progress.log"
    append_bytes(log, b'{"cursor":2,"bookmark":{"se')  # a crash mid-write
    fresh = await reopen(base)
    assert [e.bookmark.seq for e in await collect(fresh.read_events("a"))] == [1]
    await fresh.append_event("a", event(2))
    assert [e.bookmark.seq for e in await collect(fresh.read_events("a"))] == [1, 2]
    assert any(".torn-" in p.name for p in log.parent.iterdir())
    await fresh.close()
    assert [e.bookmark.seq for e in await collect(store.read_events("a"))] == [1, 2]


async def test_a_damaged_complete_event_line_is_reported(store: JSONStore, base: Path) -> None:
    await store.append_event("a", event(1))
    append_bytes(base / "a" / "events" / "monitor.log", b"not json\n")
    fresh = await reopen(base)
    with pytest.raises(StoreCorruptionError, match=r"monitor\.log"):
        await collect(fresh.read_events("a"))
    await fresh.close()


_KILL_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from kode_sdk.errors import RecordValidationError
    from kode_sdk.store.json_store import JSONStore

    def make(agent, k):
        # k + 1 messages; message 0 changes every 4th k, forcing a full rewrite
        return [{"role": "user", "content": f"{agent}-{i}-{k // 4 if i == 0 else 0}" + "x" * 200}
                for i in range(k + 1)]

    async def main():
        store = JSONStore(sys.argv[1])
        agents = ["a0", "a1", "a2"]
        # Redo the last k of the slowest agent: its event may not have been appended.
        start = max(0, min([len(await store.load_messages(agent)) for agent in agents]) - 1)
        for agent in agents:
            await store.save_info(agent, {"agentId": agent, "templateId": "t"})
        k = start
        while True:
            for agent in agents:
                await store.save_messages(agent, make(agent, k))
                try:
                    await store.append_event(agent, {"cursor": k, "bookmark": {"seq": k, "timestamp": 0},
                                                     "event": {"channel": "progress", "type": "t"}})
                except RecordValidationError:
                    pass
            print(k, flush=True)
            k += 1

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_sigkill_in_a_save_loop_leaves_each_agent_equal_to_one_saved_list(base: Path) -> None:
    def make(agent: str, k: int) -> list[Message]:
        return [message("user", f"{agent}-{i}-{k // 4 if i == 0 else 0}" + "x" * 200) for i in range(k + 1)]

    async def verify() -> None:
        store = await reopen(base)
        for agent in ("a0", "a1", "a2"):
            loaded = await store.load_messages(agent)
            assert loaded, agent
            assert loaded == make(agent, len(loaded) - 1)
            agent_info = await store.load_info(agent)
            assert agent_info is not None and agent_info.message_count == len(loaded)
            seqs = [e.bookmark.seq for e in await collect(store.read_events(agent))]
            assert seqs == list(range(len(seqs)))
        await store.close()

    rng = random.Random(7)
    for round_number in range(6):
        with subprocess.Popen(
            [sys.executable, "-c", _KILL_CHILD, str(base)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as child:
            assert child.stdout is not None and child.stderr is not None
            for _ in range(5 + 3 * round_number):
                assert child.stdout.readline(), child.stderr.read().decode()
            time.sleep(rng.random() * 0.004)  # land the kill anywhere inside the next saves
            child.send_signal(signal.SIGKILL)
            child.wait()
        asyncio.run(verify())


# --------------------------------------------------------------------------- concurrency


async def test_two_stores_appending_the_same_events_store_each_once(base: Path) -> None:
    first, second = JSONStore(base), JSONStore(base)
    outcomes: list[bool] = []

    async def append_all(store: JSONStore) -> None:
        for seq in range(60):
            try:
                await store.append_event("shared", event(seq, ["progress", "monitor"][seq % 2]))
                outcomes.append(True)
            except RecordValidationError:
                outcomes.append(False)

    await asyncio.gather(append_all(first), append_all(second))
    assert outcomes.count(True) == 60
    for store in (first, second):
        assert [e.bookmark.seq for e in await collect(store.read_events("shared"))] == list(range(60))
        await store.close()


async def test_two_stores_interleaving_events_lose_nothing(base: Path) -> None:
    first, second = JSONStore(base), JSONStore(base)

    async def append_every_other(store: JSONStore, parity: int) -> None:
        for seq in range(parity, 80, 2):
            await store.append_event("shared", event(seq, ["progress", "control", "monitor"][seq % 3]))

    await asyncio.gather(append_every_other(first, 0), append_every_other(second, 1))
    for store in (first, second):
        assert [e.bookmark.seq for e in await collect(store.read_events("shared"))] == list(range(80))
        assert [e.bookmark.seq for e in await collect(store.read_events("shared", since=70))] == list(range(71, 80))
        await store.close()


async def test_two_stores_saving_lists_never_use_a_stale_cache(base: Path) -> None:
    first, second = JSONStore(base), JSONStore(base)
    msgs = [message("user", str(i)) for i in range(3)]
    await first.save_messages("a", msgs[:2])
    await second.save_messages("a", [*msgs[:2], message("user", "from second")])
    await first.save_messages("a", msgs)
    assert await second.load_messages("a") == msgs
    await second.save_tool_call_records("a", [tool_call("t1")])
    await first.save_tool_call_records("a", [tool_call("t1"), tool_call("t2")])
    assert [r.id for r in await second.load_tool_call_records("a")] == ["t1", "t2"]
    await first.close()
    await second.close()


async def test_concurrent_calls_on_one_store(store: JSONStore) -> None:
    async def agent_work(agent_id: str) -> None:
        msgs: list[Message] = []
        for turn in range(8):
            msgs.append(message("user", f"{agent_id}-{turn}"))
            await asyncio.gather(
                store.save_messages(agent_id, list(msgs)),
                store.append_event(agent_id, event(turn)),
                store.load_messages(agent_id),
            )
        assert await store.load_messages(agent_id) == msgs

    await asyncio.gather(*(agent_work(f"agent-{n}") for n in range(6)))
    await asyncio.gather(*(store.append_messages("agent-0", [message("user", "c")]) for _ in range(10)))
    assert len(await store.load_messages("agent-0")) == 18


async def test_a_cancelled_save_finishes_or_vanishes_whole(store: JSONStore) -> None:
    old = [message("user", "old")]
    await store.save_messages("a", old)
    new = [message("user", f"new {i}" + "x" * 1000) for i in range(300)]
    task = asyncio.create_task(store.save_messages("a", new))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.load_messages("a") in (old, new)
    await store.append_messages("a", [message("user", "after")])
    assert (await store.load_messages("a"))[-1].content[0]["text"] == "after"


# --------------------------------------------------------------------------- queries


async def _populate(store: JSONStore) -> None:
    for n in range(5):
        agent_id = f"q{n}"
        await store.save_info(
            agent_id,
            info(
                agent_id,
                template_id="tA" if n % 2 == 0 else "tB",
                created_at=1_000 * (n % 3),
                metadata={"userId": "u1"} if n < 2 else {"user_id": "u2"},
            ),
        )
        await store.save_messages(
            agent_id,
            [
                message("user", "q"),
                Message.model_validate(
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "text", "text": "a"},
                            {"type": "tool_use", "id": f"t{n}", "name": "fs_read", "input": {}},
                        ],
                    }
                ),
                Message.model_validate(
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{n}", "content": "ok"}]}
                ),
            ],
        )
        await store.save_tool_call_records(
            agent_id,
            [
                tool_call(
                    f"{agent_id}-c{k}",
                    name="bash_run" if k % 2 == 0 else "fs_read",
                    state="failed" if k == 1 else "completed",
                    isError=k == 1,
                    approval={"required": k == 2},
                    createdAt=10_000 + 10 * k + n,
                    updatedAt=10_000 + 10 * k + n,
                )
                for k in range(3)
            ],
        )
    await store.save_snapshot("q0", {"id": "s", "messages": []})


async def test_query_sessions(store: JSONStore) -> None:
    await _populate(store)
    sessions = await store.query_sessions()
    # created_at: q0,q3 -> 0; q1,q4 -> 1000; q2 -> 2000; ties by agent id descending
    assert [s.agent_id for s in sessions] == ["q2", "q4", "q1", "q3", "q0"]
    assert [s.agent_id for s in await store.query_sessions(sort_order="ASC")] == ["q0", "q3", "q1", "q4", "q2"]
    assert [s.agent_id for s in await store.query_sessions(template_id="tB")] == ["q1", "q3"]
    assert [s.agent_id for s in await store.query_sessions(user_id="u1")] == ["q1", "q0"]
    assert [s.agent_id for s in await store.query_sessions(user_id="u2", created_after=1000, created_before=1000)] == [
        "q4"
    ]
    assert [s.agent_id for s in await store.query_sessions(sort_by="updated_at", limit=1)] == ["q4"]
    paged = [s.agent_id for offset in range(0, 5, 2) for s in await store.query_sessions(limit=2, offset=offset)]
    assert paged == [s.agent_id for s in sessions]
    await store.save_messages("q3", [message("user", "1")] * 9)
    top = (await store.query_sessions(sort_by="message_count", limit=1))[0]
    assert (top.agent_id, top.message_count, top.template_id, top.metadata) == ("q3", 9, "tB", {"user_id": "u2"})
    with pytest.raises(ValueError, match="sort_by"):
        await store.query_sessions(sort_by="agent_id; DROP")
    with pytest.raises(ValueError, match="sort_order"):
        await store.query_sessions(sort_order="sideways")
    with pytest.raises(ValueError, match="limit"):
        await store.query_sessions(limit=0)


async def test_query_messages(store: JSONStore) -> None:
    await _populate(store)
    everything = await store.query_messages(limit=1000)
    assert len(everything) == 15
    keys = [(m.created_at, m.seq, m.agent_id) for m in everything]
    assert keys == sorted(keys, reverse=True)
    q2 = await store.query_messages(agent_id="q2")
    assert [m.seq for m in q2] == [2, 1, 0] or sorted(m.seq for m in q2) == [0, 1, 2]
    assistants = await store.query_messages(role="assistant", limit=1000)
    assert {m.agent_id for m in assistants} == {f"q{n}" for n in range(5)} and all(
        m.role == "assistant" for m in assistants
    )
    results = await store.query_messages(content_type="tool_result", limit=1000)
    assert len(results) == 5 and all(m.content[0]["type"] == "tool_result" for m in results)
    assert await store.query_messages(content_type="image") == []
    assert len(await store.query_messages(content_type="tool_use", agent_id="q1")) == 1
    paged = [m for offset in range(0, 15, 4) for m in await store.query_messages(limit=4, offset=offset)]
    assert [(m.agent_id, m.seq) for m in paged] == [(m.agent_id, m.seq) for m in everything]
    newest = everything[0].created_at
    assert all(m.created_at >= newest for m in await store.query_messages(created_after=newest, limit=1000))
    assert all(m.created_at <= newest for m in await store.query_messages(created_before=newest, limit=1000))
    assert await store.query_messages(created_after=newest.timestamp() * 1000 + 1) == []


async def test_query_tool_calls(store: JSONStore) -> None:
    await _populate(store)
    everything = await store.query_tool_calls(limit=1000)
    assert len(everything) == 15
    assert [c.tool_call_id for c in everything[:3]] == ["q4-c2", "q3-c2", "q2-c2"]  # created_at descending
    bash = await store.query_tool_calls(tool_name="bash_run", limit=1000)
    assert len(bash) == 10 and all(c.tool_name == "bash_run" for c in bash)
    errors = await store.query_tool_calls(is_error=True, limit=1000)
    assert {c.tool_call_id for c in errors} == {f"q{n}-c1" for n in range(5)}
    assert all(c.state is ToolCallState.FAILED and c.is_error for c in errors)
    assert len(await store.query_tool_calls(state="FAILED")) == 5
    assert len(await store.query_tool_calls(has_approval=True)) == 5
    assert len(await store.query_tool_calls(has_approval=False, limit=1000)) == 10
    assert [c.tool_call_id for c in await store.query_tool_calls(agent_id="q1", tool_name="bash_run")] == [
        "q1-c2",
        "q1-c0",
    ]
    window = await store.query_tool_calls(created_after=10_010, created_before=10_014, limit=1000)
    assert sorted(c.tool_call_id for c in window) == [f"q{n}-c1" for n in range(5)]
    first = everything[0]
    assert first.output is None and first.input == {"cmd": WEIRD, "n": BIG} and first.approval.required
    paged = [c for offset in range(0, 15, 6) for c in await store.query_tool_calls(limit=6, offset=offset)]
    assert [c.tool_call_id for c in paged] == [c.tool_call_id for c in everything]
    with pytest.raises(ValueError, match="state"):
        await store.query_tool_calls(state="bogus")


async def test_aggregate_stats(store: JSONStore) -> None:
    await _populate(store)
    stats = await store.aggregate_stats("q0")
    assert stats.total_messages == 3
    assert stats.messages_by_role == {"user": 2, "assistant": 1}
    assert stats.total_tool_calls == 3
    assert stats.tool_calls_by_state == {"completed": 2, "failed": 1}
    assert stats.tool_calls_by_name == {"bash_run": 2, "fs_read": 1}
    assert stats.total_snapshots == 1


async def test_json_store_has_agent_locks(tmp_path: Path) -> None:
    # JSONStore.agent_lock used to raise AttributeError (no acquire_agent_lock).
    from kode_sdk.errors import LockTimeoutError

    async with JSONStore(tmp_path / "store") as first, JSONStore(tmp_path / "store") as second:
        async with first.agent_lock("a", timeout_ms=1_000):
            with pytest.raises(LockTimeoutError):
                await second.acquire_agent_lock("a", timeout_ms=100)
            other = await second.acquire_agent_lock("b", timeout_ms=100)  # other agents are independent
            await other.release()
            assert await first.list() == [], "the lock files are no agent"
        lock = await second.acquire_agent_lock("a", timeout_ms=1_000)
        await lock.release()
