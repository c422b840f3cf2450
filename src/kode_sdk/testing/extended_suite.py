"""The conformance tests of the :class:`~kode_sdk.store.protocols.ExtendedStore` protocol."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ..errors import (
    AgentNotFoundError,
    LockTimeoutError,
    RecordValidationError,
    StoreClosedError,
)
from ..store.agent_ids import validate_agent_id
from ..types import (
    AgentInfo,
    ConsistencyCheckResult,
    Message,
    Snapshot,
    StoreHealthStatus,
    StoreMetrics,
    TodoSnapshot,
    ToolCallRecord,
)
from . import data
from .data import assert_records_equal, assert_utc
from .policy_suite import ExtendedPolicyConformance
from .query_suite import QueryableStoreConformance
from .store_suite import assert_rejects_bad_agent_ids

__all__ = ["ExtendedStoreConformance"]

#: Lock waits in the suite: long enough to be told from "no wait at all",
#: short enough to keep the suite fast.
LOCK_TIMEOUT_MS = 200

EXTENDED_AGENT_CALLS: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
    "check_consistency": lambda s, a: s.check_consistency(a),
    "acquire_agent_lock": lambda s, a: s.acquire_agent_lock(a, timeout_ms=LOCK_TIMEOUT_MS),
    "batch_fork": lambda s, a: s.batch_fork(a, 1),
}


class ExtendedStoreConformance(ExtendedPolicyConformance, QueryableStoreConformance):
    """Everything in :class:`QueryableStoreConformance`, plus operations
    support: ``health_check``, ``check_consistency``, ``get_metrics``, agent
    locks and ``batch_fork``.

    Lock tests wait about 200 ms each; they check that a wait happened
    (elapsed time at least 0.9 × the timeout), never how fast anything is.
    """

    @pytest.mark.asyncio
    @pytest.mark.parametrize("method", list(EXTENDED_AGENT_CALLS))
    async def test_extended_methods_reject_invalid_agent_ids(self, store: Any, method: str) -> None:
        await assert_rejects_bad_agent_ids(EXTENDED_AGENT_CALLS[method], store)

    @pytest.mark.asyncio
    @pytest.mark.parametrize("method", [*EXTENDED_AGENT_CALLS, "health_check", "get_metrics"])
    async def test_closed_store_raises_on_extended_methods(self, store: Any, ns: str, method: str) -> None:
        await store.save_info(ns + "a", data.info(ns + "a"))
        await store.close()
        with pytest.raises(StoreClosedError):
            if method in EXTENDED_AGENT_CALLS:
                await EXTENDED_AGENT_CALLS[method](store, ns + "a")
            else:
                await getattr(store, method)()

    # ------------------------------------------------------------------ health, consistency

    @pytest.mark.asyncio
    async def test_health_check(self, store: Any) -> None:
        health = await store.health_check()
        assert isinstance(health, StoreHealthStatus)
        assert health.healthy is True
        assert health.database.connected is True
        assert health.database.latency_ms is None or health.database.latency_ms >= 0
        assert isinstance(health.file_system.writable, bool)
        assert_utc(health.checked_at, "checked_at")

    @pytest.mark.asyncio
    async def test_health_stays_true_and_truthful_after_a_refused_event(self, store: Any, ns: str) -> None:
        # A refused event (seq beyond 64 bits) never reaches the database, so
        # it cannot leave the store broken while health_check says healthy.
        with pytest.raises(RecordValidationError):
            await store.append_event(ns + "a", data.timeline(2**70))
        assert (await store.health_check()).healthy is True
        await store.append_event(ns + "a", data.timeline(1))
        assert [e.bookmark.seq async for e in store.read_events(ns + "a")] == [1]
        assert (await store.health_check()).healthy is True

    @pytest.mark.asyncio
    async def test_check_consistency_on_good_data(self, store: Any, ns: str) -> None:
        # Coherent data: the tool_use in the conversation has its record, the
        # info's bookmark and counts match what is stored.
        agent = ns + "a"
        await store.save_info(agent, data.info(agent, message_count=4))
        await store.save_messages(agent, data.conversation())
        await store.save_tool_call_records(agent, [data.tool_call("toolu_1", name="fs_glob")])
        await store.save_snapshot(agent, data.snapshot("s1"))
        for seq in (1, 2, 3):
            await store.append_event(agent, data.timeline(seq))
        result = await store.check_consistency(agent)
        assert isinstance(result, ConsistencyCheckResult)
        assert result.issues == []
        assert result.consistent is True
        assert_utc(result.checked_at, "checked_at")

    @pytest.mark.asyncio
    async def test_check_consistency_reports_agent_without_info(self, store: Any, ns: str) -> None:
        # Records without AgentInfo: list() and query_sessions do not show the
        # agent, so the check says so (naming AgentInfo).
        agent = ns + "a"
        await store.save_messages(agent, data.conversation())
        await store.append_event(agent, data.timeline(1))
        result = await store.check_consistency(agent)
        assert result.consistent is False
        assert any("AgentInfo" in issue for issue in result.issues), result.issues
        await store.save_info(agent, data.info(agent, message_count=4))
        assert not any("AgentInfo" in issue for issue in (await store.check_consistency(agent)).issues)
        await store.append_event(ns + "events-only", data.timeline(1))
        only = await store.check_consistency(ns + "events-only")
        assert any("AgentInfo" in issue for issue in only.issues), only.issues

    # ------------------------------------------------------------------ metrics

    @pytest.mark.asyncio
    async def test_metrics_count_agents_without_info(self, store: Any, ns: str) -> None:
        before = (await store.get_metrics()).storage.total_agents
        await store.save_messages(ns + "a", data.conversation())
        await store.append_event(ns + "b", data.timeline(1))
        await store.save_info(ns + "c", data.info(ns + "c"))
        assert (await store.get_metrics()).storage.total_agents == before + 3

    @pytest.mark.asyncio
    async def test_metrics_count_calls(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        before = await store.get_metrics()
        assert isinstance(before, StoreMetrics)
        await store.save_info(agent, data.info(agent))
        await store.save_messages(agent, data.conversation())
        after_saves = await store.get_metrics()
        assert after_saves.operations.saves >= before.operations.saves + 2
        await store.load_messages(agent)
        await store.load_info(agent)
        after_loads = await store.get_metrics()
        assert after_loads.operations.loads >= after_saves.operations.loads + 2
        await store.query_messages(agent_id=agent)
        await store.query_sessions(agent_id=agent)
        after_queries = await store.get_metrics()
        assert after_queries.operations.queries >= after_loads.operations.queries + 2
        await store.delete(agent)
        after_delete = await store.get_metrics()
        assert after_delete.operations.deletes >= after_queries.operations.deletes + 1
        perf = after_delete.performance
        assert 0 <= perf.min_latency_ms <= perf.p50_latency_ms <= perf.p95_latency_ms
        assert perf.p95_latency_ms <= perf.p99_latency_ms <= perf.max_latency_ms
        assert perf.min_latency_ms <= perf.avg_latency_ms <= perf.max_latency_ms
        assert perf.max_latency_ms > 0
        assert_utc(after_delete.collected_at, "collected_at")

    @pytest.mark.asyncio
    async def test_metrics_storage_totals(self, store: Any, ns: str) -> None:
        before = (await store.get_metrics()).storage
        for index, agent in enumerate((ns + "a", ns + "b")):
            await store.save_info(agent, data.info(agent))
            await store.save_messages(agent, data.conversation()[: 3 - index])
            await store.save_tool_call_records(agent, [data.tool_call(f"c{i}") for i in range(index + 1)])
        after = (await store.get_metrics()).storage
        assert after.total_agents == before.total_agents + 2
        assert after.total_messages == before.total_messages + 5
        assert after.total_tool_calls == before.total_tool_calls + 3
        assert after.db_size_bytes is None or after.db_size_bytes > 0
        await store.delete(ns + "a")
        final = (await store.get_metrics()).storage
        assert final.total_agents == before.total_agents + 1
        assert final.total_messages == before.total_messages + 2
        assert final.total_tool_calls == before.total_tool_calls + 2

    # ------------------------------------------------------------------ locks

    async def _assert_times_out(self, store: Any, agent: str) -> None:
        started = time.monotonic()
        with pytest.raises(LockTimeoutError):
            await store.acquire_agent_lock(agent, timeout_ms=LOCK_TIMEOUT_MS)
        elapsed_ms = (time.monotonic() - started) * 1000
        assert elapsed_ms >= 0.9 * LOCK_TIMEOUT_MS, f"gave up after {elapsed_ms:.0f} ms: a held lock must be waited for"

    async def _assert_exclusive(self, holder: Any, waiter: Any, agent: str) -> Any:
        """While ``holder`` holds the agent's lock, ``waiter`` times out; once
        it is released ``waiter`` gets it (returned, held)."""
        lock = await holder.acquire_agent_lock(agent, timeout_ms=LOCK_TIMEOUT_MS)
        try:
            await self._assert_times_out(waiter, agent)
        finally:
            await lock.release()
        return await waiter.acquire_agent_lock(agent, timeout_ms=LOCK_TIMEOUT_MS)

    @pytest.mark.asyncio
    async def test_second_acquire_waits_then_times_out(self, store: Any, ns: str) -> None:
        again = await self._assert_exclusive(store, store, ns + "a")
        await again.release()
        await again.release()  # releasing twice is harmless

    @pytest.mark.asyncio
    async def test_waiting_acquire_gets_the_lock_when_released(self, store: Any, ns: str) -> None:
        lock = await store.acquire_agent_lock(ns + "a", timeout_ms=LOCK_TIMEOUT_MS)
        waiter = asyncio.create_task(store.acquire_agent_lock(ns + "a", timeout_ms=10_000))
        await asyncio.sleep(0.05)
        assert not waiter.done(), "the second acquire must wait while the lock is held"
        await lock.release()
        second = await asyncio.wait_for(waiter, timeout=5)
        try:
            await self._assert_times_out(store, ns + "a")
        finally:
            await second.release()

    @pytest.mark.asyncio
    async def test_lock_is_callable_to_release(self, store: Any, ns: str) -> None:
        lock = await store.acquire_agent_lock(ns + "a", timeout_ms=LOCK_TIMEOUT_MS)
        await lock()
        again = await store.acquire_agent_lock(ns + "a", timeout_ms=LOCK_TIMEOUT_MS)
        await again()

    @pytest.mark.asyncio
    async def test_agent_lock_context_manager(self, store: Any, ns: str) -> None:
        async with store.agent_lock(ns + "a", timeout_ms=LOCK_TIMEOUT_MS):
            await self._assert_times_out(store, ns + "a")
        async with store.agent_lock(ns + "a", timeout_ms=LOCK_TIMEOUT_MS):
            pass
        with pytest.raises(RuntimeError, match="inside"):
            async with store.agent_lock(ns + "a", timeout_ms=LOCK_TIMEOUT_MS):
                raise RuntimeError("inside")
        lock = await store.acquire_agent_lock(ns + "a", timeout_ms=LOCK_TIMEOUT_MS)
        await lock.release()

    @pytest.mark.asyncio
    async def test_locks_of_different_agents_are_independent(self, store: Any, ns: str) -> None:
        lock_a = await store.acquire_agent_lock(ns + "a", timeout_ms=LOCK_TIMEOUT_MS)
        try:
            lock_b = await store.acquire_agent_lock(ns + "b", timeout_ms=LOCK_TIMEOUT_MS)
            await lock_b.release()
        finally:
            await lock_a.release()

    @pytest.mark.asyncio
    async def test_lock_held_across_store_instances(self, store: Any, open_store: Any, ns: str) -> None:
        other = await open_store()
        lock = await self._assert_exclusive(store, other, ns + "a")
        await lock.release()

    @pytest.mark.asyncio
    async def test_closing_the_store_frees_its_locks(self, store: Any, open_store: Any, ns: str) -> None:
        other = await open_store()
        await store.acquire_agent_lock(ns + "a", timeout_ms=LOCK_TIMEOUT_MS)
        await store.close()
        lock = await other.acquire_agent_lock(ns + "a", timeout_ms=2000)
        await lock.release()

    # ------------------------------------------------------------------ fork

    @pytest.mark.asyncio
    async def test_batch_fork_copies_the_agent(self, store: Any, ns: str) -> None:
        source = ns + "src"
        source_info = data.info(source, lineage=["root"], metadata={"userId": "u1"})
        calls = [data.tool_call("c1"), data.tool_call("c2", state="approval_required", approval_required=True)]
        snapshots = [data.snapshot("s1"), data.snapshot("s2", created_ms=100)]
        await store.save_info(source, source_info)
        await store.save_messages(source, data.conversation())
        await store.save_tool_call_records(source, calls)
        await store.save_todos(source, data.todos(3))
        for snap in snapshots:
            await store.save_snapshot(source, snap)

        forks = await store.batch_fork(source, 3)
        assert isinstance(forks, list)
        assert len(forks) == 3
        assert len(set(forks)) == 3
        assert source not in forks
        for fork in forks:
            assert validate_agent_id(fork) == fork
            assert await store.exists(fork) is True
            info = await store.load_info(fork)
            assert isinstance(info, AgentInfo)
            assert info.agent_id == fork
            assert info.template_id == "assistant"
            assert info.lineage == ["root", source]
            assert info.metadata == {"userId": "u1"}
            assert_records_equal(await store.load_messages(fork), data.conversation(), Message)
            assert info.message_count == 4
            assert_records_equal(await store.load_tool_call_records(fork), calls, ToolCallRecord)
            assert_records_equal(await store.load_todos(fork), data.todos(3), TodoSnapshot)
            assert_records_equal(await store.list_snapshots(fork), snapshots[::-1], Snapshot)
        # The source is untouched, and the copies are independent of it.
        assert_records_equal(await store.load_info(source), {**source_info, "messageCount": 4}, AgentInfo)
        await store.save_messages(forks[0], data.conversation()[:1])
        assert_records_equal(await store.load_messages(source), data.conversation(), Message)
        assert_records_equal(await store.load_messages(forks[1]), data.conversation(), Message)
        await store.delete(source)
        assert_records_equal(await store.load_messages(forks[2]), data.conversation(), Message)

    @pytest.mark.asyncio
    async def test_batch_fork_of_unknown_agent_raises(self, store: Any, ns: str) -> None:
        before = await store.list(ns)
        with pytest.raises(AgentNotFoundError):
            await store.batch_fork(ns + "nobody", 2)
        assert await store.list(ns) == before == []
        await store.save_messages(ns + "no-info", data.conversation())
        with pytest.raises(AgentNotFoundError):
            await store.batch_fork(ns + "no-info", 1)
