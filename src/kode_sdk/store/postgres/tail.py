"""The live tail of an agent's events (``PostgresStore.tail_events``): LISTEN
on a connection of its own, with the ``events`` table as the source of truth,
or, behind a transaction pooler (no session to LISTEN on), polling.

Either way the table is read (``seq > last seen``) after every wake-up and
every ``poll_interval_s`` anyway, so a lost notification or a reconnect never
loses or repeats an event; while the server is unreachable the tail retries
quietly with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import AsyncConnection

from ...errors import StoreConnectionError
from ...types import Timeline
from ..events import timeline_from_wire
from .events import EVENT_PAGE, MAX_SEQ, NOTIFY_CHANNEL, read_page
from .sql import load

if TYPE_CHECKING:
    from .connections import PostgresConnections

__all__ = ["listen_tail", "poll_tail"]

logger = logging.getLogger("kode_sdk.store.postgres")


async def listen_tail(
    store: PostgresConnections, agent_id: str, only: str | None, first: int, poll_interval_s: float
) -> AsyncGenerator[Timeline, None]:
    """Yield the agent's events from ``seq >= first`` on, forever: LISTEN on a
    dedicated connection wakes the read (closed when the generator is)."""
    wanted = f"{store._settings.schema}:{agent_id}"
    conn: AsyncConnection[Any] | None = None
    backoff = 0.05
    try:
        while store._state == "open":
            try:
                if conn is None or conn.closed:
                    conn = await AsyncConnection.connect(store._settings.conninfo, autocommit=True)
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                while first <= MAX_SEQ:
                    rows = await read_page(conn, agent_id, only, first)
                    for seq, text in rows:
                        first = seq + 1
                        yield timeline_from_wire(load(text))
                    if len(rows) < EVENT_PAGE:
                        break
                backoff = 0.05
                async with contextlib.aclosing(conn.notifies(timeout=poll_interval_s)) as wakeups:
                    async for note in wakeups:
                        if note.payload == wanted:
                            break
            except (psycopg.OperationalError, psycopg.InterfaceError, StoreConnectionError) as exc:
                logger.warning("tail_events(%r): connection lost, retrying: %s", agent_id, store._scrub(exc))
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


async def poll_tail(
    store: PostgresConnections, agent_id: str, only: str | None, first: int, poll_interval_s: float
) -> AsyncGenerator[Timeline, None]:
    """The tail behind a transaction pooler: read ``seq >= first`` every
    ``poll_interval_s``; no connection is held between polls."""
    backoff = 0.05
    while store._state == "open":
        if first > MAX_SEQ:
            await asyncio.sleep(poll_interval_s)
            continue
        try:
            async with store._connection() as conn:
                rows = await read_page(conn, agent_id, only, first)
        except StoreConnectionError as exc:
            logger.warning("tail_events(%r): connection lost, retrying: %s", agent_id, store._scrub(exc))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
            continue
        backoff = 0.05
        for seq, text in rows:
            first = seq + 1
            yield timeline_from_wire(load(text))
        if len(rows) < EVENT_PAGE:
            await asyncio.sleep(poll_interval_s)
