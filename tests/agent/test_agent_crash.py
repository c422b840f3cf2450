"""Killed mid-tool, resumed from the store: the call is sealed, nothing is lost,
and the conversation continues. Also: an approval survives a restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_scripts import CRASH_SCRIPT, TEMPLATE, SideEffects, make_registry

from kode_sdk.agent import Agent, ScriptedProvider
from kode_sdk.agent.agent import SEALED_RESULT
from kode_sdk.agent.providers import tool_use
from kode_sdk.store.base import Store
from kode_sdk.types import BreakpointState, ToolCallState

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


async def _wait_for(path: Path, child: asyncio.subprocess.Process, limit_s: float = 60.0) -> None:
    # A bound against hanging forever, not a timing assertion.
    deadline = time.monotonic() + limit_s
    while not await asyncio.to_thread(path.exists):
        if child.returncode is not None:
            assert child.stderr is not None
            err = await child.stderr.read()
            raise AssertionError(f"child exited with {child.returncode} before blocking:\n{err.decode()}")
        if time.monotonic() > deadline:
            raise AssertionError("child never reached the blocking tool")
        await asyncio.sleep(0.02)


async def test_sigkill_during_tool_then_resume_seals_the_call(
    store_spec: dict[str, Any], make_store: Callable[[], Store], tmp_path: Path
) -> None:
    marker = tmp_path / "executing"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(SRC), os.environ.get("PYTHONPATH", "")])}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "crash_child.py"),
        json.dumps(store_spec),
        str(marker),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await _wait_for(marker, child)
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    store = make_store()
    try:
        before = await store.load_messages("crash-1")
        assert [m.role for m in before] == ["user", "assistant", "user", "assistant"]
        (in_flight,) = await store.load_tool_call_records("crash-1")
        assert in_flight.state is ToolCallState.EXECUTING and in_flight.name == "block"

        agent = await Agent.resume_from_store(
            "crash-1",
            store=store,
            provider=ScriptedProvider(CRASH_SCRIPT),
            templates=[TEMPLATE],
            strategy="crash",
            tools=make_registry(),
        )
        (sealed,) = await store.load_tool_call_records("crash-1")
        assert sealed.state is ToolCallState.SEALED and sealed.is_error
        assert [e.state.value for e in sealed.audit_trail] == ["pending", "executing", "sealed"]
        assert "resume" in (sealed.audit_trail[-1].note or "")

        after = await store.load_messages("crash-1")
        assert after[:4] == before  # nothing stored before the crash is lost
        assert after[4].content == [
            {"type": "tool_result", "tool_use_id": sealed.id, "content": SEALED_RESULT, "is_error": True}
        ]
        resumed = [t.event async for t in store.read_events("crash-1", channel="monitor")]
        resumed = [e for e in resumed if e["type"] == "agent_resumed"]
        assert len(resumed) == 1 and resumed[0]["sealed"] == [sealed.id] and resumed[0]["strategy"] == "crash"
        assert resumed[0]["breakpoint"] == BreakpointState.TOOL_EXECUTING.value

        assert await agent.send("Are you still there?") == CRASH_SCRIPT[2]
        final = await store.load_messages("crash-1")
        assert final[:5] == after and [m.role for m in final[5:]] == ["user", "assistant"]
        info = await store.load_info("crash-1")
        assert info is not None and info.breakpoint is BreakpointState.READY and info.message_count == 7
    finally:
        await store.close()


async def test_approval_survives_a_restart(make_store: Callable[[], Store], tmp_path: Path) -> None:
    effects = SideEffects(tmp_path / "effects.jsonl")
    script = [[tool_use("deploy", {"env": "prod"})], "Deployed after approval."]

    store = make_store()
    agent = await Agent.create(
        provider=ScriptedProvider(script),
        store=store,
        template=TEMPLATE,
        agent_id="approve-1",
        tools=make_registry(effects),
    )
    paused = await agent.chat("Deploy to prod.")
    assert paused.status == "paused"
    (permission_id,) = paused.permission_ids
    await store.close()
    del agent

    store = make_store()
    try:
        agent = await Agent.resume_from_store(
            "approve-1",
            store=store,
            provider=ScriptedProvider(script),
            templates=[TEMPLATE],
            strategy="crash",
            tools=make_registry(effects),
        )
        assert agent.pending_permissions == [permission_id]
        assert agent.breakpoint is BreakpointState.AWAITING_APPROVAL
        assert effects.runs() == []

        result = await agent.decide(permission_id, "allow", note="approved after restart", by="ops")
        assert result.status == "ok" and result.text == "Deployed after approval."
        assert len(effects.runs("deploy")) == 1  # exactly once

        (record,) = await store.load_tool_call_records("approve-1")
        assert record.state is ToolCallState.COMPLETED and record.result == "deployed to prod"
        assert record.approval.decision == "allow" and record.approval.decided_by == "ops"
        assert [e.state.value for e in record.audit_trail] == [
            "pending",
            "approval_required",
            "approved",
            "executing",
            "completed",
        ]
        messages = await store.load_messages("approve-1")
        assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    finally:
        await store.close()
    assert len(effects.runs("deploy")) == 1
