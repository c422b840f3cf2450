"""Sessions for the browser tests and the screenshots in docs/: a coding
session with a failed call, an approval denied and an approval granted,
events on every channel; a session made of hostile text (markup, script);
plus the varied filler agents of :mod:`clidata`.

Runnable: ``python tests/cli/webdata.py SPEC`` fills the store ``SPEC`` names.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from clidata import populate

from kode_sdk.store.base import Store

T0 = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
STORY = "agt-fix-flaky-test"
HOSTILE = "agt-hostile"
FAILED_CALL = "toolu_02_pytest"
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
#: A word found only in the story's failed tool result (what the search test looks for).
NEEDLE = "ZeroDivisionError"


def _ms(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def _call(
    call_id: str,
    name: str,
    tool_input: dict[str, Any],
    at: float,
    duration: float,
    *,
    state: str = "completed",
    result: Any = None,
    error: str | None = None,
    approval: dict[str, Any] | None = None,
) -> dict[str, Any]:
    trail: list[dict[str, Any]] = [{"state": "pending", "timestamp": _ms(at), "note": None}]
    if approval and approval.get("required"):
        trail.append({"state": "approval_required", "timestamp": _ms(at + 0.1), "note": "asks a human"})
        if approval.get("decision") == "deny":
            trail.append({"state": "denied", "timestamp": _ms(at + 40), "note": approval.get("note")})
        else:
            trail.append({"state": "approved", "timestamp": _ms(at + 20), "note": None})
    if state != "denied":
        trail.append({"state": "executing", "timestamp": _ms(at + 0.2), "note": None})
        trail.append({"state": state, "timestamp": _ms(at + 0.2 + duration / 1000), "note": error})
    return {
        "id": call_id,
        "name": name,
        "input": tool_input,
        "state": state,
        "approval": approval or {"required": False},
        "result": result,
        "error": error,
        "is_error": state == "failed",
        "duration_ms": duration if state != "denied" else None,
        "started_at": _ms(at + 0.2) if state != "denied" else None,
        "completed_at": _ms(at + 0.2 + duration / 1000) if state != "denied" else None,
        "created_at": _ms(at),
        "updated_at": _ms(at + 1),
        "audit_trail": trail,
    }


def _use(call_id: str, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input}


def _result(call_id: str, text: str, *, error: bool = False) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": text, "is_error": error}


def story() -> dict[str, Any]:
    """The coding session: every kind of tool-call outcome."""
    read = {"path": "tests/test_stats.py"}
    pytest_in = {"command": "pytest -x tests/test_stats.py"}
    clean = {"command": "rm -rf build/ .pytest_cache/"}
    patch = {"path": "src/stats.py", "diff": "-    return total / len(xs)\n+    return total / len(xs) if xs else 0.0"}
    failure = (
        "FAILED tests/test_stats.py::test_mean_of_empty_list\n"
        f"{NEEDLE}: division by zero\n  src/stats.py:12 in mean\n1 failed, 23 passed in 0.41s"
    )
    calls = [
        _call("toolu_01_read", "fs_read", read, 2, 3.2, result={"lines": 48, "sha": "9c1e…"}),
        _call("toolu_02_pytest", "bash_run", pytest_in, 5, 412.0, state="failed", result={"exit": 1}, error=failure),
        _call(
            "toolu_03_clean",
            "bash_run",
            clean,
            9,
            0,
            state="denied",
            approval={
                "required": True,
                "decision": "deny",
                "decided_by": "alice",
                "decided_at": _ms(49),
                "note": "not needed for this fix",
            },
        ),
        _call(
            "toolu_04_patch",
            "fs_write",
            patch,
            52,
            5.8,
            result={"written": True},
            approval={"required": True, "decision": "allow", "decided_by": "alice", "decided_at": _ms(72)},
        ),
        _call("toolu_05_pytest", "bash_run", pytest_in, 75, 388.5, result={"exit": 0, "summary": "24 passed in 0.39s"}),
    ]
    messages = [
        {"role": "user", "content": "The test suite fails on an empty list. Can you find out why and fix it?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me read the test first."},
                _use("toolu_01_read", "fs_read", read),
            ],
        },
        {
            "role": "user",
            "content": [_result("toolu_01_read", "def test_mean_of_empty_list():\n    assert mean([]) == 0.0")],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Now I run it."}, _use("toolu_02_pytest", "bash_run", pytest_in)],
        },
        {"role": "user", "content": [_result("toolu_02_pytest", failure, error=True)]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "text",
                    "text": "`mean` divides by the length without checking for an empty list. Clearing caches first.",
                },
                _use("toolu_03_clean", "bash_run", clean),
            ],
        },
        {
            "role": "user",
            "content": [_result("toolu_03_clean", "denied by alice: not needed for this fix", error=True)],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Fine. Here is the fix."}, _use("toolu_04_patch", "fs_write", patch)],
        },
        {"role": "user", "content": [_result("toolu_04_patch", "written")]},
        {"role": "assistant", "content": [_use("toolu_05_pytest", "bash_run", pytest_in)]},
        {"role": "user", "content": [_result("toolu_05_pytest", "24 passed in 0.39s")]},
        {"role": "assistant", "content": "Fixed: `mean([])` now returns 0.0, and all 24 tests pass."},
    ]
    events = []
    kinds = [
        ("progress", {"type": "text_chunk", "delta": "Let me read the test first."}),
        ("monitor", {"type": "tool_executed", "call": "toolu_01_read", "ms": 3.2}),
        ("progress", {"type": "tool:start", "call": "toolu_02_pytest"}),
        ("monitor", {"type": "error", "call": "toolu_02_pytest", "message": "exit 1"}),
        ("control", {"type": "permission_required", "call": "toolu_03_clean"}),
        ("control", {"type": "permission_decided", "call": "toolu_03_clean", "decision": "deny"}),
        ("control", {"type": "permission_required", "call": "toolu_04_patch"}),
        ("control", {"type": "permission_decided", "call": "toolu_04_patch", "decision": "allow"}),
        ("monitor", {"type": "tool_executed", "call": "toolu_05_pytest", "ms": 388.5}),
        ("progress", {"type": "done", "reason": "completed"}),
    ]
    for seq, (channel, event) in enumerate(kinds, start=1):
        events.append(
            {"cursor": seq, "bookmark": {"seq": seq, "timestamp": _ms(seq * 8)}, "event": {"channel": channel, **event}}
        )
    info = {
        "agent_id": STORY,
        "template_id": "coder",
        "created_at": _ms(0),
        "message_count": len(messages),
        "metadata": {"userId": "alice", "repo": "stats-lib"},
        "breakpoint": "ready",
    }
    return {"info": info, "messages": messages, "tool_calls": calls, "events": events}


def hostile() -> dict[str, Any]:
    """Markup and script everywhere a stored string can go."""
    calls = [_call("toolu_<i>x</i>", "<b>bold_tool</b>", {"q": XSS}, 1, 2.0, state="failed", error=XSS, result=XSS)]
    messages = [
        {"role": "user", "content": XSS},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "</pre></div>" + XSS},
                _use("toolu_<i>x</i>", "<b>bold_tool</b>", {"q": XSS}),
            ],
        },
        {"role": "user", "content": [_result("toolu_<i>x</i>", XSS, error=True)]},
    ]
    events = [
        {
            "cursor": 1,
            "bookmark": {"seq": 1, "timestamp": _ms(1)},
            "event": {"channel": "monitor", "type": XSS, "x": XSS},
        }
    ]
    info = {
        "agent_id": HOSTILE,
        "template_id": "<svg onload=alert(1)>",
        "created_at": _ms(-3600),
        "metadata": {"userId": XSS},
    }
    return {"info": info, "messages": messages, "tool_calls": calls, "events": events}


async def write(store: Store, records: dict[str, Any]) -> None:
    """Store one session's records."""
    agent_id = records["info"]["agent_id"]
    await store.save_messages(agent_id, records["messages"])
    await store.save_tool_call_records(agent_id, records["tool_calls"])
    for event in records["events"]:
        await store.append_event(agent_id, event)
    await store.save_info(agent_id, records["info"])


async def populate_web(store: Store, filler: int = 30) -> None:
    """The story, the hostile session and ``filler`` varied agents."""
    await populate(store, filler)
    await write(store, hostile())
    await write(store, story())


def fill_web(spec: str, filler: int = 30) -> None:
    """Fill the store ``spec`` names with :func:`populate_web`."""
    from kode_sdk.cli.app import parse_store_spec
    from kode_sdk.store.factory import create_store

    async def go() -> None:
        async with create_store(parse_store_spec(spec)) as store:  # type: ignore[attr-defined]
            await populate_web(store, filler)

    asyncio.run(go())


if __name__ == "__main__":
    fill_web(sys.argv[1])
