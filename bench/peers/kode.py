"""This project's stores: ``SqliteStore`` and ``PostgresStore``.

Two ways of persisting a turn, reported as separate systems:

- ``append``: ``append_messages(agent_id, three_messages)`` — one call, one
  transaction, inserting three rows;
- ``save``: ``save_messages(agent_id, whole_list)`` — the full-list contract of
  the Store interface (the store diffs against what it saved last and writes
  only the new tail).

The history is read back with ``load_messages`` and compared message by
message with what was written, every block and field, not only the text.
"""

from __future__ import annotations

from typing import Any

from .common import Skip, System, Turn, sqlite_durability

__all__ = ["KodeStore"]


class KodeStore(System):
    """``SqliteStore`` / ``PostgresStore`` driven through ``append_messages`` or ``save_messages``."""

    def __init__(self, *args: Any, backend: str, mode: str) -> None:
        super().__init__(*args)
        self.backend = backend
        self.mode = mode
        self.name = f"kode-{backend}-{mode}"
        self.writes_per_turn = (
            "one append_messages() of the turn's 3 messages: one transaction inserting 3 rows"
            if mode == "append"
            else "one save_messages() of the whole list: the store diffs it against its last save and, "
            "in one transaction, inserts the 3 new rows"
        )
        self.store: Any = None
        self.history: list[list[dict[str, Any]]] = []

    async def setup(self) -> None:
        if self.backend == "sqlite":
            try:
                from kode_sdk.store.sqlite import SqliteStore
            except ImportError as exc:
                raise Skip(f"kode_sdk.store.sqlite not available ({exc})") from exc
            path = self.workspace.directory / "kode.db"
            self.workspace.files.append(path)
            self.store = SqliteStore(path)
        else:
            try:
                from kode_sdk.store.postgres import PostgresStore
            except ImportError as exc:
                raise Skip(f"kode_sdk.store.postgres not available ({exc})") from exc
            self.store = PostgresStore(self.workspace.dsn, schema=self.workspace.schema)
        await self.store.open()
        self.history = [[] for _ in self.conversation.session_ids]

    async def write_turn(self, session: int, turn: int) -> None:
        messages = self.conversation.turns[session][turn].kode_messages()
        agent_id = self.conversation.session_ids[session]
        if self.mode == "append":
            await self.store.append_messages(agent_id, messages)
            return
        history = self.history[session]
        history.extend(messages)
        await self.store.save_messages(agent_id, history)

    async def read(self, session: int) -> Any:
        return await self.store.load_messages(self.conversation.session_ids[session])

    def decode(self, native: Any) -> list[Turn]:
        if any(m.metadata is not None for m in native):
            return [Turn("<metadata that was never written came back>", "", "", "", "", "", None)]
        wire = [{"role": m.role, "content": m.content} for m in native]
        turns = []
        for i in range(0, len(wire) - 2, 3):
            user, assistant, result = wire[i : i + 3]
            use = assistant["content"][1]
            block = result["content"][0]
            decoded = Turn(
                user=user["content"][0]["text"],
                assistant=assistant["content"][0]["text"],
                tool_id=use["id"] if use["id"] == block["tool_use_id"] else "<tool_use_id mismatch>",
                tool_name=use["name"],
                cmd=use["input"]["cmd"],
                result=block["content"],
                is_error=block["is_error"],
            )
            # Beyond the shared fields: the messages must equal what was written, exactly.
            if [user, assistant, result] != decoded.kode_messages():
                decoded = decoded._replace(user="<message differs from what was written>")
            turns.append(decoded)
        if len(wire) % 3:
            turns.append(Turn("<partial turn>", "", "", "", "", "", None))
        return turns

    async def durability(self) -> str | None:
        # Read from the store's own connection; the stores expose no public way,
        # so this reaches into their internals and says "unknown" if they change.
        try:
            if self.backend == "sqlite":
                return str(await self.store._hop(sqlite_durability))
            async with self.store._pool.connection() as conn:
                row = await (await conn.execute("SHOW synchronous_commit")).fetchone()
                value = row[0] if isinstance(row, tuple | list) else next(iter(row.values()))
                return f"synchronous_commit={value}"
        except Exception:
            return "unknown (store internals changed)"

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()
