"""LangGraph checkpointers through a one-node ``MessagesState`` graph.

Per turn the graph is invoked on the session's thread with the user message as
input; its one node stands in for the model and returns the assistant message
(text plus one tool call) and the ``ToolMessage`` with the result, so the
``add_messages`` reducer appends all three. The checkpointer saves a
checkpoint per superstep (input, after ``__start__``, after the node) with the
graph's default durability. The history is read back with ``get_state``.

``InMemorySaver`` runs the same graph with nothing on disk: its time is the
graph's own cost, to subtract from the others.

``kode-langgraph-sqlite`` / ``kode-langgraph-postgres`` run the same graph on
this project's adapter, ``kode_sdk.integrations.langgraph.KodeSaver``, over a
SqliteStore / PostgresStore: the row to hold against LangGraph's own saver on
the same backend.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .common import Skip, System, Turn, pg_durability, search_path_options, sqlite_durability

__all__ = ["LangGraphSaver"]


class LangGraphSaver(System):
    """A compiled one-node graph over ``InMemorySaver``, ``SqliteSaver`` or ``PostgresSaver``."""

    sync = True
    writes_per_turn = (
        "one graph.invoke(): three checkpoints (input, __start__, node) and their pending writes; the whole "
        "message list is serialized again into each checkpoint (SqliteSaver) or into a blob per new channel "
        "version, two per turn (PostgresSaver)"
    )

    def __init__(self, *args: Any, saver: str) -> None:
        super().__init__(*args)
        self.saver_kind = saver
        self.backend = {
            "memory": "memory",
            "sqlite": "sqlite",
            "postgres": "postgres",
            "kode-sqlite": "sqlite",
            "kode-postgres": "postgres",
        }[saver]
        self.name = {
            "memory": "langgraph-inmemorysaver",
            "sqlite": "langgraph-sqlitesaver",
            "postgres": "langgraph-postgressaver",
            "kode-sqlite": "kode-langgraph-sqlite",
            "kode-postgres": "kode-langgraph-postgres",
        }[saver]
        if saver.startswith("kode-"):
            self.writes_per_turn = (
                "one graph.invoke() through KodeSaver: three checkpoints (each a Snapshot naming its messages "
                "by log position, plus the thread's info) and their pending writes; the turn's 3 new messages "
                "appended once to the thread's kode message log"
            )
        self.kode_store: Any = None
        self.graph: Any = None
        self.conn: Any = None
        self.pending: list[list[Any]] = []

    async def setup(self) -> None:
        try:
            from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
            from langgraph.graph import END, START, MessagesState, StateGraph
        except ImportError as exc:
            raise Skip(f"langgraph not installed ({exc})") from exc
        self._human, self._ai, self._tool = HumanMessage, AIMessage, ToolMessage
        saver = self._make_saver()
        pending = self.pending

        def model(state: MessagesState) -> dict[str, Any]:
            # Stands in for the model: the reply prepared for the turn being invoked.
            return {"messages": pending.pop()}

        builder = StateGraph(MessagesState)
        builder.add_node("model", model)
        builder.add_edge(START, "model")
        builder.add_edge("model", END)
        self.graph = builder.compile(checkpointer=saver)

    def _make_saver(self) -> Any:
        if self.saver_kind.startswith("kode-"):
            return self._make_kode_saver()
        if self.saver_kind == "memory":
            from langgraph.checkpoint.memory import InMemorySaver

            return InMemorySaver()
        if self.saver_kind == "sqlite":
            try:
                from langgraph.checkpoint.sqlite import SqliteSaver
            except ImportError as exc:
                raise Skip(f"langgraph-checkpoint-sqlite not installed ({exc})") from exc
            import sqlite3

            path = self.workspace.directory / "langgraph.db"
            self.workspace.files.append(path)
            # As the SqliteSaver docs show: one connection, shared under the saver's lock.
            self.conn = sqlite3.connect(path, check_same_thread=False)
            saver = SqliteSaver(self.conn)
            saver.setup()
            return saver
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
        except ImportError as exc:
            raise Skip(f"langgraph-checkpoint-postgres not installed ({exc})") from exc
        from psycopg import Connection
        from psycopg.rows import dict_row

        # The same connection settings PostgresSaver.from_conn_string uses, in the bench schema.
        self.conn = Connection.connect(
            self.workspace.dsn,
            autocommit=True,
            prepare_threshold=0,
            row_factory=dict_row,
            options=search_path_options(self.workspace.schema),
        )
        saver = PostgresSaver(self.conn)
        saver.setup()
        return saver

    def _make_kode_saver(self) -> Any:
        from kode_sdk.integrations.langgraph import KodeSaver
        from kode_sdk.store.postgres import PostgresStore
        from kode_sdk.store.sqlite import SqliteStore

        if self.saver_kind == "kode-sqlite":
            path = self.workspace.directory / "kode.db"
            self.workspace.files.append(path)
            self.kode_store = SqliteStore(path)
        else:
            self.kode_store = PostgresStore(self.workspace.dsn, schema=self.workspace.schema)
        # Blocking use, as the graph is invoked: the saver opens the store on its own loop thread.
        return KodeSaver(self.kode_store)

    def _config(self, session: int) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.conversation.session_ids[session]}}

    async def write_turn(self, session: int, turn: int) -> None:
        t = self.conversation.turns[session][turn]
        self.pending.append(
            [
                self._ai(
                    content=t.assistant,
                    tool_calls=[{"id": t.tool_id, "name": t.tool_name, "args": {"cmd": t.cmd}, "type": "tool_call"}],
                    id=f"ai-{session}-{turn}",
                ),
                self._tool(
                    content=t.result,
                    tool_call_id=t.tool_id,
                    status="error" if t.is_error else "success",
                    id=f"tool-{session}-{turn}",
                ),
            ]
        )
        self.graph.invoke(
            {"messages": [self._human(content=t.user, id=f"user-{session}-{turn}")]}, self._config(session)
        )

    async def read(self, session: int) -> Any:
        return self.graph.get_state(self._config(session)).values.get("messages", [])

    def decode(self, native: Any) -> list[Turn]:
        turns = []
        for i in range(0, len(native) - 2, 3):
            user, ai, tool = native[i : i + 3]
            call = ai.tool_calls[0]
            turns.append(
                Turn(
                    user=user.content,
                    assistant=ai.content,
                    tool_id=call["id"] if call["id"] == tool.tool_call_id else "<tool_call_id mismatch>",
                    tool_name=call["name"],
                    cmd=call["args"]["cmd"],
                    result=tool.content,
                    is_error=tool.status == "error",
                )
            )
        if len(native) % 3:
            turns.append(Turn("<partial turn>", "", "", "", "", "", None))
        return turns

    async def durability(self) -> str | None:
        if self.saver_kind.startswith("kode-"):
            return "the kode store's: as kode-sqlite-append / kode-postgres-append"
        if self.saver_kind == "memory":
            return "in memory: nothing persisted"
        return sqlite_durability(self.conn) if self.saver_kind == "sqlite" else pg_durability(self.conn)

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.kode_store is not None:
            saver = self.graph.checkpointer
            await asyncio.to_thread(saver._home.run, self.kode_store.close())
            saver._home.closed()
