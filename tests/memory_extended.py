"""The in-memory store of docs/writing-a-store.md grown into an ExtendedStore.

It exists so this project can run :class:`~kode_sdk.testing.ExtendedStoreConformance`
against something without a database, which keeps the extended part of the
suite itself honest (every test there must pass on a correct store).
"""

from __future__ import annotations

import asyncio
import copy
import time

from kode_sdk.errors import AgentNotFoundError, LockTimeoutError
from kode_sdk.store.base import AgentLock, fork_agent_ids, operation
from kode_sdk.types import (
    ConsistencyCheckResult,
    DatabaseHealth,
    FileSystemHealth,
    StorageMetrics,
    StoreHealthStatus,
    StoreMetrics,
    now_utc,
)
from memory_store import MemoryStorage, MemoryStore


class ExtendedMemoryStorage(MemoryStorage):
    """Memory storage plus one asyncio lock per agent."""

    def __init__(self) -> None:
        super().__init__()
        self.locks: dict[str, asyncio.Lock] = {}


class MemoryAgentLock(AgentLock):
    """A held in-memory agent lock."""

    def __init__(self, agent_id: str, store: ExtendedMemoryStore) -> None:
        super().__init__(agent_id)
        self._store = store

    async def _release(self) -> None:
        self._store._held.discard(self)
        self._store.storage.locks[self.agent_id].release()


class ExtendedMemoryStore(MemoryStore):
    """An :class:`~kode_sdk.store.base.ExtendedStore` in memory."""

    backend_name = "memory-extended"
    storage: ExtendedMemoryStorage

    def __init__(self, storage: ExtendedMemoryStorage | None = None) -> None:
        super().__init__(storage if storage is not None else ExtendedMemoryStorage())
        self._held: set[MemoryAgentLock] = set()

    async def _close(self) -> None:
        # Like a database connection dying: the locks of this store go with it.
        for lock in list(self._held):
            await lock.release()

    @operation("other", agent=False)
    async def health_check(self) -> StoreHealthStatus:
        """Always healthy: there is nothing to lose contact with."""
        started = time.perf_counter()
        _ = len(self.storage.agents)
        return StoreHealthStatus(
            healthy=True,
            database=DatabaseHealth(connected=True, latency_ms=(time.perf_counter() - started) * 1000),
            file_system=FileSystemHealth(writable=True),
            checked_at=now_utc(),
        )

    @operation("loads")
    async def check_consistency(self, agent_id: str) -> ConsistencyCheckResult:
        """Check the info's message count and that tool-call and snapshot ids are unique."""
        agent = self._read(agent_id)
        issues = []
        if agent_id in self.storage.agents and agent.info is None:
            issues.append(f"agent {agent_id!r} has stored records but no AgentInfo")
        if agent.info is not None and agent.info.message_count != len(agent.messages):
            issues.append(f"info.message_count is {agent.info.message_count}, but {len(agent.messages)} are stored")
        ids = [record.id for record in agent.tool_calls]
        if len(set(ids)) != len(ids):
            issues.append("tool-call ids are not unique")
        return ConsistencyCheckResult(consistent=not issues, issues=issues, checked_at=now_utc())

    @operation("other", agent=False)
    async def get_metrics(self) -> StoreMetrics:
        """Call counters, latencies and what the storage holds."""
        agents = self.storage.agents.values()
        return self.metrics.snapshot(
            StorageMetrics(
                total_agents=len(agents),  # every agent with a stored record, info or not
                total_messages=sum(len(agent.messages) for agent in agents),
                total_tool_calls=sum(len(agent.tool_calls) for agent in agents),
                db_size_bytes=None,
            )
        )

    @operation("other")
    async def acquire_agent_lock(self, agent_id: str, timeout_ms: int = 30_000) -> AgentLock:
        """Wait up to ``timeout_ms`` for the agent's lock."""
        lock = self.storage.locks.setdefault(agent_id, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), timeout_ms / 1000)
        except TimeoutError:
            raise LockTimeoutError(agent_id, timeout_ms) from None
        held = MemoryAgentLock(agent_id, self)
        self._held.add(held)
        return held

    @operation("saves")
    async def batch_fork(self, agent_id: str, count: int) -> list[str]:
        """Copy the agent ``count`` times under new ids, lineage extended."""
        source = self._read(agent_id)
        if source.info is None:
            raise AgentNotFoundError(agent_id)
        new_ids = fork_agent_ids(agent_id, count)
        for new_id in new_ids:
            fork = copy.deepcopy(source)
            assert fork.info is not None
            fork.info.agent_id = new_id
            fork.info.lineage = [*source.info.lineage, agent_id]
            fork.updated_at = now_utc()
            self.storage.agents[new_id] = fork
        return new_ids
