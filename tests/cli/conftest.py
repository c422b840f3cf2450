"""Fixtures for the ``kode`` command tests: real SQLite files, a real
PostgreSQL server (in a throwaway schema), and the CLI run in-process through
typer's CliRunner or as a subprocess of ``python -m kode_sdk.cli``."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from clidata import fill

PG_URL = os.environ.get("KODE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("KODE_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="module")
def sqlite_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file holding 30 varied agents (shared by a module's read-only tests)."""
    spec = f"sqlite:{tmp_path_factory.mktemp('kode') / 'agents.db'}"
    fill(spec, 30)
    return spec


def _postgres_problem() -> str | None:
    try:
        import kode_sdk.store.postgres  # noqa: F401
    except ImportError:
        return "PostgresStore is not in this tree (branch 'postgres' not merged)"
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            pass
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} is unreachable: {type(exc).__name__}"
    return None


@pytest.fixture
def pg_spec() -> Iterator[str]:
    """A ``--store`` spec for PostgreSQL in a fresh schema, dropped afterwards."""
    problem = _postgres_problem()
    if problem:
        if REQUIRE_PG:
            pytest.fail(problem + " (KODE_REQUIRE_POSTGRES=1)")
        pytest.skip(problem)
    import psycopg

    schema = f"kode_cli_{secrets.token_hex(4)}"
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}schema={schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
