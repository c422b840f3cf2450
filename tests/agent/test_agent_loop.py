"""The agent loop on every backend: tools, errors, permissions, snapshots and
forks, events, and what each leaves in the store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from agent_scripts import TEMPLATE, SideEffects, make_registry

from kode_sdk.agent import Agent, ScriptedProvider
from kode_sdk.agent.providers import text, tool_use
from kode_sdk.errors import AgentExistsError, AgentNotFoundError, AgentStateError, ProviderError
from kode_sdk.store.base import Store
from kode_sdk.types import (
    AgentInfo,
    BreakpointState,
    Message,
    Timeline,
    ToolCallAuditEntry,
    ToolCallRecord,
    ToolCallState,
)


async def events_of(store: Store, agent_id: str, channel: str | None = None) -> list[Timeline]:
    return [t async for t in store.read_events(agent_id, channel=channel)]


def states(record: object) -> list[str]:
    return [entry.state.value for entry in record.audit_trail]  # type: ignore[attr-defined]


async def test_tool_loop_persists_every_step(store: Store, tmp_path: Path) -> None:
    provider = ScriptedProvider(
        [[text("Adding."), tool_use("add", {"a": 2, "b": 3})], [tool_use("add", {"a": 5, "b": 10})], "It is 15."]
    )
    agent = await Agent.create(
        provider=provider, store=store, template=TEMPLATE, agent_id="loop-1", tools=make_registry()
    )
    answer = await agent.send("What is 2 + 3 + 10?")

    assert answer == "It is 15."
    messages = await store.load_messages("loop-1")
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert messages[2].content == [
        {"type": "tool_result", "tool_use_id": "call_0_1", "content": "5", "is_error": False}
    ]
    assert messages[4].content[0]["content"] == "15"
    records = await store.load_tool_call_records("loop-1")
    assert [(r.name, r.state, r.result) for r in records] == [
        ("add", ToolCallState.COMPLETED, 5),
        ("add", ToolCallState.COMPLETED, 15),
    ]
    first = records[0]
    assert states(first) == ["pending", "executing", "completed"]
    assert first.started_at is not None and first.completed_at is not None and first.duration_ms is not None
    assert first.started_at <= first.completed_at
    assert first.audit_trail[0].timestamp <= first.audit_trail[-1].timestamp
    info = await store.load_info("loop-1")
    assert info is not None
    assert info.breakpoint is BreakpointState.READY
    assert info.message_count == 6 and info.last_sfp_index == 5
    assert info.last_bookmark is not None

    timeline = await events_of(store, "loop-1")
    seqs = [t.bookmark.seq for t in timeline]
    assert seqs == list(range(1, len(seqs) + 1))
    kinds = [(t.event["channel"], t.event["type"]) for t in timeline]
    assert ("progress", "tool_start") in kinds and ("progress", "tool_end") in kinds
    assert kinds[-1] == ("progress", "done")
    assert kinds.count(("monitor", "step_complete")) == 3
    assert kinds.count(("monitor", "tool_executed")) == 2
    chunks = "".join(t.event["delta"] for t in timeline if t.event["type"] == "text_chunk")
    assert chunks == "Adding.It is 15."
    changes = [(t.event["from"], t.event["to"]) for t in timeline if t.event["type"] == "state_changed"]
    assert ("streaming_model", "tool_pending") in changes and changes[-1] == ("streaming_model", "ready")


async def test_token_usage_events_report_each_model_call(store: Store) -> None:
    provider = ScriptedProvider([[tool_use("add", {"a": 1})], "Done."])
    agent = await Agent.create(provider=provider, store=store, template=TEMPLATE, tools=make_registry())
    await agent.send("go")
    usage = await events_of(store, agent.agent_id, channel="monitor")
    usage = [t.event for t in usage if t.event["type"] == "token_usage"]
    assert len(usage) == 2
    assert all(u["input_tokens"] > 0 and u["output_tokens"] > 0 for u in usage)
    assert all(u["total_tokens"] == u["input_tokens"] + u["output_tokens"] for u in usage)
    assert usage[1]["input_tokens"] > usage[0]["input_tokens"]  # the history grew
    assert usage[0]["model"] == "scripted-1"


async def test_tool_errors_become_results_the_model_sees(store: Store) -> None:
    provider = ScriptedProvider(
        [
            [tool_use("explode", {"reason": "disk full"}), tool_use("add", {"a": "not a number"}), tool_use("nope")],
            "Everything failed.",
        ]
    )
    agent = await Agent.create(provider=provider, store=store, template=TEMPLATE, tools=make_registry())
    assert await agent.send("try") == "Everything failed."

    results = (await store.load_messages(agent.agent_id))[2].content
    assert [r["is_error"] for r in results] == [True, True, True]
    assert results[0]["content"] == "Error: RuntimeError: exploded: disk full"
    assert "invalid input for tool 'add'" in results[1]["content"] and "a:" in results[1]["content"]
    assert "no tool named 'nope'" in results[2]["content"]
    records = await store.load_tool_call_records(agent.agent_id)
    assert [r.state for r in records] == [ToolCallState.FAILED] * 3
    assert all(r.is_error and r.error for r in records)
    assert states(records[0]) == ["pending", "executing", "failed"]
    errors = [t.event for t in await events_of(store, agent.agent_id, "monitor") if t.event["type"] == "error"]
    assert [e["phase"] for e in errors] == ["tool", "tool", "tool"]


async def test_approval_allow_and_deny(store: Store, tmp_path: Path) -> None:
    effects = SideEffects(tmp_path / "effects.jsonl")
    provider = ScriptedProvider(
        [
            [tool_use("deploy", {"env": "staging"}), tool_use("add", {"a": 1, "b": 1})],
            "Staging deployed.",
            [tool_use("deploy", {"env": "prod"})],
            "Prod was refused.",
        ]
    )
    agent = await Agent.create(provider=provider, store=store, template=TEMPLATE, tools=make_registry(effects))

    paused = await agent.chat("deploy staging")
    assert paused.status == "paused" and paused.permission_ids == ["call_0_0"]
    assert effects.runs() == []
    # The call that needs no approval already ran; the result message waits for the decision.
    records = {r.id: r for r in await store.load_tool_call_records(agent.agent_id)}
    assert records["call_0_1"].state is ToolCallState.COMPLETED
    assert records["call_0_0"].state is ToolCallState.APPROVAL_REQUIRED
    assert records["call_0_0"].approval.required is True
    assert (await store.load_info(agent.agent_id)).breakpoint is BreakpointState.AWAITING_APPROVAL  # type: ignore[union-attr]
    with pytest.raises(AgentStateError, match="decide"):
        await agent.chat("hello?")

    done = await agent.decide("call_0_0", "allow", note="looks fine")
    assert done.status == "ok" and done.text == "Staging deployed."
    assert [r["payload"]["env"] for r in effects.runs()] == ["staging"]

    paused = await agent.chat("now prod")
    assert paused.permission_ids == ["call_2_0"]
    done = await agent.decide("call_2_0", "deny", note="not on a Friday")
    assert done.status == "ok" and done.text == "Prod was refused."
    assert [r["payload"]["env"] for r in effects.runs()] == ["staging"]

    records = {r.id: r for r in await store.load_tool_call_records(agent.agent_id)}
    allowed, denied = records["call_0_0"], records["call_2_0"]
    assert states(allowed) == ["pending", "approval_required", "approved", "executing", "completed"]
    assert allowed.approval.decision == "allow" and allowed.approval.note == "looks fine"
    assert allowed.approval.decided_by == "user" and allowed.approval.decided_at is not None
    assert states(denied) == ["pending", "approval_required", "denied"]
    assert denied.approval.decision == "deny" and denied.is_error
    result = (await store.load_messages(agent.agent_id))[-2].content[0]
    assert result["is_error"] is True and "not on a Friday" in result["content"]

    control = [t.event for t in await events_of(store, agent.agent_id, "control")]
    assert [(e["type"], e.get("decision")) for e in control] == [
        ("permission_required", None),
        ("permission_decided", "allow"),
        ("permission_required", None),
        ("permission_decided", "deny"),
    ]
    with pytest.raises(AgentStateError, match="no tool call"):
        await agent.decide("call_2_0", "allow")
    with pytest.raises(ValueError, match="allow"):
        await agent.decide("call_2_0", "maybe")  # type: ignore[arg-type]


async def test_policy_deny_never_runs_the_tool(store: Store, tmp_path: Path) -> None:
    effects = SideEffects(tmp_path / "effects.jsonl")
    template = {"id": "locked", "tools": ["deploy"], "permission": {"deny": ["deploy"]}}
    provider = ScriptedProvider([[tool_use("deploy", {"env": "prod"})], "Denied by policy."])
    agent = await Agent.create(provider=provider, store=store, template=template, tools=make_registry(effects))
    assert await agent.send("deploy") == "Denied by policy."
    assert effects.runs() == []
    (record,) = await store.load_tool_call_records(agent.agent_id)
    assert record.state is ToolCallState.DENIED and record.approval.decided_by == "policy"


async def test_snapshot_and_fork(store: Store) -> None:
    provider = ScriptedProvider(["First answer.", [tool_use("add", {"a": 4, "b": 4})], "Eight.", "Forked answer."])
    agent = await Agent.create(
        provider=provider,
        store=store,
        template=TEMPLATE,
        agent_id="parent",
        tools=make_registry(),
        metadata={"userId": "u-1"},
    )
    await agent.send("one")
    snapshot_id = await agent.snapshot(label="after one")
    await agent.send("add four and four")

    snapshots = await store.list_snapshots("parent")
    assert [s.id for s in snapshots] == [snapshot_id]
    assert len(snapshots[0].messages) == 2 and snapshots[0].metadata == {"label": "after one"}

    child = await agent.fork(snapshot_id)
    assert child.agent_id != "parent" and await store.exists(child.agent_id)
    child_info = await store.load_info(child.agent_id)
    assert child_info is not None
    assert child_info.lineage == ["parent"] and child_info.metadata == {"userId": "u-1"}
    assert [m.role for m in await store.load_messages(child.agent_id)] == ["user", "assistant"]
    assert await store.load_tool_call_records(child.agent_id) == []
    # The fork continues on its own; the parent is untouched.
    assert await child.send("again") == "Eight."
    assert len(await store.load_messages("parent")) == 6

    latest = await agent.fork()
    latest_records = await store.load_tool_call_records(latest.agent_id)
    assert [r.result for r in latest_records] == [8]
    assert len(await store.load_messages(latest.agent_id)) == 6
    with pytest.raises(AgentStateError, match="no snapshot"):
        await agent.fork("snap-missing")


async def test_on_handlers_and_subscribe_since(store: Store) -> None:
    provider = ScriptedProvider([[tool_use("add", {"a": 1})], "One.", "Two."])
    agent = await Agent.create(provider=provider, store=store, template=TEMPLATE, tools=make_registry())
    executed: list[str] = []
    everything: list[int] = []

    async def on_tool(timeline: Timeline) -> None:
        executed.append(timeline.event["name"])

    off = agent.on("tool_executed", on_tool)
    agent.on("*", lambda t: everything.append(t.bookmark.seq))
    agent.on("step_complete", lambda t: 1 / 0)  # a broken listener must not stop the agent
    first = await agent.chat("first")
    assert executed == ["add"]
    assert everything == list(range(2, first.last.seq + 1))  # type: ignore[union-attr]  # 1 is agent_created
    off()

    replayed: list[Timeline] = []

    async def collect() -> None:
        async for envelope in agent.subscribe(["progress"], since=first.last):
            replayed.append(envelope)
            if envelope.event["type"] == "done":
                return

    collector = asyncio.create_task(collect())
    await asyncio.sleep(0)
    second = await agent.chat("second")
    await asyncio.wait_for(collector, timeout=30)
    assert executed == ["add"]  # unsubscribed
    assert all(t.event["channel"] == "progress" for t in replayed)
    assert [t.event["type"] for t in replayed] == ["text_chunk", "done"]
    assert replayed[0].bookmark.seq > first.last.seq  # type: ignore[union-attr]
    assert replayed[-1].bookmark == second.last  # "done" is the last event of a chat

    # Replay from the start of the store, then stop at the first live event.
    stored = [t async for t in store.read_events(agent.agent_id, channel="progress")]
    seen: list[int] = []
    async for envelope in agent.subscribe("progress", since=0):
        seen.append(envelope.bookmark.seq)
        if len(seen) == len(stored):
            break
    assert seen == [t.bookmark.seq for t in stored]


async def test_create_refuses_an_existing_id_and_resume_needs_one(store: Store) -> None:
    provider = ScriptedProvider(["hi"])
    await Agent.create(provider=provider, store=store, template=TEMPLATE, agent_id="dup", tools=make_registry())
    with pytest.raises(AgentExistsError):
        await Agent.create(provider=provider, store=store, template=TEMPLATE, agent_id="dup", tools=make_registry())
    with pytest.raises(AgentNotFoundError):
        await Agent.resume_from_store("ghost", store=store, provider=provider, templates=TEMPLATE)


async def test_provider_failure_is_reported_and_the_agent_recovers(store: Store) -> None:
    agent = await Agent.create(
        provider=ScriptedProvider(["only one turn"]), store=store, template=TEMPLATE, tools=make_registry()
    )
    assert await agent.send("one") == "only one turn"
    with pytest.raises(ProviderError, match=r"asks for turn 2"):
        await agent.send("two")
    errors = [t.event for t in await events_of(store, agent.agent_id, "monitor") if t.event["type"] == "error"]
    assert errors and errors[-1]["phase"] == "model"
    assert agent.breakpoint is BreakpointState.READY
    # The failed question is kept, and a working provider answers after it.
    agent = await Agent.resume_from_store(
        agent.agent_id,
        store=store,
        provider=ScriptedProvider(["recovered"], loop=True),
        templates=TEMPLATE,
        tools=make_registry(),
    )
    assert await agent.send("three") == "recovered"
    messages = await store.load_messages(agent.agent_id)
    assert [m.role for m in messages] == ["user", "assistant", "user", "user", "assistant"]
    assert [m.content[0].get("text") for m in messages[2:4]] == ["two", "three"]


async def test_resume_manual_keeps_in_flight_calls_until_sealed(make_store: Callable[[], Store]) -> None:
    # The state a process leaves when it dies inside a tool: the assistant turn
    # is stored and its call is recorded as executing; nothing more.
    store = make_store()
    await store.save_info("manual-1", AgentInfo(agent_id="manual-1", template_id=TEMPLATE.id))
    await store.save_messages(
        "manual-1",
        [
            Message(role="user", content="go"),
            Message(role="assistant", content=[tool_use("add", {"a": 1}, id="call_0_0")]),
        ],
    )
    started = ToolCallAuditEntry(state="executing", timestamp=1)
    await store.save_tool_call_records(
        "manual-1",
        [ToolCallRecord(id="call_0_0", name="add", input={"a": 1}, state="executing", audit_trail=[started])],
    )
    await store.close()

    store = make_store()
    provider = ScriptedProvider([[tool_use("add", {"a": 1})], "After sealing."])
    try:
        resumed = await Agent.resume_from_store(
            "manual-1", store=store, provider=provider, templates=[TEMPLATE], strategy="manual", tools=make_registry()
        )
        assert [r.state for r in resumed.tool_calls] == [ToolCallState.EXECUTING]
        with pytest.raises(AgentStateError, match="in flight"):
            await resumed.chat("continue")
        assert len(await store.load_messages("manual-1")) == 2  # the refused message was not stored
        assert await resumed.seal_in_flight("operator checked: not run") == ["call_0_0"]
        (sealed,) = await store.load_tool_call_records("manual-1")
        assert sealed.state is ToolCallState.SEALED and sealed.audit_trail[-1].note == "operator checked: not run"
        assert (await store.load_messages("manual-1"))[2].content[0]["is_error"] is True
        assert await resumed.send("continue") == "After sealing."
    finally:
        await store.close()


async def test_two_workers_on_one_agent_see_each_others_turns(make_store: Callable[[], Store]) -> None:
    script = ["First answer.", "Second answer.", "Third answer."]
    store_a, store_b = make_store(), make_store()
    try:
        worker_a = await Agent.create(
            provider=ScriptedProvider(script),
            store=store_a,
            template=TEMPLATE,
            agent_id="shared",
            tools=make_registry(),
        )
        worker_b = await Agent.resume_from_store(
            "shared", store=store_b, provider=ScriptedProvider(script), templates=TEMPLATE, tools=make_registry()
        )
        assert await worker_a.send("one") == "First answer."
        # B's copy is stale; it must pick up A's turn from the store before going on.
        assert await worker_b.send("two") == "Second answer."
        assert await worker_a.send("three") == "Third answer."
        texts = [m.content[0]["text"] for m in await store_a.load_messages("shared")]
        assert texts == ["one", "First answer.", "two", "Second answer.", "three", "Third answer."]
        seqs = [t.bookmark.seq async for t in store_b.read_events("shared")]
        assert seqs == list(range(1, len(seqs) + 1))  # one timeline, no seq taken twice
    finally:
        await store_a.close()
        await store_b.close()


async def test_chat_inside_the_callers_agent_lock(store: Store) -> None:
    # agent_lock blocks nest within a task: the agent's own lock inside the
    # caller's block is entered at once, not waited for until a timeout.
    agent = await Agent.create(
        provider=ScriptedProvider(["Hello there."]),
        store=store,
        template=TEMPLATE,
        agent_id="nest-1",
        tools=make_registry(),
        lock_timeout_ms=2_000,
    )
    async with store.agent_lock("nest-1", timeout_ms=5_000):  # type: ignore[attr-defined]
        answer = await agent.send("hi")  # the same task (asyncio.wait_for would make a new one)
    assert answer == "Hello there."
    # The lock is free again once the caller's block has ended.
    async with store.agent_lock("nest-1", timeout_ms=1_000):  # type: ignore[attr-defined]
        pass


async def test_streamed_chunks_are_stored_in_batches(store: Store) -> None:
    words = " ".join(f"w{n}" for n in range(120))
    agent = await Agent.create(
        provider=ScriptedProvider([words]), store=store, template=TEMPLATE, agent_id="stream-1", tools=make_registry()
    )
    seen: list[int] = []
    agent.on("text_chunk", lambda timeline: seen.append(timeline.bookmark.seq))
    batches_before = store.metrics.by_method.get("append_events", 0)  # type: ignore[attr-defined]
    assert await agent.send("talk") == words
    batches = store.metrics.by_method.get("append_events", 0) - batches_before  # type: ignore[attr-defined]
    timeline = await events_of(store, "stream-1")
    chunks = [t for t in timeline if t.event["type"] == "text_chunk"]
    assert "".join(t.event["delta"] for t in chunks) == words
    assert len(chunks) == 120
    # 120 chunks went to the store in far fewer calls, each at most 50 chunks.
    assert 3 <= batches < 120
    assert seen == [t.bookmark.seq for t in chunks], "handlers see each stored chunk once, in order"
    seqs = [t.bookmark.seq for t in timeline]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_each_step_is_one_transaction_of_appends_and_single_record_writes(store: Store) -> None:
    # The loop never re-saves whole lists: its cost per step does not grow with
    # the conversation, and each step is committed whole (store.transaction).
    provider = ScriptedProvider([[tool_use("add", {"a": 1, "b": 2})], [tool_use("add", {"a": 3, "b": 4})], "Done."])
    agent = await Agent.create(
        provider=provider, store=store, template=TEMPLATE, agent_id="steps-1", tools=make_registry()
    )
    assert await agent.send("Add twice.") == "Done."
    calls = store.metrics.by_method  # type: ignore[attr-defined]
    assert calls.get("transaction", 0) >= 6
    assert calls.get("save_messages", 0) == 0
    assert calls.get("upsert_tool_call_record", 0) >= 4  # created, executing, completed: one row each
    records = await store.load_tool_call_records("steps-1")
    assert [(r.state, r.result) for r in records] == [(ToolCallState.COMPLETED, 3), (ToolCallState.COMPLETED, 7)]
    info = await store.load_info("steps-1")
    assert info is not None and info.message_count == len(await store.load_messages("steps-1")) == 6
    events = await events_of(store, "steps-1")
    assert [t.bookmark.seq for t in events] == list(range(1, len(events) + 1))
    assert info.last_bookmark == events[-1].bookmark
