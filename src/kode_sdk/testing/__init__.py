"""The conformance suite: pytest base classes any Store implementation can run.

Importing this package requires **pytest** and **pytest-asyncio** (they are
development dependencies of kode-sdk, not runtime ones). Subclass the class
matching what your store offers and provide one fixture, ``store_factory``: a
zero-argument callable that returns a NEW, unopened store over the SAME
storage on every call. The suite opens and closes stores itself, and reopens
them to check that data persists::

    import pytest
    from kode_sdk.testing import QueryableStoreConformance

    from mypackage import MyStore

    class TestMyStore(QueryableStoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: MyStore(tmp_path / "data")

Classes (each includes everything of the one before):

* :class:`StoreConformance` — the Store protocol: round trips of every record
  kind, events, snapshots, info/exists/list/delete, JSON exactness, agent-id
  validation, lifecycle, persistence across reopen, concurrency.
* :class:`QueryableStoreConformance` — adds ``query_sessions``,
  ``query_messages``, ``query_tool_calls`` and ``aggregate_stats``.
* :class:`ExtendedStoreConformance` — adds health, consistency, metrics, agent
  locks and ``batch_fork``.

Tests are marked ``pytest.mark.asyncio`` and fixtures use
``pytest_asyncio.fixture``, so the suite runs with or without
``asyncio_mode = "auto"``. Every test uses agent ids under a fresh random
prefix, so ``store_factory`` may point at a shared database. Record builders
and strict comparisons used by the suite are in :mod:`kode_sdk.testing.data`.
"""

from __future__ import annotations

from .extended_suite import ExtendedStoreConformance
from .query_suite import QueryableStoreConformance
from .store_suite import StoreConformance

__all__ = ["ExtendedStoreConformance", "QueryableStoreConformance", "StoreConformance"]
