"""Health and metrics of any store, for ``kode health``/``kode metrics`` and the
``/health`` and ``/metrics`` endpoints.

An :class:`~kode_sdk.store.protocols.ExtendedStore` answers with its own
``health_check``/``get_metrics``; a plain Store (JSONStore) is checked by
listing its agents and probing that its directory accepts writes, and its
metrics count what it holds by reading it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from ..redact import redact
from ..store.capabilities import FileBacked, HealthChecking, MetricsReporting
from ..store.catalog import stored_agent_ids
from ..store.lifecycle import BaseStore
from ..store.metrics import Metrics
from ..store.protocols import Store
from ..store.writable import probe_writable
from ..types import (
    DatabaseHealth,
    FileSystemHealth,
    StorageMetrics,
    StoreHealthStatus,
    StoreMetrics,
    now_utc,
)

__all__ = ["store_health", "store_metrics", "store_metrics_text", "unhealthy_status"]


async def store_health(store: Store) -> StoreHealthStatus:
    """The store's health; never raises for a store that cannot be reached (it is unhealthy)."""
    if isinstance(store, HealthChecking):
        try:
            return await store.health_check()
        except Exception as exc:
            return unhealthy_status(exc)
    started = time.perf_counter()
    try:
        await store.list()
    except Exception as exc:
        return unhealthy_status(exc)
    latency = (time.perf_counter() - started) * 1000
    file_system = probe_writable(store.base_dir if isinstance(store, FileBacked) else None)
    return StoreHealthStatus(
        healthy=file_system.writable,
        database=DatabaseHealth(connected=True, latency_ms=latency),
        file_system=file_system,
        checked_at=now_utc(),
    )


def unhealthy_status(exc: BaseException) -> StoreHealthStatus:
    """The status of a store that failed with ``exc`` (e.g. could not be opened);
    the reason is kept, with anything password-shaped redacted."""
    message = redact(f"{type(exc).__name__}: {exc}")
    return StoreHealthStatus(
        healthy=False,
        database=DatabaseHealth(connected=False, error=message),
        file_system=FileSystemHealth(writable=False, error="not checked"),
        checked_at=now_utc(),
    )


async def store_metrics(store: Store) -> StoreMetrics:
    """The store's :class:`StoreMetrics` (a plain Store reports its agent count)."""
    if isinstance(store, MetricsReporting):
        return await store.get_metrics()
    storage = await _counted_storage(store)
    if not isinstance(store, BaseStore):
        from ..types import OperationCounts, PerformanceMetrics

        return StoreMetrics(
            operations=OperationCounts(), performance=PerformanceMetrics(), storage=storage, collected_at=now_utc()
        )
    snapshot: StoreMetrics = store.metrics.snapshot(storage)
    return snapshot


async def _counted_storage(store: Store) -> StorageMetrics:
    """What a store without ``get_metrics`` holds, counted by reading it (a
    JSONStore keeps no totals; this reads every agent's lists once)."""
    agent_ids = await stored_agent_ids(store)  # info or not
    messages = tool_calls = 0
    for agent_id in agent_ids:
        messages += len(await store.load_messages(agent_id))
        tool_calls += len(await store.load_tool_call_records(agent_id))
    directory = store.base_dir if isinstance(store, FileBacked) else None
    size = None if directory is None else await asyncio.to_thread(_tree_size, os.fspath(directory))
    return StorageMetrics(
        total_agents=len(agent_ids), total_messages=messages, total_tool_calls=tool_calls, db_size_bytes=size
    )


def _tree_size(root: str) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


async def store_metrics_text(store: Store) -> str:
    """The store's metrics in the Prometheus text exposition format."""
    result = await store_metrics(store)
    if isinstance(store, BaseStore):
        return store.metrics.prometheus(result.storage, backend=store.backend_name)
    return Metrics().prometheus(result.storage, backend="store")
