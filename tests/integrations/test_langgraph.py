"""KodeSaver under a real LangGraph graph: restarts, kode queries over the thread, async use, compact storage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from kode_sdk import create_store
from kode_sdk.integrations.langgraph import TEMPLATE_ID, KodeSaver

CHILD = Path(__file__).with_name("langgraph_child.py")


def run_child(config: dict[str, Any], thread_id: str, *texts: str) -> list[list[Any]]:
    """Run turns in a fresh interpreter that exits without closing anything; its final state."""
    done = subprocess.run(
        [sys.executable, str(CHILD), json.dumps(config), thread_id, *texts],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def turn(n: int, turn_no: int) -> list[list[Any]]:
    call = {"name": "add", "args": {"a": n, "b": turn_no}, "id": f"call_{turn_no}", "type": "tool_call"}
    return [
        ["human", f"add {n}", []],
        ["ai", "", [call]],
        ["tool", str(n + turn_no), []],
        ["ai", f"turn {turn_no}: the sum is {n + turn_no}", []],
    ]


async def test_conversation_with_tool_calls_survives_a_restart(store_config: dict[str, Any]) -> None:
    first = run_child(store_config, "chat-1", "add 5", "add 7")
    assert first == turn(5, 1) + turn(7, 2)
    # A second process continues the same thread: the model sees two earlier turns.
    second = run_child(store_config, "chat-1", "add 1")
    assert second == turn(5, 1) + turn(7, 2) + turn(1, 3)

    # The thread's messages are kode messages: the query API and stats see them.
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
        results = await store.query_messages(agent_id="chat-1", content_type="tool_result")  # type: ignore[attr-defined]
        assert sorted(m.content[0]["content"] for m in results) == ["4", "6", "9"]
        stats = await store.aggregate_stats("chat-1")  # type: ignore[attr-defined]
        assert stats.total_messages == 12 and stats.messages_by_role == {"user": 6, "assistant": 6}
    finally:
        await store.close()


async def test_async_graph_and_kode_view(store_config: dict[str, Any]) -> None:
    """ainvoke on the caller's loop; the stored messages read back exactly, ids and all."""
    from langgraph.graph import START, MessagesState, StateGraph

    def node(state: MessagesState) -> dict[str, Any]:
        call = {"id": "c1", "name": "fs_read", "args": {"path": "a.txt"}, "type": "tool_call"}
        return {
            "messages": [
                AIMessage(content="reading", tool_calls=[call], id="ai-1", response_metadata={"model": "fake"}),
                ToolMessage(content="no such file", tool_call_id="c1", status="error", id="tool-1"),
            ]
        }

    builder = StateGraph(MessagesState)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    store = create_store(store_config)
    saver = KodeSaver(store)
    try:
        graph = builder.compile(checkpointer=saver)
        run = {"configurable": {"thread_id": "async-1"}}
        await graph.ainvoke({"messages": [HumanMessage(content="read a.txt", id="h-1")]}, run)
        state = await graph.aget_state(run)
        expected = [
            HumanMessage(content="read a.txt", id="h-1"),
            AIMessage(
                content="reading",
                tool_calls=[{"id": "c1", "name": "fs_read", "args": {"path": "a.txt"}, "type": "tool_call"}],
                id="ai-1",
                response_metadata={"model": "fake"},
            ),
            ToolMessage(content="no such file", tool_call_id="c1", status="error", id="tool-1"),
        ]
        assert state.values["messages"] == expected
        stored = await store.load_messages("async-1")
        assert [m.role for m in stored] == ["user", "assistant", "user"]
        assert stored[2].content[0] == {
            "type": "tool_result",
            "tool_use_id": "c1",
            "content": "no such file",
            "is_error": True,
        }
        # Each message is stored once, however many checkpoints hold it.
        history = [s async for s in graph.aget_state_history(run)]
        assert len(history) >= 3
    finally:
        await store.close()


def test_thread_ids_that_are_not_agent_ids(tmp_path: Path) -> None:
    """Any thread id works; those kode would refuse as agent ids are mapped to a hashed one."""
    from langgraph.graph import START, MessagesState, StateGraph

    def node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="ok")]}

    builder = StateGraph(MessagesState)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    with KodeSaver.from_config({"type": "sqlite", "db_path": str(tmp_path / "k.db")}) as saver:
        graph = builder.compile(checkpointer=saver)
        for thread in ("user 1/chat ü", "x" * 300):
            run = {"configurable": {"thread_id": thread}}
            graph.invoke({"messages": [("user", "hi")]}, run)
            assert [m.content for m in graph.get_state(run).values["messages"]] == ["hi", "ok"]
            assert saver.agent_id(thread).startswith("lg-x.")
        assert [t.config["configurable"]["thread_id"] for t in saver.list(None, limit=1)] != []


def test_bad_prune_strategy_is_refused(tmp_path: Path) -> None:
    with (
        KodeSaver.from_config({"type": "sqlite", "db_path": str(tmp_path / "k.db")}) as saver,
        pytest.raises(ValueError, match="strategy"),
    ):
        saver.prune(["t"], strategy="keep_some")
