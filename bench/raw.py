"""The floors: the rows a store writes, written with the bare driver.

No validation, no store, no thread hop: one transaction per W1 turn that
upserts the agent row, inserts the turn's three message rows, upserts its
tool-call row and inserts its six event rows (the agent row goes first only
because SQLite's foreign keys want the parent before the children). JSON is
still encoded (orjson) and decoded on reads, because a store cannot skip that
either.

The schema mirrors the stores' own (SQLite: schema/sqlite/ up to version 3;
PostgreSQL: schema/postgres/0001_initial.sql) for the tables the workloads touch, with the
same primary keys, secondary indexes, partial indexes and (SQLite) foreign
keys, so the floor pays the same index maintenance and is no unindexed
strawman:

SQLite
  agents      PK (agent_id); partial (WHERE template_id IS NOT NULL): (created_at, agent_id),
              (updated_at, agent_id), (message_count, agent_id),
              (template_id, created_at, agent_id), (user_id, created_at, agent_id)
  messages    PK (agent_id, seq); (created_at); FK → agents
  tool_calls  PK (agent_id, id); UNIQUE (agent_id, pos); (created_at, id, agent_id);
              (agent_id, created_at, id); (name, created_at, id, agent_id);
              (name, is_error, created_at, id, agent_id); (agent_id, state, name); FK → agents
  events      PK (agent_id, seq) WITHOUT ROWID; FK → agents
  snapshots   PK (agent_id, id) WITHOUT ROWID
  The floor writes JSON as TEXT: the store's compression is work the store
  chooses to do, not part of the physical minimum.
PostgreSQL (agent ids COLLATE "C", JSONB documents, no foreign keys)
  agents      PK (agent_id); partial: (template_id, created_at, agent_id), (user_id, created_at, agent_id),
              (created_at, agent_id), (updated_at, agent_id), (message_count, agent_id)
  messages    PK (agent_id, seq); (agent_id, role, created_at, seq); (agent_id, created_at, seq);
              (role, created_at, seq, agent_id); (created_at, seq, agent_id); GIN (block_types)
  tool_calls  PK (agent_id, pos); (name, is_error, created_at, id, agent_id, pos);
              (agent_id, created_at, id, pos); (state, created_at, id, agent_id, pos);
              partial (created_at, id, agent_id, pos) WHERE approval_required; (created_at, id, agent_id, pos)
  events      PK (agent_id, seq); (agent_id, channel, seq)
  snapshots   PK (agent_id, id); (agent_id, created_at, id)

SQLite runs in WAL mode with ``synchronous=NORMAL`` and foreign keys on, like
SqliteStore. PostgreSQL uses psycopg 3 async, one connection, pipeline mode
(one round trip per transaction), in a throwaway schema.
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


def block_types(wire: dict[str, Any]) -> list[str]:
    """The distinct block types of a message (the ``content_type`` filter's column)."""
    seen: dict[str, None] = {}
    for block in wire["content"]:
        seen[block["type"]] = None
    return list(seen)


def message_rows(
    agent_id: str, first_seq: int, wires: Iterable[dict[str, Any]], now: int, *, types_as_json: bool
) -> list[tuple[Any, ...]]:
    """(agent_id, seq, role, block_types, created_at, data) per message; block
    types as a JSON array text (SQLite) or a list (PostgreSQL text[])."""
    rows = []
    for i, w in enumerate(wires):
        types: Any = block_types(w)
        rows.append((agent_id, first_seq + i, w["role"], dumps(types) if types_as_json else types, now, dumps(w)))
    return rows


def tool_call_row(agent_id: str, pos: int, wire: dict[str, Any]) -> tuple[Any, ...]:
    """(agent_id, id, pos, name, state, is_error, approval_required, created_at, updated_at, data)."""
    return (
        agent_id,
        wire["id"],
        pos,
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


def agent_row(wire: dict[str, Any], message_count: int, tool_calls: int, now: int) -> tuple[Any, ...]:
    """(agent_id, info, template_id, user_id, created_at, updated_at, message_count,
    last_sfp_index, breakpoint, msg_len, tc_len)."""
    metadata = wire.get("metadata") or {}
    return (
        wire["agentId"],
        dumps(wire),
        wire["templateId"],
        metadata.get("userId", metadata.get("user_id")),
        wire["createdAt"],
        now,
        message_count,
        wire["lastSfpIndex"],
        wire.get("breakpoint"),
        message_count,
        tool_calls,
    )


TOOL_CALL_COLUMNS = "agent_id, id, pos, name, state, is_error, approval_required, created_at, updated_at, data"
TOOL_CALL_UPDATE = (
    "name = excluded.name, state = excluded.state, is_error = excluded.is_error,"
    " approval_required = excluded.approval_required, updated_at = excluded.updated_at, data = excluded.data"
)
MESSAGE_COLUMNS = "agent_id, seq, role, block_types, created_at, data"
EVENT_COLUMNS = "agent_id, seq, channel, type, timestamp, data"


def values(count: int, placeholder: str, json_at: tuple[int, ...] = ()) -> str:
    """``(?, ?, …)`` with ``::jsonb`` casts at ``json_at`` (PostgreSQL)."""
    return "(" + ", ".join(placeholder + ("::jsonb" if i in json_at else "") for i in range(count)) + ")"


# --------------------------------------------------------------------------- SQLite

SQLITE_SCHEMA = """
CREATE TABLE agents (
    agent_id TEXT NOT NULL PRIMARY KEY, info TEXT, template_id TEXT, user_id TEXT, created_at INTEGER,
    updated_at INTEGER NOT NULL, message_count INTEGER NOT NULL DEFAULT 0,
    msg_version INTEGER NOT NULL DEFAULT 0, tc_version INTEGER NOT NULL DEFAULT 0);
CREATE INDEX agents_by_created ON agents (created_at, agent_id) WHERE template_id IS NOT NULL;
CREATE INDEX agents_by_updated ON agents (updated_at, agent_id) WHERE template_id IS NOT NULL;
CREATE INDEX agents_by_message_count ON agents (message_count, agent_id) WHERE template_id IS NOT NULL;
CREATE INDEX agents_by_template ON agents (template_id, created_at, agent_id) WHERE template_id IS NOT NULL;
CREATE INDEX agents_by_user ON agents (user_id, created_at, agent_id) WHERE template_id IS NOT NULL;
CREATE TABLE messages (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    role TEXT NOT NULL, block_types TEXT NOT NULL, created_at INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (agent_id, seq));
CREATE INDEX messages_by_time ON messages (created_at);
CREATE TABLE tool_calls (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE, id TEXT NOT NULL,
    pos INTEGER NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL, is_error INTEGER NOT NULL,
    approval_required INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (agent_id, id), UNIQUE (agent_id, pos));
CREATE INDEX tool_calls_by_time ON tool_calls (created_at, id, agent_id);
CREATE INDEX tool_calls_by_agent_time ON tool_calls (agent_id, created_at, id);
CREATE INDEX tool_calls_by_name ON tool_calls (name, created_at, id, agent_id);
CREATE INDEX tool_calls_by_name_error ON tool_calls (name, is_error, created_at, id, agent_id);
CREATE INDEX tool_calls_by_agent_state ON tool_calls (agent_id, state, name);
CREATE TABLE events (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE, seq INTEGER NOT NULL,
    channel TEXT NOT NULL, type TEXT NOT NULL, timestamp INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (agent_id, seq)) WITHOUT ROWID;
CREATE TABLE snapshots (
    agent_id TEXT NOT NULL REFERENCES agents (agent_id) ON DELETE CASCADE, id TEXT NOT NULL,
    created_at INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (agent_id, id)) WITHOUT ROWID;
"""


class SqliteRaw:
    """The SQLite floor: bare ``sqlite3``, synchronous calls on the event loop."""

    backend = "sqlite-raw"

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "raw.db"
        self.workdir = workdir
        self.size_bytes: int | None = None
        self.con: sqlite3.Connection | None = None
        self._insert_messages = f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {values(6, '?')}"
        self._upsert_tool_call = (
            f"INSERT INTO tool_calls ({TOOL_CALL_COLUMNS}) VALUES {values(10, '?')}"
            f" ON CONFLICT (agent_id, id) DO UPDATE SET pos = excluded.pos, {TOOL_CALL_UPDATE}"
        )
        self._insert_events = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES {values(6, '?')}"
        # (agent_id, info, template_id, user_id, created_at, updated_at, message_count); the rest is unused here.
        self._upsert_agent = (
            "INSERT INTO agents (agent_id, info, template_id, user_id, created_at, updated_at, message_count)"
            f" VALUES {values(7, '?')} ON CONFLICT (agent_id) DO UPDATE SET info = excluded.info,"
            " template_id = excluded.template_id, user_id = excluded.user_id, created_at = excluded.created_at,"
            " updated_at = excluded.updated_at, message_count = excluded.message_count,"
            " msg_version = agents.msg_version + 1, tc_version = agents.tc_version + 1"
        )

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA cache_size=-32000")  # 32 MiB, as SqliteStore
        con.execute("PRAGMA temp_store=MEMORY")
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

    def _agent(self, wire: dict[str, Any], message_count: int, now: int) -> tuple[Any, ...]:
        return agent_row(wire, message_count, 0, now)[:7]

    # W1 ---------------------------------------------------------------------

    async def turn(self, agent_id: str, turn: data.Turn, messages: list[Any], records: list[Any]) -> None:
        con = self._con
        first = len(messages)
        messages.extend(turn.message_wires)
        records.append(turn.record_wire)
        now = data.now_ms()
        con.execute("BEGIN")
        try:
            con.execute(self._upsert_agent, self._agent(turn.info_wire, len(messages), now))
            con.executemany(
                self._insert_messages, message_rows(agent_id, first, turn.message_wires, now, types_as_json=True)
            )
            con.execute(self._upsert_tool_call, tool_call_row(agent_id, len(records) - 1, turn.record_wire))
            con.executemany(self._insert_events, [event_row(agent_id, e) for e in turn.event_wires])
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
            for r in con.execute("SELECT data FROM tool_calls WHERE agent_id = ? ORDER BY pos", (agent_id,))
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

    async def append_events(self, agent_id: str, events: list[data.Timeline], batch: int) -> None:
        # The same shape as the store's run: ``batch`` events per transaction.
        con = self._con
        con.execute(
            "INSERT INTO agents (agent_id, updated_at) VALUES (?, ?) ON CONFLICT (agent_id) DO NOTHING",
            (agent_id, data.now_ms()),
        )
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            con.execute("BEGIN")
            con.executemany(self._insert_events, [event_row(agent_id, e.to_wire()) for e in chunk])
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
            con.execute(self._upsert_agent, self._agent(p.info.to_wire(), len(p.message_wires), now))
            con.executemany(
                self._insert_messages, message_rows(p.agent_id, 0, p.message_wires, now, types_as_json=True)
            )
            con.executemany(
                self._upsert_tool_call, [tool_call_row(p.agent_id, i, w) for i, w in enumerate(p.record_wires)]
            )
            con.execute("COMMIT")

    async def query_sessions(self, template_id: str) -> int:
        rows = self._con.execute(
            "SELECT agent_id, info, created_at, updated_at, message_count FROM agents"
            " WHERE template_id = ? ORDER BY created_at DESC, agent_id DESC LIMIT 20",
            (template_id,),
        ).fetchall()
        return len([(r, orjson.loads(r[1])) for r in rows])

    async def query_messages(self, agent_id: str) -> int:
        rows = self._con.execute(
            # Like the store: created_at never decreases along one agent's list,
            # so its newest first is seq order, read backwards on the primary key.
            "SELECT seq, created_at, data FROM messages WHERE agent_id = ? AND role = ? ORDER BY seq DESC LIMIT 50",
            (agent_id, "assistant"),
        ).fetchall()
        return len([(r[0], r[1], orjson.loads(r[2])) for r in rows])

    async def query_tool_calls(self) -> int:
        rows = self._con.execute(
            "SELECT agent_id, data FROM tool_calls WHERE name = ? AND is_error = 1"
            " ORDER BY created_at DESC, id DESC, agent_id DESC LIMIT 10",
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
            "SELECT agent_id FROM agents WHERE agent_id >= ? AND agent_id < ? AND template_id IS NOT NULL"
            " ORDER BY agent_id",
            (prefix, upper),
        ).fetchall()
        return len(rows)


# --------------------------------------------------------------------------- PostgreSQL

POSTGRES_SCHEMA = """
CREATE TABLE agents (
    agent_id text COLLATE "C" PRIMARY KEY, info jsonb, info_raw text, template_id text, user_id text,
    created_at bigint NOT NULL, updated_at bigint NOT NULL, message_count integer NOT NULL DEFAULT 0,
    last_sfp_index integer NOT NULL DEFAULT -1, breakpoint text, msg_len integer NOT NULL DEFAULT 0,
    msg_version bigint NOT NULL DEFAULT 0, tc_len integer NOT NULL DEFAULT 0, tc_version bigint NOT NULL DEFAULT 0);
CREATE INDEX agents_template_created ON agents (template_id, created_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_user_created ON agents (user_id, created_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_created ON agents (created_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_updated ON agents (updated_at, agent_id) WHERE info IS NOT NULL;
CREATE INDEX agents_message_count ON agents (message_count, agent_id) WHERE info IS NOT NULL;
CREATE TABLE messages (
    agent_id text COLLATE "C" NOT NULL, seq integer NOT NULL, role text NOT NULL, block_types text[] NOT NULL,
    created_at bigint NOT NULL, data jsonb NOT NULL, raw text, PRIMARY KEY (agent_id, seq));
CREATE INDEX messages_agent_role ON messages (agent_id, role, created_at, seq);
CREATE INDEX messages_agent_created ON messages (agent_id, created_at, seq);
CREATE INDEX messages_role_created ON messages (role, created_at, seq, agent_id);
CREATE INDEX messages_created ON messages (created_at, seq, agent_id);
CREATE INDEX messages_block_types ON messages USING gin (block_types);
CREATE TABLE tool_calls (
    agent_id text COLLATE "C" NOT NULL, pos integer NOT NULL, id text NOT NULL, name text NOT NULL,
    state text NOT NULL, is_error boolean NOT NULL, approval_required boolean NOT NULL,
    created_at bigint NOT NULL, updated_at bigint NOT NULL, data jsonb NOT NULL, raw text,
    PRIMARY KEY (agent_id, pos));
CREATE INDEX tool_calls_name_error ON tool_calls (name, is_error, created_at, id, agent_id, pos);
CREATE INDEX tool_calls_agent_created ON tool_calls (agent_id, created_at, id, pos);
CREATE INDEX tool_calls_state_created ON tool_calls (state, created_at, id, agent_id, pos);
CREATE INDEX tool_calls_approval_created ON tool_calls (created_at, id, agent_id, pos) WHERE approval_required;
CREATE INDEX tool_calls_created ON tool_calls (created_at, id, agent_id, pos);
CREATE TABLE events (
    agent_id text COLLATE "C" NOT NULL, seq bigint NOT NULL, channel text NOT NULL, type text NOT NULL,
    timestamp bigint NOT NULL, data jsonb NOT NULL, raw text, PRIMARY KEY (agent_id, seq));
CREATE INDEX events_agent_channel ON events (agent_id, channel, seq);
CREATE TABLE snapshots (
    agent_id text COLLATE "C" NOT NULL, id text NOT NULL, created_at bigint NOT NULL, data jsonb NOT NULL,
    raw text, PRIMARY KEY (agent_id, id));
CREATE INDEX snapshots_agent_created ON snapshots (agent_id, created_at, id)
"""


class PostgresRaw:
    """The PostgreSQL floor: one psycopg 3 async connection, pipeline mode."""

    backend = "postgres-raw"

    def __init__(self, dsn: str | None) -> None:
        self.dsn = default_dsn(dsn)
        self.schema = throwaway_schema()
        self.size_bytes: int | None = None
        self.conn: Any = None
        self.reader: Any = None
        # JSON arrives as text and is cast once by the server: the cheapest path through psycopg.
        self._insert_messages = f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {values(6, '%s', (5,))}"
        self._upsert_tool_call = (
            f"INSERT INTO tool_calls ({TOOL_CALL_COLUMNS}) VALUES {values(10, '%s', (9,))}"
            f" ON CONFLICT (agent_id, pos) DO UPDATE SET id = excluded.id, {TOOL_CALL_UPDATE}"
        )
        self._insert_events = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES {values(6, '%s', (5,))}"
        self._upsert_agent = (
            "INSERT INTO agents (agent_id, info, template_id, user_id, created_at, updated_at, message_count,"
            f" last_sfp_index, breakpoint, msg_len, tc_len) VALUES {values(11, '%s', (1,))}"
            " ON CONFLICT (agent_id) DO UPDATE SET info = excluded.info, template_id = excluded.template_id,"
            " user_id = excluded.user_id, created_at = excluded.created_at, updated_at = excluded.updated_at,"
            " message_count = excluded.message_count, last_sfp_index = excluded.last_sfp_index,"
            " breakpoint = excluded.breakpoint, msg_len = excluded.msg_len, tc_len = excluded.tc_len,"
            " msg_version = agents.msg_version + 1, tc_version = agents.tc_version + 1"
        )

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
        self.conn = conn
        # Reads go through an autocommit connection: one statement, one round
        # trip, its own snapshot — as the store and the KODE TS reference read.
        # BEGIN ... COMMIT around each read cost two more round trips (W3
        # sessions 0.45 ms against the reference's 0.25 ms).
        reader = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        set_json_loads(orjson.loads, reader)
        await reader.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        self.reader = reader

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None
        if self.reader is not None:
            await self.reader.close()
            self.reader = None
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
            await cur.execute(self._upsert_agent, agent_row(turn.info_wire, len(messages), len(records), now))
            await cur.executemany(
                self._insert_messages, message_rows(agent_id, first, turn.message_wires, now, types_as_json=False)
            )
            await cur.execute(self._upsert_tool_call, tool_call_row(agent_id, len(records) - 1, turn.record_wire))
            await cur.executemany(self._insert_events, [event_row(agent_id, e) for e in turn.event_wires])

    async def _fetch(self, query: str, params: Iterable[Any] | dict[str, Any]) -> list[Any]:
        cur = await self.reader.execute(query, params if isinstance(params, dict) else tuple(params))
        rows: list[Any] = await cur.fetchall()
        return rows

    async def verify_agent(
        self, agent_id: str, messages: list[Any], records: list[Any], events: int, message_count: int
    ) -> list[str]:
        query = "SELECT data FROM messages WHERE agent_id = %s ORDER BY seq"
        loaded = [r[0] for r in await self._fetch(query, [agent_id])]
        problems = compare_lists(f"{agent_id} messages", loaded, messages)
        query = "SELECT data FROM tool_calls WHERE agent_id = %s ORDER BY pos"
        calls = [r[0] for r in await self._fetch(query, [agent_id])]
        problems += compare_lists(f"{agent_id} tool calls", calls, records)
        seqs = await self.read_events(agent_id)
        if seqs != list(range(1, events + 1)):
            problems.append(f"{agent_id} events: read {len(seqs)}, expected seq 1..{events}")
        rows = await self._fetch("SELECT message_count FROM agents WHERE agent_id = %s", [agent_id])
        if not rows or rows[0][0] != message_count:
            problems.append(f"{agent_id} agent row: message_count {rows and rows[0][0]}, expected {message_count}")
        return problems

    # W2 ---------------------------------------------------------------------

    async def append_events(self, agent_id: str, events: list[data.Timeline], batch: int) -> None:
        # The same shape as the store's run: ``batch`` events per transaction.
        conn = self.conn
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            async with conn.transaction():
                rows = [event_row(agent_id, e.to_wire()) for e in chunk]
                await conn.cursor().executemany(self._insert_events, rows)

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
                row = agent_row(p.info.to_wire(), len(p.message_wires), len(p.record_wires), now)
                await cur.execute(self._upsert_agent, row)
                await cur.executemany(
                    self._insert_messages, message_rows(p.agent_id, 0, p.message_wires, now, types_as_json=False)
                )
                await cur.executemany(
                    self._upsert_tool_call, [tool_call_row(p.agent_id, i, w) for i, w in enumerate(p.record_wires)]
                )

    async def query_sessions(self, template_id: str) -> int:
        rows = await self._fetch(
            "SELECT agent_id, info, created_at, updated_at, message_count, last_sfp_index, breakpoint FROM agents"
            " WHERE template_id = %s AND info IS NOT NULL ORDER BY created_at DESC, agent_id DESC LIMIT 20",
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
            " ORDER BY created_at DESC, id DESC, agent_id DESC, pos DESC LIMIT 10",
            ["bash_run"],
        )
        return len(rows)

    async def query_stats(self, agent_id: str) -> tuple[int, int]:
        # One statement (one snapshot, one round trip), the store's shape.
        rows = await self._fetch(
            "SELECT 'role', count(*) FROM messages WHERE agent_id = %(a)s GROUP BY role"
            " UNION ALL SELECT 'call', count(*) FROM tool_calls WHERE agent_id = %(a)s GROUP BY state, name"
            " UNION ALL SELECT 'snapshots', count(*) FROM snapshots WHERE agent_id = %(a)s",
            {"a": agent_id},
        )
        return sum(r[1] for r in rows if r[0] == "role"), sum(r[1] for r in rows if r[0] == "call")

    async def query_list(self, prefix: str) -> int:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        rows = await self._fetch(
            "SELECT agent_id FROM agents WHERE agent_id >= %s AND agent_id < %s AND info IS NOT NULL ORDER BY agent_id",
            [prefix, upper],
        )
        return len(rows)
