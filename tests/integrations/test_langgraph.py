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


def kode_cli(*args: str) -> str:
    """What ``kode ARGS`` prints."""
    done = subprocess.run(
        [sys.executable, "-m", "kode_sdk.cli", *args], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


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
    if store_config["type"] == "sqlite":
        # And from the shell: `kode messages` lists the thread's tool calls.
        out = kode_cli(
            "-s", f"sqlite:{store_config['db_path']}", "messages", "--agent", "chat-1", "-c", "tool_use", "--json"
        )
        assert [m["content"][0]["id"] for m in json.loads(out)] == ["call_3", "call_2", "call_1"]


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


def test_writes_of_parallel_tasks_are_all_kept(tmp_path: Path) -> None:
    """Parallel tasks of one step store their writes at the same time, from several threads."""
    import threading

    from langgraph.checkpoint.base import empty_checkpoint

    with KodeSaver.from_config({"type": "sqlite", "db_path": str(tmp_path / "k.db")}) as saver:
        stored = saver.put({"configurable": {"thread_id": "fan", "checkpoint_ns": ""}}, empty_checkpoint(), {}, {})
        start = threading.Barrier(8)

        def task(i: int) -> None:
            start.wait()
            for j in range(5):
                saver.put_writes(stored, [(f"ch{j}", i)], task_id=f"task-{i}", task_path=f"~{i}")

        threads = [threading.Thread(target=task, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tup = saver.get_tuple(stored)
        assert tup is not None
        # Each task's first write (idx 0) is kept once; the other four repeat idx 0 and are ignored.
        assert sorted((w[0], w[2]) for w in tup.pending_writes or []) == [(f"task-{i}", i) for i in range(8)]


def test_a_saver_sees_checkpoints_another_process_wrote_since(tmp_path: Path) -> None:
    """Two savers on one database (as two processes): what one remembers never hides what the other wrote."""
    from langgraph.checkpoint.base import create_checkpoint, empty_checkpoint

    config = {"type": "sqlite", "db_path": str(tmp_path / "k.db")}
    thread = {"configurable": {"thread_id": "shared", "checkpoint_ns": ""}}
    with KodeSaver.from_config(config) as one, KodeSaver.from_config(config) as two:
        first = one.put(thread, empty_checkpoint(), {"step": 1}, {})
        tup = one.get_tuple(thread)
        assert tup is not None and tup.config == first
        # The other saver moves the thread on and stores writes against its new checkpoint.
        second = two.put(first, create_checkpoint(empty_checkpoint(), None, 2), {"step": 2}, {})
        two.put_writes(second, [("ch", "from two")], task_id="t-2")
        tup = one.get_tuple(thread)
        assert tup is not None and tup.config == second and tup.metadata["step"] == 2
        assert [(w[0], w[2]) for w in tup.pending_writes or []] == [("t-2", "from two")]
        # And back: the first saver's newer checkpoint is what the second one reads next.
        third = one.put(second, create_checkpoint(empty_checkpoint(), None, 3), {"step": 3}, {})
        tup = two.get_tuple(thread)
        assert tup is not None and tup.config == third and tup.pending_writes == []


def test_blocking_then_async_use_of_one_saver(tmp_path: Path) -> None:
    """invoke() first (the store opens on the saver's own loop), then ainvoke() from another loop."""
    import asyncio

    from langgraph.graph import START, MessagesState, StateGraph

    def node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"reply {len(state['messages'])}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    with KodeSaver.from_config({"type": "sqlite", "db_path": str(tmp_path / "k.db")}) as saver:
        graph = builder.compile(checkpointer=saver)
        run = {"configurable": {"thread_id": "mixed"}}
        graph.invoke({"messages": [("user", "one")]}, run)

        async def more() -> list[str]:
            await graph.ainvoke({"messages": [("user", "two")]}, run)
            state = await graph.aget_state(run)
            return [str(m.content) for m in state.values["messages"]]

        assert asyncio.run(more()) == ["one", "reply 1", "two", "reply 3"]
        assert [str(m.content) for m in graph.get_state(run).values["messages"]][-1] == "reply 3"


def test_removed_and_replaced_messages_and_time_travel(tmp_path: Path) -> None:
    """State stays exact when a graph removes or rewrites messages, or runs again from an old checkpoint;
    the kode message list keeps every message the thread held (it is the thread's log)."""
    from langchain_core.messages import RemoveMessage
    from langgraph.graph import START, MessagesState, StateGraph

    def node(state: MessagesState) -> dict[str, Any]:
        last = state["messages"][-1]
        text = str(last.content)
        if text == "forget":
            return {"messages": [RemoveMessage(id=m.id) for m in state["messages"] if m.content == "secret"]}
        if text == "fix":
            first = state["messages"][0]
            return {"messages": [HumanMessage(content="hello (edited)", id=first.id)]}
        return {"messages": [AIMessage(content=f"echo {text}", id=f"ai-{text}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    path = tmp_path / "k.db"
    with KodeSaver.from_config({"type": "sqlite", "db_path": str(path)}) as saver:
        graph = builder.compile(checkpointer=saver)
        run = {"configurable": {"thread_id": "edits"}}
        for text in ("hello", "secret", "forget", "fix"):
            graph.invoke({"messages": [HumanMessage(content=text, id=f"h-{text}")]}, run)
        contents = [m.content for m in graph.get_state(run).values["messages"]]
        assert contents == ["hello (edited)", "echo hello", "echo secret", "forget", "fix"]

        # Run again from the checkpoint after the first turn: a fork with its own history.
        history = list(graph.get_state_history(run))
        after_first = next(
            s for s in history if [m.content for m in s.values.get("messages", [])] == ["hello", "echo hello"]
        )
        graph.invoke({"messages": [HumanMessage(content="again", id="h-again")]}, after_first.config)
        contents = [m.content for m in graph.get_state(run).values["messages"]]
        assert contents == ["hello", "echo hello", "again", "echo again"]

    async def log() -> list[Any]:
        store = create_store({"type": "sqlite", "db_path": str(path)})
        try:
            return [m.content[0]["text"] for m in await store.load_messages("edits")]
        finally:
            await store.close()

    import asyncio

    logged = asyncio.run(log())
    assert logged[:2] == ["hello", "echo hello"] and "secret" in logged and "hello (edited)" in logged
    assert logged[-2:] == ["again", "echo again"] and len(logged) == len(set(logged))


def test_a_closed_home_loop_is_a_clear_error(tmp_path: Path) -> None:
    """A store lives on the loop that first used it; once that loop is gone, say so (never hang)."""
    import asyncio

    from langgraph.checkpoint.base import empty_checkpoint

    saver = KodeSaver(create_store({"type": "sqlite", "db_path": str(tmp_path / "k.db")}))
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}

    async def first() -> None:
        await saver.aput(config, empty_checkpoint(), {}, {})

    asyncio.run(first())
    with pytest.raises(RuntimeError, match="is closed"):
        saver.get_tuple(config)


def test_puts_of_a_run_reuse_the_info_and_two_savers_take_turns(tmp_path: Path) -> None:
    """A run reads the thread's info once (get_tuple) and its puts reuse it; two savers on one
    database (two workers) taking turns on a thread still build one message log."""
    from langgraph.graph import START, MessagesState, StateGraph

    def node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"reply {len(state['messages'])}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    config = {"type": "sqlite", "db_path": str(tmp_path / "k.db")}
    run = {"configurable": {"thread_id": "turns"}}
    with KodeSaver.from_config(config) as one, KodeSaver.from_config(config) as two:
        graphs = [builder.compile(checkpointer=one), builder.compile(checkpointer=two)]
        reads = []
        original = type(one.store).load_info

        async def counting(store: Any, agent_id: str) -> Any:
            reads.append(agent_id)
            return await original(store, agent_id)

        type(one.store).load_info = counting  # type: ignore[method-assign]
        try:
            for i in range(6):
                before = len(reads)
                graphs[i % 2].invoke({"messages": [("user", f"u{i}")]}, run)
                # get_tuple's read only; the run's three checkpoints reuse it.
                assert len(reads) - before == 1
        finally:
            type(one.store).load_info = original  # type: ignore[method-assign]
        want = [text for i in range(6) for text in (f"u{i}", f"reply {2 * i + 1}")]
        for graph in graphs:
            assert [str(m.content) for m in graph.get_state(run).values["messages"]] == want
        store = one.store
        messages = one._home.run(store.load_messages(one.agent_id("turns")))
        assert [m.content[0]["text"] for m in messages] == want
