"""The read queries of the query API, ``aggregate_stats``, ``list`` and
``search_messages``: filters turned into SQL text and parameters.

Module-level builders, so tests can EXPLAIN exactly the SQL the store runs.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
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


def _filters(builder: str, given: dict[str, Any], *own: str, **own_defaults: Any) -> Any:
    """``given`` over the defaults of a query method, as attributes: its own
    filters (``own``: default None; ``own_defaults``), then the paging and
    ``created_at`` bounds every query method takes. An unknown name raises
    TypeError, as a call of the method would."""
    defaults = {**dict.fromkeys(own), **own_defaults, "created_after": None, "created_before": None}
    defaults.update(limit=100, offset=0)
    unknown = sorted(given.keys() - defaults.keys())
    if unknown:
        raise TypeError(f"{builder}() got an unexpected keyword argument {unknown[0]!r}")
    return SimpleNamespace(**{**defaults, **given})


class _Where:
    """A WHERE clause and its parameters, built filter by filter (``None``: no filter)."""

    def __init__(self, *fixed: str) -> None:
        self.clauses = list(fixed)
        self.params: list[Any] = []

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def equal(self, column: str, value: Any) -> None:
        if value is not None:
            self.add(f"{column} = %s", value)

    def agent(self, agent_id: str | None) -> None:
        if agent_id is not None:
            self.add("agent_id = %s", validate_agent_id(agent_id))

    def created(self, after: datetime | int | None, before: datetime | int | None) -> None:
        clauses, params = created_at_clauses(after, before, "%s")
        self.clauses += clauses
        self.params += params

    def page(self, select: str, order: str, limit: int, offset: int) -> tuple[str, list[Any]]:
        """``select`` with this WHERE, ``order`` and the page: the query and its parameters."""
        condition = f" WHERE {' AND '.join(self.clauses)}" if self.clauses else ""
        return f"{select}{condition} ORDER BY {order} LIMIT %s OFFSET %s", [*self.params, limit, offset]


def _flag(name: str, value: bool | None) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool; got {value!r}")
    return value


def sessions_query(**filters: Any) -> tuple[str, list[Any]]:
    """The SQL and parameters of :meth:`PostgresStore.query_sessions`
    (``filters``: its keyword arguments)."""
    sort = {"sort_by": "created_at", "sort_order": "desc"}
    q = _filters("sessions_query", filters, "agent_id", "template_id", "user_id", **sort)
    column, order = check_sort(q.sort_by, q.sort_order)
    limit, offset = check_page(q.limit, q.offset)
    where = _Where("info IS NOT NULL")
    where.agent(q.agent_id)
    where.equal("template_id", q.template_id)
    where.equal("user_id", q.user_id)
    where.created(q.created_after, q.created_before)
    direction = "DESC" if order == "desc" else "ASC"
    return where.page(
        f"SELECT {_SESSION_COLUMNS} FROM agents", f"{column} {direction}, agent_id {direction}", limit, offset
    )


def messages_query(**filters: Any) -> tuple[str, list[Any]]:
    """The SQL and parameters of :meth:`PostgresStore.query_messages`
    (``filters``: its keyword arguments)."""
    q = _filters("messages_query", filters, "agent_id", "role", "content_type")
    limit, offset = check_page(q.limit, q.offset)
    where = _Where()
    where.agent(q.agent_id)
    where.equal("role", q.role)
    if q.content_type is not None:
        where.add("block_types @> ARRAY[%s]::text[]", q.content_type)
    where.created(q.created_after, q.created_before)
    return where.page(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages", "created_at DESC, seq DESC, agent_id DESC", limit, offset
    )


def tool_calls_query(**filters: Any) -> tuple[str, list[Any]]:
    """The SQL and parameters of :meth:`PostgresStore.query_tool_calls`
    (``filters``: its keyword arguments)."""
    q = _filters("tool_calls_query", filters, "agent_id", "tool_name", "is_error", "has_approval", "state")
    limit, offset = check_page(q.limit, q.offset)
    where = _Where()
    where.agent(q.agent_id)
    where.equal("name", q.tool_name)
    where.equal("is_error", _flag("is_error", q.is_error))
    if _flag("has_approval", q.has_approval) is not None:
        where.add("approval_required" if q.has_approval else "NOT approval_required")
    if q.state is not None:
        try:
            where.equal("state", ToolCallState(q.state).value)
        except ValueError:
            allowed = ", ".join(s.value for s in ToolCallState)
            raise ValueError(f"state must be one of {allowed}; got {q.state!r}") from None
    where.created(q.created_after, q.created_before)
    order = "created_at DESC, id DESC, agent_id DESC, pos DESC"
    return where.page(f"SELECT {_TOOL_CALL_COLUMNS} FROM tool_calls", order, limit, offset)


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
