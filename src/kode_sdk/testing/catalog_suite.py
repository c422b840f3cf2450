"""Conformance tests of the whole-store primitives
(:class:`~kode_sdk.store.catalog.StoreCatalog`), an optional capability: a
store that does not offer them skips these tests. Mixed into
:class:`~kode_sdk.testing.StoreConformance`, whose fixtures they use."""

from __future__ import annotations

from typing import Any

import pytest

from ..store.catalog import RecordTimes, StoreCatalog, stored_agent_ids
from ..types import to_epoch_ms
from . import data

__all__ = ["CatalogConformance"]

_TEXT = {"role": "user", "content": [{"type": "text", "text": "hi"}]}


def _catalog(store: Any) -> StoreCatalog:
    if not isinstance(store, StoreCatalog):
        pytest.skip(f"{type(store).__name__} does not offer the StoreCatalog primitives")
    return store


class CatalogConformance:
    """Every agent with any stored record is listed; record times round-trip."""

    @pytest.mark.asyncio
    async def test_list_stored_agents_includes_agents_without_info(self, store: Any, ns: str) -> None:
        catalog = _catalog(store)
        await store.save_messages(ns + "messages", [_TEXT])
        await store.append_event(ns + "events", data.timeline(1))
        await store.save_todos(ns + "todos", data.todos())
        await store.save_snapshot(ns + "snapshot", data.snapshot("s1"))
        await store.save_history_window(ns + "window", data.history_window("w1"))
        await store.save_info(ns + "info", data.info(ns + "info"))
        expected = sorted(ns + name for name in ("messages", "events", "todos", "snapshot", "window", "info"))
        listed = await catalog.list_stored_agents()
        assert listed == sorted(listed)
        assert [a for a in listed if a.startswith(ns)] == expected
        assert [a for a in await stored_agent_ids(store) if a.startswith(ns)] == expected
        assert await store.list(ns) == [ns + "info"], "list() still counts only agents with info"
        await store.delete(ns + "events")
        assert ns + "events" not in await catalog.list_stored_agents()

    @pytest.mark.asyncio
    async def test_record_times_round_trip(self, store: Any, ns: str) -> None:
        catalog = _catalog(store)
        agent = ns + "a"
        assert await catalog.load_record_times(agent) == RecordTimes([], None)
        await store.save_messages(agent, data.conversation())
        times = await catalog.load_record_times(agent)
        assert len(times.message_created_at) == 4 and times.updated_at is None, "no info: no session time"
        assert times.message_created_at == sorted(times.message_created_at)
        await store.save_info(agent, data.info(agent, message_count=4))
        assert isinstance((await catalog.load_record_times(agent)).updated_at, int)

        old = RecordTimes([data.BASE_MS + i for i in (0, 10, 10, 30)], data.BASE_MS + 99)
        await catalog.restore_record_times(agent, old)
        assert await catalog.load_record_times(agent) == old
        messages = await store.load_messages(agent)
        assert len(messages) == 4, "restoring times leaves the records alone"
        # Saving the same list again keeps each message's first-save time.
        await store.save_messages(agent, messages)
        assert (await catalog.load_record_times(agent)).message_created_at == old.message_created_at
        await store.append_messages(agent, [_TEXT])
        grown = (await catalog.load_record_times(agent)).message_created_at
        assert grown[:4] == old.message_created_at and grown[4] > old.message_created_at[-1]
        if hasattr(store, "query_messages"):
            stored = await store.query_messages(agent_id=agent, limit=10)
            assert sorted(to_epoch_ms(m.created_at) for m in stored) == grown

    @pytest.mark.asyncio
    async def test_record_times_survive_reopen(self, store: Any, open_store: Any, ns: str) -> None:
        _catalog(store)
        agent = ns + "a"
        await store.save_messages(agent, data.conversation()[:2])
        await store.save_info(agent, data.info(agent, message_count=2))
        times = RecordTimes([data.BASE_MS, data.BASE_MS + 5], data.BASE_MS + 7)
        await store.restore_record_times(agent, times)
        await store.close()
        again = await open_store()
        assert await again.load_record_times(agent) == times
