"""The query API, declared once: :class:`QueryFront`.

``query_sessions``, ``query_messages``, ``query_tool_calls``,
``aggregate_stats`` (and, through :class:`~kode_sdk.store.search.MessageSearch`,
``search_messages``) are written here, once, with their public signatures,
docstrings and ``@operation`` decorators. The decorator applies the
contract's policy before the method body runs (:mod:`~kode_sdk.store.policy`:
the agent id, text filters NUL-free, ``role``/``state`` in their enums,
booleans, ``created_after``/``created_before`` as epoch ms, page bounds,
``sort_by``/``sort_order`` whitelisted); the body only packs the normalised
arguments into a small frozen request and hands it to the backend's
primitive:

==========================  ==============================================  ==========================
public method               backend primitive                               returns
==========================  ==============================================  ==========================
``query_sessions``          ``_session_rows(q: SessionQuery)``              ``list[SessionInfo]``
``query_messages``          ``_message_rows(q: MessageQuery)``              ``list[StoredMessage]``
``query_tool_calls``        ``_tool_call_rows(q: ToolCallQuery)``           ``list[StoredToolCall]``
``aggregate_stats``         ``_agent_counts(agent_id)``                     :class:`AgentCounts`
``search_messages``         ``_search_rows(request: SearchRequest)``        ``list[SearchRow]``
==========================  ==============================================  ==========================

A primitive reads the requested page (filters applied, ordered as the
request says, ``offset``/``limit`` applied) and builds the results itself,
with the shared row converters of :mod:`~kode_sdk.store.results`: each
backend decodes its own row shape in one pass, so the front adds no work per
row. It never re-validates: what it gets was checked above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple, cast

from ..types import AgentStats, SessionInfo, StoredMessage, StoredToolCall, ToolCallState
from .lifecycle import operation
from .query_rules import stats_from_counts
from .search import MessageSearch

__all__ = ["AgentCounts", "MessageQuery", "QueryFront", "SessionQuery", "ToolCallQuery"]

SortColumn = Literal["created_at", "updated_at", "message_count"]


class SessionQuery(NamedTuple):
    """A validated ``query_sessions`` call: what ``_session_rows`` gets.

    Every filter may be ``None``; times are epoch ms (inclusive bounds, within
    64 bits). Rows are ordered by ``sort_by`` in ``sort_order`` (``"asc"`` or
    ``"desc"``), ties by agent id in the same order. The defaults are the
    public method's (as in the other requests):
    ``SessionQuery(template_id="t", limit=20)`` is ``query_sessions(template_id="t", limit=20)``.
    """

    agent_id: str | None = None
    template_id: str | None = None
    user_id: str | None = None
    created_after: int | None = None
    created_before: int | None = None
    limit: int = 100
    offset: int = 0
    sort_by: SortColumn = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"


class MessageQuery(NamedTuple):
    """A validated ``query_messages`` call: what ``_message_rows`` gets.

    ``role`` is one of the message roles, ``content_type`` a block type some
    content block must have; times are epoch ms (inclusive). Rows are newest
    first: ``created_at``, then seq, then agent id, descending.
    """

    agent_id: str | None = None
    role: str | None = None
    content_type: str | None = None
    created_after: int | None = None
    created_before: int | None = None
    limit: int = 100
    offset: int = 0


class ToolCallQuery(NamedTuple):
    """A validated ``query_tool_calls`` call: what ``_tool_call_rows`` gets.

    ``state`` is a :class:`~kode_sdk.types.ToolCallState` value (``"completed"``
    …); times are epoch ms (inclusive). Rows are newest first:
    ``created_at``, then the call's id, then agent id, descending.
    """

    agent_id: str | None = None
    tool_name: str | None = None
    is_error: bool | None = None
    has_approval: bool | None = None
    state: str | None = None
    created_after: int | None = None
    created_before: int | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True)
class AgentCounts:
    """What ``_agent_counts`` reads for ``aggregate_stats``: the agent's
    messages by role, tool calls by state (a :class:`ToolCallState` value) and
    by name, and its snapshots. Zero counts may be left in or out; an unknown
    agent is all empty."""

    messages_by_role: dict[str, int]
    tool_calls_by_state: dict[str, int]
    tool_calls_by_name: dict[str, int]
    snapshots: int = 0


class QueryFront(MessageSearch):
    """Gives a store the query API of :class:`~kode_sdk.store.protocols.QueryableStore`;
    the store implements one primitive per query (see the module docs).

    >>> class MyStore(QueryFront, BaseStore):                              # doctest: +SKIP
    ...     async def _message_rows(self, q: MessageQuery) -> list[StoredMessage]:
    ...         rows = [m for m in self._all_messages() if q.role in (None, m.role)]
    ...         return newest_first(rows)[q.offset : q.offset + q.limit]
    """

    @operation("queries", agent=False)
    async def query_sessions(
        self,
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
    ) -> list[SessionInfo]:
        """Agents with saved info, filtered; sorted by ``sort_by``
        (``created_at``, ``updated_at`` or ``message_count``) in ``sort_order``
        (``"desc"``, newest first, by default), ties by agent id in the same order."""
        # The operation's policy rule has normalised every argument (times to epoch ms).
        return await self._session_rows(
            SessionQuery(
                agent_id,
                template_id,
                user_id,
                cast("int | None", created_after),
                cast("int | None", created_before),
                limit,
                offset,
                cast("SortColumn", sort_by),
                cast("Literal['asc', 'desc']", sort_order),
            )
        )

    @operation("queries", agent=False)
    async def query_messages(
        self,
        *,
        agent_id: str | None = None,
        role: str | None = None,
        content_type: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredMessage]:
        """Stored messages across agents, filtered, newest first (``created_at``,
        then seq, then agent id, descending)."""
        return await self._message_rows(
            MessageQuery(
                agent_id,
                role,
                content_type,
                cast("int | None", created_after),
                cast("int | None", created_before),
                limit,
                offset,
            )
        )

    @operation("queries", agent=False)
    async def query_tool_calls(
        self,
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
    ) -> list[StoredToolCall]:
        """Stored tool calls across agents, filtered, newest first (``created_at``,
        then id, then agent id, descending)."""
        return await self._tool_call_rows(
            ToolCallQuery(
                agent_id,
                tool_name,
                is_error,
                has_approval,
                None if state is None else ToolCallState(state).value,
                cast("int | None", created_after),
                cast("int | None", created_before),
                limit,
                offset,
            )
        )

    @operation("queries")
    async def aggregate_stats(self, agent_id: str) -> AgentStats:
        """Counts of the agent's messages (by role), tool calls (by state and
        name) and snapshots; all zeros for an unknown agent."""
        counts = await self._agent_counts(agent_id)
        return stats_from_counts(
            total_messages=sum(counts.messages_by_role.values()),
            total_snapshots=counts.snapshots,
            messages_by_role=counts.messages_by_role,
            tool_calls_by_state=counts.tool_calls_by_state,
            tool_calls_by_name=counts.tool_calls_by_name,
        )

    # ------------------------------------------------------------------ the primitives

    async def _session_rows(self, q: SessionQuery) -> list[SessionInfo]:
        """The page of sessions ``q`` asks for."""
        raise NotImplementedError

    async def _message_rows(self, q: MessageQuery) -> list[StoredMessage]:
        """The page of messages ``q`` asks for."""
        raise NotImplementedError

    async def _tool_call_rows(self, q: ToolCallQuery) -> list[StoredToolCall]:
        """The page of tool calls ``q`` asks for."""
        raise NotImplementedError

    async def _agent_counts(self, agent_id: str) -> AgentCounts:
        """The agent's counts (all empty for an unknown agent)."""
        raise NotImplementedError
