"""``store.transaction()`` on JSONStore: every write of the unit in one journal
entry (see kode_sdk/store/json_unit.py). The conformance suite checks the
contract (including a SIGKILL loop); these check the journal entry itself,
its recovery, and the caches around it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import shutil
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from kode_sdk.errors import RecordValidationError, StoreClosedError, StoreConnectionError
from kode_sdk.store import json_files
from kode_sdk.store.json_files import Append, Op, Replace
from kode_sdk.store.json_store import JSONStore
from kode_sdk.store.json_unit import fold
from kode_sdk.testing import data
from kode_sdk.types import Message, Timeline

AGENT = "agt-1"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
async def store(base: Path) -> AsyncIterator[JSONStore]:
    async with JSONStore(base) as opened:
        yield opened


def texts(messages: Sequence[Message]) -> list[str]:
    out = []
    for m in messages:
        block = m.content[0] if isinstance(m.content, list) else m.content
        out.append(block["text"] if isinstance(block, dict) and "text" in block else str(block))
    return out


def msg(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


async def seqs(store: JSONStore, agent: str = AGENT) -> list[int]:
    found: list[Timeline] = [e async for e in store.read_events(agent)]
    return [e.bookmark.seq for e in found]


async def write_step(store: JSONStore, k: int) -> None:
    async with store.transaction(AGENT) as tx:
        await tx.append_messages(AGENT, [msg(f"q{k}"), msg(f"a{k}")])
        await tx.upsert_tool_call_record(AGENT, data.tool_call(f"call-{k}", created_ms=k))
        await tx.append_events(AGENT, [data.timeline(10 * k + 1), data.timeline(10 * k + 2, channel="monitor")])
        await tx.append_event(AGENT, data.timeline(10 * k + 3, channel="control"))
        await tx.save_info(AGENT, data.info(AGENT, message_count=2 * (k + 1)))
        await tx.save_todos(AGENT, data.todos(version=k + 1))


async def assert_steps(store: JSONStore, steps: int) -> None:
    assert texts(await store.load_messages(AGENT)) == [t for k in range(steps) for t in (f"q{k}", f"a{k}")]
    assert [r.id for r in await store.load_tool_call_records(AGENT)] == [f"call-{k}" for k in range(steps)]
    assert await seqs(store) == sorted(10 * k + i for k in range(steps) for i in (1, 2, 3))
    info = await store.load_info(AGENT)
    assert info is not None and info.message_count == 2 * steps
    todos = await store.load_todos(AGENT)
    assert todos is not None and todos.version == steps


# --------------------------------------------------------------------------- one journal entry


async def test_a_transaction_commits_one_journal_entry(store: JSONStore, monkeypatch: pytest.MonkeyPatch) -> None:
    await write_step(store, 0)
    entries: list[list[Op]] = []
    real = json_files.write_journal

    def spy(agent_dir: Path, ops: Sequence[Op]) -> int:
        entries.append(list(ops))
        return real(agent_dir, ops)

    monkeypatch.setattr(json_files, "write_journal", spy)
    await write_step(store, 1)
    assert len(entries) == 1
    paths = [op.path for op in entries[0]]
    assert sorted(paths) == sorted(
        [
            "runtime/messages.jsonl",
            "runtime/tool-calls.jsonl",
            "events/progress.log",
            "events/monitor.log",
            "events/control.log",
            "meta.json",
            "runtime/todos.json",
        ]
    )
    # The grown lists and the logs are appends, not rewrites.
    kinds = {op.path: type(op).__name__ for op in entries[0]}
    assert kinds["runtime/messages.jsonl"] == "Append"
    assert kinds["events/progress.log"] == "Append"
    await assert_steps(store, 2)


async def test_writes_to_one_file_in_a_unit_see_each_other(store: JSONStore, base: Path) -> None:
    await store.save_messages(AGENT, [msg("m0")])
    await store.save_tool_call_records(AGENT, [data.tool_call("t1"), data.tool_call("t2")])
    await store.append_event(AGENT, data.timeline(1))
    async with store.transaction(AGENT) as tx:
        await tx.save_info(AGENT, data.info(AGENT))  # messageCount follows the messages saved after it
        await tx.append_messages(AGENT, [msg("m1")])
        await tx.append_messages(AGENT, [msg("m2"), msg("m3")])
        await tx.save_messages(AGENT, [Message.coerce(msg(t)) for t in ("m0", "m1", "edited")])
        await tx.append_messages(AGENT, [msg("m4")])
        await tx.upsert_tool_call_record(AGENT, data.tool_call("t3"))
        await tx.upsert_tool_call_record(AGENT, data.tool_call("t1", state="failed", is_error=True))
        await tx.upsert_tool_call_record(AGENT, data.tool_call("t3", state="failed", is_error=True))
        await tx.append_events(AGENT, [data.timeline(2), data.timeline(3)])
        await tx.append_events(AGENT, [data.timeline(4), data.timeline(5, channel="monitor")])
    expected = ["m0", "m1", "edited", "m4"]
    fresh = JSONStore(base)
    try:
        for reader in (store, fresh):
            assert texts(await reader.load_messages(AGENT)) == expected
            records = await reader.load_tool_call_records(AGENT)
            assert [(r.id, r.is_error) for r in records] == [("t1", True), ("t2", False), ("t3", True)]
            assert await seqs(reader) == [1, 2, 3, 4, 5]
            info = await reader.load_info(AGENT)
            assert info is not None and info.message_count == 4
        # The caches the commit refreshed stay exact for the next writes, here and elsewhere.
        await store.append_messages(AGENT, [msg("m5")])
        await store.append_event(AGENT, data.timeline(6))
        with pytest.raises(RecordValidationError, match="4"):
            await store.append_event(AGENT, data.timeline(4))
        await fresh.save_messages(AGENT, [Message.coerce(msg(t)) for t in [*expected, "m5", "m6"]])
        await store.append_messages(AGENT, [msg("m7")])
        assert texts(await fresh.load_messages(AGENT)) == [*expected, "m5", "m6", "m7"]
        assert await seqs(fresh) == [1, 2, 3, 4, 5, 6]
    finally:
        await fresh.close()


async def test_event_lines_are_the_same_in_and_out_of_a_transaction(store: JSONStore, base: Path) -> None:
    events = [data.timeline(1), data.timeline(2, channel="monitor"), data.timeline(3)]
    await store.append_events("plain", events)
    async with store.transaction("unit") as tx:
        await tx.append_events("unit", events)
    for channel in ("progress", "monitor"):
        assert (base / "unit" / "events" / f"{channel}.log").read_bytes() == (
            base / "plain" / "events" / f"{channel}.log"
        ).read_bytes()


# --------------------------------------------------------------------------- failures write nothing


async def test_a_seq_repeated_across_calls_of_a_unit_writes_nothing(store: JSONStore, base: Path) -> None:
    await store.append_messages(AGENT, [msg("m0")])
    await store.append_event(AGENT, data.timeline(1))
    before = {p: p.read_bytes() for p in (base / AGENT).rglob("*") if p.is_file()}
    with pytest.raises(RecordValidationError, match="already stored") as caught:
        async with store.transaction(AGENT) as tx:
            await tx.append_messages(AGENT, [msg("m1")])
            await tx.append_events(AGENT, [data.timeline(2), data.timeline(3)])
            await tx.append_events(AGENT, [data.timeline(3, channel="monitor")])
    assert caught.value.field == "timeline.bookmark.seq"
    assert {p: p.read_bytes() for p in (base / AGENT).rglob("*") if p.is_file()} == before
    # The caches were left as they were: the next writes are exact.
    await store.append_messages(AGENT, [msg("m2")])
    await store.append_events(AGENT, [data.timeline(2), data.timeline(3)])
    assert texts(await store.load_messages(AGENT)) == ["m0", "m2"]
    assert await seqs(store) == [1, 2, 3]


async def test_a_store_closed_before_the_commit_writes_nothing(base: Path) -> None:
    store = JSONStore(base)
    await store.open()
    with pytest.raises(StoreClosedError):
        async with store.transaction(AGENT) as tx:
            await tx.append_messages(AGENT, [msg("m0")])
            await store.close()
    async with JSONStore(base) as reopened:
        assert await reopened.load_messages(AGENT) == []


# --------------------------------------------------------------------------- crashes


def _stop_before_applying(monkeypatch: pytest.MonkeyPatch, applied: int = 0) -> None:
    """Make the next commit stop after its journal is durable and ``applied``
    of its operations are applied, as a SIGKILL there would."""
    real = json_files.apply_ops

    def stop(agent_dir: Path, ops: Sequence[Op]) -> None:
        monkeypatch.setattr(json_files, "apply_ops", real)
        real(agent_dir, ops[:applied])
        raise OSError(5, "killed mid-commit")

    monkeypatch.setattr(json_files, "apply_ops", stop)


@pytest.mark.parametrize("applied", [0, 1, 3])
async def test_a_crash_after_the_journal_keeps_the_whole_unit(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, applied: int
) -> None:
    store = JSONStore(base)
    await store.open()
    await write_step(store, 0)
    _stop_before_applying(monkeypatch, applied)
    with pytest.raises(StoreConnectionError, match="killed mid-commit"):
        await write_step(store, 1)
    assert json_files.journal_pending(base / AGENT)
    # What a crash leaves on disk, opened by a new process: recovery rolls the entry forward.
    crashed = tmp_path / "crashed"
    shutil.copytree(base, crashed)
    async with JSONStore(crashed) as reopened:
        assert not json_files.journal_pending(crashed / AGENT)
        await assert_steps(reopened, 2)
        await write_step(reopened, 2)
        await assert_steps(reopened, 3)
    # The store that failed completes it on its next call and keeps working.
    await assert_steps(store, 2)
    await write_step(store, 2)
    await assert_steps(store, 3)
    await store.close()


async def test_a_crash_while_the_journal_is_written_keeps_none_of_the_unit(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with JSONStore(base) as store:
        await write_step(store, 0)
        _stop_before_applying(monkeypatch)
        with pytest.raises(StoreConnectionError):
            await write_step(store, 1)
    journal = base / AGENT / json_files.JOURNAL_NAME
    blob = journal.read_bytes()
    assert json_files.decode_journal(blob) is not None
    journal.write_bytes(blob[: len(blob) // 2])  # the crash came while the journal was being written
    async with JSONStore(base) as reopened:
        await assert_steps(reopened, 1)
        assert any(name.startswith("journal.wal.corrupt-") for name in os.listdir(base / AGENT))


def _step_loop(base: Path, ready: Any) -> None:
    """Child body: write big steps, resuming after the stored ones, until killed."""

    async def run() -> None:
        store = JSONStore(base)
        await store.open()
        k = len(await store.load_messages(AGENT)) // 2
        first = k
        while True:
            async with store.transaction(AGENT) as tx:
                await tx.append_messages(AGENT, [msg(f"q{k}" + "x" * 30_000), msg(f"a{k}")])
                await tx.upsert_tool_call_record(AGENT, data.tool_call(f"call-{k}", created_ms=k))
                await tx.append_events(AGENT, [data.timeline(10 * k + 1), data.timeline(10 * k + 2, channel="monitor")])
                await tx.append_event(AGENT, data.timeline(10 * k + 3, channel="control"))
                await tx.save_info(AGENT, data.info(AGENT, message_count=2 * (k + 1)))
            k += 1
            if k == first + 1:
                ready.set()

    asyncio.run(run())


@pytest.mark.slow
async def test_kills_during_transactions_never_leave_a_step_half_written(base: Path) -> None:
    context = multiprocessing.get_context("fork")
    rng = random.Random(11)
    for _ in range(6):
        ready = context.Event()
        child = context.Process(target=_step_loop, args=(base, ready), daemon=True)
        child.start()
        try:
            assert ready.wait(30), "the child wrote no step"
            await asyncio.sleep(rng.random() * 0.05)
        finally:
            if child.pid is not None:
                os.kill(child.pid, signal.SIGKILL)
            child.join(10)
        async with JSONStore(base) as store:
            messages = await store.load_messages(AGENT)
            steps, rest = divmod(len(messages), 2)
            assert rest == 0 and steps >= 1, f"{len(messages)} messages: a step was half-written"
            assert [r.id for r in await store.load_tool_call_records(AGENT)] == [f"call-{k}" for k in range(steps)]
            assert await seqs(store) == sorted(10 * k + i for k in range(steps) for i in (1, 2, 3))
            info = await store.load_info(AGENT)
            assert info is not None and info.message_count == 2 * steps


# --------------------------------------------------------------------------- fold


def test_fold_leaves_one_operation_per_file_with_the_same_result(tmp_path: Path) -> None:
    ops: list[Op] = [
        Append("a", 3, b"xy"),
        Replace("b", b"0123"),
        Append("a", 5, b"z"),
        Append("b", 2, b"Q"),
        Append("c", 4, b"late"),
        Append("c", 1, b"early"),
        Replace("d", b"old"),
        Replace("d", b"new"),
    ]
    folded = fold(ops)
    assert [op.path for op in folded] == ["a", "b", "c", "d"]
    for step in ("each", "folded"):
        root = tmp_path / step
        root.mkdir()
        for name in ("a", "c"):
            (root / name).write_bytes(b"abcdef")
        if step == "each":
            for op in ops:
                json_files.apply_ops(root, [op])
        else:
            json_files.apply_ops(root, folded)
    for name in ("a", "b", "c", "d"):
        assert (tmp_path / "each" / name).read_bytes() == (tmp_path / "folded" / name).read_bytes()
    assert (tmp_path / "folded" / "a").read_bytes() == b"abcxyz"
