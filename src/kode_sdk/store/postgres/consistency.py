"""``check_consistency`` on PostgreSQL: one query reads the agent's registry
row and what its tables hold (counts and highest positions), and
:func:`consistency_issues` names every broken invariant: positions with gaps,
registry counters that disagree with the rows, an info that does not load,
records without an info. "Records" are the rows of every table of
:data:`~kode_sdk.store.records.DATA_TABLES`.
"""

from __future__ import annotations

from typing import Any

from ...errors import RecordValidationError
from ...types import AgentInfo
from ..records import DATA_TABLES
from .sql import load

__all__ = ["CONSISTENCY_QUERY", "consistency_issues"]

# Messages and tool calls are counted on their own (checked against the registry).
_OTHER_TABLES = tuple(table for table in DATA_TABLES if table not in ("messages", "tool_calls"))

#: Parameter ``a``: the agent id. One row, the arguments of :func:`consistency_issues` after the id.
CONSISTENCY_QUERY = f"""
SELECT (SELECT count(*) FROM agents WHERE agent_id = %(a)s),
       (SELECT COALESCE(info_raw, info::text) FROM agents WHERE agent_id = %(a)s),
       (SELECT msg_len FROM agents WHERE agent_id = %(a)s),
       (SELECT tc_len FROM agents WHERE agent_id = %(a)s),
       (SELECT count(*) FROM messages WHERE agent_id = %(a)s),
       (SELECT max(seq) FROM messages WHERE agent_id = %(a)s),
       (SELECT count(*) FROM tool_calls WHERE agent_id = %(a)s),
       (SELECT max(pos) FROM tool_calls WHERE agent_id = %(a)s),
       {" + ".join(f"(SELECT count(*) FROM {table} WHERE agent_id = %(a)s)" for table in _OTHER_TABLES)}
"""


def consistency_issues(agent_id: str, row: tuple[Any, ...]) -> list[str]:
    """The broken invariants, one sentence each, of the row :data:`CONSISTENCY_QUERY` read."""
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
                info = AgentInfo.model_validate(load(info_text))
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
    return issues
