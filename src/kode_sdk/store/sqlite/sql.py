"""The SQL text SqliteStore runs and the values it binds: the statements of
the write and read paths, a message's and a tool call's row values, a document's
``data`` column value, row versions and times.

Pure (no connection, no I/O) apart from :func:`created_at_floor`, the one
lookup that decides a new message row's ``created_at``.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Any

from ... import jsoncodec
from ...types import Message, ToolCallRecord, ToolCallState, to_epoch_ms
from ..records import APPEND_KINDS, RECORD_KINDS
from ..results import tool_call_record_from_wire
from .blob import pack, unpack

ENSURE_AGENT = "INSERT INTO agents (agent_id, updated_at) VALUES (?, ?) ON CONFLICT (agent_id) DO NOTHING"
TOUCH_AGENT = (
    "INSERT INTO agents (agent_id, updated_at) VALUES (?, ?) "
    "ON CONFLICT (agent_id) DO UPDATE SET updated_at = excluded.updated_at"
)
SET_MESSAGE_STATE = (
    "INSERT INTO agents (agent_id, updated_at, message_count, msg_version) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (agent_id) DO UPDATE SET updated_at = excluded.updated_at, "
    "message_count = excluded.message_count, msg_version = excluded.msg_version"
)
SET_TOOL_CALL_STATE = (
    "INSERT INTO agents (agent_id, updated_at, tc_version) VALUES (?, ?, ?) "
    "ON CONFLICT (agent_id) DO UPDATE SET updated_at = excluded.updated_at, tc_version = excluded.tc_version"
)
#: The position of the tool call ``?2`` of agent ``?1`` (NULL: none) and the
#: position after the agent's last, in one statement (both on the primary key).
FIND_TOOL_CALL = (
    "SELECT (SELECT pos FROM tool_calls WHERE agent_id = ?1 AND id = ?2),"
    " (SELECT COALESCE(MAX(pos) + 1, 0) FROM tool_calls WHERE agent_id = ?1)"
)
SAVE_INFO = (
    "INSERT INTO agents (agent_id, info, template_id, user_id, created_at, updated_at, message_count) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (agent_id) DO UPDATE SET info = excluded.info, template_id = excluded.template_id, "
    "user_id = excluded.user_id, created_at = excluded.created_at, updated_at = excluded.updated_at, "
    "message_count = excluded.message_count"
)
UPDATE_INFO = (
    "UPDATE agents SET info = ?, updated_at = ?, message_count = ? "
    "WHERE agent_id = ? AND template_id IS ? AND user_id IS ? AND created_at IS ?"
)
# msg_version, the next seq and the created_at of the last message, in one read.
LAST_MESSAGE = (
    "SELECT a.msg_version, COALESCE(m.seq + 1, 0), m.created_at FROM agents a "
    "LEFT JOIN messages m ON m.agent_id = a.agent_id "
    "AND m.seq = (SELECT MAX(seq) FROM messages WHERE agent_id = a.agent_id) WHERE a.agent_id = ?"
)
ROLES = ("user", "assistant", "system")
COUNT_ROLES = (
    "SELECT " + ", ".join(f"COALESCE(SUM(role = '{r}'), 0)" for r in ROLES) + " FROM messages WHERE agent_id = ?"
)
INSERT_MESSAGE = "INSERT INTO messages (agent_id, seq, role, block_types, created_at, data) VALUES (?, ?, ?, ?, ?, ?)"
# A rewrite keeps the row's created_at: the time the position was first saved.
UPDATE_MESSAGE = "UPDATE messages SET role = ?, block_types = ?, data = ? WHERE agent_id = ? AND seq = ?"
INSERT_TOOL_CALL = (
    "INSERT INTO tool_calls (agent_id, id, pos, name, state, is_error, approval_required, created_at, updated_at, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_TOOL_CALL = (
    "UPDATE tool_calls SET name = ?, state = ?, is_error = ?, approval_required = ?, created_at = ?, "
    "updated_at = ?, data = ? WHERE agent_id = ? AND pos = ?"
)
INSERT_EVENT = "INSERT INTO events (agent_id, seq, channel, type, timestamp, data) VALUES (?, ?, ?, ?, ?, ?)"

# The append-only kinds (records.APPEND_KINDS) and the media cache are rows
# (agent_id, idx, data), loaded in idx order; an append takes the next idx.
APPEND_ROW = {
    kind.table: f"INSERT INTO {kind.table} (agent_id, idx, data) "
    f"VALUES (?, (SELECT COALESCE(MAX(idx) + 1, 0) FROM {kind.table} WHERE agent_id = ?), ?)"
    for kind in APPEND_KINDS
}
LOAD_IN_ORDER = {
    kind.table: f"SELECT data FROM {kind.table} WHERE agent_id = ? ORDER BY idx"
    for kind in RECORD_KINDS
    if kind.shape == "append" or kind.name == "media_cache"
}

# batch_fork: the kinds a fork copies besides the agent's info (the
# conversation, tool calls, todos, snapshots; not events, history windows,
# compression records, recovered files or the media cache), each table's
# columns after agent_id, and the statement copying one agent's rows to another.
FORKED_KINDS = tuple(kind for kind in RECORD_KINDS if kind.name in ("message", "tool_call", "todos", "snapshot"))
_FORKED_COLUMNS = {
    "messages": "seq, role, block_types, created_at, data",
    "tool_calls": "id, pos, name, state, is_error, approval_required, created_at, updated_at, data",
    "todos": "updated_at, data",
    "snapshots": "id, created_at, data",
}
COPY_ROWS = tuple(
    f"INSERT INTO {kind.table} (agent_id, {_FORKED_COLUMNS[kind.table]}) "
    f"SELECT ?, {_FORKED_COLUMNS[kind.table]} FROM {kind.table} WHERE agent_id = ?"
    for kind in FORKED_KINDS
)


def now_ms() -> int:
    """The current time in epoch milliseconds (the ``updated_at`` of a write)."""
    return time.time_ns() // 1_000_000


def new_version() -> int:
    """A new row version (``msg_version``, ``tc_version``) for the saved-list caches."""
    # Random, not a counter: after a delete and re-create (maybe by another
    # process) a counter would restart and could match a stale cached copy.
    return secrets.randbits(62) + 1


def pack_json(value: Any, field: str) -> str | bytes:
    """The ``data`` column value of a document: JSON TEXT, or a compressed BLOB (blob.py)."""
    return pack(jsoncodec.encode(value, field))


def message_row_parts(message: Message, wire: dict[str, Any], field: str) -> tuple[str, str, str | bytes]:
    """(role, block_types JSON, packed data) of one message."""
    return message.role, jsoncodec.dumps(message.block_types(), field), pack_json(wire, field)


def tool_call_columns(record: ToolCallRecord, data: str | bytes) -> tuple[str, str, int, int, int, int, str | bytes]:
    """(name, state, is_error, approval_required, created_at, updated_at, data) of one record."""
    return (
        record.name,
        ToolCallState(record.state).value,
        1 if record.is_error else 0,
        1 if record.approval.required else 0,
        to_epoch_ms(record.created_at),
        to_epoch_ms(record.updated_at),
        data,
    )


def created_at_floor(conn: sqlite3.Connection, agent_id: str, seq: int, now: int) -> int:
    """The created_at for new messages from position ``seq`` on: ``now``, or the
    created_at of the message before it if the clock has stepped back since.

    Along one agent's list created_at never decreases, so "newest first"
    within an agent is seq order, served by the primary key (schema 0002)."""
    if seq == 0:
        return now
    row = conn.execute("SELECT created_at FROM messages WHERE agent_id = ? AND seq = ?", (agent_id, seq - 1)).fetchone()
    return now if row is None or row[0] <= now else int(row[0])


# Loading decodes the stored JSON exactly (integers beyond 64 bits included)
# and rebuilds the record without validating it again (see results.py).
def load_tool_call(data: str | bytes) -> ToolCallRecord:
    return tool_call_record_from_wire(jsoncodec.decode(unpack(data)))
