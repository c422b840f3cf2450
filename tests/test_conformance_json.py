"""JSONStore passes the conformance suite (Store + QueryableStore by scanning)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kode_sdk.store.json_store import JSONStore
from kode_sdk.testing import QueryableStoreConformance


class TestJSONStoreConformance(QueryableStoreConformance):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Callable[[], JSONStore]:
        return lambda: JSONStore(tmp_path / "store")
