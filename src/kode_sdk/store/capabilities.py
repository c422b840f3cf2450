"""Optional store capabilities, as runtime-checkable protocols.

Code that uses a capability a store may lack (its own ``prune``, a live event
tail, agent locks, health and metrics) asks ``isinstance(store, Capability)``
here instead of probing for a method by name, so the capability has one
written signature and a type checker sees the call.

>>> from kode_sdk.store.json_store import JSONStore
>>> isinstance(JSONStore("/tmp/never-opened"), Prunable), isinstance(JSONStore("/tmp/never-opened"), EventTailing)
(True, False)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from datetime import datetime
from os import PathLike
from typing import Any, Protocol, runtime_checkable

from ..types import StoreHealthStatus, StoreMetrics, Timeline

__all__ = ["AgentLocking", "EventTailing", "FileBacked", "HealthChecking", "MetricsReporting", "Prunable"]


@runtime_checkable
class Prunable(Protocol):
    """A store that deletes old agents in one call of its own (an index range,
    not a load of every agent's info)."""

    async def prune(
        self, *, created_before: datetime | int, template_id: str | None = None, dry_run: bool = False
    ) -> list[str]:
        """Delete (or list, with ``dry_run``) the agents created strictly before ``created_before``."""
        ...


@runtime_checkable
class EventTailing(Protocol):
    """A store whose events can be followed live as any worker appends them."""

    def tail_events(
        self, agent_id: str, since: Any = None, channel: str | None = None
    ) -> AsyncGenerator[Timeline, None]:
        """Yield the agent's events after ``since``, forever."""
        ...


@runtime_checkable
class AgentLocking(Protocol):
    """A store with per-agent locks."""

    async def acquire_agent_lock(self, agent_id: str, timeout_ms: int = 30_000) -> Any:
        """Take the agent's lock, waiting at most ``timeout_ms``."""
        ...

    def agent_lock(self, agent_id: str, timeout_ms: int = 30_000) -> contextlib.AbstractAsyncContextManager[Any]:
        """Hold the agent's lock for an ``async with`` block."""
        ...


@runtime_checkable
class HealthChecking(Protocol):
    """A store that checks its own health."""

    async def health_check(self) -> StoreHealthStatus:
        """The store's health."""
        ...


@runtime_checkable
class MetricsReporting(Protocol):
    """A store that reports its own metrics and totals."""

    async def get_metrics(self) -> StoreMetrics:
        """Counters, latency and storage totals."""
        ...


@runtime_checkable
class FileBacked(Protocol):
    """A store kept in a folder of files (its size and writability are the folder's)."""

    @property
    def base_dir(self) -> str | PathLike[str]:
        """The folder the store keeps its files in."""
        ...
