"""A store that cannot be reached: ``kode health --json`` says why, other
commands print one error line, and ``kode serve`` starts anyway, answering
503 until the database can be opened (issue 11, item 12)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn
from clidata import kode_process
from test_serve import free_port, get

from kode_sdk.server import create_app
from kode_sdk.store.factory import create_store

PG_URL = os.environ.get("KODE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def test_health_json_on_an_unreadable_store_prints_the_reason(tmp_path: Path) -> None:
    garbage = tmp_path / "agents.db"
    garbage.write_bytes(b"this is not a SQLite database " * 200)
    result = kode_process("--store", f"sqlite:{garbage}", "health", "--json")
    assert result.returncode == 1
    status = json.loads(result.stdout)
    assert status["healthy"] is False and status["database"]["connected"] is False
    assert "not a database" in status["database"]["error"]
    assert "Traceback" not in result.stderr
    plain = kode_process("--store", f"sqlite:{garbage}", "health")
    assert plain.returncode == 1 and "UNHEALTHY" in plain.stdout and "not a database" in plain.stdout


def test_unreachable_postgres_prints_one_error_line_naming_the_cause() -> None:
    port = free_port()  # nothing listens there
    result = kode_process("--store", f"postgresql://kode:pw-hidden@127.0.0.1:{port}/kode", "sessions")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kode: error:") and "unreachable" in lines[0] and "refused" in lines[0]
    assert "pw-hidden" not in result.stderr


def test_kode_serve_starts_with_the_database_down_and_answers_503() -> None:
    port, db_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "kode_sdk.cli", "-s", f"postgresql://postgres@127.0.0.1:{db_port}/x", "serve"),
            *("--port", str(port), "--log-level", "warning"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        health: tuple[int, str, object] | None = None
        while time.monotonic() < deadline and proc.poll() is None and health is None:
            try:
                health = get(f"http://127.0.0.1:{port}/health")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        assert health is not None, f"kode serve exited {proc.poll()}"
        status, _, body = health
        assert status == 503
        assert isinstance(body, dict) and body["healthy"] is False and "unreachable" in body["database"]["error"]
        status, _, ready = get(f"http://127.0.0.1:{port}/ready")
        assert status == 503 and isinstance(ready, dict) and ready["ready"] is False
        assert get(f"http://127.0.0.1:{port}/sessions")[0] == 503
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()


def test_kode_serve_on_a_missing_store_exits_2(tmp_path: Path) -> None:
    result = kode_process("-s", f"sqlite:{tmp_path / 'typo' / 'a.db'}", "serve", "--port", str(free_port()))
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert not (tmp_path / "typo").exists()


@contextmanager
def forwarder(listen_port: int, target: tuple[str, int]) -> Iterator[None]:
    """A TCP forwarder from 127.0.0.1:listen_port to ``target`` (the real server)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
        started.set()
        async with server:
            await server.serve_forever()

    task_holder: list[asyncio.Task[None]] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        task_holder.append(loop.create_task(main()))
        with suppress(asyncio.CancelledError):
            loop.run_until_complete(task_holder[0])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield
    finally:
        loop.call_soon_threadsafe(task_holder[0].cancel)
        thread.join(timeout=10)


@pytest.mark.postgres
def test_server_opens_the_store_once_the_database_becomes_reachable(pg_spec: str) -> None:
    url = urlsplit(PG_URL)
    db_port = free_port()
    store = create_store(
        {
            "type": "postgres",
            "schema": parse_qs(urlsplit(pg_spec).query)["schema"][0],
            "connection": {
                "host": "127.0.0.1",
                "port": db_port,
                "database": url.path.lstrip("/"),
                "user": url.username or "postgres",
                "connection_timeout_ms": 1000,
            },
        }
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        assert get(f"{base}/health")[0] == 503
        assert get(f"{base}/ready")[0] == 503
        with forwarder(db_port, (url.hostname or "127.0.0.1", url.port or 5432)):
            deadline = time.monotonic() + 30
            while get(f"{base}/ready")[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert get(f"{base}/ready")[0] == 200
            status, _, health = get(f"{base}/health")
            assert status == 200 and isinstance(health, dict) and health["healthy"] is True
            assert get(f"{base}/sessions")[0] == 200
            server.should_exit = True
            thread.join(timeout=30)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
