"""The floors: the rows a store writes, written with the bare driver.

No validation, no store, no thread hop: one transaction per W1 turn that
inserts the turn's three message rows, upserts its tool-call row, inserts its
six event rows and upserts the agent row. JSON is still encoded (orjson) and
decoded on reads, because a store cannot skip that either.

The schema is the bench's own but carries the indexes a query-capable store
needs, so the floor pays the same index maintenance (it is not an unindexed
strawman). Every primary key begins with ``agent_id``, as in the stores:

- ``agents``      PK (agent_id); (template_id, created_at); (created_at)
- ``messages``    PK (agent_id, seq); (agent_id, role, created_at); (created_at)
- ``tool_calls``  PK (agent_id, id); (agent_id, created_at); (name, is_error, created_at)
- ``events``      PK (agent_id, seq); (agent_id, channel, seq)
- ``snapshots``   PK (agent_id, id) (empty; counted by the stats query)

SQLite runs in WAL mode with ``synchronous=NORMAL``, like SqliteStore.
PostgreSQL uses psycopg 3 async, one connection, pipeline mode (one round
trip per transaction), JSONB columns, in a throwaway schema.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

import data
from workloads import (
    BackendUnavailable,
    compare_lists,
    default_dsn,
    dir_size,
    drop_postgres_schema,
    postgres_schema_size,
    throwaway_schema,
)

# --------------------------------------------------------------------------- rows (shared)


def dumps(value: Any) -> str:
    """JSON text of ``value`` (orjson)."""
    return orjson.dumps(value).decode()


def content_types(wire: dict[str, Any]) -> str:
    """The distinct block types of a message, space-separated (the
    ``content_type`` filter needs them without parsing JSON)."""
    seen: dict[str, None] = {}
    for block in wire["content"]:
        seen[block["type"]] = None
    return " ".join(seen)


def message_rows(agent_id: str, first_seq: int, wires: Iterable[dict[str, Any]], now: int) -> list[tuple[Any, ...]]:
    """(agent_id, seq, role, content_types, created_at, data) per message."""
    return [(agent_id, first_seq + i, w["role"], content_types(w), now, dumps(w)) for i, w in enumerate(wires)]


def tool_call_row(agent_id: str, wire: dict[str, Any]) -> tuple[Any, ...]:
    """(agent_id, id, name, state, is_error, approval_required, created_at, updated_at, data)."""
    return (
        agent_id,
        wire["id"],
        wire["name"],
        wire["state"],
        wire["isError"],
        wire["approval"]["required"],
        wire["createdAt"],
        wire["updatedAt"],
        dumps(wire),
    )


def event_row(agent_id: str, wire: dict[str, Any]) -> tuple[Any, ...]:
    """(agent_id, seq, channel, type, timestamp, data)."""
    event = wire["event"]
    return (
        agent_id,
        wire["bookmark"]["seq"],
        event["channel"],
        event["type"],
        wire["bookmark"]["timestamp"],
        dumps(wire),
    )


def agent_row(wire: dict[str, Any], message_count: int, now: int) -> tuple[Any, ...]:
    """(agent_id, template_id, created_at, updated_at, message_count, last_sfp_index, breakpoint, user_id, data)."""
    metadata = wire.get("metadata") or {}
    return (
        wire["agentId"],
        wire["templateId"],
        wire["createdAt"],
        now,
        message_count,
        wire["lastSfpIndex"],
        wire.get("breakpoint"),
        metadata.get("userId", metadata.get("user_id")),
        dumps(wire),
    )


COLUMNS = {
    "messages": "agent_id, seq, role, content_types, created_at, data",
    "tool_calls": "agent_id, id, name, state, is_error, approval_required, created_at, updated_at, data",
    "events": "agent_id, seq, channel, type, timestamp, data",
    "agents": "agent_id, template_id, created_at, updated_at, message_count, last_sfp_index, breakpoint, user_id, data",
}
TOOL_CALL_UPDATE = (
    "name = excluded.name, state = excluded.state, is_error = excluded.is_error,"
    " approval_required = excluded.approval_required, updated_at = excluded.updated_at, data = excluded.data"
)
AGENT_UPDATE = (
    "template_id = excluded.template_id, updated_at = excluded.updated_at, message_count = excluded.message_count,"
    " last_sfp_index = excluded.last_sfp_index, breakpoint = excluded.breakpoint, user_id = excluded.user_id,"
    " data = excluded.data"
)

# --------------------------------------------------------------------------- SQLite

SQLITE_SCHEMA = """
CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY, template_id TEXT NOT NULL, created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL, message_count INTEGER NOT NULL, last_sfp_index INTEGER NOT NULL,
    breakpoint TEXT, user_id TEXT, data TEXT NOT NULL);
CREATE INDEX agents_template ON agents (template_id, created_at);
CREATE INDEX agents_created ON agents (created_at);
CREATE TABLE messages (
    agent_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content_types TEXT NOT NULL,
    created_at INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (agent_id, seq));
CREATE INDEX messages_role ON messages (agent_id, role, created_at);
CREATE INDEX messages_created ON messages (created_at);
CREATE TABLE tool_calls (
    agent_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
    is_error INTEGER NOT NULL, approval_required INTEGER NOT NULL, created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (agent_id, id));
CREATE INDEX tool_calls_agent ON tool_calls (agent_id, created_at);
CREATE INDEX tool_calls_name ON tool_calls (name, is_error, created_at);
CREATE TABLE events (
    agent_id TEXT NOT NULL, seq INTEGER NOT NULL, channel TEXT NOT NULL, type TEXT NOT NULL,
    timestamp INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (agent_id, seq));
CREATE INDEX events_channel ON events (agent_id, channel, seq);
CREATE TABLE snapshots (agent_id TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (agent_id, id));
"""


def _insert(table: str, placeholder: str) -> str:
    count = COLUMNS[table].count(",") + 1
    return f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({', '.join([placeholder] * count)})"


class SqliteRaw:
    """The SQLite floor: bare ``sqlite3``, synchronous calls on the event loop."""

    backend = "sqlite-raw"

    def __init__(self, workdir: Path, event_batch: int) -> None:
        self.path = workdir / "raw.db"
        self.workdir = workdir
        self.event_batch = event_batch
        self.size_bytes: int | None = None
        self.con: sqlite3.Connection | None = None
        self._insert_messages = _insert("messages", "?")
        self._upsert_tool_call = (
            _insert("tool_calls", "?") + f" ON CONFLICT (agent_id, id) DO UPDATE SET {TOOL_CALL_UPDATE}"
        )
        self._insert_events = _insert("events", "?")
        self._upsert_agent = _insert("agents", "?") + f" ON CONFLICT (agent_id) DO UPDATE SET {AGENT_UPDATE}"

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
        con.executescript(SQLITE_SCHEMA)
        self.con = con

    async def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
        self.size_bytes = dir_size(self.workdir)

    @property
    def _con(self) -> sqlite3.Connection:
        assert self.con is not None
        return self.con

    # W1 ---------------------------------------------------------------------

    async def turn(self, agent_id: str, turn: data.Turn, messages: list[Any], records: list[Any]) -> None:
        con = self._con
        first = len(messages)
        messages.extend(turn.message_wires)
        records.append(turn.record_wire)
        now = data.now_ms()
        con.execute("BEGIN")
        try:
            con.executemany(self._insert_messages, message_rows(agent_id, first, turn.message_wires, now))
            con.execute(self._upsert_tool_call, tool_call_row(agent_id, turn.record_wire))
            con.executemany(self._insert_events, [event_row(agent_id, e) for e in turn.event_wires])
            con.execute(self._upsert_agent, agent_row(turn.info_wire, len(messages), now))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    async def verify_agent(
        self, agent_id: str, messages: list[Any], records: list[Any], events: int, message_count: int
    ) -> list[str]:
        con = self._con
        loaded = [
            orjson.loads(r[0])
            for r in con.execute("SELECT data FROM messages WHERE agent_id = ? ORDER BY seq", (agent_id,))
        ]
        problems = compare_lists(f"{agent_id} messages", loaded, messages)
        calls = [
            orjson.loads(r[0])
            for r in con.execute("SELECT data FROM tool_calls WHERE agent_id = ? ORDER BY created_at, id", (agent_id,))
        ]
        problems += compare_lists(f"{agent_id} tool calls", calls, records)
        seqs = await self.read_events(agent_id)
        if seqs != list(range(1, events + 1)):
            problems.append(f"{agent_id} events: read {len(seqs)}, expected seq 1..{events}")
        row = con.execute("SELECT message_count FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
        if row is None or row[0] != message_count:
            problems.append(f"{agent_id} agent row: message_count {row and row[0]}, expected {message_count}")
        return problems

    # W2 ---------------------------------------------------------------------

    async def append_events(self, agent_id: str, events: list[data.Timeline]) -> None:
        # Batched like a group commit; one event per transaction would be a strawman.
        con = self._con
        for start in range(0, len(events), self.event_batch):
            batch = events[start : start + self.event_batch]
            con.execute("BEGIN")
            con.executemany(self._insert_events, [event_row(agent_id, e.to_wire()) for e in batch])
            con.execute("COMMIT")

    async def read_events(self, agent_id: str, since: int | None = None, channel: str | None = None) -> list[int]:
        sql = "SELECT data FROM events WHERE agent_id = ? AND seq > ?"
        params: list[Any] = [agent_id, -(2**63) if since is None else since]
        if channel is not None:
            sql += " AND channel = ?"
            params.append(channel)
        rows = [orjson.loads(r[0]) for r in self._con.execute(sql + " ORDER BY seq", params)]
        return [r["bookmark"]["seq"] for r in rows]

    # W3 ---------------------------------------------------------------------

    async def populate(self, population: list[data.Population], concurrency: int) -> None:
        con = self._con
        for p in population:
            now = data.now_ms()
            con.execute("BEGIN")
            con.execute(self._upsert_agent, agent_row(p.info.to_wire(), len(p.message_wires), now))
            con.executemany(self._insert_messages, message_rows(p.agent_id, 0, p.message_wires, now))
            con.executemany(self._upsert_tool_call, [tool_call_row(p.agent_id, w) for w in p.record_wires])
            con.execute("COMMIT")

    async def query_sessions(self, template_id: str) -> int:
        rows = self._con.execute(
            "SELECT agent_id, template_id, created_at, updated_at, message_count, last_sfp_index, breakpoint, data"
            " FROM agents WHERE template_id = ? ORDER BY created_at DESC, agent_id DESC LIMIT 20",
            (template_id,),
        ).fetchall()
        return len([(r, orjson.loads(r[7])) for r in rows])

    async def query_messages(self, agent_id: str) -> int:
        rows = self._con.execute(
            "SELECT seq, created_at, data FROM messages WHERE agent_id = ? AND role = ?"
            " ORDER BY created_at DESC, seq DESC LIMIT 50",
            (agent_id, "assistant"),
        ).fetchall()
        return len([(r[0], r[1], orjson.loads(r[2])) for r in rows])

    async def query_tool_calls(self) -> int:
        rows = self._con.execute(
            "SELECT agent_id, data FROM tool_calls WHERE name = ? AND is_error = 1"
            " ORDER BY created_at DESC, agent_id DESC, id DESC LIMIT 10",
            ("bash_run",),
        ).fetchall()
        return len([(r[0], orjson.loads(r[1])) for r in rows])

    async def query_stats(self, agent_id: str) -> tuple[int, int]:
        con = self._con
        by_role = dict(con.execute("SELECT role, count(*) FROM messages WHERE agent_id = ? GROUP BY role", (agent_id,)))
        by_state_name = con.execute(
            "SELECT state, name, count(*) FROM tool_calls WHERE agent_id = ? GROUP BY state, name", (agent_id,)
        ).fetchall()
        con.execute("SELECT count(*) FROM snapshots WHERE agent_id = ?", (agent_id,)).fetchone()
        return sum(by_role.values()), sum(r[2] for r in by_state_name)

    async def query_list(self, prefix: str) -> int:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = self._con.execute(
            "SELECT agent_id FROM agents WHERE agent_id >= ? AND agent_id < ? ORDER BY agent_id", (prefix, upper)
        ).fetchall()
        return len(rows)


# --------------------------------------------------------------------------- PostgreSQL

POSTGRES_SCHEMA = """
CREATE TABLE agents (
    agent_id TEXT COLLATE "C" PRIMARY KEY, template_id TEXT NOT NULL, created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL, message_count INTEGER NOT NULL, last_sfp_index INTEGER NOT NULL,
    breakpoint TEXT, user_id TEXT, data JSONB NOT NULL);
CREATE INDEX agents_template ON agents (template_id, created_at);
CREATE INDEX agents_created ON agents (created_at);
CREATE TABLE messages (
    agent_id TEXT COLLATE "C" NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content_types TEXT NOT NULL,
    created_at BIGINT NOT NULL, data JSONB NOT NULL, PRIMARY KEY (agent_id, seq));
CREATE INDEX messages_role ON messages (agent_id, role, created_at);
CREATE INDEX messages_created ON messages (created_at);
CREATE TABLE tool_calls (
    agent_id TEXT COLLATE "C" NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
    is_error BOOLEAN NOT NULL, approval_required BOOLEAN NOT NULL, created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL, data JSONB NOT NULL, PRIMARY KEY (agent_id, id));
CREATE INDEX tool_calls_agent ON tool_calls (agent_id, created_at);
CREATE INDEX tool_calls_name ON tool_calls (name, is_error, created_at);
CREATE TABLE events (
    agent_id TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, channel TEXT NOT NULL, type TEXT NOT NULL,
    timestamp BIGINT NOT NULL, data JSONB NOT NULL, PRIMARY KEY (agent_id, seq));
CREATE INDEX events_channel ON events (agent_id, channel, seq);
CREATE TABLE snapshots (
    agent_id TEXT COLLATE "C" NOT NULL, id TEXT NOT NULL, data JSONB NOT NULL, PRIMARY KEY (agent_id, id));
"""


def _pg_insert(table: str) -> str:
    # JSON arrives as text and is cast once by the server: the cheapest path for psycopg.
    cols = COLUMNS[table].split(", ")
    values = ", ".join("%s::jsonb" if c == "data" else "%s" for c in cols)
    return f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({values})"


class PostgresRaw:
    """The PostgreSQL floor: one psycopg 3 async connection, pipeline mode."""

    backend = "postgres-raw"

    def __init__(self, dsn: str | None, event_batch: int) -> None:
        self.dsn = default_dsn(dsn)
        self.schema = throwaway_schema()
        self.event_batch = event_batch
        self.size_bytes: int | None = None
        self.conn: Any = None
        self._insert_messages = _pg_insert("messages")
        self._upsert_tool_call = (
            _pg_insert("tool_calls") + f" ON CONFLICT (agent_id, id) DO UPDATE SET {TOOL_CALL_UPDATE}"
        )
        self._insert_events = _pg_insert("events")
        self._upsert_agent = _pg_insert("agents") + f" ON CONFLICT (agent_id) DO UPDATE SET {AGENT_UPDATE}"

    async def open(self) -> None:
        import psycopg
        from psycopg import sql
        from psycopg.types.json import set_json_loads

        try:
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise BackendUnavailable(f"backend 'postgres-raw' cannot connect: {exc}") from None
        set_json_loads(orjson.loads, conn)
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        for statement in POSTGRES_SCHEMA.split(";"):
            if statement.strip():
                await conn.execute(statement)
        await conn.set_autocommit(False)
        await conn.commit()
        self.conn = conn

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None
        try:
            self.size_bytes = await postgres_schema_size(self.dsn, self.schema)
        finally:
            await drop_postgres_schema(self.dsn, self.schema)

    # W1 ---------------------------------------------------------------------

    async def turn(self, agent_id: str, turn: data.Turn, messages: list[Any], records: list[Any]) -> None:
        conn = self.conn
        first = len(messages)
        messages.extend(turn.message_wires)
        records.append(turn.record_wire)
        now = data.now_ms()
        async with conn.pipeline(), conn.transaction():
            cur = conn.cursor()
            await cur.executemany(self._insert_messages, message_rows(agent_id, first, turn.message_wires, now))
            await cur.execute(self._upsert_tool_call, tool_call_row(agent_id, turn.record_wire))
            await cur.executemany(self._insert_events, [event_row(agent_id, e) for e in turn.event_wires])
            await cur.execute(self._upsert_agent, agent_row(turn.info_wire, len(messages), now))

    async def _fetch(self, query: str, params: Iterable[Any]) -> list[Any]:
        async with self.conn.transaction():
            cur = await self.conn.execute(query, tuple(params))
            rows: list[Any] = await cur.fetchall()
            return rows

    async def verify_agent(
        self, agent_id: str, messages: list[Any], records: list[Any], events: int, message_count: int
    ) -> list[str]:
        loaded = [
            r[0] for r in await self._fetch("SELECT data FROM messages WHERE agent_id = %s ORDER BY seq", [agent_id])
        ]
        problems = compare_lists(f"{agent_id} messages", loaded, messages)
        calls = [
            r[0]
            for r in await self._fetch(
                "SELECT data FROM tool_calls WHERE agent_id = %s ORDER BY created_at, id", [agent_id]
            )
        ]
        problems += compare_lists(f"{agent_id} tool calls", calls, records)
        seqs = await self.read_events(agent_id)
        if seqs != list(range(1, events + 1)):
            problems.append(f"{agent_id} events: read {len(seqs)}, expected seq 1..{events}")
        rows = await self._fetch("SELECT message_count FROM agents WHERE agent_id = %s", [agent_id])
        if not rows or rows[0][0] != message_count:
            problems.append(f"{agent_id} agent row: message_count {rows and rows[0][0]}, expected {message_count}")
        return problems

    # W2 ---------------------------------------------------------------------

    async def append_events(self, agent_id: str, events: list[data.Timeline]) -> None:
        conn = self.conn
        for start in range(0, len(events), self.event_batch):
            batch = events[start : start + self.event_batch]
            async with conn.transaction():
                await conn.cursor().executemany(self._insert_events, [event_row(agent_id, e.to_wire()) for e in batch])

    async def read_events(self, agent_id: str, since: int | None = None, channel: str | None = None) -> list[int]:
        query = "SELECT data FROM events WHERE agent_id = %s AND seq > %s"
        params: list[Any] = [agent_id, -(2**63) if since is None else since]
        if channel is not None:
            query += " AND channel = %s"
            params.append(channel)
        rows = await self._fetch(query + " ORDER BY seq", params)
        return [r[0]["bookmark"]["seq"] for r in rows]

    # W3 ---------------------------------------------------------------------

    async def populate(self, population: list[data.Population], concurrency: int) -> None:
        conn = self.conn
        for p in population:
            now = data.now_ms()
            async with conn.pipeline(), conn.transaction():
                cur = conn.cursor()
                await cur.execute(self._upsert_agent, agent_row(p.info.to_wire(), len(p.message_wires), now))
                await cur.executemany(self._insert_messages, message_rows(p.agent_id, 0, p.message_wires, now))
                await cur.executemany(self._upsert_tool_call, [tool_call_row(p.agent_id, w) for w in p.record_wires])

    async def query_sessions(self, template_id: str) -> int:
        rows = await self._fetch(
            "SELECT agent_id, template_id, created_at, updated_at, message_count, last_sfp_index, breakpoint, data"
            " FROM agents WHERE template_id = %s ORDER BY created_at DESC, agent_id DESC LIMIT 20",
            [template_id],
        )
        return len(rows)

    async def query_messages(self, agent_id: str) -> int:
        rows = await self._fetch(
            "SELECT seq, created_at, data FROM messages WHERE agent_id = %s AND role = %s"
            " ORDER BY created_at DESC, seq DESC LIMIT 50",
            [agent_id, "assistant"],
        )
        return len(rows)

    async def query_tool_calls(self) -> int:
        rows = await self._fetch(
            "SELECT agent_id, data FROM tool_calls WHERE name = %s AND is_error"
            " ORDER BY created_at DESC, agent_id DESC, id DESC LIMIT 10",
            ["bash_run"],
        )
        return len(rows)

    async def query_stats(self, agent_id: str) -> tuple[int, int]:
        async with self.conn.transaction():
            cur = await self.conn.execute(
                "SELECT role, count(*) FROM messages WHERE agent_id = %s GROUP BY role", (agent_id,)
            )
            by_role = await cur.fetchall()
            cur = await self.conn.execute(
                "SELECT state, name, count(*) FROM tool_calls WHERE agent_id = %s GROUP BY state, name", (agent_id,)
            )
            by_state_name = await cur.fetchall()
            cur = await self.conn.execute("SELECT count(*) FROM snapshots WHERE agent_id = %s", (agent_id,))
            await cur.fetchone()
        return sum(r[1] for r in by_role), sum(r[2] for r in by_state_name)

    async def query_list(self, prefix: str) -> int:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = await self._fetch(
            "SELECT agent_id FROM agents WHERE agent_id >= %s AND agent_id < %s ORDER BY agent_id",
            [prefix, upper],
        )
        return len(rows)
