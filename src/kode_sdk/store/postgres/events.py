"""The event log in PostgreSQL: committing appended events (one pipelined
round trip: one ``unnest`` INSERT and ``pg_notify`` to the live tails), the
duplicate-seq report, and reading the log in keyset pages.

A commit takes the rows of one or more agents (the group committer,
:class:`~kode_sdk.store.events.EventCommitter`, joins concurrent appends).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg.errors
from psycopg import AsyncConnection

from ..events import PendingEvent, duplicate_seq_error
from .connections import pipelined_transaction
from .sql import doc, text

if TYPE_CHECKING:
    from .connections import PostgresConnections

__all__ = ["EVENT_PAGE", "MAX_SEQ", "NOTIFY_CHANNEL", "commit_events", "event_columns", "first_seq_after",
           "read_page", "stored_seqs", "write_events"]  # fmt: skip

NOTIFY_CHANNEL = "kode_events"
EVENT_PAGE = 1000
MIN_SEQ, MAX_SEQ = -(2**63), 2**63 - 1

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
_STORED_SEQS = "SELECT seq FROM events WHERE agent_id = %s AND seq = ANY(%s::bigint[])"


def first_seq_after(after: int | None) -> int:
    """The first seq a read starting after ``after`` wants (``None``: all);
    above ``MAX_SEQ`` when nothing can follow."""
    if after is None or after < MIN_SEQ:
        return MIN_SEQ
    return min(after, MAX_SEQ) + 1


def event_columns(rows: Sequence[PendingEvent]) -> list[list[Any]]:
    """The event rows as the column arrays of ``_INSERT_EVENTS``."""
    columns: list[list[Any]] = [[], [], [], [], [], [], []]
    for row in rows:
        data, raw = doc(row.data.encode())
        for column, value in zip(
            columns,
            (row.agent_id, row.seq, text(row.channel), text(row.event_type), row.timestamp, data, raw),
            strict=True,
        ):
            column.append(value)
    return columns


async def write_events(
    conn: AsyncConnection[Any], schema: str, rows: Sequence[PendingEvent], agents: list[str]
) -> None:
    """Queue the INSERT of ``rows`` and the notification of ``agents``'
    tails on ``conn`` (in the caller's transaction). Unprepared statements: a
    duplicate seq aborts the pipeline, and psycopg's prepared-statement cache
    does not survive an aborted pipeline (the next call on the connection
    would fail with "prepared statement _pg3_N does not exist")."""
    await conn.execute(_INSERT_EVENTS, event_columns(rows), prepare=False)
    await conn.execute(_NOTIFY, [schema, agents], prepare=False)


async def stored_seqs(
    conn: AsyncConnection[Any],
    prologue: tuple[str, Sequence[Any]] | None,
    agent_id: str,
    seqs: list[int],
    *,
    prepare: bool | None = None,
) -> list[int]:
    """Which of ``seqs`` the agent already has stored (for the duplicate-seq error)."""
    # Behind a pooler this read needs the store's settings too.
    settings = pipelined_transaction(conn, prologue, prepare=prepare) if prologue else contextlib.nullcontext()
    async with settings:
        cur = await conn.execute(_STORED_SEQS, [agent_id, seqs], prepare=prepare)
        return [seq for (seq,) in await cur.fetchall()]


async def commit_events(store: PostgresConnections, rows: list[PendingEvent]) -> None:
    """Insert ``rows`` (one or more agents) and notify listeners, in one
    pipelined transaction (one round trip), or write nothing.

    A seq already stored raises :class:`RecordValidationError` naming it
    (only ever for a single agent's batch: the group committer retries a
    failed joint commit batch by batch)."""
    async with store._connection(bare=True) as conn:
        try:
            async with pipelined_transaction(conn, store._prologue, store._on_commit, prepare=False):
                await write_events(conn, store._settings.schema, rows, sorted({row.agent_id for row in rows}))
        except psycopg.errors.UniqueViolation:
            agent_id = rows[0].agent_id
            seqs = [row.seq for row in rows if row.agent_id == agent_id]
            stored = await stored_seqs(conn, store._prologue, agent_id, seqs)
            raise duplicate_seq_error(agent_id, stored or seqs) from None


async def read_page(conn: AsyncConnection[Any], agent_id: str, only: str | None, first: int) -> list[Any]:
    """Up to :data:`EVENT_PAGE` rows ``(seq, document)`` of the agent's events
    from ``seq >= first`` on, of channel ``only`` if given."""
    if only is None:
        cur = await conn.execute(_READ_EVENTS, [agent_id, first, EVENT_PAGE])
    else:
        cur = await conn.execute(_READ_CHANNEL_EVENTS, [agent_id, only, first, EVENT_PAGE])
    return await cur.fetchall()
