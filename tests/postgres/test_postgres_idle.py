"""Idle connections that the server closes (a managed server's idle timeout
during a long model call, an administrator's pg_terminate_backend): the next
call gets a fresh connection, and nothing reaches the caller — directly, and
through PgBouncer in transaction mode."""

from __future__ import annotations

import asyncio
import secrets

import psycopg
import pytest

from kode_sdk.store.postgres import PostgresStore
from kode_sdk.testing.pgbouncer import PgBouncer

pytestmark = pytest.mark.postgres


def terminate(url: str, application_name: str) -> int:
    """End every server session of ``application_name``; how many there were."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        ).fetchall()
    return len(rows)


async def exercise(store: PostgresStore, agent: str, turn: int) -> None:
    """A turn's worth of calls: every one must succeed."""
    await store.append_messages(agent, [{"role": "user", "content": f"turn {turn}"}])
    assert len(await store.load_messages(agent)) == turn + 1
    assert agent in await store.list()
    assert (await store.aggregate_stats(agent)).total_messages == turn + 1


async def test_sessions_terminated_during_a_pause(pg_url: str, pg_schema: str) -> None:
    name = f"kode-idle-{secrets.token_hex(4)}"
    store = PostgresStore({"dsn": pg_url, "application_name": name, "min": 2, "max": 4}, schema=pg_schema)
    async with store:
        await store.save_info("agt", {"agent_id": "agt", "template_id": "t"})
        # Several pooled connections in use at once, so several sit idle afterwards.
        await asyncio.gather(*(store.load_info("agt") for _ in range(4)))
        await exercise(store, "agt", 0)
        for turn in range(1, 4):
            assert await asyncio.to_thread(terminate, pg_url, name) >= 1  # "during the model call"
            await asyncio.sleep(0.2)
            await exercise(store, "agt", turn)
        lock = await store.acquire_agent_lock("agt", timeout_ms=1000)
        await lock.release()
        assert (await store.health_check()).healthy
        assert store.metrics.errors == 0


async def test_server_idle_session_timeout(pg_url: str, pg_schema: str) -> None:
    # The server itself closes sessions idle for 300 ms (a managed server's idle timeout, shortened).
    store = PostgresStore(f"{pg_url}?options=-c%20idle_session_timeout%3D300", schema=pg_schema)
    async with store:
        await store.save_info("agt", {"agent_id": "agt", "template_id": "t"})
        await exercise(store, "agt", 0)
        for turn in range(1, 3):
            await asyncio.sleep(0.8)
            await exercise(store, "agt", turn)
        assert store.metrics.errors == 0


async def test_server_sessions_terminated_behind_pgbouncer(bouncer: PgBouncer, pg_url: str, pg_schema: str) -> None:
    name = f"kode-idle-{secrets.token_hex(4)}"
    store = PostgresStore({"dsn": bouncer.url, "pooler": "transaction", "application_name": name}, schema=pg_schema)
    async with store:
        await store.save_info("agt", {"agent_id": "agt", "template_id": "t"})
        await exercise(store, "agt", 0)
        for turn in range(1, 3):
            # PgBouncer's server sessions carry the client's application_name.
            await asyncio.to_thread(terminate, pg_url, name)
            await asyncio.sleep(0.2)
            await exercise(store, "agt", turn)
        assert store.metrics.errors == 0
