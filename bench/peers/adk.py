"""Google ADK ``DatabaseSessionService`` (SQLAlchemy async engine).

Natively the ADK Runner appends each event as it is produced, so one turn is
three ``append_event`` calls (three transactions): the user's text, the
model's text plus ``function_call``, and the ``function_response``. Each call
locks and re-reads the session row, checks it is not stale, updates it, and
inserts the event as JSON. Sessions are created with ``create_session``
inside the timed write phase (20 calls against 2,400 appends). The history is
read back with ``get_session``.
"""

from __future__ import annotations

from typing import Any

from .common import Skip, System, Turn, engine_durability, sqlalchemy_pg_url

__all__ = ["ADKDatabaseSessions", "KodeADKSessions"]

APP = "w4"
USER = "bench-user"
AGENT = "assistant"


class ADKDatabaseSessions(System):
    """``google.adk.sessions.DatabaseSessionService`` on SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

    writes_per_turn = (
        "three append_event() calls, one transaction each: select the session row (FOR UPDATE on "
        "PostgreSQL), app and user state rows, update the session, insert the event as JSON"
    )

    def __init__(self, *args: Any, backend: str) -> None:
        super().__init__(*args)
        self.backend = backend
        self.name = f"adk-databasesessionservice-{backend}"
        self.service: Any = None
        self.sessions: list[Any] = []

    async def setup(self) -> None:
        try:
            from google.adk.events import Event
            from google.adk.sessions import DatabaseSessionService
            from google.genai import types
        except ImportError as exc:
            raise Skip(f"google-adk not installed ({exc})") from exc
        self._event, self._types = Event, types
        if self.backend == "sqlite":
            path = self.workspace.directory / "adk.db"
            self.workspace.files.append(path)
            self.service = DatabaseSessionService(f"sqlite+aiosqlite:///{path}")
        else:
            try:
                import asyncpg  # noqa: F401
            except ImportError as exc:
                raise Skip("asyncpg (ADK's PostgreSQL driver) not installed") from exc
            url = sqlalchemy_pg_url(self.workspace.dsn, "asyncpg")
            self.service = DatabaseSessionService(
                url, connect_args={"server_settings": {"search_path": self.workspace.schema}}
            )
        await self.service.prepare_tables()

    async def write_turn(self, session: int, turn: int) -> None:
        if turn == 0 and len(self.sessions) == session:
            self.sessions.append(
                await self.service.create_session(
                    app_name=APP, user_id=USER, session_id=self.conversation.session_ids[session]
                )
            )
        t = self.conversation.turns[session][turn]
        types, event = self._types, self._event
        live = self.sessions[session]
        invocation = f"inv-{session}-{turn}"
        await self.service.append_event(
            live,
            event(
                invocation_id=invocation,
                author="user",
                content=types.Content(role="user", parts=[types.Part(text=t.user)]),
            ),
        )
        await self.service.append_event(
            live,
            event(
                invocation_id=invocation,
                author=AGENT,
                content=types.Content(
                    role="model",
                    parts=[
                        types.Part(text=t.assistant),
                        types.Part(
                            function_call=types.FunctionCall(id=t.tool_id, name=t.tool_name, args={"cmd": t.cmd})
                        ),
                    ],
                ),
            ),
        )
        await self.service.append_event(
            live,
            event(
                invocation_id=invocation,
                author=AGENT,
                content=types.Content(
                    role="user",
                    parts=[
                        types.Part(
                            function_response=types.FunctionResponse(
                                id=t.tool_id, name=t.tool_name, response={"output": t.result, "is_error": t.is_error}
                            )
                        )
                    ],
                ),
            ),
        )

    async def read(self, session: int) -> Any:
        got = await self.service.get_session(
            app_name=APP, user_id=USER, session_id=self.conversation.session_ids[session]
        )
        return got.events if got is not None else []

    def decode(self, native: Any) -> list[Turn]:
        turns = []
        for i in range(0, len(native) - 2, 3):
            user, model, result = (e.content.parts for e in native[i : i + 3])
            call = model[1].function_call
            response = result[0].function_response
            turns.append(
                Turn(
                    user=user[0].text,
                    assistant=model[0].text,
                    tool_id=call.id if call.id == response.id else "<function id mismatch>",
                    tool_name=call.name,
                    cmd=call.args["cmd"],
                    result=response.response["output"],
                    is_error=response.response["is_error"],
                )
            )
        if len(native) % 3:
            turns.append(Turn("<partial turn>", "", "", "", "", "", None))
        return turns

    async def durability(self) -> str | None:
        return await engine_durability(self.service.db_engine)

    async def close(self) -> None:
        if self.service is not None:
            await self.service.close()


class KodeADKSessions(ADKDatabaseSessions):
    """This project's adapter, ``kode_sdk.integrations.adk.KodeSessionService``, on a SqliteStore or
    PostgresStore, driven exactly as ``DatabaseSessionService`` is: the row to hold against it."""

    writes_per_turn = (
        "three append_event() calls: each reads the session's info and appends the event as one kode "
        "message (text, tool_use, tool_result blocks) in one transaction"
    )

    def __init__(self, *args: Any, backend: str) -> None:
        super().__init__(*args, backend=backend)
        self.name = f"kode-adk-{backend}"
        self.store: Any = None

    async def setup(self) -> None:
        try:
            from google.adk.events import Event
            from google.genai import types

            from kode_sdk.integrations.adk import KodeSessionService
        except ImportError as exc:
            raise Skip(f"google-adk not installed ({exc})") from exc
        self._event, self._types = Event, types
        if self.backend == "sqlite":
            from kode_sdk.store.sqlite import SqliteStore

            path = self.workspace.directory / "kode.db"
            self.workspace.files.append(path)
            self.store = SqliteStore(path)
        else:
            from kode_sdk.store.postgres import PostgresStore

            self.store = PostgresStore(self.workspace.dsn, schema=self.workspace.schema)
        await self.store.open()
        self.service = KodeSessionService(self.store)

    async def durability(self) -> str | None:
        return "the kode store's: as kode-sqlite-append / kode-postgres-append"

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
