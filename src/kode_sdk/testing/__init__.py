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
  ``query_messages``, ``query_tool_calls``, ``aggregate_stats`` and
  ``search_messages``.
* :class:`ExtendedStoreConformance` — adds health, consistency, metrics, agent
  locks and ``batch_fork``.

Tests are marked ``pytest.mark.asyncio`` and fixtures use
``pytest_asyncio.fixture``, so the suite runs with or without
``asyncio_mode = "auto"``. Every test uses agent ids under a fresh random
prefix, so ``store_factory`` may point at a shared database. Record builders
and strict comparisons used by the suite are in :mod:`kode_sdk.testing.data`.
"""

from __future__ import annotations

try:
    import pytest
    import pytest_asyncio  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "kode_sdk.testing is the conformance suite and needs pytest and pytest-asyncio "
        "(pip install pytest pytest-asyncio, or kode-sdk[dev])"
    ) from exc

# The suite's asserts live in this package, not in the caller's test modules:
# ask pytest to rewrite them too, so a failure shows both sides.
pytest.register_assert_rewrite(
    "kode_sdk.testing.data",
    "kode_sdk.testing.store_suite",
    "kode_sdk.testing.query_suite",
    "kode_sdk.testing.search_suite",
    "kode_sdk.testing.extended_suite",
    "kode_sdk.testing.transaction_suite",
)

from .extended_suite import ExtendedStoreConformance  # noqa: E402
from .query_suite import QueryableStoreConformance  # noqa: E402
from .store_suite import StoreConformance  # noqa: E402

__all__ = ["ExtendedStoreConformance", "QueryableStoreConformance", "StoreConformance"]
