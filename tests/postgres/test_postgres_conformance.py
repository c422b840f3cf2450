"""The conformance suite (kode_sdk.testing) against PostgresStore on a real server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kode_sdk.store.postgres import PostgresStore
from kode_sdk.testing import ExtendedStoreConformance
from kode_sdk.testing.pgbouncer import PgBouncer

pytestmark = pytest.mark.postgres


class TestPostgresConformance(ExtendedStoreConformance):
    @pytest.fixture
    def store_factory(self, pg_url: str, pg_schema: str) -> Callable[[], PostgresStore]:
        # Each test gets its own schema (dropped afterwards); every store the
        # suite makes for that test shares it.
        return lambda: PostgresStore(pg_url, schema=pg_schema)


class TestPgBouncerConformance(ExtendedStoreConformance):
    """The same contract through PgBouncer in transaction mode (``pooler``)."""

    @pytest.fixture
    def store_factory(self, bouncer: PgBouncer, pg_schema: str) -> Callable[[], PostgresStore]:
        return lambda: PostgresStore({"dsn": bouncer.url, "pooler": "transaction"}, schema=pg_schema)
