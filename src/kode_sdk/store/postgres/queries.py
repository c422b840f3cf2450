"""The read queries of the query API, ``aggregate_stats``, ``list`` and
``search_messages``: filters turned into SQL text and parameters.

Module-level builders, so tests can EXPLAIN exactly the SQL the store runs.
"""

from __future__ import annotations

from typing import Any

from ..queries import MessageQuery, SessionQuery, ToolCallQuery
from ..query_rules import prefix_upper_bound
from ..search import SearchRequest
from ..sql_where import Where
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

# The builders of the query API get the request QueryFront built from the
# arguments the policy layer already checked (store/queries.py): no check here.


def _page(
    select: str, where: Where, order: str, q: SessionQuery | MessageQuery | ToolCallQuery
) -> tuple[str, list[Any]]:
    """``select`` with ``where`` (its ``created_at`` bounds added from ``q``),
    ``order`` and ``q``'s page: the query and its parameters."""
    where.compare("created_at", ">=", q.created_after)
    where.compare("created_at", "<=", q.created_before)
    return f"{select} {where.sql()}ORDER BY {order} LIMIT %s OFFSET %s", [*where.params, q.limit, q.offset]


def sessions_query(q: SessionQuery) -> tuple[str, list[Any]]:
    """The SQL and parameters of ``query_sessions`` (its validated request)."""
    where = Where("%s", "info IS NOT NULL")
    where.equal("agent_id", q.agent_id)
    where.equal("template_id", q.template_id)
    where.equal("user_id", q.user_id)
    direction = q.sort_order.upper()
    return _page(f"SELECT {_SESSION_COLUMNS} FROM agents", where, f"{q.sort_by} {direction}, agent_id {direction}", q)


def messages_query(q: MessageQuery) -> tuple[str, list[Any]]:
    """The SQL and parameters of ``query_messages`` (its validated request)."""
    where = Where("%s")
    where.equal("agent_id", q.agent_id)
    where.equal("role", q.role)
    if q.content_type is not None:
        where.add("block_types @> ARRAY[%s]::text[]", q.content_type)
    return _page(f"SELECT {_MESSAGE_COLUMNS} FROM messages", where, "created_at DESC, seq DESC, agent_id DESC", q)


def tool_calls_query(q: ToolCallQuery) -> tuple[str, list[Any]]:
    """The SQL and parameters of ``query_tool_calls`` (its validated request)."""
    where = Where("%s")
    where.equal("agent_id", q.agent_id)
    where.equal("name", q.tool_name)
    where.equal("is_error", q.is_error)
    if q.has_approval is not None:
        where.add("approval_required" if q.has_approval else "NOT approval_required")
    where.equal("state", q.state)
    order = "created_at DESC, id DESC, agent_id DESC, pos DESC"
    return _page(f"SELECT {_TOOL_CALL_COLUMNS} FROM tool_calls", where, order, q)


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
    # The session filters need the registry row; the others are the message's own.
    by_session = (
        ("a.template_id = %(template)s", "template", request.template_id),
        ("a.user_id = %(user)s", "user", request.user_id),
    )
    join = ""
    if any(value is not None for _, _, value in by_session):
        join = " JOIN agents a ON a.agent_id = m.agent_id AND a.info IS NOT NULL"
    for clause, key, value in (
        *by_session,
        ("m.agent_id = %(agent)s", "agent", request.agent_id),
        ("m.role = %(role)s", "role", request.role),
        ("m.created_at >= %(after)s", "after", request.created_after),
        ("m.created_at <= %(before)s", "before", request.created_before),
    ):
        if value is not None:
            where.append(clause)
            params[key] = value
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
