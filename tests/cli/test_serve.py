"""The ASGI app over real HTTP on 127.0.0.1: uvicorn in a thread, and
``kode serve`` as a process."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from clidata import fill

from kode_sdk.cli.app import parse_store_spec
from kode_sdk.server import create_app
from kode_sdk.store.factory import create_store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str, Any]:
    """(status, content type, body: parsed JSON or text) of ``GET url``."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            status, ctype, raw = response.status, response.headers["content-type"], response.read()
    except urllib.error.HTTPError as exc:
        status, ctype, raw = exc.code, exc.headers["content-type"], exc.read()
    body = json.loads(raw) if ctype.startswith("application/json") else raw.decode()
    return status, ctype, body


@contextmanager
def serving(spec: str) -> Iterator[str]:
    """Serve the store ``spec`` names with uvicorn in a thread; yields the base URL."""
    port = free_port()
    app = create_app(create_store(parse_store_spec(spec)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_health_metrics_and_queries_over_http(sqlite_spec: str) -> None:
    with serving(sqlite_spec) as base:
        status, _, health = get(f"{base}/health")
        assert status == 200 and health["healthy"] is True and health["database"]["connected"] is True
        assert get(f"{base}/ready")[:2] == (200, "application/json")
        status, ctype, sessions = get(f"{base}/sessions?limit=3&template=coder")
        assert status == 200 and [s["agentId"] for s in sessions] == ["agt-00028", "agt-00025", "agt-00022"]
        status, _, messages = get(f"{base}/messages?agent=agt-00004&role=user")
        assert status == 200 and messages and {m["role"] for m in messages} == {"user"}
        status, _, calls = get(f"{base}/tool-calls?errors=true&limit=1000")
        assert status == 200 and calls and all(c["isError"] for c in calls)
        status, _, stats = get(f"{base}/agents/agt-00007/stats")
        assert status == 200 and stats["totalMessages"] == 4 and stats["agentId"] == "agt-00007"
        status, _, events = get(f"{base}/agents/agt-00006/events?since=3")
        assert status == 200 and [e["bookmark"]["seq"] for e in events] == [4, 5, 6]
        status, ctype, metrics = get(f"{base}/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        assert 'kode_store_agents{backend="sqlite"} 30' in metrics
        assert 'kode_store_method_calls_total{backend="sqlite",method="query_sessions"} 1' in metrics
        for path, code in (
            ("/sessions?sort=name", 400),
            ("/sessions?after=yesterday-ish", 400),
            ("/sessions?colour=red", 400),
            ("/tool-calls?state=sleeping", 400),
            ("/agents/agt-missing/stats", 404),
            ("/agents/agt-00006/events?channel=loud", 400),
        ):
            status, _, body = get(base + path)
            assert status == code, (path, body)
            assert isinstance(body["error"], str) and body["error"]


def test_unhealthy_store_answers_503(tmp_path: Path) -> None:
    directory = tmp_path / "js"
    spec = f"json:{directory}"
    fill(spec, 2)
    with serving(spec) as base:
        assert get(f"{base}/health")[0] == 200
        shutil.rmtree(directory)
        status, _, body = get(f"{base}/health")
        assert status == 503 and body["healthy"] is False


@pytest.mark.postgres
def test_postgres_health_and_metrics_over_http(pg_spec: str) -> None:
    fill(pg_spec, 3)
    with serving(pg_spec) as base:
        status, _, health = get(f"{base}/health")
        assert status == 200 and health["healthy"] is True
        status, _, metrics = get(f"{base}/metrics")
        assert status == 200 and 'kode_store_agents{backend="postgres"} 3' in metrics


def test_kode_serve_process(sqlite_spec: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kode_sdk.cli",
            "-s",
            sqlite_spec,
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _, health = get(f"http://127.0.0.1:{port}/health")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        assert status == 200 and health["healthy"] is True
        status, _, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "# TYPE kode_store_operations_total counter" in metrics
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM (as recent versions do).
    assert proc.returncode in (0, -15)
    assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()


def test_kode_serve_bad_port_exits_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kode_sdk.cli", "serve", "--port", "99999"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
