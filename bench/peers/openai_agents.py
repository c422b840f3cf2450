"""OpenAI Agents SDK sessions: ``SQLiteSession`` and ``SQLAlchemySession``.

Natively the Runner stores Responses-API input items; one turn here is four
items (the user message, the assistant's output message, its
``function_call``, the ``function_call_output``) added with one
``add_items`` call. A ``function_call_output`` has no error flag, so
``is_error`` is not compared for these systems.
"""

from __future__ import annotations

import json
from typing import Any

from .common import (
    Skip,
    System,
    Turn,
    engine_durability,
    search_path_options,
    sqlalchemy_pg_url,
    sqlite_durability,
)

__all__ = ["KodeAgentsSession", "OpenAISQLAlchemy", "OpenAISQLiteSession"]


def turn_items(turn: Turn, session: int, index: int) -> list[dict[str, Any]]:
    """The turn as the Agents SDK Runner would save it."""
    return [
        {"role": "user", "content": turn.user},
        {
            "id": f"msg_{session}_{index}",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": turn.assistant, "annotations": []}],
        },
        {
            "id": f"fc_{session}_{index}",
            "type": "function_call",
            "call_id": turn.tool_id,
            "name": turn.tool_name,
            "arguments": json.dumps({"cmd": turn.cmd}),
            "status": "completed",
        },
        {"type": "function_call_output", "call_id": turn.tool_id, "output": turn.result},
    ]


def decode_items(items: list[Any]) -> list[Turn]:
    """Group four items per turn back into :class:`Turn` tuples."""
    turns = []
    for i in range(0, len(items) - 3, 4):
        user, message, call, output = items[i : i + 4]
        turns.append(
            Turn(
                user=user["content"],
                assistant=message["content"][0]["text"],
                tool_id=call["call_id"] if call["call_id"] == output["call_id"] else "<call_id mismatch>",
                tool_name=call["name"],
                cmd=json.loads(call["arguments"])["cmd"],
                result=output["output"],
                is_error=None,
            )
        )
    if len(items) % 4:
        turns.append(Turn("<partial turn>", "", "", "", "", "", None))
    return turns


class _AgentsSession(System):
    masked = ("is_error",)
    writes_per_turn = (
        "one add_items() of 4 Responses items (user message, assistant message, function_call, "
        "function_call_output): one transaction inserting 4 JSON rows and touching the session row"
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sessions: list[Any] = []

    async def write_turn(self, session: int, turn: int) -> None:
        await self.sessions[session].add_items(turn_items(self.conversation.turns[session][turn], session, turn))

    async def read(self, session: int) -> Any:
        return await self.sessions[session].get_items()

    def decode(self, native: Any) -> list[Turn]:
        return decode_items(native)


class OpenAISQLiteSession(_AgentsSession):
    """``agents.SQLiteSession``: sqlite3 in a worker thread, one file, WAL."""

    name = "openai-sqlitesession"
    backend = "sqlite"

    def __init__(self, *args: Any, synchronous: str | None = None) -> None:
        super().__init__(*args)
        self.synchronous = synchronous
        if synchronous is not None:
            self.name = f"openai-sqlitesession-sync-{synchronous.lower()}"

    async def setup(self) -> None:
        try:
            from agents import SQLiteSession
        except ImportError as exc:
            raise Skip(f"openai-agents not installed ({exc})") from exc
        path = self.workspace.directory / "openai.db"
        self.workspace.files.append(path)
        session_class = (
            SQLiteSession if self.synchronous is None else _with_synchronous(SQLiteSession, self.synchronous)
        )
        self.sessions = [session_class(sid, path) for sid in self.conversation.session_ids]

    async def durability(self) -> str | None:
        # The session's own connection for this thread, configured as the SDK configures every one.
        return sqlite_durability(self.sessions[0]._get_connection())

    async def close(self) -> None:
        for session in self.sessions:
            session.close()


def _with_synchronous(base: Any, level: str) -> Any:
    """``SQLiteSession`` with ``PRAGMA synchronous=<level>`` on every connection it opens.

    Not how the SDK ships: a like-for-like row, at the durability level
    SqliteStore runs at, so the comparison does not hinge on fsync policy.
    """

    class Session(base):  # type: ignore[misc,valid-type]
        @staticmethod
        def _configure_connection(conn: Any) -> None:
            base._configure_connection(conn)
            conn.execute(f"PRAGMA synchronous={level}")

    return Session


class OpenAISQLAlchemy(_AgentsSession):
    """``agents.extensions.memory.SQLAlchemySession`` over one shared async engine."""

    def __init__(self, *args: Any, driver: str) -> None:
        super().__init__(*args)
        self.driver = driver
        self.backend = "sqlite" if driver == "aiosqlite" else "postgres"
        self.name = f"openai-sqlalchemy-{driver}"
        self.engine: Any = None

    async def setup(self) -> None:
        try:
            from agents.extensions.memory import SQLAlchemySession
            from sqlalchemy.ext.asyncio import create_async_engine
        except ImportError as exc:
            raise Skip(f"openai-agents SQLAlchemySession not importable ({exc})") from exc
        try:
            __import__(self.driver)
        except ImportError as exc:
            raise Skip(f"driver {self.driver} not installed") from exc
        if self.driver == "aiosqlite":
            path = self.workspace.directory / "openai_sqlalchemy.db"
            self.workspace.files.append(path)
            self.engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        else:
            url = sqlalchemy_pg_url(self.workspace.dsn, self.driver)
            self.engine = create_async_engine(url, connect_args=_pg_connect_args(self.driver, self.workspace.schema))
        self.sessions = [
            SQLAlchemySession(sid, engine=self.engine, create_tables=True) for sid in self.conversation.session_ids
        ]
        # Tables are created on first use; do it now so it is not timed.
        await self.sessions[0].get_items()

    async def durability(self) -> str | None:
        return await engine_durability(self.engine)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


def _pg_connect_args(driver: str, schema: str) -> dict[str, Any]:
    """Connection arguments that put every table this system creates in ``schema``."""
    if driver == "asyncpg":
        return {"server_settings": {"search_path": schema}}
    return {"options": search_path_options(schema)}


class KodeAgentsSession(_AgentsSession):
    """This project's adapter, ``kode_sdk.integrations.openai_agents.KodeSession``, on a
    SqliteStore or PostgresStore: the row to hold against the SDK's own sessions."""

    writes_per_turn = (
        "one add_items() of the 4 Responses items: one append_messages() of 4 kode messages "
        "(text, tool_use, tool_result blocks), one transaction"
    )

    def __init__(self, *args: Any, backend: str) -> None:
        super().__init__(*args)
        self.backend = backend
        self.name = f"kode-openai-session-{backend}"
        self.store: Any = None

    async def setup(self) -> None:
        try:
            from kode_sdk.integrations.openai_agents import KodeSession
        except ImportError as exc:
            raise Skip(f"openai-agents not installed ({exc})") from exc
        if self.backend == "sqlite":
            from kode_sdk.store.sqlite import SqliteStore

            path = self.workspace.directory / "kode.db"
            self.workspace.files.append(path)
            self.store = SqliteStore(path)
        else:
            from kode_sdk.store.postgres import PostgresStore

            self.store = PostgresStore(self.workspace.dsn, schema=self.workspace.schema)
        await self.store.open()
        self.sessions = [KodeSession(sid, self.store) for sid in self.conversation.session_ids]

    async def durability(self) -> str | None:
        return "the kode store's: as kode-sqlite-append / kode-postgres-append"

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
