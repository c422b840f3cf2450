"""SqliteStore passes the whole conformance suite (Store, QueryableStore, ExtendedStore)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kode_sdk.store.sqlite import SqliteStore
from kode_sdk.testing import ExtendedStoreConformance


class TestSqliteStoreConformance(ExtendedStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Callable[[], SqliteStore]:
        return lambda: SqliteStore(tmp_path / "agents.db")
