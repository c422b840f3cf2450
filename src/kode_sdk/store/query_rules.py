"""The small rules of the query API shared by backends: time clauses,
prefix ranges, a session's user id, stats from counts, fork ids."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..types import (
    AgentStats,
    ToolCallState,
)
from .agent_ids import MAX_AGENT_ID_LENGTH
from .events import INT64_MAX, INT64_MIN
from .policy import (
    time_bound,
)


def created_at_clauses(
    created_after: datetime | int | None, created_before: datetime | int | None, placeholder: str
) -> tuple[list[str], list[int]]:
    """SQL conditions (inclusive) and parameters for the ``created_after`` /
    ``created_before`` filters, in the backend's ``placeholder`` style (``?``,
    ``%s``). Bounds are clamped to the BIGINT range every stored timestamp is
    in, which keeps the result the same and the parameter bindable.

    >>> created_at_clauses(0, None, "?")
    (['created_at >= ?'], [0])
    """
    clauses: list[str] = []
    params: list[int] = []
    for value, name, operator_ in (
        (created_after, "created_after", ">="),
        (created_before, "created_before", "<="),
    ):
        bound = time_bound(value, name)
        if bound is not None:
            clauses.append(f"created_at {operator_} {placeholder}")
            params.append(max(min(bound, INT64_MAX), INT64_MIN))
    return clauses, params


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``,
    so ``list(prefix)`` is an index range ``[prefix, upper)`` — no LIKE, no
    wildcards, case-sensitive. ``None`` means unbounded.

    >>> prefix_upper_bound("agent_")
    'agent`'
    """
    chars = list(prefix)
    while chars:
        last = ord(chars[-1])
        if last < 0x10FFFF:
            # Skip the surrogate block: not valid in stored text.
            nxt = last + 1 if last + 1 != 0xD800 else 0xE000
            chars[-1] = chr(nxt)
            return "".join(chars)
        chars.pop()
    return None


def user_id_of(metadata: Mapping[str, Any] | None) -> str | None:
    """The user an agent belongs to: ``metadata["userId"]`` or ``metadata["user_id"]``."""
    if not metadata:
        return None
    value = metadata.get("userId", metadata.get("user_id"))
    return value if isinstance(value, str) else (None if value is None else str(value))


def stats_from_counts(
    *,
    total_messages: int,
    total_snapshots: int,
    messages_by_role: Mapping[str, int],
    tool_calls_by_state: Mapping[str, int],
    tool_calls_by_name: Mapping[str, int],
) -> AgentStats:
    """Build :class:`AgentStats`, leaving out zero counts."""
    by_state = {str(ToolCallState(k).value): v for k, v in tool_calls_by_state.items() if v}
    return AgentStats(
        total_messages=total_messages,
        total_tool_calls=sum(by_state.values()),
        total_snapshots=total_snapshots,
        tool_calls_by_state=by_state,
        tool_calls_by_name={k: v for k, v in tool_calls_by_name.items() if v},
        messages_by_role={k: v for k, v in messages_by_role.items() if v},
    )


def fork_agent_ids(source: str, count: int) -> list[str]:
    """``count`` fresh, valid agent ids derived from ``source``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int; got {count!r}")
    stem = source[: MAX_AGENT_ID_LENGTH - 22]
    return [f"{stem}.fork-{secrets.token_hex(8)}" for _ in range(count)]
