"""``batch_fork`` in SQL: the children's registry rows (the source's info
with a new id, lineage and creation time) and, in the same transaction, the
copies of every forked kind's rows (:data:`~kode_sdk.store.postgres.sql.FORKED_KINDS`:
messages, tool calls, todos, snapshots), each one ``INSERT … SELECT`` for all
children at once.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from ... import jsoncodec
from ...errors import AgentNotFoundError
from ..query_rules import user_id_of
from .sql import COPY_FOR_FORKS, FORK_SOURCE, INSERT_FORK, doc, load, text

__all__ = ["fork_agent"]


async def fork_agent(conn: AsyncConnection[Any], agent_id: str, new_ids: list[str], now: int) -> None:
    """Create the forks ``new_ids`` of ``agent_id`` on ``conn`` (inside the
    caller's transaction). Raises :class:`AgentNotFoundError` if the source
    has no info."""
    cur = await conn.execute(FORK_SOURCE, [agent_id])
    source = await cur.fetchone()
    if source is None:
        raise AgentNotFoundError(agent_id)
    info_text, message_count, msg_len, tc_len = source
    wire = load(info_text)
    rows = []
    for new_id in new_ids:
        child = {
            **wire,
            "agentId": new_id,
            "lineage": [*wire.get("lineage", []), agent_id],
            "createdAt": now,
            "messageCount": message_count,
        }
        data, raw = doc(jsoncodec.encode(child, "info"))
        rows.append(
            (
                new_id,
                data,
                raw,
                text(str(wire.get("templateId", ""))),
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
    await conn.cursor().executemany(INSERT_FORK, rows)
    for statement in COPY_FOR_FORKS:
        await conn.execute(statement, [new_ids, agent_id])
