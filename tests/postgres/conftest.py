"""PostgreSQL for the PostgresStore tests — a real server, never a mock.

Where the server comes from, in order:

1. ``KODE_TEST_POSTGRES_URL`` (CI sets it to the local server);
2. a throwaway cluster started from the local PostgreSQL binaries
   (``initdb`` + ``pg_ctl`` from /usr/lib/postgresql/*/bin, run as the
   ``postgres`` user when the tests run as root), removed at the end;
3. otherwise every test here is skipped, with a notice in the summary;
   ``KODE_REQUIRE_POSTGRES=1`` turns that skip into a failure.

Each test works in its own schema ``kode_test_<random>``, dropped afterwards:
a run leaves nothing behind. Restart tests get a cluster of their own
(``restartable_cluster``): the machine's main server is never restarted.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from kode_sdk.store.postgres import PostgresStore
from kode_sdk.testing.pgbouncer import REQUIRE_ENV, PgBouncer

REQUIRE = os.environ.get("KODE_REQUIRE_POSTGRES") == "1"
_notices: list[str] = []


def _unavailable(reason: str) -> None:
    _notices.append(reason)
    if REQUIRE:
        pytest.fail(f"PostgreSQL is required (KODE_REQUIRE_POSTGRES=1) but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for reason in dict.fromkeys(_notices):
        shown = reason if reason.startswith("PgBouncer") else f"PostgreSQL tests skipped: {reason}"
        terminalreporter.write_line(f"NOTICE: {shown}", yellow=True, bold=True)


def _pg_bin(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    candidates += [f"/usr/local/bin/{name}", f"/usr/local/pgsql/bin/{name}"]
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary directory, on a free port."""

    def __init__(self, *, max_connections: int = 200) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        self.max_connections = max_connections
        if initdb is None or pg_ctl is None:
            raise RuntimeError("initdb/pg_ctl not found (looked in /usr/lib/postgresql/*/bin, /usr/local/bin, PATH)")
        self.pg_ctl = pg_ctl
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as 'postgres'
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root and 'runuser' is missing")
            self.as_user = [runuser, "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="kode-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        self.start()

    def _run(self, args: list[str]) -> None:
        done = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -h 127.0.0.1 -c fsync=off -c max_connections={self.max_connections}"
        log = str(self.dir / "server.log")
        self._run([self.pg_ctl, "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start"])

    def stop(self) -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"])

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class StandbyCluster(ThrowawayCluster):
    """A streaming replica of ``primary`` (``pg_basebackup -R``), hot standby,
    in a temporary directory on a free port."""

    def __init__(self, primary: ThrowawayCluster) -> None:
        basebackup = _pg_bin("pg_basebackup")
        if basebackup is None:
            raise RuntimeError("pg_basebackup not found")
        self.pg_ctl = primary.pg_ctl
        self.as_user = primary.as_user
        self.max_connections = primary.max_connections
        self.dir = Path(tempfile.mkdtemp(prefix="kode-pg-standby-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        source = ["-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]
        self._run([basebackup, *source, "-D", str(self.data), "-R", "-X", "stream", "--no-sync"])
        self.start()


def _start_cluster() -> ThrowawayCluster | str:
    try:
        return ThrowawayCluster()
    except (RuntimeError, OSError, subprocess.SubprocessError, LookupError) as exc:
        return str(exc)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A URL of a PostgreSQL server the tests may create schemas in."""
    url = os.environ.get("KODE_TEST_POSTGRES_URL")
    if url:
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.Error as exc:
            _unavailable(f"KODE_TEST_POSTGRES_URL does not answer ({type(exc).__name__})")
        yield url
        return
    cluster = _start_cluster()
    if isinstance(cluster, str):
        _unavailable(f"KODE_TEST_POSTGRES_URL is unset and no throwaway cluster could start: {cluster}")
        return
    try:
        yield cluster.url
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def restartable_cluster() -> Iterator[ThrowawayCluster]:
    """A cluster of this test run's own, which tests may stop and start."""
    cluster = _start_cluster()
    if isinstance(cluster, str):
        _unavailable(f"no throwaway cluster for restart tests: {cluster}")
        return
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def bouncer(pg_url: str) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the test server. Skipped with
    a notice when pgbouncer is not installed (a failure under
    ``KODE_REQUIRE_PGBOUNCER=1``, as CI runs)."""
    try:
        started = PgBouncer(pg_url)
    except (RuntimeError, OSError) as exc:
        reason = f"PgBouncer tests skipped: {exc}"
        _notices.append(reason)
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"PgBouncer is required ({REQUIRE_ENV}=1) but unavailable: {exc}")
        pytest.skip(reason)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def replica_pair() -> Iterator[tuple[ThrowawayCluster, StandbyCluster]]:
    """A primary cluster of this run's own and a streaming replica of it."""
    primary = _start_cluster()
    if isinstance(primary, str):
        _unavailable(f"no throwaway cluster for the replica tests: {primary}")
        return
    try:
        standby = StandbyCluster(primary)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        primary.destroy()
        _unavailable(f"no streaming replica for the replica tests: {exc}")
        return
    try:
        yield primary, standby
    finally:
        standby.destroy()
        primary.destroy()


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def new_schema_name() -> str:
    return f"kode_test_{secrets.token_hex(6)}"


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema name; the schema is dropped after the test."""
    name = new_schema_name()
    try:
        yield name
    finally:
        drop_schema(pg_url, name)


@pytest.fixture
async def store(pg_url: str, pg_schema: str) -> AsyncIterator[PostgresStore]:
    """An opened PostgresStore in the test's own schema."""
    pg_store = PostgresStore(pg_url, schema=pg_schema)
    await pg_store.open()
    try:
        yield pg_store
    finally:
        await pg_store.close()
