"""Blocking store classes and factories, generated from the async protocols.

Do not edit: run ``python -m kode_sdk._gen_sync`` (see that module).
"""

# ruff: noqa: E501
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, ClassVar, cast

import kode_sdk as _kode
from kode_sdk.store import factory as _factory
from kode_sdk.sync import _facade, _runner
from kode_sdk.sync._facade import Facade

if TYPE_CHECKING:
    import builtins
    from collections.abc import Iterator, Mapping, Sequence
    from contextlib import AbstractContextManager
    from datetime import datetime
    from typing import Any

    from kode_sdk import ExtendedStore, QueryableStore, Store
    from kode_sdk.store.transaction import StoreTransaction
    from kode_sdk.sync._facade import SyncAgentLock
    from kode_sdk.types import (
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

__all__ = ["SyncExtendedStore", "SyncQueryableStore", "SyncStore", "create_extended_store", "create_store"]


class SyncStore(Facade):
    """Blocking :class:`kode_sdk.Store`: each method runs the async one on the kode_sdk.sync loop thread and returns its result."""

    _protocol: ClassVar[type] = _kode.Store

    @property
    def async_store(self) -> Store:
        """The async store underneath. Await it only in coroutines run by :func:`kode_sdk.sync.call`."""
        return cast("Store", self._inner())

    def save_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Blocking :meth:`kode_sdk.Store.save_messages`."""
        return _runner.call(self.async_store.save_messages, agent_id, messages)

    def load_messages(self, agent_id: str) -> builtins.list[Message]:
        """Blocking :meth:`kode_sdk.Store.load_messages`."""
        return _runner.call(self.async_store.load_messages, agent_id)

    def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Blocking :meth:`kode_sdk.Store.append_messages`."""
        return _runner.call(self.async_store.append_messages, agent_id, messages)

    def save_tool_call_records(self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]) -> None:
        """Blocking :meth:`kode_sdk.Store.save_tool_call_records`."""
        return _runner.call(self.async_store.save_tool_call_records, agent_id, records)

    def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.Store.upsert_tool_call_record`."""
        return _runner.call(self.async_store.upsert_tool_call_record, agent_id, record)

    def load_tool_call_records(self, agent_id: str) -> builtins.list[ToolCallRecord]:
        """Blocking :meth:`kode_sdk.Store.load_tool_call_records`."""
        return _runner.call(self.async_store.load_tool_call_records, agent_id)

    def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.Store.save_todos`."""
        return _runner.call(self.async_store.save_todos, agent_id, snapshot)

    def load_todos(self, agent_id: str) -> TodoSnapshot | None:
        """Blocking :meth:`kode_sdk.Store.load_todos`."""
        return _runner.call(self.async_store.load_todos, agent_id)

    def append_event(self, agent_id: str, timeline: Timeline | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.Store.append_event`."""
        return _runner.call(self.async_store.append_event, agent_id, timeline)

    def append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None:
        """Blocking :meth:`kode_sdk.Store.append_events`."""
        return _runner.call(self.async_store.append_events, agent_id, timelines)

    def read_events(self, agent_id: str, *, since: Any = None, channel: str | None = None) -> Iterator[Timeline]:
        """Blocking :meth:`kode_sdk.Store.read_events`."""
        return _runner.iterate(self.async_store.read_events, agent_id, since=since, channel=channel)

    def save_history_window(self, agent_id: str, window: HistoryWindow | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.Store.save_history_window`."""
        return _runner.call(self.async_store.save_history_window, agent_id, window)

    def load_history_windows(self, agent_id: str) -> builtins.list[HistoryWindow]:
        """Blocking :meth:`kode_sdk.Store.load_history_windows`."""
        return _runner.call(self.async_store.load_history_windows, agent_id)

    def save_compression_record(self, agent_id: str, record: CompressionRecord | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.Store.save_compression_record`."""
        return _runner.call(self.async_store.save_compression_record, agent_id, record)

    def load_compression_records(self, agent_id: str) -> builtins.list[CompressionRecord]:
        """Blocking :meth:`kode_sdk.Store.load_compression_records`."""
        return _runner.call(self.async_store.load_compression_records, agent_id)

    def save_recovered_file(self, agent_id: str, file: RecoveredFile | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.Store.save_recovered_file`."""
        return _runner.call(self.async_store.save_recovered_file, agent_id, file)

    def load_recovered_files(self, agent_id: str) -> builtins.list[RecoveredFile]:
        """Blocking :meth:`kode_sdk.Store.load_recovered_files`."""
        return _runner.call(self.async_store.load_recovered_files, agent_id)

    def save_media_cache(self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]) -> None:
        """Blocking :meth:`kode_sdk.Store.save_media_cache`."""
        return _runner.call(self.async_store.save_media_cache, agent_id, records)

    def load_media_cache(self, agent_id: str) -> builtins.list[MediaCacheRecord]:
        """Blocking :meth:`kode_sdk.Store.load_media_cache`."""
        return _runner.call(self.async_store.load_media_cache, agent_id)

    def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.Store.save_snapshot`."""
        return _runner.call(self.async_store.save_snapshot, agent_id, snapshot)

    def load_snapshot(self, agent_id: str, snapshot_id: str) -> Snapshot | None:
        """Blocking :meth:`kode_sdk.Store.load_snapshot`."""
        return _runner.call(self.async_store.load_snapshot, agent_id, snapshot_id)

    def list_snapshots(self, agent_id: str) -> builtins.list[Snapshot]:
        """Blocking :meth:`kode_sdk.Store.list_snapshots`."""
        return _runner.call(self.async_store.list_snapshots, agent_id)

    def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.Store.save_info`."""
        return _runner.call(self.async_store.save_info, agent_id, info)

    def load_info(self, agent_id: str) -> AgentInfo | None:
        """Blocking :meth:`kode_sdk.Store.load_info`."""
        return _runner.call(self.async_store.load_info, agent_id)

    def exists(self, agent_id: str) -> bool:
        """Blocking :meth:`kode_sdk.Store.exists`."""
        return _runner.call(self.async_store.exists, agent_id)

    def delete(self, agent_id: str) -> None:
        """Blocking :meth:`kode_sdk.Store.delete`."""
        return _runner.call(self.async_store.delete, agent_id)

    def list(self, prefix: str | None = None) -> builtins.list[str]:
        """Blocking :meth:`kode_sdk.Store.list`."""
        return _runner.call(self.async_store.list, prefix)

    def transaction(self, agent_id: str) -> AbstractContextManager[SyncStoreTransaction]:
        """Blocking :meth:`kode_sdk.Store.transaction`."""
        return _facade.wrapped_context(SyncStoreTransaction, self.async_store.transaction, agent_id)


class SyncQueryableStore(SyncStore):
    """Blocking :class:`kode_sdk.QueryableStore`: each method runs the async one on the kode_sdk.sync loop thread and returns its result."""

    _protocol: ClassVar[type] = _kode.QueryableStore

    @property
    def async_store(self) -> QueryableStore:
        """The async store underneath. Await it only in coroutines run by :func:`kode_sdk.sync.call`."""
        return cast("QueryableStore", self._inner())

    def query_sessions(
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
    ) -> builtins.list[SessionInfo]:
        """Blocking :meth:`kode_sdk.QueryableStore.query_sessions`."""
        return _runner.call(
            self.async_store.query_sessions,
            agent_id=agent_id,
            template_id=template_id,
            user_id=user_id,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            sort_order=sort_order,
        )

    def query_messages(
        self,
        *,
        agent_id: str | None = None,
        role: str | None = None,
        content_type: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[StoredMessage]:
        """Blocking :meth:`kode_sdk.QueryableStore.query_messages`."""
        return _runner.call(
            self.async_store.query_messages,
            agent_id=agent_id,
            role=role,
            content_type=content_type,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )

    def query_tool_calls(
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
    ) -> builtins.list[StoredToolCall]:
        """Blocking :meth:`kode_sdk.QueryableStore.query_tool_calls`."""
        return _runner.call(
            self.async_store.query_tool_calls,
            agent_id=agent_id,
            tool_name=tool_name,
            is_error=is_error,
            has_approval=has_approval,
            state=state,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )

    def aggregate_stats(self, agent_id: str) -> AgentStats:
        """Blocking :meth:`kode_sdk.QueryableStore.aggregate_stats`."""
        return _runner.call(self.async_store.aggregate_stats, agent_id)

    def search_messages(
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
    ) -> builtins.list[MessageHit]:
        """Blocking :meth:`kode_sdk.QueryableStore.search_messages`."""
        return _runner.call(
            self.async_store.search_messages,
            query,
            agent_id=agent_id,
            template_id=template_id,
            user_id=user_id,
            role=role,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )


class SyncExtendedStore(SyncQueryableStore):
    """Blocking :class:`kode_sdk.ExtendedStore`: each method runs the async one on the kode_sdk.sync loop thread and returns its result."""

    _protocol: ClassVar[type] = _kode.ExtendedStore

    @property
    def async_store(self) -> ExtendedStore:
        """The async store underneath. Await it only in coroutines run by :func:`kode_sdk.sync.call`."""
        return cast("ExtendedStore", self._inner())

    def health_check(self) -> StoreHealthStatus:
        """Blocking :meth:`kode_sdk.ExtendedStore.health_check`."""
        return _runner.call(self.async_store.health_check)

    def check_consistency(self, agent_id: str) -> ConsistencyCheckResult:
        """Blocking :meth:`kode_sdk.ExtendedStore.check_consistency`."""
        return _runner.call(self.async_store.check_consistency, agent_id)

    def get_metrics(self) -> StoreMetrics:
        """Blocking :meth:`kode_sdk.ExtendedStore.get_metrics`."""
        return _runner.call(self.async_store.get_metrics)

    def acquire_agent_lock(self, agent_id: str, timeout_ms: int = 30000) -> SyncAgentLock:
        """Blocking :meth:`kode_sdk.ExtendedStore.acquire_agent_lock`."""
        return _facade.acquire_lock(self.async_store.acquire_agent_lock, agent_id, timeout_ms)

    def agent_lock(self, agent_id: str, timeout_ms: int = 30000) -> AbstractContextManager[SyncAgentLock]:
        """Blocking :meth:`kode_sdk.ExtendedStore.agent_lock`."""
        return _facade.lock_context(self.async_store.agent_lock, agent_id, timeout_ms)

    def batch_fork(self, agent_id: str, count: int) -> builtins.list[str]:
        """Blocking :meth:`kode_sdk.ExtendedStore.batch_fork`."""
        return _runner.call(self.async_store.batch_fork, agent_id, count)


class SyncStoreTransaction(_facade.Wrapped):
    """Blocking :class:`kode_sdk.store.transaction.StoreTransaction`, as a method of a blocking store returns it."""

    wrapped: StoreTransaction

    def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.append_messages`.

        Append ``messages`` after the stored ones (see ``Store.append_messages``).
        """
        return _runner.call(self.wrapped.append_messages, agent_id, messages)

    def save_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.save_messages`.

        Replace the conversation with ``messages`` (see ``Store.save_messages``).
        """
        return _runner.call(self.wrapped.save_messages, agent_id, messages)

    def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.upsert_tool_call_record`.

        Write one tool-call record by id (a new id goes last).
        """
        return _runner.call(self.wrapped.upsert_tool_call_record, agent_id, record)

    def save_tool_call_records(self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.save_tool_call_records`.

        Replace the tool-call records (see ``Store.save_tool_call_records``).
        """
        return _runner.call(self.wrapped.save_tool_call_records, agent_id, records)

    def append_event(self, agent_id: str, timeline: Timeline | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.append_event`.

        Append one event (committed with the transaction).
        """
        return _runner.call(self.wrapped.append_event, agent_id, timeline)

    def append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.append_events`.

        Append a batch of events (committed with the transaction).
        """
        return _runner.call(self.wrapped.append_events, agent_id, timelines)

    def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.save_info`.

        Save the agent's info (see ``Store.save_info``).
        """
        return _runner.call(self.wrapped.save_info, agent_id, info)

    def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.save_todos`.

        Replace the agent's todo list.
        """
        return _runner.call(self.wrapped.save_todos, agent_id, snapshot)

    def save_history_window(self, agent_id: str, window: HistoryWindow | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.save_history_window`.

        Save a history window.
        """
        return _runner.call(self.wrapped.save_history_window, agent_id, window)

    def save_compression_record(self, agent_id: str, record: CompressionRecord | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.save_compression_record`.

        Save a compression record.
        """
        return _runner.call(self.wrapped.save_compression_record, agent_id, record)

    def save_recovered_file(self, agent_id: str, file: RecoveredFile | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.save_recovered_file`.

        Save a recovered file.
        """
        return _runner.call(self.wrapped.save_recovered_file, agent_id, file)

    def save_media_cache(self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.save_media_cache`.

        Replace the media cache records.
        """
        return _runner.call(self.wrapped.save_media_cache, agent_id, records)

    def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.save_snapshot`.

        Save a snapshot.
        """
        return _runner.call(self.wrapped.save_snapshot, agent_id, snapshot)

    def load_messages(self, agent_id: str) -> list[Message]:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.load_messages`.

        The conversation as it will be after the commit.
        """
        return _runner.call(self.wrapped.load_messages, agent_id)

    def load_tool_call_records(self, agent_id: str) -> list[ToolCallRecord]:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.load_tool_call_records`.

        The tool-call records as they will be after the commit.
        """
        return _runner.call(self.wrapped.load_tool_call_records, agent_id)

    def load_info(self, agent_id: str) -> AgentInfo | None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.load_info`.

        The agent's info as it will be after the commit.
        """
        return _runner.call(self.wrapped.load_info, agent_id)

    def load_todos(self, agent_id: str) -> TodoSnapshot | None:
        """Blocking :meth:`kode_sdk.store.transaction.StoreTransaction.load_todos`.

        The agent's todo list as it will be after the commit.
        """
        return _runner.call(self.wrapped.load_todos, agent_id)


def create_store(config: Mapping[str, Any] | None = None) -> SyncStore:
    """Blocking :func:`kode_sdk.create_store`, returning a :class:`SyncStore`.

    Build an unopened store of any backend (no I/O happens here).
    """
    return SyncStore._made_by(functools.partial(_factory.create_store, config))


def create_extended_store(config: Mapping[str, Any] | None = None) -> SyncExtendedStore:
    """Blocking :func:`kode_sdk.create_extended_store`, returning a :class:`SyncExtendedStore`.

    Build and open a store with the full ExtendedStore API (SQLite or PostgreSQL).
    """
    return SyncExtendedStore._made_by(functools.partial(_factory.create_extended_store, config))
