"""The two lists saved whole but written incrementally, messages and tool
calls: one generic save (:func:`save_list`) driven by a :class:`ListTable`,
plus the single-row writes (``append_messages``, ``upsert_tool_call_record``).

``save_messages`` / ``save_tool_call_records`` diff the new list against
independent snapshots of the list saved last (one comparison per position,
done in C), and send only changed positions; a rewritten position keeps its
first ``created_at``. With a cached snapshot the save is optimistic — one
round trip: an ``UPDATE`` of the agent row bumps the version only if it still
is the cached one (taking the row lock, which serialises workers saving one
agent) and stamps a random token that guards every row write, so a stale
cache writes nothing and the save retries on the locking path
(``SELECT … FOR UPDATE``, rebuild from rows).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import AsyncConnection

from ... import jsoncodec
from ...types import Message, ToolCallRecord
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
from ..records import RecordKind, kind_named, message_to_wire, record_json
from . import sql
from .connections import PG_TX
from .sql import load, now_ms

__all__ = ["MESSAGES", "TOOL_CALLS", "ListStore", "ListTable", "append_messages", "lock_agent", "save_list",
           "save_optimistic", "upsert_tool_call"]  # fmt: skip

#: The parameters of a list's row statement: (agent id, position, item, encoded document, now, index the text).
RowBuilder = Callable[[str, int, Any, bytes, int, bool], tuple[Any, ...]]


class ListStore(Protocol):
    """What the list writes use of their store (a PostgresStore)."""

    _messages_cache: SavedListCache
    _tool_calls_cache: SavedListCache
    _search_index: bool

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]: ...


@dataclass(frozen=True, slots=True)
class ListTable:
    """How one incrementally saved list is stored: its kind (``argument``
    names the items in errors), the store's cache of it, where its version is
    in :func:`lock_agent`'s row, its statements, and its item's wire form,
    snapshot, diff keys and row."""

    kind: RecordKind
    cache: Callable[[ListStore], SavedListCache]
    version_at: int
    counted: bool  # the registry's message_count follows the length too
    statements: sql.ListSQL
    wire: Callable[[Any], Any]
    snapshot: Callable[[Any], Any]
    keys: Callable[[list[Any]], Any]
    row: RowBuilder

    def sizes(self, n: int) -> list[int]:
        """The length parameters of ``set_len`` / ``bump``."""
        return [n, n] if self.counted else [n]


def _tool_call_row(agent_id: str, pos: int, record: Any, encoded: bytes, now: int, index: bool) -> tuple[Any, ...]:
    return sql.tool_call_row(agent_id, pos, record, encoded)


# fmt: off
MESSAGES = ListTable(kind_named("message"), lambda store: store._messages_cache, 0, True, sql.MESSAGE_SQL,
                     message_to_wire, message_snapshot, message_keys, sql.message_row)
TOOL_CALLS = ListTable(kind_named("tool_call"), lambda store: store._tool_calls_cache, 2, False, sql.TOOL_CALL_SQL,
                       ToolCallRecord.to_wire, tool_call_snapshot, tool_call_keys, _tool_call_row)
# fmt: on


async def lock_agent(conn: AsyncConnection[Any], agent_id: str, now: int) -> tuple[int, int, int, int]:
    """Lock the agent's registry row (creating it if needed) and return
    ``(msg_version, msg_len, tc_version, tc_len)``."""
    cur = await conn.execute(sql.LOCK_AGENT, [agent_id])
    row = await cur.fetchone()
    if row is None:
        await conn.execute(sql.ENSURE_AGENT, [agent_id, now, now])
        cur = await conn.execute(sql.LOCK_AGENT, [agent_id])
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


async def save_list(store: ListStore, table: ListTable, agent_id: str, items: list[Any]) -> None:
    """Replace the agent's list with ``items`` (validated), writing only the
    positions that changed: optimistically with a cached snapshot, else under
    the row lock, rebuilt from the stored rows."""
    now = now_ms()
    cache = table.cache(store)
    latest = cache.latest(agent_id)
    if latest is not None and await save_optimistic(store, table, agent_id, items, now, *latest):
        return
    label = table.kind.argument
    new_cache: list[Any] = []
    try:
        async with store._transaction() as conn:
            version = (await lock_agent(conn, agent_id, now))[table.version_at]
            cur = await conn.execute(table.statements.load, [agent_id])
            stored = [load(text) for (text,) in await cur.fetchall()]
            length = len(stored)
            rows = []
            for i, item in enumerate(items):
                wire = table.wire(item)
                new_cache.append(table.snapshot(item))
                if i < length and share_copy(stored[i]) == wire:  # exact: numbers wrapped
                    continue
                encoded = jsoncodec.encode(wire, f"{label}[{i}]")
                rows.append(table.row(agent_id, i, item, encoded, now, store._search_index))
            if rows:
                await conn.cursor().executemany(table.statements.upsert, rows)
            if length > len(items):
                await conn.execute(table.statements.trim, [agent_id, len(items)])
            await conn.execute(table.statements.set_len, [*table.sizes(len(items)), now, agent_id])
    except BaseException:
        cache.drop(agent_id)
        raise
    cache.put(agent_id, version + 1, new_cache)


async def save_optimistic(
    store: ListStore, table: ListTable, agent_id: str, items: list[Any], now: int, version: int, cached: list[Any]
) -> bool:
    """One round trip when the cached copy is current; False if it was not
    (nothing written then)."""
    cache = table.cache(store)
    label = table.kind.argument
    length = len(cached)
    token = secrets.randbits(63)
    changed = changed_positions(table.keys(items), cached)
    rows = []
    for i in changed:
        encoded = jsoncodec.encode(table.wire(items[i]), f"{label}[{i}]")
        rows.append((*table.row(agent_id, i, items[i], encoded, now, store._search_index), agent_id, token))
    new_cache = updated_snapshots(cached, items, changed, table.snapshot)
    n = len(items)
    try:
        async with store._transaction() as conn:
            bumped = await conn.execute(table.statements.bump, [*table.sizes(n), now, token, agent_id, version, length])
            if rows:
                await conn.cursor().executemany(table.statements.guarded_upsert, rows)
            if length > n:
                await conn.execute(table.statements.guarded_trim, [agent_id, n, agent_id, token])
        matched = await bumped.fetchone() is not None
    except BaseException:
        cache.drop(agent_id)
        raise
    if matched:
        cache.put(agent_id, version + 1, new_cache)
    else:
        cache.drop(agent_id)
    return matched


async def append_messages(store: ListStore, agent_id: str, items: list[Message]) -> None:
    """Append ``items`` after the stored messages: no re-read, one round trip for the rows."""
    encoded = [jsoncodec.encode(message_to_wire(m), f"messages[{i}]") for i, m in enumerate(items)]
    now = now_ms()
    index = store._search_index
    scoped = PG_TX.get()
    if scoped is not None and scoped[0] is store:
        # Inside store.transaction(): nothing fetched, so the step stays one
        # round trip; positions come from msg_len under the row lock.
        conn = scoped[1]
        store._messages_cache.drop(agent_id)
        await conn.execute(sql.ENSURE_AGENT, [agent_id, now, now])
        await conn.execute(sql.LOCK_AGENT, [agent_id])
        if items:
            await conn.cursor().executemany(
                sql.APPEND_MESSAGE,
                [(*sql.message_row(agent_id, i, m, encoded[i], now, index), agent_id) for i, m in enumerate(items)],
            )
        await conn.execute(sql.GROW_MESSAGES, [len(items), len(items), now, agent_id])
        return
    try:
        async with store._transaction() as conn:
            version, length, _, _ = await lock_agent(conn, agent_id, now)
            if items:
                await conn.cursor().executemany(
                    sql.MESSAGE_SQL.upsert,
                    [sql.message_row(agent_id, length + i, m, encoded[i], now, index) for i, m in enumerate(items)],
                )
            total = length + len(items)
            await conn.execute(sql.MESSAGE_SQL.set_len, [total, total, now, agent_id])
    except BaseException:
        store._messages_cache.drop(agent_id)
        raise
    cached = store._messages_cache.get(agent_id, version)
    if cached is not None and len(cached) == length:
        store._messages_cache.put(agent_id, version + 1, cached + list(map(message_snapshot, items)))
    else:
        store._messages_cache.drop(agent_id)


async def upsert_tool_call(store: ListStore, agent_id: str, item: ToolCallRecord) -> None:
    """Write one tool-call record by id: replaced in place, a new id goes last.
    Nothing is fetched: the row lock is taken by a SELECT whose result is never
    read, and the position is decided by the INSERT itself."""
    encoded = record_json(item, "record")
    row = sql.tool_call_row(agent_id, 0, item, encoded)
    now = now_ms()
    store._tool_calls_cache.drop(agent_id)
    try:
        async with store._transaction() as conn:
            await conn.execute(sql.ENSURE_AGENT, [agent_id, now, now])
            await conn.execute(sql.LOCK_AGENT, [agent_id])
            await conn.execute(sql.UPSERT_TOOL_CALL_BY_ID, [agent_id, agent_id, row[2], agent_id, *row[2:]])
            await conn.execute(sql.RECOUNT_TOOL_CALLS, [now, agent_id])
    finally:
        store._tool_calls_cache.drop(agent_id)
