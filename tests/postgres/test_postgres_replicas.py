"""PostgresStore with a read replica: a real streaming replica (pg_basebackup
-R) of a primary cluster of this run's own. Queries, stats and list reach the
replica; a store always reads its own writes (it waits, bounded, for the
replica to replay its last commit, else reads the primary); a replica that
is down costs the caller nothing."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import psycopg
import pytest

from kode_sdk.errors import StoreConfigError
from kode_sdk.store.postgres import PostgresStore
from kode_sdk.store.postgres.config import parse_connection

from .conftest import StandbyCluster, ThrowawayCluster, drop_schema, new_schema_name

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_replicas_come_from_the_key_or_the_environment() -> None:
    primary = "postgresql://kode:pw-primary-1@db:5432/kode?sslmode=require"
    settings = parse_connection({"dsn": primary, "replicas": ["host=r1 port=5433"]}, environ={})
    (replica,) = settings.replicas
    # The replica inherits what it does not set: database, user, password, ssl, search_path.
    for part in ("host=r1", "port=5433", "dbname=kode", "user=kode", "sslmode=require", "search_path"):
        assert part in replica, part
    env = {"KODE_POSTGRES_REPLICAS": "postgresql://r1:5433/kode, postgresql://r2:5433/kode"}
    assert len(parse_connection(primary, environ=env).replicas) == 2  # explicit DSNs included
    assert parse_connection({"dsn": primary, "replicas": []}, environ=env).replicas == ()  # the key wins
    with pytest.raises(StoreConfigError, match="replicas"):
        parse_connection({"dsn": primary, "replicas": "host=r1"}, environ={})
    with pytest.raises(StoreConfigError, match=r"replicas\[0\]"):
        parse_connection({"dsn": primary, "replicas": ["host='unterminated"]}, environ={})
    assert "pw-primary-1" not in repr(settings)


def _replayed(standby: StandbyCluster, schema: str, agent: str) -> bool:
    with psycopg.connect(standby.url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'agents'", [schema]
        ).fetchone()
        if found is None:
            return False
        return conn.execute(f"SELECT 1 FROM {schema}.agents WHERE agent_id = %s", [agent]).fetchone() is not None


async def _wait_replayed(standby: StandbyCluster, schema: str, agent: str) -> None:
    deadline = time.monotonic() + 20
    while not await asyncio.to_thread(_replayed, standby, schema, agent):
        assert time.monotonic() < deadline, "the replica never replayed the write"
        await asyncio.sleep(0.05)


def _replay(standby: StandbyCluster, action: str) -> None:
    with psycopg.connect(standby.url, autocommit=True) as conn:
        conn.execute(f"SELECT pg_wal_replay_{action}()")


def info(agent: str) -> dict[str, str]:
    return {"agent_id": agent, "template_id": "t"}


async def test_reads_reach_the_replica_and_a_store_reads_its_own_writes(
    replica_pair: tuple[ThrowawayCluster, StandbyCluster],
) -> None:
    primary, standby = replica_pair
    schema = new_schema_name()
    store = PostgresStore({"dsn": primary.url, "replicas": [standby.url]}, schema=schema)
    writer = PostgresStore(primary.url, schema=schema)  # another worker, no replicas
    try:
        await writer.save_info("a1", info("a1"))
        await _wait_replayed(standby, schema, "a1")
        assert [s.agent_id for s in await store.query_sessions()] == ["a1"]
        assert store.replica_reads == {"replica": 1, "primary": 0}

        # Replay paused: another worker's write does not show, so reads come from the replica.
        await asyncio.to_thread(_replay, standby, "pause")
        await writer.save_info("a2", info("a2"))
        assert await store.list() == ["a1"]
        assert store.replica_reads == {"replica": 2, "primary": 0}

        # The store's own write shows at once: the replica is behind it, so the primary answers.
        await store.save_info("a3", info("a3"))
        await store.append_messages("a3", [{"role": "user", "content": "mine"}])
        assert await store.list() == ["a1", "a2", "a3"]
        assert (await store.aggregate_stats("a3")).total_messages == 1
        assert [m.agent_id for m in await store.query_messages(agent_id="a3")] == ["a3"]
        assert store.replica_reads["primary"] == 3

        # Replay resumed: the store waits for its last commit to be replayed, then reads the replica.
        await asyncio.to_thread(_replay, standby, "resume")
        await store.append_messages("a3", [{"role": "assistant", "content": "again"}])
        before = store.replica_reads["replica"]
        assert (await store.aggregate_stats("a3")).total_messages == 2
        assert len(await store.query_messages(agent_id="a3")) == 2
        assert store.replica_reads["replica"] == before + 2
        # Loads always read the primary.
        assert len(await store.load_messages("a3")) == 2
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(_replay, standby, "resume")
        await store.close()
        await writer.close()
        drop_schema(primary.url, schema)


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


async def test_a_replica_that_is_down_costs_the_caller_nothing(
    replica_pair: tuple[ThrowawayCluster, StandbyCluster],
) -> None:
    primary, _ = replica_pair
    schema = new_schema_name()
    dead = f"postgresql://postgres@127.0.0.1:{_dead_port()}/postgres"
    store = PostgresStore({"dsn": primary.url, "replicas": [dead], "connection_timeout_ms": 1000}, schema=schema)
    try:
        await store.save_info("a1", info("a1"))
        started = time.monotonic()
        for _ in range(5):
            assert await store.list() == ["a1"]
        assert store.replica_reads == {"replica": 0, "primary": 5}
        assert time.monotonic() - started < 3  # the dead replica is skipped after its first failure
    finally:
        await store.close()
        drop_schema(primary.url, schema)
