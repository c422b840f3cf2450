"""Conformance tests of ``store.transaction(agent_id)`` and
``upsert_tool_call_record`` (part of the Store contract). Mixed into
:class:`~kode_sdk.testing.StoreConformance`, whose fixtures they use."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from typing import Any

import pytest

from ..errors import InvalidAgentIdError, RecordValidationError
from ..types import Message, ToolCallRecord
from . import data

__all__ = ["TransactionConformance", "step_writer"]


def _step_messages(k: int, pad: int = 0) -> list[dict[str, Any]]:
    filler = "x" * pad
    return [
        {"role": "user", "content": [{"type": "text", "text": f"q{k}{filler}"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": f"call-{k}", "name": "bash_run", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"call-{k}", "content": f"r{k}"}]},
    ]


async def _write_step(store: Any, agent_id: str, k: int, pad: int = 0) -> None:
    """One agent step through a transaction: 3 messages, 1 tool call, 6 events, the info."""
    async with store.transaction(agent_id) as tx:
        await tx.append_messages(agent_id, _step_messages(k, pad))
        await tx.upsert_tool_call_record(agent_id, data.tool_call(f"call-{k}", created_ms=k))
        await tx.append_events(agent_id, [data.timeline(6 * k + i) for i in range(1, 7)])
        await tx.save_info(agent_id, data.info(agent_id, message_count=3 * (k + 1)))


def step_writer(factory: Any, agent_id: str, ready: Any) -> None:
    """Child process body: write steps until killed; set ``ready`` after the first."""

    async def run() -> None:
        store = factory()
        await store.open()
        k = 0
        while True:
            await _write_step(store, agent_id, k, pad=20_000)
            k += 1
            if k == 2:
                ready.set()

    asyncio.run(run())


class TransactionConformance:
    """A transaction commits all of its writes or none; reads through it see them."""

    @pytest.mark.asyncio
    async def test_transaction_commits_every_write_at_once(self, store: Any, open_store: Any, ns: str) -> None:
        agent = ns + "a"
        await _write_step(store, agent, 0)
        await _write_step(store, agent, 1)
        other = await open_store()
        assert len(await other.load_messages(agent)) == 6
        assert [r.id for r in await other.load_tool_call_records(agent)] == ["call-0", "call-1"]
        assert [e.bookmark.seq for e in [x async for x in other.read_events(agent)]] == list(range(1, 13))
        info = await other.load_info(agent)
        assert info is not None and info.message_count == 6

    @pytest.mark.asyncio
    async def test_nothing_is_visible_before_commit(self, store: Any, open_store: Any, ns: str) -> None:
        agent = ns + "a"
        other = await open_store()
        async with store.transaction(agent) as tx:
            await tx.append_messages(agent, [data.conversation()[0]])
            await tx.save_todos(agent, data.todos())
            assert await other.load_messages(agent) == []
            assert await store.load_messages(agent) == []
            assert await other.load_todos(agent) is None
        assert len(await other.load_messages(agent)) == 1
        assert await other.load_todos(agent) is not None

    @pytest.mark.asyncio
    async def test_an_exception_in_the_block_writes_nothing(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        await store.append_messages(agent, [data.conversation()[0]])
        with pytest.raises(RuntimeError, match="boom"):
            async with store.transaction(agent) as tx:
                await tx.append_messages(agent, data.conversation())
                await tx.upsert_tool_call_record(agent, data.tool_call("t1"))
                await tx.append_events(agent, [data.timeline(1), data.timeline(2)])
                await tx.save_info(agent, data.info(agent))
                raise RuntimeError("boom")
        assert len(await store.load_messages(agent)) == 1
        assert await store.load_tool_call_records(agent) == []
        assert [e async for e in store.read_events(agent)] == []
        assert await store.load_info(agent) is None

    @pytest.mark.asyncio
    async def test_a_failing_write_at_commit_writes_nothing(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        async with store.transaction(agent) as tx:
            atomic = tx.atomic_on_crash
        if not atomic:
            pytest.skip(f"{type(store).__name__}: a commit replays its writes one by one (documented)")
        await store.append_event(agent, data.timeline(5))
        with pytest.raises(RecordValidationError, match="5"):
            async with store.transaction(agent) as tx:
                await tx.append_messages(agent, data.conversation())
                await tx.append_events(agent, [data.timeline(4), data.timeline(5)])
        assert await store.load_messages(agent) == []
        assert [e.bookmark.seq async for e in store.read_events(agent)] == [5]

    @pytest.mark.asyncio
    async def test_bad_input_raises_at_the_call_and_writes_nothing(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        with pytest.raises(RecordValidationError, match="messages"):
            async with store.transaction(agent) as tx:
                await tx.save_info(agent, data.info(agent))
                await tx.append_messages(agent, [{"role": "nobody", "content": 3}])
        assert await store.load_info(agent) is None
        with pytest.raises(RecordValidationError, match="agent"):
            async with store.transaction(agent) as tx:
                await tx.append_messages(ns + "other", [data.conversation()[0]])
        with pytest.raises(InvalidAgentIdError):
            async with store.transaction("../x"):
                pass

    @pytest.mark.asyncio
    async def test_reads_through_the_transaction_see_its_writes(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        await store.append_messages(agent, [data.conversation()[0]])
        await store.save_tool_call_records(agent, [data.tool_call("t1"), data.tool_call("t2")])
        async with store.transaction(agent) as tx:
            await tx.append_messages(agent, [data.conversation()[1]])
            await tx.upsert_tool_call_record(agent, data.tool_call("t1", state="failed", is_error=True))
            await tx.upsert_tool_call_record(agent, data.tool_call("t3"))
            await tx.save_info(agent, data.info(agent, message_count=2))
            await tx.save_todos(agent, data.todos(version=4))
            assert len(await tx.load_messages(agent)) == 2
            records = await tx.load_tool_call_records(agent)
            assert [(r.id, r.is_error) for r in records] == [("t1", True), ("t2", False), ("t3", False)]
            info = await tx.load_info(agent)
            assert info is not None and info.message_count == 2
            todos = await tx.load_todos(agent)
            assert todos is not None and todos.version == 4
            assert len(await store.load_messages(agent)) == 1
        assert len(await store.load_messages(agent)) == 2
        assert len(await store.load_tool_call_records(agent)) == 3

    @pytest.mark.asyncio
    async def test_transaction_cannot_be_used_after_its_block(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        async with store.transaction(agent) as tx:
            pass
        with pytest.raises(Exception, match="transaction"):
            await tx.append_messages(agent, [data.conversation()[0]])

    @pytest.mark.asyncio
    async def test_upsert_tool_call_record_replaces_by_id_and_appends_new_ids(
        self, store: Any, open_store: Any, ns: str
    ) -> None:
        agent = ns + "a"
        await store.upsert_tool_call_record(agent, data.tool_call("t1", state="executing"))
        await store.save_tool_call_records(agent, [data.tool_call("t1"), data.tool_call("t2")])
        await store.upsert_tool_call_record(agent, data.tool_call("t1", state="failed", is_error=True))
        await store.upsert_tool_call_record(agent, data.tool_call("t3"))
        expected = [
            data.tool_call("t1", state="failed", is_error=True),
            data.tool_call("t2"),
            data.tool_call("t3"),
        ]
        data.assert_records_equal(await store.load_tool_call_records(agent), expected, ToolCallRecord)
        other = await open_store()
        data.assert_records_equal(await other.load_tool_call_records(agent), expected, ToolCallRecord)
        # A full-list save after upserts still sees what is stored.
        await other.save_tool_call_records(agent, expected[1:])
        await store.upsert_tool_call_record(agent, data.tool_call("t4"))
        loaded = await store.load_tool_call_records(agent)
        assert [r.id for r in loaded] == ["t2", "t3", "t4"]
        with pytest.raises(RecordValidationError, match="record"):
            await store.upsert_tool_call_record(agent, {"id": "x"})
        assert len(await store.load_tool_call_records(agent)) == 3

    @pytest.mark.asyncio
    async def test_save_messages_after_transactional_appends_stays_exact(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        conversation = [Message.coerce(m) for m in data.conversation()]
        await store.save_messages(agent, conversation[:1])
        async with store.transaction(agent) as tx:
            await tx.append_messages(agent, conversation[1:])
        with pytest.raises(RuntimeError):
            async with store.transaction(agent) as tx:
                await tx.append_messages(agent, conversation)
                raise RuntimeError
        edited = [*conversation[:-1], Message.coerce({"role": "user", "content": "edited"})]
        await store.save_messages(agent, edited)
        data.assert_records_equal(await store.load_messages(agent), edited, Message)

    @pytest.mark.asyncio
    async def test_a_killed_process_never_leaves_a_step_half_written(
        self, store_factory: Any, store: Any, open_store: Any, ns: str
    ) -> None:
        agent = ns + "killed"
        async with store.transaction(agent) as tx:
            atomic = tx.atomic_on_crash
        if not atomic:
            pytest.skip(f"{type(store).__name__}: transactions are not atomic under a crash (documented)")
        # Fork with none of this store's threads running: one inside SQLite at
        # the instant of the fork would leave a mutex locked in the child (seen
        # once in CI: the child never wrote a step). A new store reads after.
        await store.close()
        context = multiprocessing.get_context("fork")
        ready = context.Event()
        child = context.Process(target=step_writer, args=(store_factory, agent, ready), daemon=True)
        child.start()
        try:
            assert ready.wait(30), "the child wrote no step"
            await asyncio.sleep(0.05 + (os.getpid() % 7) / 50)
        finally:
            if child.pid is not None:
                os.kill(child.pid, signal.SIGKILL)
            child.join(10)

        reader = await open_store()

        async def stored() -> tuple[int, list[str], int, int | None]:
            messages = await reader.load_messages(agent)
            ids = [r.id for r in await reader.load_tool_call_records(agent)]
            events = len([e async for e in reader.read_events(agent)])
            info = await reader.load_info(agent)
            return len(messages), ids, events, None if info is None else info.message_count

        # A commit the child sent just before it was killed may still land
        # (PostgreSQL completes a COMMIT it has received), possibly between
        # the reads above: check a state that has stopped changing.
        state = await stored()
        for _ in range(50):
            await asyncio.sleep(0.1)
            state, before = await stored(), state
            if state == before:
                break
        messages, ids, events, message_count = state
        steps, rest = divmod(messages, 3)
        assert steps >= 2 and rest == 0, f"{messages} messages: a step was half-written"
        assert ids == [f"call-{k}" for k in range(steps)]
        assert events == 6 * steps
        assert message_count == 3 * steps
