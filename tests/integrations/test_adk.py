"""KodeSessionService under ADK's own Runner: restarts, state scopes, kode queries, the service contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from kode_sdk import create_store
from kode_sdk.integrations.adk import KodeSessionService, event_from_message, event_to_message

CHILD = Path(__file__).with_name("adk_child.py")


def run_child(config: dict[str, Any], session_id: str, *texts: str) -> tuple[list[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(CHILD), json.dumps(config), session_id, *texts],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    return [line["final"] for line in lines[:-1]], lines[-1]


async def test_runner_conversation_with_tool_calls_and_state_survives_a_restart(store_config: dict[str, Any]) -> None:
    finals, first = run_child(store_config, "s1", "add 5", "add 7")
    assert finals == ["turn 1: the sum is 6", "turn 2: the sum is 9"]
    assert len(first["events"]) == 8
    assert first["state"] == {"started": True, "adds": 2, "user:total": 15}
    # A new process continues the session: the model sees 3 user turns; state deltas carried on.
    finals, second = run_child(store_config, "s1", "add 1")
    assert finals == ["turn 3: the sum is 4"]
    assert second["events"][:8] == first["events"] and len(second["events"]) == 12
    assert second["state"] == {"started": True, "adds": 3, "user:total": 19}

    store = create_store(store_config)
    try:
        agent = "adder-app:u1:s1"
        calls = await store.query_messages(agent_id=agent, content_type="tool_use")  # type: ignore[attr-defined]
        assert [m.content[0]["input"] for m in reversed(calls)] == [
            {"a": 5, "b": 1},
            {"a": 7, "b": 2},
            {"a": 1, "b": 3},
        ]
        results = await store.query_messages(agent_id=agent, content_type="tool_result")  # type: ignore[attr-defined]
        assert sorted(m.content[0]["content"]["result"] for m in results) == [4, 6, 9]
        sessions = await store.query_sessions(template_id="adk:adder-app", user_id="u1")  # type: ignore[attr-defined]
        assert [s.agent_id for s in sessions] == [agent] and sessions[0].message_count == 12
    finally:
        await store.close()


async def test_session_service_contract(store_config: dict[str, Any]) -> None:
    store = create_store(store_config)
    try:
        service = KodeSessionService(store)
        created = await service.create_session(
            app_name="app", user_id="ann", session_id="one", state={"k": 1, "app:theme": "dark", "user:lang": "en"}
        )
        assert created.state == {"k": 1, "app:theme": "dark", "user:lang": "en"}
        with pytest.raises(AlreadyExistsError):
            await service.create_session(app_name="app", user_id="ann", session_id="one")
        other = await service.create_session(app_name="app", user_id="bob")
        assert other.state == {"app:theme": "dark"}  # app state is shared, user state is not

        events = []
        for i in range(3):
            event = Event(
                author="user" if i % 2 == 0 else "agent",
                invocation_id="inv",
                content=types.Content(role="user" if i % 2 == 0 else "model", parts=[types.Part(text=f"m{i}")]),
                actions=EventActions(state_delta={"k": i + 10, "temp:scratch": i, "user:seen": i}),
            )
            events.append(await service.append_event(created, event))
        loaded = await service.get_session(app_name="app", user_id="ann", session_id="one")
        assert loaded is not None
        assert [e.content.parts[0].text for e in loaded.events if e.content and e.content.parts] == ["m0", "m1", "m2"]
        assert loaded.events == events
        assert loaded.state == {"k": 12, "app:theme": "dark", "user:lang": "en", "user:seen": 2}  # temp: dropped
        assert await service.get_user_state(app_name="app", user_id="ann") == {"lang": "en", "seen": 2}
        recent = await service.get_session(
            app_name="app", user_id="ann", session_id="one", config=GetSessionConfig(num_recent_events=1)
        )
        assert recent is not None and recent.events == events[-1:]

        listed = await service.list_sessions(app_name="app")
        assert sorted(s.id for s in listed.sessions) == sorted(["one", other.id])
        assert all(s.events == [] for s in listed.sessions)
        assert [s.id for s in (await service.list_sessions(app_name="app", user_id="bob")).sessions] == [other.id]

        await service.delete_session(app_name="app", user_id="ann", session_id="one")
        assert await service.get_session(app_name="app", user_id="ann", session_id="one") is None
    finally:
        await store.close()


def test_events_round_trip_exactly() -> None:
    event = Event(
        author="agent",
        invocation_id="i",
        content=types.Content(
            role="model",
            parts=[
                types.Part(text="let me look"),
                types.Part(function_call=types.FunctionCall(id="f1", name="fs_read", args={"path": "a"})),
                types.Part(thought=True, text="hidden"),
            ],
        ),
        actions=EventActions(state_delta={"x": [1, 2]}),
    )
    message = event_to_message(event)
    assert [b["type"] for b in message["content"]] == ["text", "tool_use", "adk_part"]
    assert event_from_message(message) == event
