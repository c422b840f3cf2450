"""check_consistency on SQLite: what one agent's stored rows must satisfy
(registry row, counts, contiguous positions, readable documents, tool results
matching tool uses), each broken rule reported as a sentence.
"""

from __future__ import annotations

import sqlite3

from ... import jsoncodec
from ...errors import RecordValidationError, StoreCorruptionError
from ...types import AgentInfo
from ..records import DATA_TABLES
from .blob import unpack
from .sql import load_tool_call

__all__ = ["consistency_issues"]


def consistency_issues(conn: sqlite3.Connection, agent_id: str) -> list[str]:
    issues: list[str] = []
    row = conn.execute("SELECT info, message_count FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
    if row is None:
        issues.append(f"Agent {agent_id!r} not found: nothing is stored for it.")
        # Foreign keys make orphans impossible unless they were switched off.
        for table in DATA_TABLES:
            if conn.execute(f"SELECT 1 FROM {table} WHERE agent_id = ? LIMIT 1", (agent_id,)).fetchone():
                issues.append(f"Table {table} holds rows for agent {agent_id!r}, which has no registry row.")
        return issues
    info_json, message_count = row
    if info_json is None:
        issues.append(
            f"Agent {agent_id!r} has stored records but no AgentInfo: save_info never ran, "
            "so list() and query_sessions do not show it."
        )
    else:
        try:
            info = jsoncodec.decode(info_json)
            stored_id = info.get("agentId") if isinstance(info, dict) else None
            if stored_id != agent_id:
                issues.append(f"The saved AgentInfo names agent {stored_id!r}, not {agent_id!r}.")
            AgentInfo.model_validate(info)
        except (ValueError, RecordValidationError) as exc:
            issues.append(f"The saved AgentInfo cannot be read back: {exc}")
    count, low, high = conn.execute(
        "SELECT COUNT(*), MIN(seq), MAX(seq) FROM messages WHERE agent_id = ?", (agent_id,)
    ).fetchone()
    if count != message_count:
        issues.append(f"Message count mismatch: the agent records {message_count} messages but {count} are stored.")
    if count and (low != 0 or high != count - 1):
        issues.append(f"Message positions are not contiguous: {count} messages span seq {low}..{high}.")
    tc_count, tc_low, tc_high = conn.execute(
        "SELECT COUNT(*), MIN(pos), MAX(pos) FROM tool_calls WHERE agent_id = ?", (agent_id,)
    ).fetchone()
    if tc_count and (tc_low != 0 or tc_high != tc_count - 1):
        issues.append(f"Tool-call positions are not contiguous: {tc_count} records span positions {tc_low}..{tc_high}.")
    tool_use_ids: set[str] = set()
    results: list[tuple[int, str]] = []
    previous_created_at: int | None = None
    for seq, created_at, data in conn.execute(
        "SELECT seq, created_at, data FROM messages WHERE agent_id = ? ORDER BY seq", (agent_id,)
    ):
        if previous_created_at is not None and created_at < previous_created_at:
            issues.append(f"Message {seq} has a created_at earlier than the message before it.")
        previous_created_at = created_at
        try:
            content = jsoncodec.decode(unpack(data)).get("content", [])
        except (ValueError, StoreCorruptionError) as exc:
            issues.append(f"Message {seq} is not valid JSON: {exc}")
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                tool_use_ids.add(str(block.get("id")))
            elif block.get("type") == "tool_result":
                results.append((seq, str(block.get("tool_use_id"))))
    for seq, tool_use_id in results:
        if tool_use_id not in tool_use_ids:
            issues.append(f"Message {seq} holds a tool_result for {tool_use_id!r}, but no tool_use has that id.")
    for (data,) in conn.execute("SELECT data FROM tool_calls WHERE agent_id = ? ORDER BY pos", (agent_id,)):
        try:
            load_tool_call(data)
        except (ValueError, RecordValidationError, StoreCorruptionError) as exc:
            issues.append(f"A tool-call record cannot be read back: {exc}")
    return issues
