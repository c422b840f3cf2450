"""The conformance suite through the blocking API (kode_sdk.sync) on SQLite and JSON.

Every store call of the suite goes through a worker thread into the facade and
its own event-loop thread (see kode_sdk.testing.sync_adapter).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kode_sdk import sync
from kode_sdk.store.json_store import JSONStore
from kode_sdk.store.sqlite import SqliteStore
from kode_sdk.testing import ExtendedStoreConformance, QueryableStoreConformance
from kode_sdk.testing.sync_adapter import AsyncOverSync


class TestSqliteThroughSync(ExtendedStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Callable[[], AsyncOverSync]:
        return lambda: AsyncOverSync(sync.SyncExtendedStore(lambda: SqliteStore(tmp_path / "agents.db")))


class TestJSONThroughSync(QueryableStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Callable[[], AsyncOverSync]:
        return lambda: AsyncOverSync(sync.SyncQueryableStore(lambda: JSONStore(tmp_path / "store")))
