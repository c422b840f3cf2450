"""The read queries of the query API, ``aggregate_stats``, ``list`` and
``search_messages``: filters turned into SQL text and parameters.

Module-level builders, so tests can EXPLAIN exactly the SQL the store runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...types import ToolCallState
from ..agent_ids import validate_agent_id
from ..policy import check_page, check_sort
from ..query_rules import created_at_clauses, prefix_upper_bound
from ..search import SearchRequest
from .sql import TS_CONFIG

__all__ = ["STATS_QUERY", "list_query", "messages_query", "search_query", "sessions_query", "tool_calls_query"]

_MESSAGE_COLUMNS = "agent_id, seq, role, created_at, COALESCE(raw, data::text)"
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
