"""kode_sdk.sync on PostgreSQL: the conformance suite through the blocking API,
a child process that exits without closing, and a forked child (which must
never touch the parent's connections)."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from typing import cast

import pytest

from kode_sdk import sync
from kode_sdk.store.postgres import PostgresStore
from kode_sdk.testing import ExtendedStoreConformance, data
from kode_sdk.testing.sync_adapter import AsyncOverSync
from test_sync import forked_child, run_writer, stored

pytestmark = pytest.mark.postgres


class TestPostgresThroughSync(ExtendedStoreConformance):
    @pytest.fixture
    def store_factory(self, pg_url: str, pg_schema: str) -> Callable[[], AsyncOverSync]:
        return lambda: AsyncOverSync(sync.SyncExtendedStore(lambda: PostgresStore(pg_url, schema=pg_schema)))


def test_child_exiting_without_close_loses_nothing_acknowledged(pg_url: str, pg_schema: str) -> None:
    acknowledged = run_writer({"type": "postgres", "dsn": pg_url, "schema": pg_schema}, "agt-exit", 50)
    assert acknowledged == 50
    messages, seqs = asyncio.run(stored(lambda: PostgresStore(pg_url, schema=pg_schema), "agt-exit"))
    assert messages == acknowledged
    assert seqs == list(range(1, acknowledged + 1))


def test_forked_child_gets_its_own_connections(pg_url: str, pg_schema: str) -> None:
    store = sync.create_extended_store({"type": "postgres", "dsn": pg_url, "schema": pg_schema})
    try:
        store.append_event("agt-parent", data.timeline(1))  # the parent's pool is open and in use
        child = multiprocessing.get_context("fork").Process(target=forked_child, args=(store, "agt-child"))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert [e.bookmark.seq for e in store.read_events("agt-child")] == list(range(1, 21))
        assert len(store.load_messages("agt-child")) == 1
        # The parent's connections were not disturbed by the child.
        store.append_event("agt-parent", data.timeline(2))
        assert [e.bookmark.seq for e in store.read_events("agt-parent")] == [1, 2]
        assert store.health_check().healthy is True
    finally:
        store.close()


def test_live_tail_through_the_blocking_api(pg_url: str, pg_schema: str) -> None:
    """A backend method beyond the protocols (PostgresStore.tail_events) through
    sync.iterate: each event arrives while the tail is still waiting for the next,
    and closing the iterator frees the tail's connection."""
    config = {"type": "postgres", "dsn": pg_url, "schema": pg_schema}
    reader = sync.create_extended_store(config)
    writer = sync.create_extended_store(config)
    try:
        pg = cast(PostgresStore, reader.async_store)
        tail = sync.iterate(pg.tail_events, "agt-tail", poll_interval_s=5.0)
        for seq in range(1, 4):
            # Written by another store after the tail started waiting: NOTIFY wakes it.
            writer.append_event("agt-tail", data.timeline(seq))
            assert next(tail).bookmark.seq == seq
        tail.close()
        assert reader.health_check().healthy is True
    finally:
        writer.close()
        reader.close()
