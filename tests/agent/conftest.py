"""Fixtures of the agent tests: every test runs on each real backend.

``store_spec`` names the storage (a SQLite file or a JSON directory in
``tmp_path``, or a throwaway schema in the PostgreSQL of
``KODE_TEST_POSTGRES_URL``); ``make_store`` builds a new store over it;
``store`` is one, opened, closed after the test. A backend whose module is
not importable yet is skipped with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from agent_stores import BACKENDS, POSTGRES_URL, open_store, postgres_supports_schema, store_class

from kode_sdk.store.base import Store


def _skip_or_fail(reason: str, backend: str) -> None:
    if backend == "postgres" and os.environ.get("KODE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"KODE_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def _postgres_schema() -> tuple[str, Callable[[], None]]:
    import psycopg

    schema = f"kode_agent_test_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        _skip_or_fail(f"no PostgreSQL server at KODE_TEST_POSTGRES_URL ({type(exc).__name__})", "postgres")

    def drop() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    return schema, drop


@pytest.fixture(params=BACKENDS)
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    backend: str = request.param
    try:
        store_class(backend)
    except (ImportError, AttributeError) as exc:
        _skip_or_fail(f"{backend} store not available yet: {exc}", backend)
    if backend == "sqlite":
        yield {"backend": "sqlite", "path": str(tmp_path / "agents.db")}
    elif backend == "json":
        yield {"backend": "json", "path": str(tmp_path / "store")}
    else:
        if not postgres_supports_schema():
            _skip_or_fail("PostgresStore has no schema= parameter; tests need a throwaway schema", backend)
        schema, drop = _postgres_schema()
        try:
            yield {"backend": "postgres", "dsn": POSTGRES_URL, "schema": schema}
        finally:
            drop()


@pytest.fixture
def make_store(store_spec: dict[str, Any]) -> Callable[[], Store]:
    """A zero-argument factory of new, unopened stores over the test's storage."""
    return lambda: open_store(store_spec)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    opened = make_store()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
