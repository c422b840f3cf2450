"""The SQL text of the record tables' writes and loads, and the rows they take.

Documents go to a ``data jsonb`` column and, only when JSONB would not keep
them exactly (a real ``\\u0000`` escape, a number written with an exponent,
``-0.0``), also to ``raw text``; every load reads ``COALESCE(raw, data::text)``
(:func:`doc`, :func:`load`). Statements that name a table for each record
kind are generated from :data:`~kode_sdk.store.records.RECORD_KINDS`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from ... import jsoncodec
from ...types import Message, ToolCallRecord, to_epoch_ms
from ..records import APPEND_KINDS, DATA_TABLES, RecordKind, kind_named, record_json
from ..search import index_text

# --------------------------------------------------------------------------- exact JSON in JSONB

_REAL_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
# A number written with an exponent, where a JSON value starts (compact JSON:
# no spaces). Inside a string it is only a false positive: the row keeps a raw copy.
_EXPONENT = re.compile(rb"(?:^|[:,\[])-?[0-9]+(?:\.[0-9]+)?[eE]")
# -0.0: jsonb's numeric has no negative zero; keep the exact text.
_NEGATIVE_ZERO = re.compile(rb"(?:^|[:,\[])-0\.0(?:[,\]}]|$)")


def doc(encoded: bytes) -> tuple[str, str | None]:
    """Split encoded JSON into (text for the jsonb column, exact raw text or None)."""
    if b"\\u0000" in encoded:
        sanitized, count = _REAL_NUL.subn(rb"\1\\ufffd", encoded)
        if count:
            return sanitized.decode(), encoded.decode()
    if _EXPONENT.search(encoded) is not None or _NEGATIVE_ZERO.search(encoded) is not None:
        text = encoded.decode()
        return text, text
    return encoded.decode(), None


def load(text: str) -> Any:
    """A stored document (``COALESCE(raw, data::text)``) decoded exactly."""
    return jsoncodec.decode(text)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def text(value: str) -> str:
    """A str safe for a TEXT column (PostgreSQL text cannot hold U+0000)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


# --------------------------------------------------------------------------- messages and tool calls

# The text-search configuration of messages.search: no stemming, no stop words
# (the words are folded in Python before they get here).
TS_CONFIG = "'pg_catalog.simple'::regconfig"

LOCK_AGENT = "SELECT msg_version, msg_len, tc_version, tc_len FROM agents WHERE agent_id = %s FOR UPDATE"
ENSURE_AGENT = (
    "INSERT INTO agents (agent_id, created_at, updated_at) VALUES (%s, %s, %s) ON CONFLICT (agent_id) DO NOTHING"
)
# `search`: the message's folded words (kode_sdk.store.search.index_text) as
# a tsvector of the `simple` configuration; NULL when the store keeps no index.
_INSERT_MESSAGE = "INSERT INTO messages (agent_id, seq, role, block_types, created_at, data, raw, search)"
_MESSAGE_VALUES = f"%s, %s, %s, %b::text[], %s, %s::jsonb, %s, to_tsvector({TS_CONFIG}, %s)"
_MESSAGE_CONFLICT = """
ON CONFLICT (agent_id, seq) DO UPDATE
SET role = EXCLUDED.role, block_types = EXCLUDED.block_types, data = EXCLUDED.data, raw = EXCLUDED.raw,
    search = EXCLUDED.search
"""
_INSERT_TOOL_CALL = (
    "INSERT INTO tool_calls (agent_id, pos, id, name, state, is_error, approval_required, created_at, updated_at,"
    " data, raw)"
)
_TOOL_CALL_VALUES = "%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s"  # after agent_id and pos
_TOOL_CALL_CONFLICT = """
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
GUARD = "EXISTS (SELECT 1 FROM agents WHERE agent_id = %s AND write_token = %s)"


@dataclass(frozen=True, slots=True)
class ListSQL:
    """The statements of a list saved whole and written by position."""

    load: str  # the documents, in order
    upsert: str  # one position
    trim: str  # positions from %s on (the list got shorter)
    set_len: str  # the registry's version + 1 and the new length
    bump: str  # set_len only if the version and length are the cached ones; stamps the token
    guarded_upsert: str  # upsert, only under the stamped token
    guarded_trim: str  # trim, only under the stamped token


def _list_sql(
    table: str, position: str, counter: str, counted: bool, insert: str, values: str, conflict: str
) -> ListSQL:
    """``counter``: the prefix of the registry's ``_version`` / ``_len`` columns
    of the list; ``counted``: ``message_count`` follows the length too."""
    lengths = f"{counter}_version = {counter}_version + 1, {counter}_len = %s" + (", message_count = %s" * counted)
    trim = f"DELETE FROM {table} WHERE agent_id = %s AND {position} >= %s"
    return ListSQL(
        load=f"SELECT COALESCE(raw, data::text) FROM {table} WHERE agent_id = %s ORDER BY {position}",
        upsert=f"{insert} VALUES ({values}){conflict}",
        trim=trim,
        set_len=f"UPDATE agents SET {lengths}, updated_at = %s WHERE agent_id = %s",
        bump=f"UPDATE agents SET {lengths}, updated_at = %s, write_token = %s"
        f" WHERE agent_id = %s AND {counter}_version = %s AND {counter}_len = %s RETURNING 1",
        guarded_upsert=f"{insert} SELECT {values} WHERE {GUARD}{conflict}",
        guarded_trim=f"{trim} AND {GUARD}",
    )


MESSAGE_SQL = _list_sql("messages", "seq", "msg", True, _INSERT_MESSAGE, _MESSAGE_VALUES, _MESSAGE_CONFLICT)
TOOL_CALL_SQL = _list_sql(
    "tool_calls", "pos", "tc", False, _INSERT_TOOL_CALL, f"%s, %s, {_TOOL_CALL_VALUES}", _TOOL_CALL_CONFLICT
)

# Inside store.transaction(): positions from the row-locked registry, nothing fetched.
APPEND_MESSAGE = f"""
{_INSERT_MESSAGE}
SELECT %s, a.msg_len + %s, %s, %b::text[], %s, %s::jsonb, %s, to_tsvector({TS_CONFIG}, %s)
FROM agents a WHERE a.agent_id = %s
"""
GROW_MESSAGES = (
    "UPDATE agents SET msg_version = msg_version + 1, msg_len = msg_len + %s, message_count = msg_len + %s,"
    " updated_at = %s WHERE agent_id = %s"
)
# One record by id: its position if stored, else after the last one.
UPSERT_TOOL_CALL_BY_ID = f"""
{_INSERT_TOOL_CALL}
SELECT %s, COALESCE(
    (SELECT pos FROM tool_calls WHERE agent_id = %s AND id = %s),
    (SELECT COALESCE(MAX(pos) + 1, 0) FROM tool_calls WHERE agent_id = %s)),
    {_TOOL_CALL_VALUES}{_TOOL_CALL_CONFLICT}"""
RECOUNT_TOOL_CALLS = (
    "UPDATE agents SET tc_version = tc_version + 1, updated_at = %s,"
    " tc_len = (SELECT COALESCE(MAX(pos) + 1, 0) FROM tool_calls t WHERE t.agent_id = agents.agent_id)"
    " WHERE agent_id = %s"
)


def message_row(
    agent_id: str, seq: int, message: Message, encoded: bytes, now: int, index: bool = True
) -> tuple[Any, ...]:
    """The parameters of ``MESSAGE_SQL.upsert`` (``index``: fill ``search``)."""
    data, raw = doc(encoded)
    types = [t.replace("\x00", "\ufffd") for t in message.block_types()]
    words = index_text({"content": message.content}) if index else None
    return (agent_id, seq, message.role, types, now, data, raw, words)


def tool_call_row(agent_id: str, pos: int, record: ToolCallRecord, encoded: bytes) -> tuple[Any, ...]:
    """The parameters of ``TOOL_CALL_SQL.upsert``."""
    data, raw = doc(encoded)
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


# --------------------------------------------------------------------------- small documents

SAVE_TODOS = (
    "INSERT INTO todos (agent_id, version, updated_at, data, raw) VALUES (%s, %s, %s, %s::jsonb, %s)"
    " ON CONFLICT (agent_id) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at,"
    " data = EXCLUDED.data, raw = EXCLUDED.raw"
)
LOAD_TODOS = "SELECT COALESCE(raw, data::text) FROM todos WHERE agent_id = %s"
SAVE_SNAPSHOT = (
    "INSERT INTO snapshots (agent_id, id, created_at, data, raw) VALUES (%s, %s, %s, %s::jsonb, %s)"
    " ON CONFLICT (agent_id, id) DO UPDATE SET created_at = EXCLUDED.created_at, data = EXCLUDED.data,"
    " raw = EXCLUDED.raw"
)
LOAD_SNAPSHOT = "SELECT COALESCE(raw, data::text) FROM snapshots WHERE agent_id = %s AND id = %s"
LIST_SNAPSHOTS = "SELECT COALESCE(raw, data::text) FROM snapshots WHERE agent_id = %s ORDER BY created_at DESC, id DESC"
CLEAR_MEDIA_CACHE = "DELETE FROM media_cache WHERE agent_id = %s"
INSERT_MEDIA_CACHE = "INSERT INTO media_cache (agent_id, pos, key, data, raw) VALUES (%s, %s, %s, %s::jsonb, %s)"
LOAD_MEDIA_CACHE = "SELECT COALESCE(raw, data::text) FROM media_cache WHERE agent_id = %s ORDER BY pos"

# The append-only kinds: one row per save (the kind's key in the column of the
# same name), loaded in save order (``ord``, an identity column).
APPEND_RECORD: dict[str, str] = {
    kind.name: f"INSERT INTO {kind.table} (agent_id, {kind.key}, timestamp, data, raw)"
    " VALUES (%s, %s, %s, %s::jsonb, %s)"
    for kind in APPEND_KINDS
}


def appended_row(kind: RecordKind, agent_id: str, item: Any) -> list[Any]:
    """The parameters of ``APPEND_RECORD[kind.name]`` for the validated ``item``."""
    data, raw = doc(record_json(item, kind.argument))
    return [agent_id, text(getattr(item, str(kind.key))), item.timestamp, data, raw]


LOAD_APPENDED: dict[str, str] = {
    kind.name: f"SELECT COALESCE(raw, data::text) FROM {kind.table} WHERE agent_id = %s ORDER BY ord"
    for kind in APPEND_KINDS
}

# --------------------------------------------------------------------------- agent info, fork, delete

_INFO_COLUMNS = (
    "agent_id, info, info_raw, template_id, user_id, created_at, updated_at, message_count, last_sfp_index, breakpoint"
)
_INFO_VALUES = "%s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s"
SAVE_INFO = (
    f"INSERT INTO agents ({_INFO_COLUMNS}) VALUES ({_INFO_VALUES})"
    " ON CONFLICT (agent_id) DO UPDATE SET info = EXCLUDED.info, info_raw = EXCLUDED.info_raw,"
    " template_id = EXCLUDED.template_id, user_id = EXCLUDED.user_id, created_at = EXCLUDED.created_at,"
    " updated_at = EXCLUDED.updated_at, message_count = EXCLUDED.message_count,"
    " last_sfp_index = EXCLUDED.last_sfp_index, breakpoint = EXCLUDED.breakpoint"
)
LOAD_INFO = "SELECT COALESCE(info_raw, info::text), message_count FROM agents WHERE agent_id = %s AND info IS NOT NULL"
# A fork's registry row: the info columns and the source's list lengths.
FORK_SOURCE = (
    "SELECT COALESCE(info_raw, info::text), message_count, msg_len, tc_len FROM agents"
    " WHERE agent_id = %s AND info IS NOT NULL FOR SHARE"
)
INSERT_FORK = f"INSERT INTO agents ({_INFO_COLUMNS}, msg_len, tc_len) VALUES ({_INFO_VALUES}, %s, %s)"

# The columns of each kind's table besides agent_id (the PostgreSQL schema's
# names; RecordKind.table names the table).
_COLUMNS: dict[str, str] = {
    "message": "seq, role, block_types, created_at, data, raw, search",
    "tool_call": "pos, id, name, state, is_error, approval_required, created_at, updated_at, data, raw",
    "todos": "version, updated_at, data, raw",
    "snapshot": "id, created_at, data, raw",
}
# What a fork copies besides the info (the Store contract's batch_fork).
FORKED_KINDS: tuple[RecordKind, ...] = tuple(kind_named(name) for name in _COLUMNS)


def _copy_for_forks(kind: RecordKind) -> str:
    """Copy the source's rows of ``kind`` to every new id: params ``[new_ids, source id]``."""
    columns = _COLUMNS[kind.name]
    source = ", ".join(f"x.{column}" for column in columns.split(", "))
    return (
        f"INSERT INTO {kind.table} (agent_id, {columns}) SELECT n.id, {source}"
        f" FROM {kind.table} x CROSS JOIN unnest(%s::text[]) AS n(id) WHERE x.agent_id = %s"
    )


COPY_FOR_FORKS: tuple[str, ...] = tuple(_copy_for_forks(kind) for kind in FORKED_KINDS)

# The registry row first, then every data table (no foreign keys to cascade).
DELETE_AGENT: tuple[str, ...] = tuple(f"DELETE FROM {table} WHERE agent_id = %s" for table in ("agents", *DATA_TABLES))
# Every agent with any stored record, info or not: without foreign keys a
# record may have no registry row, so every table is read (whole-store
# operations only: export, migrate, metrics).
STORED_AGENTS = " UNION ".join(f"SELECT agent_id FROM {table}" for table in ("agents", *DATA_TABLES))
LIST_STORED_AGENTS = f"SELECT agent_id FROM ({STORED_AGENTS}) AS stored ORDER BY agent_id"


def prune_statement(where: str) -> str:
    """One statement deleting the agents matching ``where`` (on ``agents``) and,
    from their ``RETURNING`` list, every data table's rows; selects their ids."""
    children = ", ".join(
        f"d_{table} AS (DELETE FROM {table} WHERE agent_id IN (SELECT agent_id FROM doomed))" for table in DATA_TABLES
    )
    doomed = f"doomed AS (DELETE FROM agents WHERE {where} RETURNING agent_id)"
    return f"WITH {doomed}, {children} SELECT agent_id FROM doomed"


# --------------------------------------------------------------------------- whole-store and catalog reads

# Param: the schema (db_size_bytes: tables, indexes and TOAST of this store's schema).
METRICS = f"""
SELECT (SELECT count(*) FROM ({STORED_AGENTS}) AS stored),
       (SELECT count(*) FROM messages),
       (SELECT count(*) FROM tool_calls),
       (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %s AND c.relkind = 'r')
"""
# The record times the copier carries over (store/catalog.py).
MESSAGE_TIMES = "SELECT created_at FROM messages WHERE agent_id = %s ORDER BY seq"
SESSION_TIME = "SELECT updated_at FROM agents WHERE agent_id = %s AND info IS NOT NULL"
RESTORE_MESSAGE_TIMES = (
    "UPDATE messages AS m SET created_at = t.created_at"
    " FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(created_at, n)"
    " WHERE m.agent_id = %s AND m.seq = t.n - 1"
)
RESTORE_SESSION_TIME = "UPDATE agents SET updated_at = %s WHERE agent_id = %s"
