"""PostgresStore through a real PgBouncer in transaction mode: what the
conformance suite cannot show — server sessions left with hostile settings,
lease locks that expire after a dead holder and that a lapsed holder cannot
write under, the polling tail, and the one setting (key or environment) that
turns it all on, through the factory and the CLI too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kode_sdk.errors import LockLostError, LockTimeoutError, RecordValidationError, StoreConfigError
from kode_sdk.store.factory import create_store
from kode_sdk.store.postgres import PostgresStore
from kode_sdk.store.postgres.config import parse_connection
from kode_sdk.testing.pgbouncer import PgBouncer

pytestmark = pytest.mark.postgres

WORKER = str(Path(__file__).with_name("_worker.py"))


def pooled(bouncer: PgBouncer, schema: str, **extra: Any) -> PostgresStore:
    return PostgresStore({"dsn": bouncer.url, "pooler": "transaction", **extra}, schema=schema)


def spawn_holder(url: str, schema: str, agent: str, *, lease_ms: int) -> subprocess.Popen[str]:
    """A worker process that takes the agent's lock through the pooler
    (``KODE_POSTGRES_POOLER`` in its environment) and prints HELD."""
    env = {**os.environ, "KODE_POSTGRES_POOLER": "transaction"}
    return subprocess.Popen(
        [sys.executable, WORKER, "hold", url, schema, agent, str(lease_ms)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def timeline(seq: int) -> dict[str, Any]:
    return {
        "cursor": seq,
        "bookmark": {"seq": seq, "timestamp": 1_700_000_000_000 + seq},
        "event": {"channel": "progress", "type": "text_chunk", "delta": str(seq)},
    }


def test_the_setting_comes_from_the_key_or_the_environment() -> None:
    dsn = "postgresql://kode@db:6432/kode"
    direct = parse_connection(dsn, environ={})
    assert direct.pooler is None and "search_path" in direct.conninfo
    for settings in (
        parse_connection(dsn, environ={"KODE_POSTGRES_POOLER": "transaction"}),  # explicit DSNs included
        parse_connection({"dsn": dsn, "pooler": "transaction"}, environ={}),
        parse_connection({"host": "db"}, environ={"KODE_POSTGRES_POOLER": "Transaction"}),
    ):
        assert settings.transaction_pooled
        assert "options" not in settings.conninfo  # PgBouncer refuses it at connect
        assert ("search_path", "public") in settings.session_settings
    # The key wins over the environment.
    assert (
        parse_connection({"dsn": dsn, "pooler": "none"}, environ={"KODE_POSTGRES_POOLER": "transaction"}).pooler is None
    )
    with pytest.raises(StoreConfigError, match="KODE_POSTGRES_POOLER"):
        parse_connection(dsn, environ={"KODE_POSTGRES_POOLER": "statement"})
    with pytest.raises(StoreConfigError, match="pooler"):
        parse_connection({"dsn": dsn, "pooler": "yes"}, environ={})
    with pytest.raises(StoreConfigError, match="options"):
        parse_connection(dsn + "?options=-cjit%3Doff", environ={"KODE_POSTGRES_POOLER": "transaction"})
    with pytest.raises(StoreConfigError, match="lock_lease_ms"):
        parse_connection({"dsn": dsn, "lock_lease_ms": 5}, environ={})


async def test_factory_and_environment_reach_pgbouncer(
    bouncer: PgBouncer, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KODE_POSTGRES_POOLER", "transaction")
    store = create_store({"type": "postgres", "dsn": bouncer.url, "schema": pg_schema})
    async with store:
        await store.save_messages("agt", [{"role": "user", "content": "through the pooler"}])
        assert len(await store.load_messages("agt")) == 1


def test_cli_honours_the_environment(bouncer: PgBouncer, pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODE_POSTGRES_POOLER", "transaction")
    monkeypatch.setenv("KODE_POSTGRES_SCHEMA", pg_schema)

    async def seed() -> None:
        async with pooled(bouncer, pg_schema) as store:
            await store.save_info("cli-agt", {"agent_id": "cli-agt", "template_id": "t"})

    asyncio.run(seed())
    done = subprocess.run(
        [sys.executable, "-m", "kode_sdk.cli", "--store", f"postgres:{bouncer.url}", "sessions"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "cli-agt" in done.stdout
    # Without the setting the same command is refused by PgBouncer at connect.
    env = {k: v for k, v in os.environ.items() if k != "KODE_POSTGRES_POOLER"}
    refused = subprocess.run(
        [sys.executable, "-m", "kode_sdk.cli", "--store", f"postgres:{bouncer.url}", "sessions"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert refused.returncode != 0 and "options" in refused.stderr


async def test_server_sessions_left_with_hostile_settings_do_not_matter(bouncer: PgBouncer, pg_schema: str) -> None:
    """Every server session behind PgBouncer first gets an empty search_path and
    a statement prepared under a name psycopg would use (what pg_restore or
    another client may leave behind); the store works regardless."""
    async with pooled(bouncer, pg_schema) as store:
        await store.save_info("agt", {"agent_id": "agt", "template_id": "t"})
        clients = [await psycopg.AsyncConnection.connect(bouncer.url, autocommit=True) for _ in range(20)]
        try:
            for conn in clients:  # 20 open transactions hold all 20 server sessions at once
                await conn.execute("BEGIN")
                await conn.execute("SET SESSION search_path TO ''")
                await conn.execute("SET SESSION jit = on")
            for conn in clients:
                await conn.execute("COMMIT")
        finally:
            for conn in clients:
                await conn.close()
        for turn in range(12):  # past psycopg's prepare threshold of 5
            await store.append_messages("agt", [{"role": "user", "content": f"turn {turn}"}])
            assert len(await store.load_messages("agt")) == turn + 1
            assert await store.list() == ["agt"]
        assert (await store.health_check()).healthy
        # The duplicate-seq path reads the table after an aborted pipeline: still the store's settings.
        await store.append_event("agt", timeline(1))
        with pytest.raises(RecordValidationError, match="seq"):
            await store.append_event("agt", timeline(1))
        assert [t.bookmark.seq async for t in store.read_events("agt")] == [1]


async def test_lock_waits_and_passes_on_through_the_pooler(bouncer: PgBouncer, pg_schema: str) -> None:
    async with pooled(bouncer, pg_schema) as store, pooled(bouncer, pg_schema) as other:
        lock = await store.acquire_agent_lock("agt", timeout_ms=1000)
        with pytest.raises(LockTimeoutError):
            await store.acquire_agent_lock("agt", timeout_ms=100)  # pooled sessions are shared: no re-entry
        with pytest.raises(LockTimeoutError):
            await other.acquire_agent_lock("agt", timeout_ms=100)
        waiter = asyncio.create_task(other.acquire_agent_lock("agt", timeout_ms=5000))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        await lock.release()
        second = await asyncio.wait_for(waiter, 5)
        await second.release()


async def test_a_held_lease_is_renewed_past_its_length(bouncer: PgBouncer, pg_schema: str) -> None:
    async with pooled(bouncer, pg_schema, lock_lease_ms=600) as store, pooled(bouncer, pg_schema) as other:
        lock = await store.acquire_agent_lock("agt", timeout_ms=1000)
        await asyncio.sleep(1.5)  # 2.5 leases
        with pytest.raises(LockTimeoutError):
            await other.acquire_agent_lock("agt", timeout_ms=100)
        await store.save_info("agt", {"agent_id": "agt", "template_id": "t"})  # still ours: writes go through
        await lock.release()


async def test_a_killed_holder_frees_the_lock_within_one_lease(bouncer: PgBouncer, pg_schema: str) -> None:
    proc = spawn_holder(bouncer.url, pg_schema, "victim", lease_ms=1500)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert line.strip() == "HELD", proc.stderr.read() if proc.stderr else ""
        async with pooled(bouncer, pg_schema) as store:
            with pytest.raises(LockTimeoutError):
                await store.acquire_agent_lock("victim", timeout_ms=300)
            os.kill(proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            lock = await store.acquire_agent_lock("victim", timeout_ms=15_000)
            waited = time.monotonic() - killed
            await lock.release()
    finally:
        proc.kill()
        proc.wait()
    # The worker's lease is 1.5 s: the lock outlived its holder by at most that.
    assert waited <= 1.5 + 0.5, waited


async def test_a_holder_whose_lease_lapsed_finds_out_before_writing(bouncer: PgBouncer, pg_schema: str) -> None:
    async with pooled(bouncer, pg_schema, lock_lease_ms=500) as store, pooled(bouncer, pg_schema) as other:
        await store.save_info("agt", {"agent_id": "agt", "template_id": "t", "metadata": {"owner": "first"}})
        lock = await store.acquire_agent_lock("agt", timeout_ms=1000)
        # A frozen event loop (the point of this test): no renewal ran, the lease lapsed.
        time.sleep(0.7)  # noqa: ASYNC251
        with pytest.raises(LockLostError):
            await store.save_info("agt", {"agent_id": "agt", "template_id": "t", "metadata": {"owner": "stale"}})
        with pytest.raises(LockLostError):
            await store.append_messages("agt", [{"role": "user", "content": "stale"}])
        # Another worker takes the expired lease; the first holder stays locked out.
        taken = await other.acquire_agent_lock("agt", timeout_ms=2000)
        with pytest.raises(LockLostError):
            await store.save_messages("agt", [{"role": "user", "content": "stale"}])
        await other.save_info("agt", {"agent_id": "agt", "template_id": "t", "metadata": {"owner": "second"}})
        await lock.release()  # harmless: it removes nothing of the new holder's
        info = await other.load_info("agt")
        assert info is not None and info.metadata == {"owner": "second"}
        assert await other.load_messages("agt") == []
        with pytest.raises(LockTimeoutError):
            await store.acquire_agent_lock("agt", timeout_ms=100)  # still held by the second worker
        await taken.release()
        # Reads are never refused, and a released lock stops guarding writes.
        await store.save_info("agt", {"agent_id": "agt", "template_id": "t", "metadata": {"owner": "third"}})


async def test_a_holder_whose_lease_was_taken_over_finds_out(bouncer: PgBouncer, pg_url: str, pg_schema: str) -> None:
    async with pooled(bouncer, pg_schema, lock_lease_ms=600) as store:
        lock = await store.acquire_agent_lock("agt", timeout_ms=1000)
        with psycopg.connect(pg_url, autocommit=True) as conn:  # what a takeover after expiry leaves
            conn.execute(f"UPDATE {pg_schema}.agent_leases SET holder = 'someone-else' WHERE agent_id = 'agt'")
        await asyncio.sleep(0.5)  # the next renewal (every lease/3) finds the row is not ours
        with pytest.raises(LockLostError):
            await store.save_info("agt", {"agent_id": "agt", "template_id": "t"})
        await lock.release()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            rows = conn.execute(f"SELECT holder FROM {pg_schema}.agent_leases").fetchall()
        assert rows == [("someone-else",)]  # release removed nothing of the new holder's


async def test_tail_polls_through_the_pooler(bouncer: PgBouncer, pg_schema: str) -> None:
    async with pooled(bouncer, pg_schema) as store, pooled(bouncer, pg_schema) as writer:
        await writer.append_event("live", timeline(0))
        seen: list[int] = []

        async def consume() -> None:
            async with contextlib.aclosing(store.tail_events("live", poll_interval_s=0.05)) as events:
                async for item in events:
                    seen.append(item.bookmark.seq)
                    if len(seen) == 6:
                        return

        task = asyncio.create_task(consume())
        for seq in range(1, 6):
            await writer.append_event("live", timeline(seq))
            await writer.read_events("live").__anext__()  # flushed: visible to other stores
            await asyncio.sleep(0.02)
        await asyncio.wait_for(task, 10)
        assert seen == [0, 1, 2, 3, 4, 5]
