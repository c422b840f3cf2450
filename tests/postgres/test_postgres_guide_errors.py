"""docs/postgres-guide.md on a real server: its Python quick start and backup
commands run as written, and each troubleshooting symptom is produced for
real — "connection refused", "too many clients", "SSL was required" — with the
error the guide says the caller gets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from kode_sdk.errors import StoreConnectionError
from kode_sdk.store.postgres import PostgresStore

from .conftest import ThrowawayCluster, _unavailable

pytestmark = pytest.mark.postgres

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "postgres-guide.md"


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", guide(), flags=re.DOTALL | re.MULTILINE)


def section(title: str) -> str:
    text = guide()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_quick_start_example_runs(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    (example,) = [b for b in blocks("python") if "create_extended_store()" in b]
    script = tmp_path / "quick_start.py"
    script.write_text(example, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KODE_", "POSTGRES_"))}
    env.update({"KODE_STORE_TYPE": "postgres", "KODE_DATABASE_URL": pg_url, "KODE_POSTGRES_SCHEMA": pg_schema})
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "healthy=True" in done.stdout


def test_the_backup_commands_run_as_written(pg_url: str, pg_schema: str, tmp_path: Path) -> None:
    if shutil.which("pg_dump") is None and not list(Path("/usr/lib/postgresql").glob("*/bin/pg_dump")):
        pytest.skip("pg_dump is not installed")

    async def seed() -> None:
        async with PostgresStore(pg_url, schema=pg_schema) as store:
            await store.save_info("kept", {"agent_id": "kept", "template_id": "t"})
            await store.append_messages("kept", [{"role": "user", "content": "backed up"}])

    asyncio.run(seed())
    (commands,) = [b for b in blocks("sh") if "kode backup" in b]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KODE_", "POSTGRES_"))}
    env["KODE_STORE"] = f"postgres:{pg_url}?schema={pg_schema}"  # the guide's export, pointed at the test server
    ran = 0
    for line in commands.splitlines():
        if not line.startswith("kode "):
            assert line.startswith("export KODE_STORE=")
            continue
        done = subprocess.run(
            [sys.executable, "-m", "kode_sdk.cli", *line.split()[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{line}: {done.stderr}"
        ran += 1
    assert ran == 2 and (tmp_path / "kode.dump").stat().st_size > 0

    async def check() -> None:
        async with PostgresStore(pg_url, schema=pg_schema) as store:
            assert [m.content[0]["text"] for m in await store.load_messages("kept")] == ["backed up"]

    asyncio.run(check())


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_what_the_guide_says() -> None:
    text = section("Troubleshooting")
    assert '"connection refused"' in text and "is unreachable" in text
    store = PostgresStore(
        {"host": "127.0.0.1", "port": _dead_port(), "user": "postgres", "connection_timeout_ms": 1000}
    )
    with pytest.raises(StoreConnectionError) as caught:
        await store.open()
    message = str(caught.value)
    assert "is unreachable" in message and "Connection refused" in message, message


def test_pg_isready_as_the_guide_runs_it(pg_url: str) -> None:
    assert "pg_isready -h HOST -p PORT" in section("Troubleshooting")
    binary = shutil.which("pg_isready") or next(iter(Path("/usr/lib/postgresql").glob("*/bin/pg_isready")), None)
    if binary is None:
        pytest.skip("pg_isready is not installed")
    parts = psycopg.conninfo.conninfo_to_dict(pg_url)
    ok = subprocess.run([str(binary), "-h", str(parts["host"]), "-p", str(parts.get("port", 5432))], timeout=30)
    assert ok.returncode == 0
    down = subprocess.run([str(binary), "-h", "127.0.0.1", "-p", str(_dead_port())], capture_output=True, timeout=30)
    assert down.returncode != 0  # what "connection refused" looks like from the shell


@pytest.fixture(scope="module")
def small_cluster() -> ThrowawayCluster:
    """A cluster of our own allowing 4 connections (the shared server is never exhausted)."""
    try:
        cluster = ThrowawayCluster(max_connections=4)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        _unavailable(f"no throwaway cluster for the troubleshooting tests: {exc}")
        raise AssertionError("unreachable") from None
    yield cluster  # type: ignore[misc]
    cluster.destroy()


async def test_too_many_clients_is_what_the_guide_says(small_cluster: ThrowawayCluster) -> None:
    assert '"sorry, too many clients already"' in section("Troubleshooting")
    held: list[psycopg.AsyncConnection[object]] = []
    try:
        with pytest.raises(psycopg.OperationalError):
            for _ in range(10):
                held.append(await psycopg.AsyncConnection.connect(small_cluster.url, autocommit=True))
        store = PostgresStore({"dsn": small_cluster.url, "connection_timeout_ms": 1000})
        with pytest.raises(StoreConnectionError) as caught:
            await store.open()
        assert "too many clients" in str(caught.value)
    finally:
        for conn in held:
            with contextlib.suppress(Exception):
                await conn.close()
    # With the slots free again the same settings work.
    async with PostgresStore({"dsn": small_cluster.url, "max": 2}, schema="guide_check") as store:
        assert (await store.health_check()).healthy


async def test_ssl_required_against_a_server_without_ssl(small_cluster: ThrowawayCluster) -> None:
    assert "server does not support SSL, but SSL was required" in section("Troubleshooting")
    store = PostgresStore({"dsn": small_cluster.url, "ssl": "require", "connection_timeout_ms": 2000})
    with pytest.raises(StoreConnectionError) as caught:
        await store.open()
    assert "server does not support SSL, but SSL was required" in str(caught.value)
