"""Health and metrics of any store, for ``kode health``/``kode metrics`` and the
``/health`` and ``/metrics`` endpoints.

An :class:`~kode_sdk.store.base.ExtendedStore` answers with its own
``health_check``/``get_metrics``; a plain Store (JSONStore) is checked by
listing its agents and probing that its directory accepts writes.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from ..store.base import Store
from ..store.catalog import stored_agent_ids
from ..types import (
    DatabaseHealth,
    FileSystemHealth,
    StorageMetrics,
    StoreHealthStatus,
    StoreMetrics,
    now_utc,
)

__all__ = ["store_health", "store_metrics", "store_metrics_text"]


async def store_health(store: Store) -> StoreHealthStatus:
    """The store's health; never raises for a store that cannot be reached (it is unhealthy)."""
    check: Any = getattr(store, "health_check", None)
    if check is not None:
        try:
            result: StoreHealthStatus = await check()
            return result
        except Exception as exc:
            return _unhealthy(exc)
    started = time.perf_counter()
    try:
        await store.list()
    except Exception as exc:
        return _unhealthy(exc)
    latency = (time.perf_counter() - started) * 1000
    file_system = _probe_dir(getattr(store, "base_dir", None))
    return StoreHealthStatus(
        healthy=file_system.writable,
        database=DatabaseHealth(connected=True, latency_ms=latency),
        file_system=file_system,
        checked_at=now_utc(),
    )


def _unhealthy(exc: Exception) -> StoreHealthStatus:
    message = f"{type(exc).__name__}: {exc}"
    return StoreHealthStatus(
        healthy=False,
        database=DatabaseHealth(connected=False, error=message),
        file_system=FileSystemHealth(writable=False, error="not checked"),
        checked_at=now_utc(),
    )


def _probe_dir(directory: Any) -> FileSystemHealth:
    if directory is None:
        return FileSystemHealth(writable=True)
    try:
        with tempfile.NamedTemporaryFile(dir=os.fspath(directory), prefix=".health-"):
            pass
    except OSError as exc:
        return FileSystemHealth(writable=False, error=f"{exc.strerror or exc}")
    return FileSystemHealth(writable=True)


async def store_metrics(store: Store) -> StoreMetrics:
    """The store's :class:`StoreMetrics` (a plain Store reports its agent count)."""
    get: Any = getattr(store, "get_metrics", None)
    if get is not None:
        result: StoreMetrics = await get()
        return result
    storage = StorageMetrics(total_agents=len(await stored_agent_ids(store)))  # info or not
    metrics: Any = getattr(store, "metrics", None)
    if metrics is None:
        from ..types import OperationCounts, PerformanceMetrics

        return StoreMetrics(
            operations=OperationCounts(), performance=PerformanceMetrics(), storage=storage, collected_at=now_utc()
        )
    snapshot: StoreMetrics = metrics.snapshot(storage)
    return snapshot


async def store_metrics_text(store: Store) -> str:
    """The store's metrics in the Prometheus text exposition format."""
    result = await store_metrics(store)
    metrics: Any = getattr(store, "metrics", None)
    backend = str(getattr(store, "backend_name", "store"))
    if metrics is not None:
        text: str = metrics.prometheus(result.storage, backend=backend)
        return text
    from ..store.base import Metrics

    return Metrics().prometheus(result.storage, backend=backend)
