"""Fixtures of the reliability suite (kills, contention, faults, hostile input, secrets).

Every test here is marked ``reliability``. ``make test`` runs the short sizes;
``KODE_TORTURE=1`` (``make torture``) the long ones. PostgreSQL comes from
``KODE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
when it does not answer the PostgreSQL cases skip with a notice, or fail under
``KODE_REQUIRE_POSTGRES=1``. Each PostgreSQL case works in a throwaway schema.
Restart tests start a throwaway cluster of their own (never the main server):
``restartable_cluster``, from tests/postgres/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from kode_sdk.testing.pgbouncer import REQUIRE_ENV, PgBouncer
from postgres.conftest import drop_schema, new_schema_name
from postgres.conftest import restartable_cluster as restartable_cluster  # one home; a fixture here too

from ._common import TORTURE

HERE = Path(__file__).parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
REQUIRE = os.environ.get("KODE_REQUIRE_POSTGRES") == "1"
BACKENDS = ("sqlite", "json", "postgres")
notices: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reliability: the reliability suite (long sizes under KODE_TORTURE=1)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    mode = "torture (long)" if TORTURE else "short (KODE_TORTURE=1 for the long run)"
    if any(HERE in Path(str(r.fspath)).parents for r in terminalreporter.stats.get("passed", [])):
        terminalreporter.write_line(f"reliability suite: {mode} sizes")
    for notice in dict.fromkeys(notices):
        terminalreporter.write_line(f"NOTICE: {notice}", yellow=True, bold=True)


def unavailable(reason: str) -> None:
    """Skip (with a notice in the summary), or fail under KODE_REQUIRE_POSTGRES=1."""
    notices.append(f"reliability PostgreSQL cases skipped: {reason}")
    if REQUIRE:
        pytest.fail(f"PostgreSQL is required (KODE_REQUIRE_POSTGRES=1) but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


_reachable: dict[str, str | None] = {}


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("KODE_TEST_POSTGRES_URL") or DEFAULT_URL
    if url not in _reachable:
        try:
            psycopg.connect(url, connect_timeout=5).close()
            _reachable[url] = None
        except psycopg.Error as exc:
            _reachable[url] = f"{type(exc).__name__} connecting to KODE_TEST_POSTGRES_URL"
    problem = _reachable[url]
    if problem is not None:
        unavailable(problem)
    return url


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    name = new_schema_name()
    try:
        yield name
    finally:
        drop_schema(pg_url, name)


@pytest.fixture(scope="session")
def bouncer(pg_url: str) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the test server (skipped with a
    notice when not installed; a failure under ``KODE_REQUIRE_PGBOUNCER=1``)."""
    try:
        started = PgBouncer(pg_url)
    except (RuntimeError, OSError) as exc:
        notices.append(f"reliability PgBouncer cases skipped: {exc}")
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"PgBouncer is required ({REQUIRE_ENV}=1) but unavailable: {exc}")
        pytest.skip(f"PgBouncer unavailable: {exc}")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(params=BACKENDS)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store spec (``sqlite:PATH``, ``json:DIR``, ``postgres:URL#SCHEMA``,
    ``pgbouncer:URL#SCHEMA``) over fresh storage."""
    backend = request.param
    if backend == "sqlite":
        return f"sqlite:{tmp_path / 'agents.db'}"
    if backend == "json":
        return f"json:{tmp_path / 'store'}"
    if backend == "pgbouncer":
        return f"pgbouncer:{request.getfixturevalue('bouncer').url}#{request.getfixturevalue('pg_schema')}"
    url = request.getfixturevalue("pg_url")
    return f"postgres:{url}#{request.getfixturevalue('pg_schema')}"


def child(script: str, *args: str) -> subprocess.Popen[str]:
    """Start ``tests/reliability/<script>`` in a new Python process, stdout piped."""
    return subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


StoreFactory = Callable[[], object]
