"""One process's part of the LangGraph restart test: run turns on a thread, print the state, exit.

``python langgraph_child.py '<store config JSON>' <thread_id> <user text>...``: builds
the graph (a scripted model node that calls the ``add`` tool, then answers with
the sum; LangGraph's prebuilt ``ToolNode`` runs the tool), runs one
``graph.invoke`` per user text through a KodeSaver, prints the thread's
messages as JSON lines ``[type, content, tool_calls]`` and exits without
closing anything.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from kode_sdk import create_store
from kode_sdk.integrations.langgraph import KodeSaver


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def model(state: MessagesState) -> dict[str, Any]:
    """A scripted model: ask for add(<n>, <turns so far>), then report the tool's answer."""
    last = state["messages"][-1]
    turn = sum(1 for m in state["messages"] if m.type == "human")
    if isinstance(last, ToolMessage):
        return {"messages": [AIMessage(content=f"turn {turn}: the sum is {last.content}")]}
    n = int(str(last.content).split()[-1])
    call = {"id": f"call_{turn}", "name": "add", "args": {"a": n, "b": turn}, "type": "tool_call"}
    return {"messages": [AIMessage(content="", tool_calls=[call])]}


def build(saver: KodeSaver) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("model", model)
    builder.add_node("tools", ToolNode([add]))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition)
    builder.add_edge("tools", "model")
    return builder.compile(checkpointer=saver)


def describe(messages: list[BaseMessage]) -> list[list[Any]]:
    return [[m.type, m.content, getattr(m, "tool_calls", [])] for m in messages]


def main() -> None:
    config, thread_id, texts = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
    graph = build(KodeSaver(create_store(config)))
    run = {"configurable": {"thread_id": thread_id}}
    for text in texts:
        graph.invoke({"messages": [("user", text)]}, run)
    print(json.dumps(describe(graph.get_state(run).values["messages"])))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
