"""PostgresStore: the multi-worker backend, on psycopg 3 (async) and psycopg_pool.

Everything lives in PostgreSQL — messages, tool calls, events, todos, history,
snapshots — so every worker on every machine sees the same agent::

    store = PostgresStore("postgresql://kode@db/kode", schema="kode")
    async with store:
        await store.save_messages("agt-1", [{"role": "user", "content": "Hello!"}])
        async with store.agent_lock("agt-1", timeout_ms=5000):
            info = await store.load_info("agt-1")
        async for timeline in store.tail_events("agt-1"):   # live, across workers
            ...

How it is built, and why:

* **One pool, autocommit connections**, explicit transactions: ``BEGIN`` …
  ``COMMIT`` queued in pipeline mode, so a write is one round trip. Pooled
  connections are checked before use without a round trip (a dead session's
  socket turns readable; only then is it pinged and replaced), so after a
  server restart the first call already gets a fresh connection; calls during
  the outage raise ``StoreConnectionError`` (driver text scrubbed of secrets).
* **Exact JSON in JSONB.** Documents go to a ``data jsonb`` column (queryable,
  compact). JSONB cannot hold U+0000 and normalises numbers (``1e20`` comes
  back as the integer ``100000000000000000000``), so a document whose JSON
  text holds a real ``\\u0000`` escape or a number written with an exponent
  also keeps its exact text in ``raw text`` (TEXT holds the six characters
  ``\\u0000`` fine), while ``data`` gets a copy with U+FFFD in place of NUL.
  Loads read ``COALESCE(raw, data::text)`` and decode with
  :func:`kode_sdk.jsoncodec.decode`, so big integers come back exact.
  Only such rare documents pay for the second copy.
* **Incremental saves.** ``save_messages`` / ``save_tool_call_records`` diff
  the new list against independent snapshots of the list saved last (one
  comparison per position, done in C), and send only changed positions; a
  rewritten position keeps its first ``created_at``. With a cached snapshot
  the save is optimistic — one round trip: an ``UPDATE`` of the agent row
  bumps the version only if it still is the cached one (taking the row lock,
  which serialises workers saving one agent) and stamps a random token that
  guards every row write, so a stale cache writes nothing and the save
  retries on the locking path (``SELECT … FOR UPDATE``, rebuild from rows).
* **Events**: each ``append_event`` / ``append_events`` returns once its
  events are committed; appends arriving while a commit is in flight share
  the next one (:class:`~kode_sdk.store.events.EventCommitter`). A commit is
  one pipelined round trip: one ``unnest`` INSERT and, in the same
  transaction, ``pg_notify('kode_events', '<schema>:<agent_id>')``;
  :meth:`PostgresStore.tail_events` LISTENs on its own connection and reads the
  table (``seq > last``) after every wake-up and once a second anyway, so a
  lost notification or a reconnect never loses or repeats an event.
  A seq another worker stored first fails only the call that repeated it.
* **Agent locks** are session advisory locks keyed by a signed 64-bit BLAKE2b
  hash of ``schema`` + agent id, each on its own connection from a small
  separate pool (advisory locks are re-entrant per session, so two acquires
  must not share one). The wait happens in the server:
  ``SET lock_timeout`` + ``pg_advisory_lock`` — no polling, and the next waiter
  gets the lock the moment it is released. A lock dies with its connection.
* **Behind PgBouncer** (``"pooler": "transaction"`` or
  ``KODE_POSTGRES_POOLER``) no session state is assumed: settings per
  transaction, no prepared statements, lease locks, a polling tail — see
  :mod:`kode_sdk.store.postgres.pooler`. **Read replicas** (``"replicas"`` or
  ``KODE_POSTGRES_REPLICAS``): see :mod:`kode_sdk.store.postgres.replicas`.
* **Schema**: migrations in ``kode_sdk/store/schema/postgres/NNNN_*.sql``,
  applied on open under ``pg_advisory_xact_lock`` (several workers may open at
  once); a database newer than this code raises ``SchemaVersionError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from ...extras import missing_extra

try:
    import psycopg
    import psycopg.errors
    from psycopg import AsyncConnection, sql
    from psycopg.pq import TransactionStatus
    from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout
except ImportError as exc:  # a SQLite-only install: say which extra to add
    raise missing_extra("postgres", exc) from None

from ... import jsoncodec
from ...errors import (
    AgentNotFoundError,
    LockTimeoutError,
    RecordValidationError,
    SchemaVersionError,
    StoreClosedError,
    StoreConfigError,
    StoreConnectionError,
)
from ...types import (
    AgentInfo,
    AgentStats,
    CompressionRecord,
    ConsistencyCheckResult,
    DatabaseHealth,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    RecoveredFile,
    SessionInfo,
    Snapshot,
    StorageMetrics,
    StoredMessage,
    StoredToolCall,
    StoreHealthStatus,
    StoreMetrics,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
    ToolCallState,
    now_utc,
    to_epoch_ms,
)
from ..agent_ids import validate_agent_id
from ..catalog import RecordTimes
from ..events import (
    EventCommitter,
    PendingEvent,
    check_channel,
    duplicate_seq_error,
    event_rows,
    since_seq,
    timeline_from_wire,
)
from ..lifecycle import BaseStore, operation, operation_iter
from ..list_diff import (
    SavedListCache,
    changed_positions,
    message_keys,
    message_snapshot,
    share_copy,
    tool_call_keys,
    tool_call_snapshot,
    updated_snapshots,
)
from ..locks import AgentLock
from ..policy import DriverErrorKind, check_page, check_sort, time_bound
from .checkout import checked_getconn, prefer_warm
from .config import PostgresSettings, parse_connection, register_secrets, unregister_secrets
from .pooler import LeaseAgentLock, acquire_lease, settings_statement
from .replicas import ReplicaRouter
from ..query_rules import created_at_clauses, fork_agent_ids, prefix_upper_bound, stats_from_counts, user_id_of
from ..records import coerce_list, message_to_wire
from ..results import message_from_wire, session_info, stored_message, stored_tool_call, tool_call_record_from_wire
from ..schema_migrations import Migration, discover, pending
from ..search import MessageSearch, SearchRequest, SearchRow, index_text
from ..transaction import TransactionDriver
from ..writable import probe_writable

__all__ = ["PostgresStore", "advisory_lock_key", "migrations", "search_query"]

logger = logging.getLogger("kode_sdk.store.postgres")

NOTIFY_CHANNEL = "kode_events"
_EVENT_PAGE = 1000
_MIN_SEQ, _MAX_SEQ = -(2**63), 2**63 - 1


def _first_seq_after(after: int | None) -> int:
    """The first seq a read starting after ``after`` wants (``None``: all);
    above ``_MAX_SEQ`` when nothing can follow."""
    if after is None or after < _MIN_SEQ:
        return _MIN_SEQ
    return min(after, _MAX_SEQ) + 1


_CONNECTION_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, PoolClosed)
_MIGRATION_LOCK_KEY = int.from_bytes(hashlib.blake2b(b"kode-sdk:migrate", digest_size=8).digest(), "big", signed=True)


# --------------------------------------------------------------------------- exact JSON in JSONB

_REAL_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
# A number written with an exponent, where a JSON value starts (compact JSON:
# no spaces). Inside a string it is only a false positive: the row keeps a raw copy.
_EXPONENT = re.compile(rb"(?:^|[:,\[])-?[0-9]+(?:\.[0-9]+)?[eE]")
# -0.0: jsonb's numeric has no negative zero; keep the exact text.
_NEGATIVE_ZERO = re.compile(rb"(?:^|[:,\[])-0\.0(?:[,\]}]|$)")


def _doc(encoded: bytes) -> tuple[str, str | None]:
    """Split encoded JSON into (text for the jsonb column, exact raw text or None)."""
    if b"\\u0000" in encoded:
        sanitized, count = _REAL_NUL.subn(rb"\1\\ufffd", encoded)
        if count:
            return sanitized.decode(), encoded.decode()
    if _EXPONENT.search(encoded) is not None or _NEGATIVE_ZERO.search(encoded) is not None:
        text = encoded.decode()
        return text, text
    return encoded.decode(), None


def _load(text: str) -> Any:
    return jsoncodec.decode(text)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def advisory_lock_key(schema: str, agent_id: str) -> int:
    """The signed 64-bit advisory-lock key of ``agent_id`` in ``schema`` (BLAKE2b,
    stable across processes, machines and versions)."""
    digest = hashlib.blake2b(f"kode-sdk:{schema}:{agent_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def migrations() -> list[Migration]:
    """The ordered migrations: ``(version, file name, SQL)`` from
    ``kode_sdk/store/schema/postgres/NNNN_name.sql``."""
    return discover("postgres")


# --------------------------------------------------------------------------- query builders
# Module-level so tests can EXPLAIN exactly the SQL the store runs.

_MESSAGE_COLUMNS = "agent_id, seq, role, created_at, COALESCE(raw, data::text)"
# The text-search configuration of messages.search: no stemming, no stop words
# (the words are folded in Python before they get here).
TS_CONFIG = "'pg_catalog.simple'::regconfig"
_TOOL_CALL_COLUMNS = "agent_id, COALESCE(raw, data::text)"
# A session needs only the info's metadata: the server cuts it out (parsing
# the whole info document in Python cost ~3x more); info_raw, when set, holds
# what jsonb would not keep exactly, so the metadata is read from it instead.
_SESSION_COLUMNS = (
    "agent_id, template_id, created_at, updated_at, message_count, last_sfp_index, breakpoint,"
    " info_raw, CASE WHEN info_raw IS NULL THEN (info->'metadata')::text END"
)


def sessions_query(
    *,
    agent_id: str | None = None,
    template_id: str | None = None,
    user_id: str | None = None,
    created_after: datetime | int | None = None,
    created_before: datetime | int | None = None,
    limit: int = 100,
    offset: int = 0,
    sort_by: str = "created_at",
    sort_order: str = "desc",
) -> tuple[str, list[Any]]:
    """The SQL and parameters of :meth:`PostgresStore.query_sessions`."""
    column, order = check_sort(sort_by, sort_order)
    limit, offset = check_page(limit, offset)
    where = ["info IS NOT NULL"]
    params: list[Any] = []
    if agent_id is not None:
        where.append("agent_id = %s")
        params.append(validate_agent_id(agent_id))
    if template_id is not None:
        where.append("template_id = %s")
        params.append(template_id)
    if user_id is not None:
        where.append("user_id = %s")
        params.append(user_id)
    time_clauses, time_params = created_at_clauses(created_after, created_before, "%s")
    where += time_clauses
    params += time_params
    direction = "DESC" if order == "desc" else "ASC"
    query = (
        f"SELECT {_SESSION_COLUMNS} FROM agents WHERE {' AND '.join(where)}"
        f" ORDER BY {column} {direction}, agent_id {direction} LIMIT %s OFFSET %s"
    )
    return query, [*params, limit, offset]


def messages_query(
    *,
    agent_id: str | None = None,
    role: str | None = None,
    content_type: str | None = None,
    created_after: datetime | int | None = None,
    created_before: datetime | int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[str, list[Any]]:
    """The SQL and parameters of :meth:`PostgresStore.query_messages`."""
    limit, offset = check_page(limit, offset)
    where: list[str] = []
    params: list[Any] = []
    if agent_id is not None:
        where.append("agent_id = %s")
        params.append(validate_agent_id(agent_id))
    if role is not None:
        where.append("role = %s")
        params.append(role)
    if content_type is not None:
        where.append("block_types @> ARRAY[%s]::text[]")
        params.append(content_type)
    time_clauses, time_params = created_at_clauses(created_after, created_before, "%s")
    where += time_clauses
    params += time_params
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    query = (
        f"SELECT {_MESSAGE_COLUMNS} FROM messages{condition}"
        " ORDER BY created_at DESC, seq DESC, agent_id DESC LIMIT %s OFFSET %s"
    )
    return query, [*params, limit, offset]


def tool_calls_query(
    *,
    agent_id: str | None = None,
    tool_name: str | None = None,
    is_error: bool | None = None,
    has_approval: bool | None = None,
    state: ToolCallState | str | None = None,
    created_after: datetime | int | None = None,
    created_before: datetime | int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[str, list[Any]]:
    """The SQL and parameters of :meth:`PostgresStore.query_tool_calls`."""
    limit, offset = check_page(limit, offset)
    where: list[str] = []
    params: list[Any] = []
    if agent_id is not None:
        where.append("agent_id = %s")
        params.append(validate_agent_id(agent_id))
    if tool_name is not None:
        where.append("name = %s")
        params.append(tool_name)
    if is_error is not None:
        if not isinstance(is_error, bool):
            raise ValueError(f"is_error must be a bool; got {is_error!r}")
        where.append("is_error = %s")
        params.append(is_error)
    if has_approval is not None:
        if not isinstance(has_approval, bool):
            raise ValueError(f"has_approval must be a bool; got {has_approval!r}")
        where.append("approval_required" if has_approval else "NOT approval_required")
    if state is not None:
        try:
            where.append("state = %s")
            params.append(ToolCallState(state).value)
        except ValueError:
            allowed = ", ".join(s.value for s in ToolCallState)
            raise ValueError(f"state must be one of {allowed}; got {state!r}") from None
    time_clauses, time_params = created_at_clauses(created_after, created_before, "%s")
    where += time_clauses
    params += time_params
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    query = (
        f"SELECT {_TOOL_CALL_COLUMNS} FROM tool_calls{condition}"
        " ORDER BY created_at DESC, id DESC, agent_id DESC, pos DESC LIMIT %s OFFSET %s"
    )
    return query, [*params, limit, offset]


STATS_QUERY = """
SELECT 'role', role, count(*) FROM messages WHERE agent_id = %(a)s GROUP BY role
UNION ALL SELECT 'state', state, count(*) FROM tool_calls WHERE agent_id = %(a)s GROUP BY state
UNION ALL SELECT 'name', name, count(*) FROM tool_calls WHERE agent_id = %(a)s GROUP BY name
UNION ALL SELECT 'snapshots', '', count(*) FROM snapshots WHERE agent_id = %(a)s
"""


def list_query(prefix: str | None) -> tuple[str, list[Any]]:
    """The SQL and parameters of :meth:`PostgresStore.list`: an index range, no LIKE."""
    if prefix is None or prefix == "":
        return "SELECT agent_id FROM agents WHERE info IS NOT NULL ORDER BY agent_id", []
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str or None; got {type(prefix).__name__}")
    upper = prefix_upper_bound(prefix)
    if upper is None:
        return "SELECT agent_id FROM agents WHERE info IS NOT NULL AND agent_id >= %s ORDER BY agent_id", [prefix]
    return (
        "SELECT agent_id FROM agents WHERE info IS NOT NULL AND agent_id >= %s AND agent_id < %s ORDER BY agent_id",
        [prefix, upper],
    )


def search_query(request: SearchRequest) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of :meth:`PostgresStore.search_messages`: the GIN
    index on ``search`` finds the rows, ``ts_rank`` (normalised by length) ranks them."""
    params: dict[str, Any] = {}
    parts = []
    for i, phrase in enumerate(request.query.phrases()):
        params[f"t{i}"] = phrase
        parts.append(f"phraseto_tsquery({TS_CONFIG}, %(t{i})s)")
    tsquery = "(" + " && ".join(parts) + ")"
    where = [f"m.search @@ {tsquery}"]
    join = ""
    if request.template_id is not None or request.user_id is not None:
        join = " JOIN agents a ON a.agent_id = m.agent_id AND a.info IS NOT NULL"
        if request.template_id is not None:
            where.append("a.template_id = %(template)s")
            params["template"] = request.template_id
        if request.user_id is not None:
            where.append("a.user_id = %(user)s")
            params["user"] = request.user_id
    for column, key, value in (
        ("m.agent_id", "agent", request.agent_id),
        ("m.role", "role", request.role),
    ):
        if value is not None:
            where.append(f"{column} = %({key})s")
            params[key] = value
    if request.created_after is not None:
        where.append("m.created_at >= %(after)s")
        params["after"] = request.created_after
    if request.created_before is not None:
        where.append("m.created_at <= %(before)s")
        params["before"] = request.created_before
    params["limit"], params["offset"] = request.limit, request.offset
    # The page is chosen first; only its rows' documents are read and turned
    # into text (data::text over every match would cost more than the search).
    query = (
        "SELECT p.agent_id, p.seq, p.role, p.created_at, COALESCE(d.raw, d.data::text), p.score FROM ("
        f"SELECT m.agent_id, m.seq, m.role, m.created_at, ts_rank(m.search, {tsquery}, 1) AS score"
        f" FROM messages m{join} WHERE {' AND '.join(where)}"
        " ORDER BY score DESC, m.created_at DESC, m.seq DESC, m.agent_id DESC"
        " LIMIT %(limit)s OFFSET %(offset)s) p"
        " JOIN messages d ON d.agent_id = p.agent_id AND d.seq = p.seq"
        " ORDER BY p.score DESC, p.created_at DESC, p.seq DESC, p.agent_id DESC"
    )
    return query, params


async def _index_existing_messages(conn: AsyncConnection[Any]) -> None:
    """Migration 2's data step: index the messages stored before it, in batches
    read through a server-side cursor (same transaction as the DDL)."""
    reader = conn.cursor(name="kode_index_messages")
    await reader.execute("SELECT agent_id, seq, COALESCE(raw, data::text) FROM messages")
    while True:
        batch = await reader.fetchmany(1000)
        if not batch:
            break
        agents, seqs, texts = [], [], []
        for agent_id, seq, document in batch:
            agents.append(agent_id)
            seqs.append(seq)
            texts.append(index_text(jsoncodec.decode(document)))
        await conn.execute(
            f"UPDATE messages m SET search = to_tsvector({TS_CONFIG}, u.t)"
            " FROM unnest(%s::text[], %s::integer[], %s::text[]) AS u(a, s, t)"
            " WHERE m.agent_id = u.a AND m.seq = u.s",
            [agents, seqs, texts],
        )
    await reader.close()


# Python steps run right after a migration's SQL, in its transaction.
_MIGRATION_STEPS: dict[int, Callable[[AsyncConnection[Any]], Awaitable[None]]] = {2: _index_existing_messages}

# --------------------------------------------------------------------------- SQL statements

_LOCK_AGENT = "SELECT msg_version, msg_len, tc_version, tc_len FROM agents WHERE agent_id = %s FOR UPDATE"
_ENSURE_AGENT = (
    "INSERT INTO agents (agent_id, created_at, updated_at) VALUES (%s, %s, %s) ON CONFLICT (agent_id) DO NOTHING"
)
# `search`: the message's folded words (kode_sdk.store.search.index_text) as
# a tsvector of the `simple` configuration; NULL when the store keeps no index.
_UPSERT_MESSAGE = f"""
INSERT INTO messages (agent_id, seq, role, block_types, created_at, data, raw, search)
VALUES (%s, %s, %s, %b::text[], %s, %s::jsonb, %s, to_tsvector({TS_CONFIG}, %s))
ON CONFLICT (agent_id, seq) DO UPDATE
SET role = EXCLUDED.role, block_types = EXCLUDED.block_types, data = EXCLUDED.data, raw = EXCLUDED.raw,
    search = EXCLUDED.search
"""
_UPSERT_TOOL_CALL = """
INSERT INTO tool_calls (agent_id, pos, id, name, state, is_error, approval_required, created_at, updated_at, data, raw)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)
ON CONFLICT (agent_id, pos) DO UPDATE
SET id = EXCLUDED.id, name = EXCLUDED.name, state = EXCLUDED.state, is_error = EXCLUDED.is_error,
    approval_required = EXCLUDED.approval_required, created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at, data = EXCLUDED.data, raw = EXCLUDED.raw
"""
# Optimistic writes (cache hit): the version check, the row lock and the
# writes travel in one round trip. The first statement bumps the version only
# if it is the cached one and stamps a random token; every write is guarded by
# that token, so when the check fails (another writer got there first) nothing
# is written and the save retries on the locking path.
_GUARD = "EXISTS (SELECT 1 FROM agents WHERE agent_id = %s AND write_token = %s)"
_BUMP_MESSAGES = (
    "UPDATE agents SET msg_version = msg_version + 1, msg_len = %s, message_count = %s, updated_at = %s,"
    " write_token = %s WHERE agent_id = %s AND msg_version = %s AND msg_len = %s RETURNING 1"
)
_BUMP_TOOL_CALLS = (
    "UPDATE agents SET tc_version = tc_version + 1, tc_len = %s, updated_at = %s,"
    " write_token = %s WHERE agent_id = %s AND tc_version = %s AND tc_len = %s RETURNING 1"
)
_GUARDED_UPSERT_MESSAGE = f"""
INSERT INTO messages (agent_id, seq, role, block_types, created_at, data, raw, search)
SELECT %s, %s, %s, %b::text[], %s, %s::jsonb, %s, to_tsvector({TS_CONFIG}, %s) WHERE {_GUARD}
ON CONFLICT (agent_id, seq) DO UPDATE
SET role = EXCLUDED.role, block_types = EXCLUDED.block_types, data = EXCLUDED.data, raw = EXCLUDED.raw,
    search = EXCLUDED.search
"""
_GUARDED_UPSERT_TOOL_CALL = f"""
INSERT INTO tool_calls (agent_id, pos, id, name, state, is_error, approval_required, created_at, updated_at, data, raw)
SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s WHERE {_GUARD}
ON CONFLICT (agent_id, pos) DO UPDATE
SET id = EXCLUDED.id, name = EXCLUDED.name, state = EXCLUDED.state, is_error = EXCLUDED.is_error,
    approval_required = EXCLUDED.approval_required, created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at, data = EXCLUDED.data, raw = EXCLUDED.raw
"""
# Inside store.transaction(): positions from the row-locked registry, nothing fetched.
_APPEND_MESSAGE = f"""
INSERT INTO messages (agent_id, seq, role, block_types, created_at, data, raw, search)
SELECT %s, a.msg_len + %s, %s, %b::text[], %s, %s::jsonb, %s, to_tsvector({TS_CONFIG}, %s)
FROM agents a WHERE a.agent_id = %s
"""
_GROW_MESSAGES = (
    "UPDATE agents SET msg_version = msg_version + 1, msg_len = msg_len + %s, message_count = msg_len + %s,"
    " updated_at = %s WHERE agent_id = %s"
)
# One record by id: its position if stored, else after the last one.
_UPSERT_TOOL_CALL_BY_ID = """
INSERT INTO tool_calls (agent_id, pos, id, name, state, is_error, approval_required, created_at, updated_at, data, raw)
SELECT %s, COALESCE(
    (SELECT pos FROM tool_calls WHERE agent_id = %s AND id = %s),
    (SELECT COALESCE(MAX(pos) + 1, 0) FROM tool_calls WHERE agent_id = %s)),
    %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s
ON CONFLICT (agent_id, pos) DO UPDATE
SET id = EXCLUDED.id, name = EXCLUDED.name, state = EXCLUDED.state, is_error = EXCLUDED.is_error,
    approval_required = EXCLUDED.approval_required, created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at, data = EXCLUDED.data, raw = EXCLUDED.raw
"""
_RECOUNT_TOOL_CALLS = (
    "UPDATE agents SET tc_version = tc_version + 1, updated_at = %s,"
    " tc_len = (SELECT COALESCE(MAX(pos) + 1, 0) FROM tool_calls t WHERE t.agent_id = agents.agent_id)"
    " WHERE agent_id = %s"
)
# Arrays go in binary (%b): the text format escapes every element with a regex.
_INSERT_EVENTS = """
INSERT INTO events (agent_id, seq, channel, type, timestamp, data, raw)
SELECT a, s, c, t, ts, d::jsonb, r
FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[])
    AS u(a, s, c, t, ts, d, r)
"""
# Payload "<schema>:<agent_id>": stores in other schemas of the database share the channel.
_NOTIFY = f"SELECT pg_notify('{NOTIFY_CHANNEL}', %s || ':' || a) FROM unnest(%s::text[]) AS n(a)"
# Inclusive lower bound, so that the first page can start at the smallest bigint.
_READ_EVENTS = (
    "SELECT seq, COALESCE(raw, data::text) FROM events WHERE agent_id = %s AND seq >= %s ORDER BY seq LIMIT %s"
)
_READ_CHANNEL_EVENTS = (
    "SELECT seq, COALESCE(raw, data::text) FROM events"
    " WHERE agent_id = %s AND channel = %s AND seq >= %s ORDER BY seq LIMIT %s"
)
_DATA_TABLES = (
    "messages",
    "tool_calls",
    "events",
    "todos",
    "history_windows",
    "compression_records",
    "recovered_files",
    "media_cache",
    "snapshots",
)
# Every agent with any stored record, info or not: without foreign keys a
# record may have no registry row, so every table is read (whole-store
# operations only: export, migrate, metrics).
_STORED_AGENTS = " UNION ".join(f"SELECT agent_id FROM {table}" for table in ("agents", *_DATA_TABLES))


def _message_row(
    agent_id: str, seq: int, message: Message, encoded: bytes, now: int, index: bool = True
) -> tuple[Any, ...]:
    data, raw = _doc(encoded)
    types = [t.replace("\x00", "\ufffd") for t in message.block_types()]
    words = index_text({"content": message.content}) if index else None
    return (agent_id, seq, message.role, types, now, data, raw, words)


def _tool_call_row(agent_id: str, pos: int, record: ToolCallRecord, encoded: bytes) -> tuple[Any, ...]:
    data, raw = _doc(encoded)
    return (
        agent_id,
        pos,
        record.id.replace("\x00", "\ufffd"),
        record.name.replace("\x00", "\ufffd"),
        record.state.value,
        record.is_error,
        record.approval.required,
        to_epoch_ms(record.created_at),
        to_epoch_ms(record.updated_at),
        data,
        raw,
    )


def _text(value: str) -> str:
    """A str safe for a TEXT column (PostgreSQL text cannot hold U+0000)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


# --------------------------------------------------------------------------- the store


class PostgresStore(MessageSearch, BaseStore):
    """A :class:`~kode_sdk.store.protocols.ExtendedStore` in PostgreSQL, shared by any
    number of workers.

    ``connection`` is a DSN or a dict of parts (``host, port, database, user,
    password, max, idle_timeout_ms, connection_timeout_ms, ssl``, also ``dsn``,
    ``schema``, ``pooler``, ``lock_lease_ms`` and ``replicas``; see
    :mod:`kode_sdk.store.postgres.config` and docs/postgres-guide.md).
    ``schema`` (default ``public``) is created if missing, unless ``create``
    is false: then a schema without kode tables raises
    :class:`~kode_sdk.errors.StoreConfigError` and nothing is created.
    ``file_store_base_dir`` is accepted for the hybrid layout of the reference
    design; here it is only checked for writability by :meth:`health_check`.
    The constructor does no I/O.

    >>> store = PostgresStore({"host": "127.0.0.1", "database": "kode", "user": "kode"})
    >>> store
    <PostgresStore 127.0.0.1:5432/kode user=kode schema=public (new)>
    """

    backend_name = "postgres"

    def __init__(
        self,
        connection: Mapping[str, Any] | str,
        file_store_base_dir: str | os.PathLike[str] | None = None,
        *,
        schema: str | None = None,
        create: bool = True,
    ) -> None:
        super().__init__()
        self._settings: PostgresSettings = parse_connection(connection, schema)
        # False: open only a schema that already holds a kode store (read-only tools).
        self._create = create
        self._file_dir = Path(file_store_base_dir) if file_store_base_dir is not None else None
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._lock_pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._messages_cache = SavedListCache()
        self._tool_calls_cache = SavedListCache()
        # False only to measure what the index costs (bench/run.py --search-index off).
        self._search_index = True
        self._event_commits = EventCommitter(self._commit_events)
        self._held_locks: set[AgentLock] = set()
        self._leases: dict[str, set[LeaseAgentLock]] = {}  # held lease locks by agent (behind a pooler)
        self._pooled = self._settings.transaction_pooled
        self._prologue = settings_statement(self._settings) if self._pooled else None
        self._replicas: ReplicaRouter | None = None
        # Behind replicas, each commit notes the primary's WAL position (read-your-writes).
        self._on_commit = self._note_commit if self._settings.replicas else None
        self._renew_lock = asyncio.Lock()
        self._checked_out = {False: 0, True: 0}  # connections handed out, per pool (locks: True)
        self._retiring: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<PostgresStore {self._settings.describe()} ({self._state})>"

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding this store's tables."""
        return self._settings.schema

    # ------------------------------------------------------------------ lifecycle

    def _new_pool(self, *, locks: bool, conninfo: str | None = None) -> AsyncConnectionPool[AsyncConnection[Any]]:
        """The store's pool (``locks``: the lock pool; ``conninfo``: a replica's pool)."""
        settings = self._settings
        idle = max(settings.idle_timeout_s if settings.idle_timeout_s > 0 else 86_400.0, 1.0)
        kwargs: dict[str, Any] = {"autocommit": True}
        if self._pooled:
            # A statement prepared on one server session is unknown to the next.
            kwargs["prepare_threshold"] = None
        if locks:
            # One connection per held lock: a pool of its own, so locks never
            # starve the store's queries, and a reset hook that frees any lock.
            return AsyncConnectionPool(
                settings.conninfo,
                kwargs=kwargs,
                min_size=0,
                max_size=max(4, settings.max_size),
                open=False,
                reset=_unlock_all,
                name="kode-postgres-locks",
                timeout=settings.connect_timeout_s,
                max_idle=idle,
            )
        pool = AsyncConnectionPool(
            conninfo or settings.conninfo,
            kwargs=kwargs,
            min_size=settings.min_size if conninfo is None else 0,
            max_size=settings.max_size,
            open=False,
            name="kode-postgres",
            timeout=settings.connect_timeout_s,
            max_idle=idle,
        )
        prefer_warm(pool)
        return pool

    async def _open(self) -> None:
        settings = self._settings
        register_secrets(settings.secrets)
        pool = self._new_pool(locks=False)
        lock_pool = self._new_pool(locks=True)
        try:
            await pool.open(wait=settings.min_size > 0, timeout=settings.connect_timeout_s)
            await self._migrate(pool)
            await lock_pool.open(wait=False)
        except BaseException as exc:
            await pool.close()
            await lock_pool.close()
            if isinstance(exc, PoolTimeout):
                # "pool initialization incomplete" says nothing: one direct
                # connection gives the server's own reason (refused, too many
                # clients, SSL required, bad password).
                exc = await self._connect_error() or exc
            unregister_secrets(settings.secrets)
            if isinstance(exc, _CONNECTION_ERRORS):
                raise self._connection_error(exc) from None
            raise
        self._pool = pool
        self._lock_pool = lock_pool
        if settings.replicas:
            self._replicas = ReplicaRouter(
                settings.replicas, lambda conninfo: self._new_pool(locks=False, conninfo=conninfo), checked_getconn
            )
            await self._replicas.open()

    @property
    def replica_reads(self) -> dict[str, int]:
        """Where the routed reads (queries, stats, ``list``) went: counts of
        ``replica`` and ``primary`` (no replica configured: both 0)."""
        return dict(self._replicas.reads) if self._replicas is not None else {"replica": 0, "primary": 0}

    def _note_commit(self, lsn: str | None) -> None:
        if self._replicas is not None:
            self._replicas.note_commit(lsn)

    async def _read_rows(self, query: str, params: Any) -> list[Any]:
        """Rows of a routed read: from a replica that has replayed this
        store's last commit, else (or if it fails) from the primary."""
        router = self._replicas
        if router is not None and _PG_TX.get() is None:
            try:
                async with router.replica_connection(self._settings.connect_timeout_s) as conn:
                    if conn is not None:
                        if self._prologue is None:
                            cur = await conn.execute(cast(Any, query), params)
                            return await cur.fetchall()
                        async with _pipelined_transaction(conn, self._prologue):
                            cur = await conn.execute(cast(Any, query), params)
                            return await cur.fetchall()
            except _CONNECTION_ERRORS as exc:
                logger.warning("read replica failed mid-read, reading the primary: %s", self._scrub(exc))
                router.mark_down()
                router.reads["replica"] -= 1
                router.reads["primary"] += 1
        async with self._connection() as conn:
            cur = await conn.execute(cast(Any, query), params)
            return await cur.fetchall()

    def _driver_error_kind(self, exc: Exception) -> DriverErrorKind | None:
        """psycopg's exceptions, classified for :func:`~kode_sdk.store.policy.driver_error`."""
        if isinstance(exc, psycopg.errors.IntegrityError):
            return "conflict"
        if isinstance(exc, psycopg.errors.DataError | psycopg.errors.ProgrammingError):
            return "input"  # a value or type the server refused for this call
        if isinstance(exc, psycopg.Error | PoolTimeout | PoolClosed):
            return "connection"
        return None

    async def _close(self) -> None:
        try:
            await self._event_commits.wait_idle()
            for lock in list(self._held_locks):
                with contextlib.suppress(Exception):
                    await lock.release()
        finally:
            if self._pool is not None:
                await self._pool.close()
            if self._lock_pool is not None:
                await self._lock_pool.close()
            if self._replicas is not None:
                await self._replicas.close()
            for task in list(self._retiring):
                with contextlib.suppress(Exception):
                    await task
            unregister_secrets(self._settings.secrets)

    async def _migrate(self, pool: AsyncConnectionPool[AsyncConnection[Any]]) -> None:
        known = migrations()
        async with pool.connection() as conn, conn.transaction():
            # Serialises concurrent openers; released at commit.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK_KEY])
            schema = self._settings.schema
            if not self._create:
                cur = await conn.execute(
                    "SELECT to_regclass(format('%%I.kode_schema_version', %s::text)) IS NOT NULL", [schema]
                )
                row = await cur.fetchone()
                if not (row and row[0]):
                    raise StoreConfigError(
                        f"PostgreSQL store {self._settings.describe()} does not exist (no kode tables in"
                        f" schema {schema!r}; create=False: nothing created)"
                    )
            cur = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
            if await cur.fetchone() is None:
                await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS kode_schema_version"
                " (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)"
            )
            cur = await conn.execute("SELECT version FROM kode_schema_version")
            applied = [int(row[0]) for row in await cur.fetchall()]
            for version, name, text in pending(known, applied, database=f"the database schema {schema!r}"):
                try:
                    await conn.execute(cast(Any, text))
                except psycopg.errors.DatabaseError as exc:
                    if isinstance(exc, _CONNECTION_ERRORS):
                        raise
                    raise SchemaVersionError(f"migration {name} failed: {self._settings.scrub(str(exc))}") from None
                step = _MIGRATION_STEPS.get(version)
                if step is not None:
                    await step(conn)
                await conn.execute(
                    "INSERT INTO kode_schema_version (version, name, applied_at) VALUES (%s, %s, %s)",
                    [version, name, _now_ms()],
                )

    async def _connect_error(self) -> psycopg.Error | None:
        """The error of one direct connection attempt, or None if it connects."""
        try:
            conn = await AsyncConnection.connect(self._settings.conninfo, autocommit=True)
        except psycopg.Error as exc:
            return exc
        await conn.close()
        return None

    def _connection_error(self, exc: BaseException) -> StoreConnectionError:
        detail = self._settings.scrub(str(exc).strip()) or type(exc).__name__
        return StoreConnectionError(f"PostgreSQL at {self._settings.describe()} is unreachable: {detail}")

    def _require_pool(self) -> AsyncConnectionPool[AsyncConnection[Any]]:
        if self._pool is None:
            raise StoreClosedError("postgres store is closed")
        return self._pool

    async def _getconn(
        self, *, locks: bool = False, wait_s: float | None = None
    ) -> tuple[AsyncConnectionPool[AsyncConnection[Any]], AsyncConnection[Any]]:
        """A connection from the store's pool (or the lock pool), with the pool
        it must go back to. Raises StoreConnectionError, or PoolTimeout when
        the lock pool is merely full (the caller reports a lock timeout)."""
        pool = self._lock_pool if locks else self._pool
        if pool is None:
            raise StoreClosedError("postgres store is closed")
        try:
            conn = await checked_getconn(pool, wait_s)
        except PoolTimeout as exc:
            if self._checked_out[locks] >= (pool.max_size or 0):
                if locks:
                    raise
                raise self._connection_error(exc) from None
            # Capacity left, yet no connection: the pool cannot connect, or is
            # still waiting out its reconnect backoff after an outage.
            fresh = await self._renew_pool(pool, locks=locks)
            if fresh is None:
                raise self._connection_error(exc) from None
            pool = fresh
            try:
                conn = await checked_getconn(pool, wait_s)
            except _CONNECTION_ERRORS as again:
                raise self._connection_error(again) from None
        except PoolClosed:
            if self._state == "closed":
                raise StoreClosedError("postgres store is closed") from None
            return await self._getconn(locks=locks, wait_s=wait_s)  # renewed meanwhile
        except _CONNECTION_ERRORS as exc:
            raise self._connection_error(exc) from None
        self._checked_out[locks] += 1
        return pool, conn

    async def _putconn(
        self, pool: AsyncConnectionPool[AsyncConnection[Any]], conn: AsyncConnection[Any], *, locks: bool = False
    ) -> None:
        self._checked_out[locks] -= 1
        await pool.putconn(conn)

    async def _renew_pool(
        self, stale: AsyncConnectionPool[AsyncConnection[Any]], *, locks: bool
    ) -> AsyncConnectionPool[AsyncConnection[Any]] | None:
        """Replace ``stale`` with a fresh pool if the server answers a direct
        connection (the server is back, but psycopg_pool waits out a reconnect
        backoff of seconds before it tries again). None if it does not answer."""
        async with self._renew_lock:
            current = self._lock_pool if locks else self._pool
            if current is not stale:
                return current  # another call renewed it meanwhile
            try:
                probe = await AsyncConnection.connect(self._settings.conninfo, autocommit=True)
            except psycopg.Error:
                return None
            await probe.close()
            fresh = self._new_pool(locks=locks)
            await fresh.open(wait=False)
            if locks:
                self._lock_pool = fresh
            else:
                self._pool = fresh
            # Connections still out (held locks included) close when returned.
            task = asyncio.get_running_loop().create_task(stale.close())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            logger.info("server reachable again: %s pool renewed", "lock" if locks else "connection")
            return fresh

    @contextlib.asynccontextmanager
    async def _connection(self, *, bare: bool = False) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled autocommit connection. Behind a transaction pooler (unless
        ``bare``: the caller opens its own transaction) the body runs in one
        pipelined transaction that starts with the store's settings, since
        each autocommit statement could land on another server session."""
        scoped = _PG_TX.get()
        if scoped is not None and scoped[0] is self:
            yield scoped[1]  # inside store.transaction(): its connection, its transaction
            return
        pool, conn = await self._getconn()
        try:
            if self._prologue is None or bare:
                yield conn
            else:
                async with _pipelined_transaction(conn, self._prologue):
                    yield conn
        except _CONNECTION_ERRORS as exc:
            raise self._connection_error(exc) from None
        finally:
            await self._putconn(pool, conn)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection[Any]]:
        """One transaction in pipeline mode: statements are sent without
        waiting; a fetch or the commit collects the results. Inside
        ``store.transaction()`` the statements join that transaction."""
        scoped = _PG_TX.get()
        if scoped is not None and scoped[0] is self:
            yield scoped[1]
            return
        async with (
            self._connection(bare=True) as conn,
            _pipelined_transaction(conn, self._prologue, self._on_commit),
        ):
            yield conn

    # ------------------------------------------------------------------ events

    async def _commit_events(self, rows: list[PendingEvent]) -> None:
        """Insert ``rows`` (one or more agents) and notify listeners, in one
        pipelined transaction (one round trip), or write nothing.

        A seq already stored raises :class:`RecordValidationError` naming it
        (only ever for a single agent's batch: the group committer retries a
        failed joint commit batch by batch)."""
        columns = _event_columns(rows)
        agents = sorted({row.agent_id for row in rows})
        async with self._connection(bare=True) as conn:
            try:
                # Unprepared statements: a duplicate seq aborts this pipeline,
                # and psycopg's prepared-statement cache does not survive an
                # aborted pipeline (the next call on the connection would fail
                # with "prepared statement _pg3_N does not exist").
                async with _pipelined_transaction(conn, self._prologue, self._on_commit, prepare=False):
                    await conn.execute(_INSERT_EVENTS, columns, prepare=False)
                    await conn.execute(_NOTIFY, [self._settings.schema, agents], prepare=False)
            except psycopg.errors.UniqueViolation:
                agent_id = rows[0].agent_id
                seqs = [row.seq for row in rows if row.agent_id == agent_id]
                # Behind a pooler this read needs the store's settings too.
                settings = _pipelined_transaction(conn, self._prologue) if self._prologue else contextlib.nullcontext()
                async with settings:
                    cur = await conn.execute(
                        "SELECT seq FROM events WHERE agent_id = %s AND seq = ANY(%s::bigint[])", [agent_id, seqs]
                    )
                    stored = [seq for (seq,) in await cur.fetchall()]
                raise duplicate_seq_error(agent_id, stored or seqs) from None

    @operation("saves")
    async def append_event(self, agent_id: str, timeline: Timeline | Mapping[str, Any]) -> None:
        """Append one event; returns once it is committed (concurrent appends
        share one commit) and visible to every worker. A ``seq`` already
        stored raises :class:`RecordValidationError`, nothing written."""
        await self._event_commits.append(event_rows(agent_id, timeline, single=True))

    @operation("saves")
    async def append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None:
        """Append a batch of events in one transaction (one round trip): all or
        none. A seq already stored, or repeated in the batch, raises
        :class:`RecordValidationError` for this call only."""
        rows = event_rows(agent_id, timelines)
        if rows:
            await self._event_commits.append(rows)

    @operation_iter("loads")
    async def read_events(
        self, agent_id: str, *, since: Any = None, channel: str | None = None
    ) -> AsyncIterator[Timeline]:
        """Yield the agent's events in ``bookmark.seq`` order (``seq > since``),
        optionally of one channel; read in keyset pages of 1,000."""
        after = since_seq(since)
        only = check_channel(channel)
        first = _first_seq_after(after)
        while first <= _MAX_SEQ:
            async with self._connection() as conn:
                if only is None:
                    cur = await conn.execute(_READ_EVENTS, [agent_id, first, _EVENT_PAGE])
                else:
                    cur = await conn.execute(_READ_CHANNEL_EVENTS, [agent_id, only, first, _EVENT_PAGE])
                rows = await cur.fetchall()
            for _, text in rows:
                yield timeline_from_wire(_load(text))
            if len(rows) < _EVENT_PAGE:
                return
            first = rows[-1][0] + 1

    async def tail_events(
        self, agent_id: str, since: Any = None, channel: str | None = None, *, poll_interval_s: float = 1.0
    ) -> AsyncIterator[Timeline]:
        """Yield the agent's events as any worker appends them, forever.

        Starts after ``since`` (a Bookmark, Timeline or seq; ``None``: from the
        first event), then waits: LISTEN on a dedicated connection wakes it,
        the ``events`` table is the source of truth (``seq > last seen`` after
        every wake-up, and every ``poll_interval_s`` anyway), so nothing is
        missed or yielded twice, even across a reconnect. While the server is
        unreachable it retries quietly. Stop by leaving the loop; to release the
        connection at once, iterate inside ``contextlib.aclosing``::

            async with contextlib.aclosing(store.tail_events("agt-1")) as events:
                async for timeline in events:
                    ...
        """
        await self._ensure_open()
        validate_agent_id(agent_id)
        after = since_seq(since)
        only = check_channel(channel)
        first = _first_seq_after(after)
        if self._pooled:
            # LISTEN needs a session of its own, which a transaction pooler
            # does not give: poll the table instead.
            async for item in self._poll_events(agent_id, only, first, poll_interval_s):
                yield item
            return
        wanted = f"{self._settings.schema}:{agent_id}"
        conn: AsyncConnection[Any] | None = None
        backoff = 0.05
        try:
            while self._state == "open":
                try:
                    if conn is None or conn.closed:
                        conn = await AsyncConnection.connect(self._settings.conninfo, autocommit=True)
                        await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while first <= _MAX_SEQ:
                        if only is None:
                            cur = await conn.execute(_READ_EVENTS, [agent_id, first, _EVENT_PAGE])
                        else:
                            cur = await conn.execute(_READ_CHANNEL_EVENTS, [agent_id, only, first, _EVENT_PAGE])
                        rows = await cur.fetchall()
                        for seq, text in rows:
                            first = seq + 1
                            yield timeline_from_wire(_load(text))
                        if len(rows) < _EVENT_PAGE:
                            break
                    backoff = 0.05
                    async with contextlib.aclosing(conn.notifies(timeout=poll_interval_s)) as wakeups:
                        async for note in wakeups:
                            if note.payload == wanted:
                                break
                except (psycopg.OperationalError, psycopg.InterfaceError, StoreConnectionError) as exc:
                    logger.warning("tail_events(%r): connection lost, retrying: %s", agent_id, self._scrub(exc))
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close()
                    conn = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _poll_events(
        self, agent_id: str, only: str | None, first: int, poll_interval_s: float
    ) -> AsyncIterator[Timeline]:
        """The tail behind a transaction pooler: read ``seq >= first`` every
        ``poll_interval_s``; no connection is held between polls."""
        backoff = 0.05
        while self._state == "open":
            if first > _MAX_SEQ:
                await asyncio.sleep(poll_interval_s)
                continue
            try:
                async with self._connection() as conn:
                    if only is None:
                        cur = await conn.execute(_READ_EVENTS, [agent_id, first, _EVENT_PAGE])
                    else:
                        cur = await conn.execute(_READ_CHANNEL_EVENTS, [agent_id, only, first, _EVENT_PAGE])
                    rows = await cur.fetchall()
            except StoreConnectionError as exc:
                logger.warning("tail_events(%r): connection lost, retrying: %s", agent_id, self._scrub(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            for seq, text in rows:
                first = seq + 1
                yield timeline_from_wire(_load(text))
            if len(rows) < _EVENT_PAGE:
                await asyncio.sleep(poll_interval_s)

    def _scrub(self, exc: BaseException) -> str:
        return self._settings.scrub(str(exc))

    # ------------------------------------------------------------------ messages

    async def _lock_agent(self, conn: AsyncConnection[Any], agent_id: str, now: int) -> tuple[int, int, int, int]:
        """Lock the agent's registry row (creating it if needed) and return
        ``(msg_version, msg_len, tc_version, tc_len)``."""
        cur = await conn.execute(_LOCK_AGENT, [agent_id])
        row = await cur.fetchone()
        if row is None:
            await conn.execute(_ENSURE_AGENT, [agent_id, now, now])
            cur = await conn.execute(_LOCK_AGENT, [agent_id])
            row = await cur.fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    @operation("saves")
    async def save_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Replace the agent's messages with ``messages``, writing only the
        positions that changed (a rewritten position keeps its ``created_at``).

        The diff compares each message's wire form with an independent copy of
        what was saved last (cached per agent, checked against the row version
        under the row lock), so only changed messages are encoded and sent.
        """
        items = coerce_list(Message, messages, "messages")
        now = _now_ms()
        latest = self._messages_cache.latest(agent_id)
        if latest is not None and await self._save_messages_optimistic(agent_id, items, now, *latest):
            return
        new_cache: list[Any] = []
        try:
            async with self._transaction() as conn:
                version, length, _, _ = await self._lock_agent(conn, agent_id, now)
                cur = await conn.execute(
                    "SELECT COALESCE(raw, data::text) FROM messages WHERE agent_id = %s ORDER BY seq", [agent_id]
                )
                stored = [_load(text) for (text,) in await cur.fetchall()]
                length = len(stored)
                rows = []
                for i, message in enumerate(items):
                    wire = message_to_wire(message)
                    if i < length and share_copy(stored[i]) == wire:  # exact: numbers wrapped
                        new_cache.append(message_snapshot(message))
                        continue
                    encoded = jsoncodec.encode(wire, f"messages[{i}]")
                    rows.append(_message_row(agent_id, i, message, encoded, now, self._search_index))
                    new_cache.append(message_snapshot(message))
                if rows:
                    await conn.cursor().executemany(_UPSERT_MESSAGE, rows)
                if length > len(items):
                    await conn.execute("DELETE FROM messages WHERE agent_id = %s AND seq >= %s", [agent_id, len(items)])
                await conn.execute(
                    "UPDATE agents SET msg_version = msg_version + 1, msg_len = %s, message_count = %s,"
                    " updated_at = %s WHERE agent_id = %s",
                    [len(items), len(items), now, agent_id],
                )
        except BaseException:
            self._messages_cache.drop(agent_id)
            raise
        self._messages_cache.put(agent_id, version + 1, new_cache)

    async def _save_messages_optimistic(
        self, agent_id: str, items: list[Message], now: int, version: int, cached: list[Any]
    ) -> bool:
        """One round trip when the cached copy is current; False if it was not
        (nothing written then)."""
        length = len(cached)
        token = secrets.randbits(63)
        changed = changed_positions(message_keys(items), cached)
        rows = []
        for i in changed:
            encoded = jsoncodec.encode(message_to_wire(items[i]), f"messages[{i}]")
            rows.append((*_message_row(agent_id, i, items[i], encoded, now, self._search_index), agent_id, token))
        new_cache = updated_snapshots(cached, items, changed, message_snapshot)
        n = len(items)
        try:
            async with self._transaction() as conn:
                bumped = await conn.execute(_BUMP_MESSAGES, [n, n, now, token, agent_id, version, length])
                if rows:
                    await conn.cursor().executemany(_GUARDED_UPSERT_MESSAGE, rows)
                if length > n:
                    await conn.execute(
                        f"DELETE FROM messages WHERE agent_id = %s AND seq >= %s AND {_GUARD}",
                        [agent_id, n, agent_id, token],
                    )
            matched = await bumped.fetchone() is not None
        except BaseException:
            self._messages_cache.drop(agent_id)
            raise
        if matched:
            self._messages_cache.put(agent_id, version + 1, new_cache)
        else:
            self._messages_cache.drop(agent_id)
        return matched

    @operation("saves")
    async def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Append ``messages`` after the stored ones: no re-read, one round trip for the rows."""
        items = coerce_list(Message, messages, "messages")
        encoded = [jsoncodec.encode(message_to_wire(m), f"messages[{i}]") for i, m in enumerate(items)]
        now = _now_ms()
        scoped = _PG_TX.get()
        if scoped is not None and scoped[0] is self:
            # Inside store.transaction(): nothing fetched, so the step stays one
            # round trip; positions come from msg_len under the row lock.
            conn = scoped[1]
            self._messages_cache.drop(agent_id)
            await conn.execute(_ENSURE_AGENT, [agent_id, now, now])
            await conn.execute(_LOCK_AGENT, [agent_id])
            if items:
                await conn.cursor().executemany(
                    _APPEND_MESSAGE,
                    [
                        (*_message_row(agent_id, i, m, encoded[i], now, self._search_index), agent_id)
                        for i, m in enumerate(items)
                    ],
                )
            await conn.execute(_GROW_MESSAGES, [len(items), len(items), now, agent_id])
            return
        try:
            async with self._transaction() as conn:
                version, length, _, _ = await self._lock_agent(conn, agent_id, now)
                if items:
                    await conn.cursor().executemany(
                        _UPSERT_MESSAGE,
                        [
                            _message_row(agent_id, length + i, m, encoded[i], now, self._search_index)
                            for i, m in enumerate(items)
                        ],
                    )
                total = length + len(items)
                await conn.execute(
                    "UPDATE agents SET msg_version = msg_version + 1, msg_len = %s, message_count = %s,"
                    " updated_at = %s WHERE agent_id = %s",
                    [total, total, now, agent_id],
                )
        except BaseException:
            self._messages_cache.drop(agent_id)
            raise
        cached = self._messages_cache.get(agent_id, version)
        if cached is not None and len(cached) == length:
            self._messages_cache.put(agent_id, version + 1, cached + list(map(message_snapshot, items)))
        else:
            self._messages_cache.drop(agent_id)

    @operation("loads")
    async def load_messages(self, agent_id: str) -> list[Message]:
        """The agent's messages, in order (``[]`` for an unknown agent)."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT COALESCE(raw, data::text) FROM messages WHERE agent_id = %s ORDER BY seq", [agent_id]
            )
            rows = await cur.fetchall()
        return [message_from_wire(_load(text)) for (text,) in rows]

    # ------------------------------------------------------------------ tool calls

    @operation("saves")
    async def save_tool_call_records(
        self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]
    ) -> None:
        """Replace the agent's tool-call records, writing only changed positions
        (compared with snapshots of the records saved last)."""
        items = coerce_list(ToolCallRecord, records, "records")
        now = _now_ms()
        latest = self._tool_calls_cache.latest(agent_id)
        if latest is not None and await self._save_tool_calls_optimistic(agent_id, items, now, *latest):
            return
        new_cache: list[Any] = []
        try:
            async with self._transaction() as conn:
                _, _, version, length = await self._lock_agent(conn, agent_id, now)
                cur = await conn.execute(
                    "SELECT COALESCE(raw, data::text) FROM tool_calls WHERE agent_id = %s ORDER BY pos", [agent_id]
                )
                stored = [_load(text) for (text,) in await cur.fetchall()]
                length = len(stored)
                rows = []
                for i, record in enumerate(items):
                    wire = record.to_wire()
                    new_cache.append(tool_call_snapshot(record))
                    if i < length and share_copy(stored[i]) == wire:  # exact: numbers wrapped
                        continue
                    rows.append(_tool_call_row(agent_id, i, record, jsoncodec.encode(wire, f"records[{i}]")))
                if rows:
                    await conn.cursor().executemany(_UPSERT_TOOL_CALL, rows)
                if length > len(items):
                    await conn.execute(
                        "DELETE FROM tool_calls WHERE agent_id = %s AND pos >= %s", [agent_id, len(items)]
                    )
                await conn.execute(
                    "UPDATE agents SET tc_version = tc_version + 1, tc_len = %s, updated_at = %s WHERE agent_id = %s",
                    [len(items), now, agent_id],
                )
        except BaseException:
            self._tool_calls_cache.drop(agent_id)
            raise
        self._tool_calls_cache.put(agent_id, version + 1, new_cache)

    async def _save_tool_calls_optimistic(
        self, agent_id: str, items: list[ToolCallRecord], now: int, version: int, cached: list[Any]
    ) -> bool:
        """One round trip when the cached copy is current; False if it was not."""
        length = len(cached)
        token = secrets.randbits(63)
        changed = changed_positions(tool_call_keys(items), cached)
        rows = []
        for i in changed:
            record = items[i]
            encoded = jsoncodec.encode(record.to_wire(), f"records[{i}]")
            rows.append((*_tool_call_row(agent_id, i, record, encoded), agent_id, token))
        new_cache = updated_snapshots(cached, items, changed, tool_call_snapshot)
        n = len(items)
        try:
            async with self._transaction() as conn:
                bumped = await conn.execute(_BUMP_TOOL_CALLS, [n, now, token, agent_id, version, length])
                if rows:
                    await conn.cursor().executemany(_GUARDED_UPSERT_TOOL_CALL, rows)
                if length > n:
                    await conn.execute(
                        f"DELETE FROM tool_calls WHERE agent_id = %s AND pos >= %s AND {_GUARD}",
                        [agent_id, n, agent_id, token],
                    )
            matched = await bumped.fetchone() is not None
        except BaseException:
            self._tool_calls_cache.drop(agent_id)
            raise
        if matched:
            self._tool_calls_cache.put(agent_id, version + 1, new_cache)
        else:
            self._tool_calls_cache.drop(agent_id)
        return matched

    @operation("saves")
    async def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None:
        """Write one tool-call record by id: replaced in place, a new id goes
        last. One row and one round trip, whatever the list's length."""
        item = ToolCallRecord.coerce(record, "record")
        encoded = jsoncodec.encode(item.to_wire(), "record")
        row = _tool_call_row(agent_id, 0, item, encoded)
        now = _now_ms()
        # Nothing is fetched: the row lock is taken by a SELECT whose result is
        # never read, and the position is decided by the INSERT itself.
        self._tool_calls_cache.drop(agent_id)
        try:
            async with self._transaction() as conn:
                await conn.execute(_ENSURE_AGENT, [agent_id, now, now])
                await conn.execute(_LOCK_AGENT, [agent_id])
                await conn.execute(_UPSERT_TOOL_CALL_BY_ID, [agent_id, agent_id, row[2], agent_id, *row[2:]])
                await conn.execute(_RECOUNT_TOOL_CALLS, [now, agent_id])
        finally:
            self._tool_calls_cache.drop(agent_id)

    def _transaction_driver(self, agent_id: str) -> TransactionDriver:
        return _PostgresDriver(self, agent_id)

    @operation("loads")
    async def load_tool_call_records(self, agent_id: str) -> list[ToolCallRecord]:
        """The agent's tool-call records, in order."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT COALESCE(raw, data::text) FROM tool_calls WHERE agent_id = %s ORDER BY pos", [agent_id]
            )
            rows = await cur.fetchall()
        return [tool_call_record_from_wire(_load(text)) for (text,) in rows]

    # ------------------------------------------------------------------ small documents

    async def _fetch_docs(self, query: str, params: Sequence[Any]) -> list[Any]:
        async with self._connection() as conn:
            cur = await conn.execute(cast(Any, query), params)
            rows = await cur.fetchall()
        return [_load(row[0]) for row in rows]

    async def _execute(self, query: str, params: Sequence[Any]) -> None:
        async with self._transaction() as conn:
            await conn.execute(cast(Any, query), params)

    @operation("saves")
    async def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None:
        """Replace the agent's todo list."""
        record = TodoSnapshot.coerce(snapshot, "snapshot")
        data, raw = _doc(jsoncodec.encode(record.to_wire(), "snapshot"))
        await self._execute(
            "INSERT INTO todos (agent_id, version, updated_at, data, raw) VALUES (%s, %s, %s, %s::jsonb, %s)"
            " ON CONFLICT (agent_id) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at,"
            " data = EXCLUDED.data, raw = EXCLUDED.raw",
            [agent_id, record.version, to_epoch_ms(record.updated_at), data, raw],
        )

    @operation("loads")
    async def load_todos(self, agent_id: str) -> TodoSnapshot | None:
        """The agent's todo list, or ``None``."""
        docs = await self._fetch_docs("SELECT COALESCE(raw, data::text) FROM todos WHERE agent_id = %s", [agent_id])
        return TodoSnapshot.model_validate(docs[0]) if docs else None

    async def _append_doc(
        self, table: str, agent_id: str, key_column: str, key: str, timestamp: int, doc: bytes
    ) -> None:
        # The append-only record lists: one row per save, loaded in save order (``ord``).
        data, raw = _doc(doc)
        await self._execute(
            f"INSERT INTO {table} (agent_id, {key_column}, timestamp, data, raw) VALUES (%s, %s, %s, %s::jsonb, %s)",
            [agent_id, _text(key), timestamp, data, raw],
        )

    async def _load_ordered(self, table: str, agent_id: str) -> list[Any]:
        return await self._fetch_docs(
            f"SELECT COALESCE(raw, data::text) FROM {table} WHERE agent_id = %s ORDER BY ord", [agent_id]
        )

    @operation("saves")
    async def save_history_window(self, agent_id: str, window: HistoryWindow | Mapping[str, Any]) -> None:
        """Append a history window (windows load in save order)."""
        record = HistoryWindow.coerce(window, "window")
        doc = jsoncodec.encode(record.to_wire(), "window")
        await self._append_doc("history_windows", agent_id, "id", record.id, record.timestamp, doc)

    @operation("loads")
    async def load_history_windows(self, agent_id: str) -> list[HistoryWindow]:
        """The agent's history windows, in save order."""
        return [HistoryWindow.model_validate(d) for d in await self._load_ordered("history_windows", agent_id)]

    @operation("saves")
    async def save_compression_record(self, agent_id: str, record: CompressionRecord | Mapping[str, Any]) -> None:
        """Append a compression record (records load in save order)."""
        item = CompressionRecord.coerce(record, "record")
        doc = jsoncodec.encode(item.to_wire(), "record")
        await self._append_doc("compression_records", agent_id, "id", item.id, item.timestamp, doc)

    @operation("loads")
    async def load_compression_records(self, agent_id: str) -> list[CompressionRecord]:
        """The agent's compression records, in save order."""
        return [CompressionRecord.model_validate(d) for d in await self._load_ordered("compression_records", agent_id)]

    @operation("saves")
    async def save_recovered_file(self, agent_id: str, file: RecoveredFile | Mapping[str, Any]) -> None:
        """Append a recovered file (files load in save order)."""
        item = RecoveredFile.coerce(file, "file")
        doc = jsoncodec.encode(item.to_wire(), "file")
        await self._append_doc("recovered_files", agent_id, "path", item.path, item.timestamp, doc)

    @operation("loads")
    async def load_recovered_files(self, agent_id: str) -> list[RecoveredFile]:
        """The agent's recovered files, in save order."""
        return [RecoveredFile.model_validate(d) for d in await self._load_ordered("recovered_files", agent_id)]

    @operation("saves")
    async def save_media_cache(self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]) -> None:
        """Replace the agent's media cache."""
        items = coerce_list(MediaCacheRecord, records, "records")
        rows = []
        for pos, item in enumerate(items):
            data, raw = _doc(jsoncodec.encode(item.to_wire(), f"records[{pos}]"))
            rows.append((agent_id, pos, _text(item.key), data, raw))
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM media_cache WHERE agent_id = %s", [agent_id])
            if rows:
                await conn.cursor().executemany(
                    "INSERT INTO media_cache (agent_id, pos, key, data, raw) VALUES (%s, %s, %s, %s::jsonb, %s)", rows
                )

    @operation("loads")
    async def load_media_cache(self, agent_id: str) -> list[MediaCacheRecord]:
        """The agent's media cache, in order."""
        docs = await self._fetch_docs(
            "SELECT COALESCE(raw, data::text) FROM media_cache WHERE agent_id = %s ORDER BY pos", [agent_id]
        )
        return [MediaCacheRecord.model_validate(d) for d in docs]

    @operation("saves")
    async def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None:
        """Save a snapshot (the same ``id`` again replaces it)."""
        item = Snapshot.coerce(snapshot, "snapshot")
        data, raw = _doc(jsoncodec.encode(item.to_wire(), "snapshot"))
        await self._execute(
            "INSERT INTO snapshots (agent_id, id, created_at, data, raw) VALUES (%s, %s, %s, %s::jsonb, %s)"
            " ON CONFLICT (agent_id, id) DO UPDATE SET created_at = EXCLUDED.created_at, data = EXCLUDED.data,"
            " raw = EXCLUDED.raw",
            [agent_id, _text(item.id), to_epoch_ms(item.created_at), data, raw],
        )

    @operation("loads")
    async def load_snapshot(self, agent_id: str, snapshot_id: str) -> Snapshot | None:
        """One snapshot by id, or ``None``."""
        if not isinstance(snapshot_id, str):
            raise RecordValidationError(
                f"snapshot_id: expected a str, got {type(snapshot_id).__name__}", field="snapshot_id"
            )
        docs = await self._fetch_docs(
            "SELECT COALESCE(raw, data::text) FROM snapshots WHERE agent_id = %s AND id = %s",
            [agent_id, _text(snapshot_id)],
        )
        return Snapshot.model_validate(docs[0]) if docs else None

    @operation("loads")
    async def list_snapshots(self, agent_id: str) -> list[Snapshot]:
        """The agent's snapshots, newest first."""
        docs = await self._fetch_docs(
            "SELECT COALESCE(raw, data::text) FROM snapshots WHERE agent_id = %s ORDER BY created_at DESC, id DESC",
            [agent_id],
        )
        return [Snapshot.model_validate(d) for d in docs]

    # ------------------------------------------------------------------ agent info

    @operation("saves")
    async def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None:
        """Save the agent's :class:`AgentInfo`; from then on the agent exists."""
        item = AgentInfo.coerce(info, "info")
        if item.agent_id != agent_id:
            raise RecordValidationError(
                f"info.agent_id: {item.agent_id!r} does not match the agent id {agent_id!r}", field="info.agent_id"
            )
        data, raw = _doc(jsoncodec.encode(item.to_wire(), "info"))
        user = user_id_of(item.metadata)
        await self._execute(
            "INSERT INTO agents (agent_id, info, info_raw, template_id, user_id, created_at, updated_at,"
            " message_count, last_sfp_index, breakpoint) VALUES (%s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (agent_id) DO UPDATE SET info = EXCLUDED.info, info_raw = EXCLUDED.info_raw,"
            " template_id = EXCLUDED.template_id, user_id = EXCLUDED.user_id, created_at = EXCLUDED.created_at,"
            " updated_at = EXCLUDED.updated_at, message_count = EXCLUDED.message_count,"
            " last_sfp_index = EXCLUDED.last_sfp_index, breakpoint = EXCLUDED.breakpoint",
            [
                agent_id,
                data,
                raw,
                _text(item.template_id),
                _text(user) if user is not None else None,
                to_epoch_ms(item.created_at),
                _now_ms(),
                item.message_count,
                item.last_sfp_index,
                item.breakpoint.value if item.breakpoint is not None else None,
            ],
        )

    @operation("loads")
    async def load_info(self, agent_id: str) -> AgentInfo | None:
        """The agent's info, or ``None``; ``message_count`` reflects the last message save."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT COALESCE(info_raw, info::text), message_count FROM agents"
                " WHERE agent_id = %s AND info IS NOT NULL",
                [agent_id],
            )
            row = await cur.fetchone()
        if row is None:
            return None
        wire = _load(row[0])
        wire["messageCount"] = row[1]
        return AgentInfo.model_validate(wire)

    @operation("loads")
    async def exists(self, agent_id: str) -> bool:
        """True once ``save_info`` ran for the agent."""
        async with self._connection() as conn:
            cur = await conn.execute("SELECT 1 FROM agents WHERE agent_id = %s AND info IS NOT NULL", [agent_id])
            return await cur.fetchone() is not None

    @operation("deletes")
    async def delete(self, agent_id: str) -> None:
        """Remove every record of the agent, in every table, in one transaction."""
        try:
            async with self._transaction() as conn:
                await conn.execute("DELETE FROM agents WHERE agent_id = %s", [agent_id])
                for table in _DATA_TABLES:
                    await conn.execute(f"DELETE FROM {table} WHERE agent_id = %s", [agent_id])
        finally:
            self._messages_cache.drop(agent_id)
            self._tool_calls_cache.drop(agent_id)

    # ------------------------------------------------------------------ queries

    @operation("queries", agent=False)
    async def query_sessions(
        self,
        *,
        agent_id: str | None = None,
        template_id: str | None = None,
        user_id: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: str = "desc",
    ) -> list[SessionInfo]:
        """Agents matching every given filter, newest first by default."""
        query, params = sessions_query(
            agent_id=agent_id,
            template_id=template_id,
            user_id=user_id,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            sort_order=sort_order,
        )
        rows = await self._read_rows(query, params)
        return [
            session_info(
                aid,
                created,
                updated,
                count,
                template,
                sfp,
                bp,
                _load(info_raw).get("metadata") if info_raw is not None else _load(meta) if meta is not None else None,
            )
            for aid, template, created, updated, count, sfp, bp, info_raw, meta in rows
        ]

    async def _search_rows(self, request: SearchRequest) -> list[SearchRow]:
        """``search_messages``: the GIN index finds the rows (see :func:`search_query`)."""
        query, params = search_query(request)
        rows = await self._read_rows(query, params)
        return [
            SearchRow(agent, seq, role, int(created), jsoncodec.decode(text), float(score))
            for agent, seq, role, created, text, score in rows
        ]

    @operation("queries", agent=False)
    async def query_messages(
        self,
        *,
        agent_id: str | None = None,
        role: str | None = None,
        content_type: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredMessage]:
        """Messages matching every given filter, newest first."""
        query, params = messages_query(
            agent_id=agent_id,
            role=role,
            content_type=content_type,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )
        rows = await self._read_rows(query, params)
        return [stored_message(aid, seq, role, created, _load(text)) for aid, seq, role, created, text in rows]

    @operation("queries", agent=False)
    async def query_tool_calls(
        self,
        *,
        agent_id: str | None = None,
        tool_name: str | None = None,
        is_error: bool | None = None,
        has_approval: bool | None = None,
        state: ToolCallState | str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredToolCall]:
        """Tool calls matching every given filter, newest first."""
        query, params = tool_calls_query(
            agent_id=agent_id,
            tool_name=tool_name,
            is_error=is_error,
            has_approval=has_approval,
            state=state,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )
        rows = await self._read_rows(query, params)
        return [stored_tool_call(aid, _load(text)) for aid, text in rows]

    @operation("queries")
    async def aggregate_stats(self, agent_id: str) -> AgentStats:
        """Counts of the agent's messages by role, tool calls by state and name, and snapshots."""
        rows = await self._read_rows(STATS_QUERY, {"a": agent_id})
        counts: dict[str, dict[str, int]] = {"role": {}, "state": {}, "name": {}, "snapshots": {}}
        for kind, key, count in rows:
            counts[kind][key] = int(count)
        return stats_from_counts(
            total_messages=sum(counts["role"].values()),
            total_snapshots=counts["snapshots"].get("", 0),
            messages_by_role=counts["role"],
            tool_calls_by_state=counts["state"],
            tool_calls_by_name=counts["name"],
        )

    # ------------------------------------------------------------------ operations

    async def health_check(self) -> StoreHealthStatus:
        """Whether the database answers (and how fast) and the file directory
        accepts writes. Raises only :class:`StoreClosedError` after ``close()``;
        any other failure is reported, scrubbed of secrets."""
        if self._state == "closed":
            raise StoreClosedError("postgres store is closed")
        started = time.perf_counter()
        files = probe_writable(self._file_dir, create=True)
        try:
            await self._ensure_open()
            began = time.perf_counter()
            async with self._connection() as conn:
                await conn.execute("SELECT 1")
            database = DatabaseHealth(connected=True, latency_ms=(time.perf_counter() - began) * 1000)
        except Exception as exc:
            detail = self._settings.scrub(str(exc)) or type(exc).__name__
            database = DatabaseHealth(connected=False, error=detail)
        self.metrics.record("other", "health_check", (time.perf_counter() - started) * 1000, database.connected)
        return StoreHealthStatus(
            healthy=database.connected and files.writable,
            database=database,
            file_system=files,
            checked_at=now_utc(),
        )

    @operation("queries")
    async def check_consistency(self, agent_id: str) -> ConsistencyCheckResult:
        """Look for broken invariants of the agent's rows (gaps in positions,
        counters that disagree with the rows, info that does not load)."""
        async with self._connection() as conn:
            cur = await conn.execute(
                """
                SELECT (SELECT count(*) FROM agents WHERE agent_id = %(a)s),
                       (SELECT COALESCE(info_raw, info::text) FROM agents WHERE agent_id = %(a)s),
                       (SELECT msg_len FROM agents WHERE agent_id = %(a)s),
                       (SELECT tc_len FROM agents WHERE agent_id = %(a)s),
                       (SELECT count(*) FROM messages WHERE agent_id = %(a)s),
                       (SELECT max(seq) FROM messages WHERE agent_id = %(a)s),
                       (SELECT count(*) FROM tool_calls WHERE agent_id = %(a)s),
                       (SELECT max(pos) FROM tool_calls WHERE agent_id = %(a)s),
                       (SELECT count(*) FROM events WHERE agent_id = %(a)s)
                       + (SELECT count(*) FROM snapshots WHERE agent_id = %(a)s)
                       + (SELECT count(*) FROM todos WHERE agent_id = %(a)s)
                """,
                {"a": agent_id},
            )
            row = await cur.fetchone()
        assert row is not None
        has_row, info_text, msg_len, tc_len, n_msgs, max_seq, n_calls, max_pos, n_other = row
        issues: list[str] = []
        if not has_row:
            if n_msgs or n_calls or n_other:
                issues.append(f"agent {agent_id!r} has records but no AgentInfo was saved (and no registry row)")
            else:
                issues.append(f"agent {agent_id!r} not found")
        else:
            if info_text is None:
                issues.append(f"agent {agent_id!r} has records but no AgentInfo was saved")
            else:
                try:
                    info = AgentInfo.model_validate(_load(info_text))
                    if info.agent_id != agent_id:
                        issues.append(f"stored AgentInfo names agent {info.agent_id!r}, not {agent_id!r}")
                except (RecordValidationError, ValueError) as exc:
                    issues.append(f"stored AgentInfo does not load: {exc}")
            if n_msgs != msg_len:
                issues.append(f"{n_msgs} message rows stored, but the registry counts {msg_len}")
            if n_msgs and max_seq != n_msgs - 1:
                issues.append(f"message positions have gaps: {n_msgs} rows, highest seq {max_seq}")
            if n_calls != tc_len:
                issues.append(f"{n_calls} tool-call rows stored, but the registry counts {tc_len}")
            if n_calls and max_pos != n_calls - 1:
                issues.append(f"tool-call positions have gaps: {n_calls} rows, highest position {max_pos}")
        return ConsistencyCheckResult(consistent=not issues, issues=issues, checked_at=now_utc())

    @operation("queries", agent=False)
    async def get_metrics(self) -> StoreMetrics:
        """Operation counters, latency percentiles, and what the schema holds
        (``db_size_bytes``: tables, indexes and TOAST of this store's schema)."""
        async with self._connection() as conn:
            cur = await conn.execute(
                f"""
                SELECT (SELECT count(*) FROM ({_STORED_AGENTS}) AS stored),
                       (SELECT count(*) FROM messages),
                       (SELECT count(*) FROM tool_calls),
                       (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
                          JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = %s AND c.relkind = 'r')
                """,
                [self._settings.schema],
            )
            row = await cur.fetchone()
        assert row is not None
        storage = StorageMetrics(
            total_agents=int(row[0]),
            total_messages=int(row[1]),
            total_tool_calls=int(row[2]),
            db_size_bytes=int(row[3]) if row[3] is not None else None,
        )
        return self.metrics.snapshot(storage)

    @operation("saves")
    async def batch_fork(self, agent_id: str, count: int) -> list[str]:
        """Create ``count`` forks of the agent in one transaction: info (new id,
        lineage + source), messages, tool calls, todos and snapshots."""
        new_ids = fork_agent_ids(agent_id, count)
        now = _now_ms()
        async with self._transaction() as conn:
            cur = await conn.execute(
                "SELECT COALESCE(info_raw, info::text), message_count, msg_len, tc_len FROM agents"
                " WHERE agent_id = %s AND info IS NOT NULL FOR SHARE",
                [agent_id],
            )
            source = await cur.fetchone()
            if source is None:
                raise AgentNotFoundError(agent_id)
            info_text, message_count, msg_len, tc_len = source
            wire = _load(info_text)
            rows = []
            for new_id in new_ids:
                child = {
                    **wire,
                    "agentId": new_id,
                    "lineage": [*wire.get("lineage", []), agent_id],
                    "createdAt": now,
                    "messageCount": message_count,
                }
                data, raw = _doc(jsoncodec.encode(child, "info"))
                rows.append(
                    (
                        new_id,
                        data,
                        raw,
                        _text(str(wire.get("templateId", ""))),
                        user_id_of(wire.get("metadata")),
                        now,
                        now,
                        message_count,
                        wire.get("lastSfpIndex", -1),
                        wire.get("breakpoint"),
                        msg_len,
                        tc_len,
                    )
                )
            await conn.cursor().executemany(
                "INSERT INTO agents (agent_id, info, info_raw, template_id, user_id, created_at, updated_at,"
                " message_count, last_sfp_index, breakpoint, msg_len, tc_len)"
                " VALUES (%s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
            await conn.execute(
                "INSERT INTO messages (agent_id, seq, role, block_types, created_at, data, raw, search)"
                " SELECT n.id, m.seq, m.role, m.block_types, m.created_at, m.data, m.raw, m.search"
                " FROM messages m CROSS JOIN unnest(%s::text[]) AS n(id) WHERE m.agent_id = %s",
                [new_ids, agent_id],
            )
            await conn.execute(
                "INSERT INTO tool_calls (agent_id, pos, id, name, state, is_error, approval_required, created_at,"
                " updated_at, data, raw) SELECT n.id, t.pos, t.id, t.name, t.state, t.is_error, t.approval_required,"
                " t.created_at, t.updated_at, t.data, t.raw"
                " FROM tool_calls t CROSS JOIN unnest(%s::text[]) AS n(id) WHERE t.agent_id = %s",
                [new_ids, agent_id],
            )
            await conn.execute(
                "INSERT INTO todos (agent_id, version, updated_at, data, raw)"
                " SELECT n.id, t.version, t.updated_at, t.data, t.raw"
                " FROM todos t CROSS JOIN unnest(%s::text[]) AS n(id) WHERE t.agent_id = %s",
                [new_ids, agent_id],
            )
            await conn.execute(
                "INSERT INTO snapshots (agent_id, id, created_at, data, raw)"
                " SELECT n.id, s.id, s.created_at, s.data, s.raw"
                " FROM snapshots s CROSS JOIN unnest(%s::text[]) AS n(id) WHERE s.agent_id = %s",
                [new_ids, agent_id],
            )
        return new_ids

    # ------------------------------------------------------------------ locks

    @operation("other")
    async def acquire_agent_lock(self, agent_id: str, timeout_ms: int = 30_000) -> AgentLock:
        """Wait up to ``timeout_ms`` for the agent's lock, then raise
        :class:`LockTimeoutError`. The lock is a session advisory lock on a
        connection of its own, held until ``release()`` or until that
        connection (or this process) dies; it never expires.

        >>> lock = await store.acquire_agent_lock("agt-1", timeout_ms=5000)   # doctest: +SKIP
        >>> try: ...
        ... finally: await lock.release()
        """
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
            raise ValueError(f"timeout_ms must be an int >= 0; got {timeout_ms!r}")
        if self._state != "open":
            raise StoreClosedError("postgres store is closed")
        if self._pooled:
            return await self._acquire_lease(agent_id, timeout_ms)
        key = advisory_lock_key(self._settings.schema, agent_id)
        deadline = time.monotonic() + timeout_ms / 1000
        try:
            pool, conn = await self._getconn(
                locks=True, wait_s=max(timeout_ms / 1000, self._settings.connect_timeout_s)
            )
        except PoolTimeout:
            raise LockTimeoutError(agent_id, timeout_ms) from None
        got = False
        try:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", [key])
                row = await cur.fetchone()
                got = bool(row and row[0])
            else:
                # The server does the waiting: no polling, and the lock passes to
                # the next waiter the moment it is released. One round trip.
                try:
                    async with conn.pipeline():
                        await conn.execute("SELECT set_config('lock_timeout', %s, false)", [f"{remaining_ms}ms"])
                        await conn.execute("SELECT pg_advisory_lock(%s)", [key])
                        await conn.execute("SELECT set_config('lock_timeout', '0', false)")
                    got = True
                except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
                    got = False
        except BaseException as exc:
            # Closing the session frees anything it might hold; the pool drops it.
            with contextlib.suppress(Exception):
                await conn.close()
            await self._putconn(pool, conn, locks=True)
            if isinstance(exc, _CONNECTION_ERRORS):
                raise self._connection_error(exc) from None
            raise
        if not got:
            await self._putconn(pool, conn, locks=True)
            raise LockTimeoutError(agent_id, timeout_ms)
        lock = PostgresAgentLock(agent_id, key, conn, pool, self)
        self._held_locks.add(lock)
        return lock

    # ------------------------------------------------------------------ whole-store primitives (store/catalog.py)

    @operation("queries", agent=False)
    async def list_stored_agents(self) -> list[str]:
        """Every agent with any stored record, info or not, sorted."""
        async with self._connection() as conn:
            cur = await conn.execute(cast(Any, f"SELECT agent_id FROM ({_STORED_AGENTS}) AS stored ORDER BY agent_id"))
            return [row[0] for row in await cur.fetchall()]

    @operation("loads")
    async def load_record_times(self, agent_id: str) -> RecordTimes:
        """Each message's ``created_at`` (by position) and the session's ``updated_at``."""
        async with self._connection() as conn:
            cur = await conn.execute("SELECT created_at FROM messages WHERE agent_id = %s ORDER BY seq", [agent_id])
            created = [int(row[0]) for row in await cur.fetchall()]
            cur = await conn.execute(
                "SELECT updated_at FROM agents WHERE agent_id = %s AND info IS NOT NULL", [agent_id]
            )
            row = await cur.fetchone()
        return RecordTimes(created, None if row is None else int(row[0]))

    @operation("saves")
    async def restore_record_times(self, agent_id: str, times: RecordTimes) -> None:
        """Set the messages' ``created_at`` and the session's ``updated_at`` (see store/catalog.py)."""
        async with self._transaction() as conn:
            if times.message_created_at:
                await conn.execute(
                    "UPDATE messages AS m SET created_at = t.created_at"
                    " FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(created_at, n)"
                    " WHERE m.agent_id = %s AND m.seq = t.n - 1",
                    [times.message_created_at, agent_id],
                )
            if times.updated_at is not None:
                await conn.execute(
                    "UPDATE agents SET updated_at = %s WHERE agent_id = %s", [times.updated_at, agent_id]
                )

    async def _acquire_lease(self, agent_id: str, timeout_ms: int) -> AgentLock:
        """Behind a transaction pooler: the lock is a lease row (see
        :mod:`kode_sdk.store.postgres.pooler`), renewed while held."""
        lock = await acquire_lease(agent_id, timeout_ms, self._settings.lock_lease_s, self._run_row, self._forget_lease)
        if lock is None:
            raise LockTimeoutError(agent_id, timeout_ms)
        self._held_locks.add(lock)
        self._leases.setdefault(agent_id, set()).add(lock)
        return lock

    async def _run_row(self, query: str, params: Sequence[Any]) -> bool:
        """Run one statement in its own transaction; True if it returned a row."""
        async with self._connection() as conn:
            cur = await conn.execute(cast(Any, query), params)
            return await cur.fetchone() is not None

    def _forget_lease(self, lock: LeaseAgentLock) -> None:
        self._held_locks.discard(lock)
        held = self._leases.get(lock.agent_id)
        if held is not None:
            held.discard(lock)
            if not held:
                del self._leases[lock.agent_id]

    def _before_write(self, agent_id: str) -> None:
        """A store holding a lapsed lease of ``agent_id`` writes nothing for it."""
        if self._leases:
            for lock in self._leases.get(agent_id, ()):
                lock.check()

    # ------------------------------------------------------------------ retention (kode prune)

    @operation("deletes", agent=False)
    async def prune(
        self,
        *,
        created_before: datetime | int,
        template_id: str | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Delete every agent created strictly before ``created_before`` (of
        ``template_id`` only, when given) and return their ids, sorted.

        One statement however many agents: a data-modifying CTE deletes the
        registry rows and, from their ``RETURNING`` list, every table's rows
        (there are no foreign keys to cascade). ``dry_run`` only lists them.

        >>> await store.prune(created_before=datetime(2025, 1, 1, tzinfo=UTC))   # doctest: +SKIP
        ['agt-old-1', 'agt-old-2']
        """
        cutoff = time_bound(created_before, "created_before")
        if cutoff is None:
            raise ValueError("created_before is required")
        where = "info IS NOT NULL AND created_at < %s"
        params: list[Any] = [cutoff]
        if template_id is not None:
            where += " AND template_id = %s"
            params.append(template_id)
        if dry_run:
            async with self._connection() as conn:
                cur = await conn.execute(f"SELECT agent_id FROM agents WHERE {where}", params)
                return sorted(row[0] for row in await cur.fetchall())
        # Pending events of doomed agents must reach the table before it is cleared.
        children = ", ".join(
            f"d_{table} AS (DELETE FROM {table} WHERE agent_id IN (SELECT agent_id FROM doomed))"
            for table in _DATA_TABLES
        )
        statement = (
            f"WITH doomed AS (DELETE FROM agents WHERE {where} RETURNING agent_id), {children} "
            "SELECT agent_id FROM doomed"
        )
        async with self._transaction() as conn:
            cur = await conn.execute(statement, params)
            doomed = sorted(row[0] for row in await cur.fetchall())
        for agent_id in doomed:
            self._messages_cache.drop(agent_id)
            self._tool_calls_cache.drop(agent_id)
        return doomed

    # Last in the class: below it, ``list`` names this method, not the builtin.

    @operation("queries", agent=False)
    async def list(self, prefix: str | None = None) -> list[str]:
        """Ids of existing agents, sorted; ``prefix`` matches literally and
        case-sensitively (an index range, not LIKE)."""
        query, params = list_query(prefix)
        return [row[0] for row in await self._read_rows(query, params)]


@contextlib.asynccontextmanager
async def _pipelined_transaction(
    conn: AsyncConnection[Any],
    prologue: tuple[str, Sequence[Any]] | None = None,
    on_commit: Callable[[str | None], None] | None = None,
    *,
    prepare: bool | None = None,
) -> AsyncIterator[None]:
    """``BEGIN`` … ``COMMIT`` queued in one pipeline: one round trip unless the
    body fetches a result. (psycopg's ``transaction()`` inside a pipeline syncs
    at its edges: measured 330 µs against 140 µs for this.) ``prologue`` (the
    per-transaction settings behind a pooler) follows ``BEGIN`` in the same
    pipeline. ``on_commit`` gets the primary's WAL insert position read
    right after ``COMMIT``, in the same pipeline (read-your-writes on
    replicas). On any failure the transaction is rolled back before the
    connection goes back to the pool. ``prepare=False`` keeps ``BEGIN`` and
    ``COMMIT`` unprepared, for bodies whose server errors are expected."""
    position: psycopg.AsyncCursor[Any] | None = None
    try:
        async with conn.pipeline():
            await conn.execute("BEGIN", prepare=prepare)
            if prologue is not None:
                await conn.execute(cast(Any, prologue[0]), prologue[1], prepare=prepare)
            yield
            await conn.execute("COMMIT", prepare=prepare)
            if on_commit is not None:
                position = await conn.execute("SELECT pg_current_wal_insert_lsn()::text", prepare=prepare)
    except BaseException:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
        raise
    if position is not None and on_commit is not None:
        row = await position.fetchone()
        on_commit(str(row[0]) if row and row[0] else None)


def _event_columns(rows: Sequence[PendingEvent]) -> list[list[Any]]:
    """The event rows as the column arrays of :data:`_INSERT_EVENTS`."""
    columns: list[list[Any]] = [[], [], [], [], [], [], []]
    for row in rows:
        data, raw = _doc(row.data.encode())
        for column, value in zip(
            columns,
            (row.agent_id, row.seq, _text(row.channel), _text(row.event_type), row.timestamp, data, raw),
            strict=True,
        ):
            column.append(value)
    return columns


#: (store, connection) while a call of ``store.transaction()`` runs.
_PG_TX: contextvars.ContextVar[tuple[PostgresStore, AsyncConnection[Any]] | None] = contextvars.ContextVar(
    "kode_postgres_tx", default=None
)


class _Rollback(Exception):
    """Thrown into a pipelined transaction to end it with ROLLBACK."""


class _PostgresDriver(TransactionDriver):
    """A PostgreSQL transaction: one pooled connection, one pipelined
    transaction (with the pooler prologue and the replica commit position,
    as every write), opened at the first call. Each call's statements are
    queued in the pipeline as it runs; the step paths fetch nothing, so the
    whole step travels in one round trip, at ``COMMIT``. After a failure the
    connection is closed rather than pooled (an aborted pipeline leaves
    psycopg's prepared-statement cache out of step with the server)."""

    atomic_on_crash = True

    def __init__(self, store: PostgresStore, agent_id: str) -> None:
        self._store = store
        self._agent_id = agent_id
        self._pool: Any = None
        self._conn: AsyncConnection[Any] | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._seqs: list[int] = []

    async def _begin(self) -> AsyncConnection[Any]:
        if self._conn is not None:
            return self._conn
        store = self._store
        pool, conn = await store._getconn()
        stack = contextlib.AsyncExitStack()
        try:
            await stack.enter_async_context(_pipelined_transaction(conn, store._prologue, store._on_commit))
        except BaseException as exc:
            await self._discard(pool, conn)
            if isinstance(exc, _CONNECTION_ERRORS):
                raise store._connection_error(exc) from None
            raise
        self._pool, self._conn, self._stack = pool, conn, stack
        return conn

    async def _scoped(self, call: Callable[[], Any]) -> Any:
        conn = await self._begin()
        token = _PG_TX.set((self._store, conn))
        try:
            return await call()
        except _CONNECTION_ERRORS as exc:
            raise self._store._connection_error(exc) from None
        finally:
            _PG_TX.reset(token)

    async def write(self, call: Callable[[], Any]) -> None:
        await self._scoped(call)

    async def write_events(self, agent_id: str, rows: list[Any], call: Callable[[], Any]) -> None:
        conn = await self._begin()
        self._seqs.extend(row.seq for row in rows)
        await conn.execute(_INSERT_EVENTS, _event_columns(rows), prepare=False)
        await conn.execute(_NOTIFY, [self._store._settings.schema, [agent_id]], prepare=False)

    async def read(self, call: Callable[[], Any]) -> Any:
        return await self._scoped(call)

    async def _discard(self, pool: Any, conn: AsyncConnection[Any]) -> None:
        with contextlib.suppress(Exception):
            await conn.close()
        with contextlib.suppress(Exception):
            await self._store._putconn(pool, conn)

    def _forget_caches(self) -> None:
        # Calls in the transaction may have cached a version a rollback undoes.
        self._store._messages_cache.drop(self._agent_id)
        self._store._tool_calls_cache.drop(self._agent_id)

    async def commit(self) -> None:
        stack, conn, pool = self._stack, self._conn, self._pool
        self._stack = self._conn = None
        if stack is None or conn is None:
            return
        try:
            await stack.aclose()
        except psycopg.errors.UniqueViolation:
            self._forget_caches()
            stored = await self._stored_seqs(conn)
            await self._discard(pool, conn)
            raise duplicate_seq_error(self._agent_id, stored or self._seqs) from None
        except BaseException as exc:
            self._forget_caches()
            await self._discard(pool, conn)
            if isinstance(exc, _CONNECTION_ERRORS):
                raise self._store._connection_error(exc) from None
            raise
        self._forget_caches()
        await self._store._putconn(pool, conn)

    async def _stored_seqs(self, conn: AsyncConnection[Any]) -> list[int]:
        if not self._seqs:
            return []
        prologue = self._store._prologue
        with contextlib.suppress(Exception):
            # Behind a pooler this read needs the store's settings too.
            settings = _pipelined_transaction(conn, prologue, prepare=False) if prologue else contextlib.nullcontext()
            async with settings:
                cur = await conn.execute(
                    "SELECT seq FROM events WHERE agent_id = %s AND seq = ANY(%s::bigint[])",
                    [self._agent_id, self._seqs],
                    prepare=False,
                )
                return [seq for (seq,) in await cur.fetchall()]
        return []

    async def rollback(self) -> None:
        stack, conn, pool = self._stack, self._conn, self._pool
        self._stack = self._conn = None
        self._forget_caches()
        if stack is None or conn is None:
            return
        with contextlib.suppress(BaseException):
            await stack.__aexit__(_Rollback, _Rollback(), None)
        await self._discard(pool, conn)


async def _unlock_all(conn: AsyncConnection[Any]) -> None:
    """Pool reset hook: a connection never goes back to the pool holding a lock."""
    await conn.execute("SELECT pg_advisory_unlock_all()")


class PostgresAgentLock(AgentLock):
    """A held agent lock: a session advisory lock on a connection of its own."""

    def __init__(
        self,
        agent_id: str,
        key: int,
        conn: AsyncConnection[Any],
        pool: AsyncConnectionPool[AsyncConnection[Any]],
        store: PostgresStore,
    ) -> None:
        super().__init__(agent_id)
        self._key = key
        self._conn: AsyncConnection[Any] | None = conn
        self._pool = pool
        self._store = store

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        self._store._held_locks.discard(self)
        if conn is None:
            return
        try:
            cur = await conn.execute("SELECT pg_advisory_unlock(%s)", [self._key])
            row = await cur.fetchone()
            if not (row and row[0]):
                logger.warning("lock of agent %r was no longer held at release", self.agent_id)
        except Exception as exc:
            # The session is gone (or going): the server has freed the lock with it.
            logger.warning("lock of agent %r: connection lost before release (%s)", self.agent_id, type(exc).__name__)
            with contextlib.suppress(Exception):
                await conn.close()
        finally:
            # Returned exactly once; a closed connection is discarded by the pool.
            with contextlib.suppress(Exception):
                await self._store._putconn(self._pool, conn, locks=True)
