"""Fixtures for the adapter tests: a kode store per backend (real SQLite files, the real PostgreSQL server)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The PostgreSQL server fixture lives once, beside the PostgresStore tests.
from postgres.conftest import drop_schema, pg_url  # noqa: F401


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The SQL backends every adapter is tested on."""
    return str(request.param)


@pytest.fixture
def store_config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A ``create_store`` config for ``backend``, in a fresh file or PostgreSQL schema."""
    if backend == "sqlite":
        yield {"type": "sqlite", "db_path": str(tmp_path / "kode.db")}
    elif backend == "json":
        yield {"type": "json", "base_dir": str(tmp_path / "kode-json")}
    else:
        url = request.getfixturevalue("pg_url")
        schema = f"kode_test_{secrets.token_hex(6)}"
        try:
            yield {"type": "postgres", "connection": url, "schema": schema}
        finally:
            drop_schema(url, schema)
