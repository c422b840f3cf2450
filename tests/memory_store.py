"""An in-memory QueryableStore built on kode-sdk's shared pieces.

All data lives in a :class:`MemoryStorage`; several :class:`MemoryStore`
instances over one storage behave like several connections to one database.
Records are deep-copied on the way in and out, so no caller can change what is
stored by mutating an argument or a result.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from kode_sdk.errors import RecordValidationError
from kode_sdk.store.base import (
    AgentCounts,
    AppendedRecords,
    BaseStore,
    MessageQuery,
    QueryFront,
    RecordKind,
    SearchCandidate,
    SearchRequest,
    SearchRow,
    SearchScan,
    SessionQuery,
    ToolCallQuery,
    check_channel,
    coerce_list,
    duplicate_seq_error,
    event_rows,
    message_to_wire,
    operation,
    operation_iter,
    record_json,
    since_seq,
    user_id_of,
)
from kode_sdk.types import (
    AgentInfo,
    MediaCacheRecord,
    Message,
    Record,
    SessionInfo,
    Snapshot,
    StoredMessage,
    StoredToolCall,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
    now_utc,
    to_epoch_ms,
)

R = TypeVar("R", bound=Record)


def kept(record: R, field: str) -> R:
    """A private copy of a validated record, to store. A record changed in
    place after validation so that it is no longer JSON (NaN, an unpaired
    surrogate) is refused, as by a store that writes JSON: ``record_json``
    raises ``RecordValidationError`` naming ``field``."""
    record_json(record, field)
    return copy.deepcopy(record)


@dataclass
class AgentData:
    """Everything stored for one agent."""

    info: AgentInfo | None = None
    updated_at: datetime = field(default_factory=now_utc)
    messages: list[tuple[Message, datetime]] = field(default_factory=list)  # (message, first-save time)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    todos: TodoSnapshot | None = None
    events: dict[int, Timeline] = field(default_factory=dict)  # by bookmark.seq
    appended: dict[str, list[Record]] = field(default_factory=dict)  # by append-only kind name
    media_cache: list[MediaCacheRecord] = field(default_factory=list)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)


class MemoryStorage:
    """The shared "database": one :class:`AgentData` per agent id."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentData] = {}


class MemoryStore(QueryFront, AppendedRecords, BaseStore):
    """A :class:`~kode_sdk.store.base.QueryableStore` keeping everything in memory.

    >>> storage = MemoryStorage()
    >>> store = MemoryStore(storage)      # no I/O; opens on first use
    """

    backend_name = "memory"

    def __init__(self, storage: MemoryStorage | None = None) -> None:
        super().__init__()
        self.storage = storage if storage is not None else MemoryStorage()

    async def _open(self) -> None:
        pass  # nothing to connect to

    async def _close(self) -> None:
        pass

    # Every method below runs without awaiting between validation and its
    # last write, so each call is atomic: validate everything, then mutate.

    def _read(self, agent_id: str) -> AgentData:
        return self.storage.agents.get(agent_id) or AgentData()

    def _write(self, agent_id: str) -> AgentData:
        agent = self.storage.agents.setdefault(agent_id, AgentData())
        agent.updated_at = now_utc()
        return agent

    # ------------------------------------------------------------------ messages

    @operation("saves")
    async def save_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Replace the agent's conversation; unchanged messages keep their first-save time."""
        new = [kept(m, f"messages[{i}]") for i, m in enumerate(coerce_list(Message, messages, "messages"))]
        agent = self._write(agent_id)
        now, old = agent.updated_at, agent.messages
        agent.messages = [
            (message, old[i][1] if i < len(old) and old[i][0] == message else now) for i, message in enumerate(new)
        ]
        if agent.info is not None:
            agent.info.message_count = len(new)

    @operation("saves")
    async def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Add messages at the end of the conversation."""
        new = [kept(m, f"messages[{i}]") for i, m in enumerate(coerce_list(Message, messages, "messages"))]
        agent = self._write(agent_id)
        agent.messages += [(message, agent.updated_at) for message in new]
        if agent.info is not None:
            agent.info.message_count = len(agent.messages)

    @operation("loads")
    async def load_messages(self, agent_id: str) -> list[Message]:
        """The conversation, as last saved."""
        return copy.deepcopy([message for message, _ in self._read(agent_id).messages])

    # ------------------------------------------------------------------ tool calls, todos

    @operation("saves")
    async def save_tool_call_records(
        self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]
    ) -> None:
        """Replace the agent's tool-call records."""
        new = [kept(r, f"records[{i}]") for i, r in enumerate(coerce_list(ToolCallRecord, records, "records"))]
        self._write(agent_id).tool_calls = new

    @operation("saves")
    async def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None:
        """Write one tool-call record by id (replaced in place; a new id goes last)."""
        await self._upsert_tool_call_by_rewrite(agent_id, record)

    @operation("loads")
    async def load_tool_call_records(self, agent_id: str) -> list[ToolCallRecord]:
        """The tool-call records, as last saved."""
        return copy.deepcopy(self._read(agent_id).tool_calls)

    @operation("saves")
    async def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None:
        """Replace the agent's todo list."""
        todos = kept(TodoSnapshot.coerce(snapshot, "snapshot"), "snapshot")
        self._write(agent_id).todos = todos

    @operation("loads")
    async def load_todos(self, agent_id: str) -> TodoSnapshot | None:
        """The todo list, or None if none was saved."""
        return copy.deepcopy(self._read(agent_id).todos)

    # ------------------------------------------------------------------ events

    @operation("saves")
    async def append_event(self, agent_id: str, timeline: Timeline | Mapping[str, Any]) -> None:
        """Add one event; its ``bookmark.seq`` must be new for the agent."""
        event_rows(agent_id, timeline, single=True)  # the shared bounds
        await self._add_events(agent_id, [Timeline.coerce(timeline, "timeline")])

    @operation("saves")
    async def append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None:
        """Add a batch of events, all or none."""
        items = list(timelines) if not isinstance(timelines, (str, bytes, Mapping)) else timelines
        event_rows(agent_id, items)
        await self._add_events(agent_id, [Timeline.coerce(t, "timelines") for t in items])

    async def _add_events(self, agent_id: str, timelines: list[Timeline]) -> None:
        stored = [t.bookmark.seq for t in timelines if t.bookmark.seq in self._read(agent_id).events]
        if stored:
            raise duplicate_seq_error(agent_id, stored)
        events = self._write(agent_id).events
        for timeline in timelines:
            events[timeline.bookmark.seq] = copy.deepcopy(timeline)

    @operation_iter("loads")
    async def read_events(
        self, agent_id: str, *, since: Any = None, channel: str | None = None
    ) -> AsyncIterator[Timeline]:
        """Yield the agent's events in ``bookmark.seq`` order, after ``since``, on ``channel``."""
        after = since_seq(since)
        wanted = check_channel(channel)
        events = self._read(agent_id).events
        for seq in sorted(events):
            event = events[seq]
            if (after is None or seq > after) and (wanted is None or event.channel == wanted):
                yield copy.deepcopy(event)

    # ------------------------------------------------------------------ append-only kinds (AppendedRecords)

    async def _save_appended(self, kind: RecordKind, agent_id: str, record: Record) -> None:
        self._write(agent_id).appended.setdefault(kind.name, []).append(kept(record, kind.argument))

    async def _load_appended(self, kind: RecordKind, agent_id: str) -> list[Any]:
        return copy.deepcopy(self._read(agent_id).appended.get(kind.name, []))

    @operation("saves")
    async def save_media_cache(self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]) -> None:
        """Replace the agent's media cache."""
        new = [kept(r, f"records[{i}]") for i, r in enumerate(coerce_list(MediaCacheRecord, records, "records"))]
        self._write(agent_id).media_cache = new

    @operation("loads")
    async def load_media_cache(self, agent_id: str) -> list[MediaCacheRecord]:
        """The media cache, as last saved."""
        return copy.deepcopy(self._read(agent_id).media_cache)

    # ------------------------------------------------------------------ snapshots

    @operation("saves")
    async def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None:
        """Save a snapshot (replacing one with the same id)."""
        item = kept(Snapshot.coerce(snapshot, "snapshot"), "snapshot")
        self._write(agent_id).snapshots[item.id] = item

    @operation("loads")
    async def load_snapshot(self, agent_id: str, snapshot_id: str) -> Snapshot | None:
        """One snapshot, or None."""
        return copy.deepcopy(self._read(agent_id).snapshots.get(snapshot_id))

    @operation("loads")
    async def list_snapshots(self, agent_id: str) -> list[Snapshot]:
        """Every snapshot, newest first."""
        snapshots = self._read(agent_id).snapshots.values()
        return copy.deepcopy(sorted(snapshots, key=lambda s: (s.created_at, s.id), reverse=True))

    # ------------------------------------------------------------------ info, existence

    @operation("saves")
    async def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None:
        """Save the agent's info; from now on the agent exists."""
        item = kept(AgentInfo.coerce(info, "info"), "info")
        if item.agent_id != agent_id:
            raise RecordValidationError(
                f"info.agent_id: {item.agent_id!r} does not match the agent id {agent_id!r}", field="info.agent_id"
            )
        self._write(agent_id).info = item

    @operation("loads")
    async def load_info(self, agent_id: str) -> AgentInfo | None:
        """The agent's info, or None."""
        return copy.deepcopy(self._read(agent_id).info)

    @operation("loads")
    async def exists(self, agent_id: str) -> bool:
        """True once ``save_info`` ran for the agent."""
        return self._read(agent_id).info is not None

    @operation("deletes")
    async def delete(self, agent_id: str) -> None:
        """Remove every record of the agent; unknown agents are ignored."""
        self.storage.agents.pop(agent_id, None)

    @operation("loads", agent=False)
    async def list(self, prefix: str | None = None) -> list[str]:
        """Ids of existing agents starting with ``prefix`` (literally, case-sensitive), sorted."""
        return sorted(
            agent_id
            for agent_id, agent in self.storage.agents.items()
            if agent.info is not None and (prefix is None or agent_id.startswith(prefix))
        )

    # ------------------------------------------------------------------ queries
    # The public query methods come from QueryFront, which checks and
    # normalises the arguments; each primitive gets them as one request
    # (times as epoch ms) and returns its page.

    async def _session_rows(self, q: SessionQuery) -> list[SessionInfo]:
        """Agents matching every filter of ``q``, sorted as it says, one page."""
        sessions = []
        for aid, agent in self.storage.agents.items():
            info = agent.info
            if info is None or (q.agent_id is not None and aid != q.agent_id):
                continue
            if q.template_id is not None and info.template_id != q.template_id:
                continue
            if q.user_id is not None and user_id_of(info.metadata) != q.user_id:
                continue
            created = to_epoch_ms(info.created_at)
            if (q.created_after is not None and created < q.created_after) or (
                q.created_before is not None and created > q.created_before
            ):
                continue
            sessions.append(
                SessionInfo(
                    agent_id=aid,
                    template_id=info.template_id,
                    created_at=info.created_at,
                    updated_at=agent.updated_at,
                    message_count=len(agent.messages),
                    last_sfp_index=info.last_sfp_index,
                    breakpoint=info.breakpoint,
                    metadata=copy.deepcopy(info.metadata),
                )
            )
        sessions.sort(key=lambda s: (getattr(s, q.sort_by), s.agent_id), reverse=q.sort_order == "desc")
        return sessions[q.offset : q.offset + q.limit]

    async def _search_rows(self, request: SearchRequest) -> list[SearchRow]:
        """``search_messages`` by scanning: filters here, matching and ranking in SearchScan."""
        scan = SearchScan(request)
        for aid, agent in self.storage.agents.items():
            if request.agent_id is not None and aid != request.agent_id:
                continue
            info = agent.info
            if request.template_id is not None and (info is None or info.template_id != request.template_id):
                continue
            if request.user_id is not None and (info is None or user_id_of(info.metadata) != request.user_id):
                continue
            for seq, (message, created_at) in enumerate(agent.messages):
                created = to_epoch_ms(created_at)
                if request.created_after is not None and created < request.created_after:
                    continue
                if request.created_before is not None and created > request.created_before:
                    continue
                if request.role is not None and message.role != request.role:
                    continue
                scan.offer(SearchCandidate(aid, seq, message.role, created, message_to_wire(message)))
        return scan.rows()

    async def _message_rows(self, q: MessageQuery) -> list[StoredMessage]:
        """Messages matching every filter of ``q``, newest first, one page."""
        rows = []
        for aid, agent in self.storage.agents.items():
            if q.agent_id is not None and aid != q.agent_id:
                continue
            for seq, (message, created_at) in enumerate(agent.messages):
                created = to_epoch_ms(created_at)
                if (q.created_after is not None and created < q.created_after) or (
                    q.created_before is not None and created > q.created_before
                ):
                    continue
                if q.role is not None and message.role != q.role:
                    continue
                if q.content_type is not None and q.content_type not in message.block_types():
                    continue
                rows.append((created, seq, aid, message, created_at))
        rows.sort(key=lambda row: row[:3], reverse=True)
        return [
            StoredMessage(
                agent_id=aid,
                seq=seq,
                role=message.role,
                content=copy.deepcopy(message.content),
                created_at=created_at,
                metadata=copy.deepcopy(message.metadata),
            )
            for _, seq, aid, message, created_at in rows[q.offset : q.offset + q.limit]
        ]

    async def _tool_call_rows(self, q: ToolCallQuery) -> list[StoredToolCall]:
        """Tool calls matching every filter of ``q``, newest first, one page."""
        rows = []
        for aid, agent in self.storage.agents.items():
            if q.agent_id is not None and aid != q.agent_id:
                continue
            for record in agent.tool_calls:
                created = to_epoch_ms(record.created_at)
                if (q.created_after is not None and created < q.created_after) or (
                    q.created_before is not None and created > q.created_before
                ):
                    continue
                if q.tool_name is not None and record.name != q.tool_name:
                    continue
                if q.is_error is not None and record.is_error != q.is_error:
                    continue
                if q.has_approval is not None and record.approval.required != q.has_approval:
                    continue
                if q.state is not None and record.state.value != q.state:
                    continue
                rows.append((created, record.id, aid, record))
        rows.sort(key=lambda row: row[:3], reverse=True)
        return [
            StoredToolCall.from_record(aid, copy.deepcopy(record))
            for _, _, aid, record in rows[q.offset : q.offset + q.limit]
        ]

    async def _agent_counts(self, agent_id: str) -> AgentCounts:
        """One agent's messages by role, tool calls by state and name, snapshots."""
        agent = self._read(agent_id)
        by_role: dict[str, int] = {}
        for message, _ in agent.messages:
            by_role[message.role] = by_role.get(message.role, 0) + 1
        by_state: dict[str, int] = {}
        by_name: dict[str, int] = {}
        for record in agent.tool_calls:
            by_state[record.state.value] = by_state.get(record.state.value, 0) + 1
            by_name[record.name] = by_name.get(record.name, 0) + 1
        return AgentCounts(by_role, by_state, by_name, snapshots=len(agent.snapshots))
