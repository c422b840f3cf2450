"""The conformance suite run against the in-memory reference store of docs/writing-a-store.md."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kode_sdk.testing import ExtendedStoreConformance, QueryableStoreConformance
from memory_extended import ExtendedMemoryStorage, ExtendedMemoryStore
from memory_store import MemoryStorage, MemoryStore


class TestMemoryStoreConformance(QueryableStoreConformance):
    @pytest.fixture
    def store_factory(self) -> Callable[[], MemoryStore]:
        storage = MemoryStorage()
        return lambda: MemoryStore(storage)


class TestExtendedMemoryStoreConformance(ExtendedStoreConformance):
    @pytest.fixture
    def store_factory(self) -> Callable[[], ExtendedMemoryStore]:
        storage = ExtendedMemoryStorage()
        return lambda: ExtendedMemoryStore(storage)
