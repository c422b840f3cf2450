"""The store protocols: :class:`Store`, :class:`QueryableStore`, :class:`ExtendedStore`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..types import (
    AgentInfo,
    AgentStats,
    CompressionRecord,
    ConsistencyCheckResult,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    MessageHit,
    RecoveredFile,
    SessionInfo,
    Snapshot,
    StoredMessage,
    StoredToolCall,
    StoreHealthStatus,
    StoreMetrics,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
    ToolCallState,
)
from .locks import AgentLock
from .transaction import StoreTransaction


@runtime_checkable
class Store(Protocol):
    """What every backend offers. All methods are ``async``."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def save_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None: ...
    async def load_messages(self, agent_id: str) -> list[Message]: ...
    async def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None: ...

    async def save_tool_call_records(
        self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]
    ) -> None: ...
    async def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None: ...
    async def load_tool_call_records(self, agent_id: str) -> list[ToolCallRecord]: ...

    async def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None: ...
    async def load_todos(self, agent_id: str) -> TodoSnapshot | None: ...

    async def append_event(self, agent_id: str, timeline: Timeline | Mapping[str, Any]) -> None: ...
    async def append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None: ...
    def read_events(
        self, agent_id: str, *, since: Any = None, channel: str | None = None
    ) -> AsyncIterator[Timeline]: ...

    async def save_history_window(self, agent_id: str, window: HistoryWindow | Mapping[str, Any]) -> None: ...
    async def load_history_windows(self, agent_id: str) -> list[HistoryWindow]: ...
    async def save_compression_record(self, agent_id: str, record: CompressionRecord | Mapping[str, Any]) -> None: ...
    async def load_compression_records(self, agent_id: str) -> list[CompressionRecord]: ...
    async def save_recovered_file(self, agent_id: str, file: RecoveredFile | Mapping[str, Any]) -> None: ...
    async def load_recovered_files(self, agent_id: str) -> list[RecoveredFile]: ...
    async def save_media_cache(
        self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]
    ) -> None: ...
    async def load_media_cache(self, agent_id: str) -> list[MediaCacheRecord]: ...

    async def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None: ...
    async def load_snapshot(self, agent_id: str, snapshot_id: str) -> Snapshot | None: ...
    async def list_snapshots(self, agent_id: str) -> list[Snapshot]: ...

    async def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None: ...
    async def load_info(self, agent_id: str) -> AgentInfo | None: ...

    async def exists(self, agent_id: str) -> bool: ...
    async def delete(self, agent_id: str) -> None: ...
    async def list(self, prefix: str | None = None) -> list[str]: ...

    def transaction(self, agent_id: str) -> contextlib.AbstractAsyncContextManager[StoreTransaction]: ...


@runtime_checkable
class QueryableStore(Store, Protocol):
    """A store that answers questions across agents."""

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
    ) -> list[SessionInfo]: ...

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
    ) -> list[StoredMessage]: ...

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
    ) -> list[StoredToolCall]: ...

    async def aggregate_stats(self, agent_id: str) -> AgentStats: ...

    async def search_messages(
        self,
        query: str,
        *,
        agent_id: str | None = None,
        template_id: str | None = None,
        user_id: str | None = None,
        role: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[MessageHit]: ...


@runtime_checkable
class ExtendedStore(QueryableStore, Protocol):
    """A queryable store with operations support: health, metrics, locks, forks."""

    async def health_check(self) -> StoreHealthStatus: ...
    async def check_consistency(self, agent_id: str) -> ConsistencyCheckResult: ...
    async def get_metrics(self) -> StoreMetrics: ...
    async def acquire_agent_lock(self, agent_id: str, timeout_ms: int = 30_000) -> AgentLock: ...
    def agent_lock(
        self, agent_id: str, timeout_ms: int = 30_000
    ) -> contextlib.AbstractAsyncContextManager[AgentLock]: ...
    async def batch_fork(self, agent_id: str, count: int) -> list[str]: ...
