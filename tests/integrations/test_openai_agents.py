"""KodeSession under the OpenAI Agents SDK's own Runner: restarts, kode queries over the session, the protocol."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agents.memory import Session

from kode_sdk import create_store
from kode_sdk.integrations.openai_agents import TEMPLATE_ID, KodeSession, item_from_message, item_to_message

CHILD = Path(__file__).with_name("openai_child.py")


def run_child(config: dict[str, Any], session_id: str, *texts: str) -> tuple[list[str], list[dict[str, Any]]]:
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


async def test_runner_conversation_with_tool_calls_survives_a_restart(store_config: dict[str, Any]) -> None:
    finals, items = run_child(store_config, "chat-1", "add 5", "add 7")
    assert finals == ["turn 1: the sum is 6", "turn 2: the sum is 9"]
    assert len(items) == 8
    # A new process continues: the model is sent the whole history (it counts 3 user turns).
    finals, items_after = run_child(store_config, "chat-1", "add 1")
    assert finals == ["turn 3: the sum is 4"]
    assert items_after[:8] == items and len(items_after) == 12

    store = create_store(store_config)
    try:
        info = await store.load_info("chat-1")
        assert info is not None and info.template_id == TEMPLATE_ID and info.message_count == 12
        calls = await store.query_messages(agent_id="chat-1", content_type="tool_use")  # type: ignore[attr-defined]
        assert [m.content[0]["input"] for m in reversed(calls)] == [
            {"a": 5, "b": 1},
            {"a": 7, "b": 2},
            {"a": 1, "b": 3},
        ]
        outputs = await store.query_messages(agent_id="chat-1", content_type="tool_result")  # type: ignore[attr-defined]
        assert sorted(m.content[0]["content"] for m in outputs) == ["4", "6", "9"]
        stats = await store.aggregate_stats("chat-1")  # type: ignore[attr-defined]
        assert stats.messages_by_role == {"user": 6, "assistant": 6}
    finally:
        await store.close()


async def test_session_protocol(store_config: dict[str, Any]) -> None:
    store = create_store(store_config)
    try:
        session = KodeSession("proto-1", store)
        assert isinstance(session, Session)
        assert await session.get_items() == [] and await session.pop_item() is None
        items: list[Any] = [
            {"role": "user", "content": "hi"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"x":[1,2]}', "id": "fc_1"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
            {
                "role": "assistant",
                "type": "message",
                "content": [{"type": "output_text", "text": "done", "annotations": []}],
            },
        ]
        await session.add_items(items[:3])
        await session.add_items(items[3:])
        assert await session.get_items() == items
        assert await session.get_items(limit=2) == items[3:]
        assert await session.pop_item() == items[-1]
        assert await session.get_items() == items[:-1]
        # A second session object (another worker) sees the same items.
        assert await KodeSession("proto-1", store).get_items() == items[:-1]
        await session.clear_session()
        assert await session.get_items() == [] and not await store.exists("proto-1")
    finally:
        await store.close()


def test_items_round_trip_exactly_and_stay_queryable() -> None:
    odd = [
        {"role": "developer", "content": "be brief"},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": '{ "spaced" :1 }'},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "not json"},
        {
            "role": "user",
            "content": [{"type": "input_image", "image_url": "data:..."}, {"type": "input_text", "text": "x"}],
        },
    ]
    for item in odd:
        message = item_to_message(item)
        assert item_from_message(message) == item
    assert item_to_message(odd[0])["role"] == "system"
    assert item_to_message(odd[1])["content"][0]["type"] == "tool_use"
    assert item_to_message(odd[2])["content"][0]["type"] == "openai_item"
