"""``kode serve`` access: loopback by default, a token everywhere else,
checked on every request, never logged."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.error

import pytest
from httpserve import fetch, free_port, serving
from webdata import STORY, fill_web

from kode_sdk.web import check_bind, is_loopback

PATHS = (
    "/",
    f"/session/{STORY}",
    "/search?q=test",
    "/sessions",
    "/tool-calls?is_error=true",
    "/api/search?q=test",
    "/health",
    "/metrics",
    "/static/style.css",
)


@pytest.fixture(scope="module")
def web_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    spec = f"sqlite:{tmp_path_factory.mktemp('auth') / 'agents.db'}"
    fill_web(spec, filler=3)
    return spec


def test_every_request_needs_the_token(web_spec: str) -> None:
    token = secrets.token_urlsafe(24)
    wrong = token[:-1] + ("y" if token.endswith("x") else "x")  # one character off, never the token itself
    with serving(web_spec, token=token) as base:
        for path in PATHS:
            for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": token}):
                answer = fetch(base + path, headers)
                assert answer.status == 401, (path, headers)
                assert token not in answer.text
            assert fetch(base + path, {"Authorization": f"Bearer {token}"}).status == 200, path
        page = fetch(base + "/", {"Accept": "text/html", "Cookie": f"kode_token={token}x"})
        assert page.status == 401 and "?token=" in page.text
        assert fetch(base + "/sessions").json()["error"].startswith("this server needs a token")


def test_visiting_with_the_token_once_sets_a_cookie(web_spec: str) -> None:
    token = secrets.token_urlsafe(24)
    with serving(web_spec, token=token) as base:
        assert fetch(base + "/?token=wrong").status == 401
        login = fetch(base + f"/?template=coder&token={token}")
        assert login.status == 303 and login.headers["location"] == "/?template=coder"
        cookie = login.headers["set-cookie"]
        assert cookie.startswith(f"kode_token={token};") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        for path in PATHS:
            assert fetch(base + path, {"Cookie": f"kode_token={token}"}).status == 200, path
        # The redirect never leaves this site, whatever the path looks like.
        odd = fetch(base + f"//elsewhere.example/x?token={token}")
        assert (
            odd.status == 303
            and odd.headers["location"].startswith("/")
            and not odd.headers["location"].startswith("//")
        )


def test_bind_rule() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.3.2.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.5")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "t0ken")
    with pytest.raises(ValueError, match="KODE_SERVE_TOKEN"):
        check_bind("0.0.0.0", None)
    with pytest.raises(ValueError, match="empty"):
        check_bind("127.0.0.1", "")


def test_kode_serve_refuses_an_open_bind_without_a_token(web_spec: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KODE_SERVE_TOKEN"}
    for host in ("0.0.0.0", "::"):
        result = subprocess.run(
            [sys.executable, "-m", "kode_sdk.cli", "-s", web_spec, "serve", "--host", host, "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 2, result.stderr
        assert "token" in result.stderr and "Traceback" not in result.stderr


def test_kode_serve_with_a_token_from_the_environment(web_spec: str) -> None:
    token = secrets.token_urlsafe(24)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kode_sdk.cli", "-s", web_spec, "serve", "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "KODE_SERVE_TOKEN": token},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = fetch(base + "/health").status
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        assert status == 401
        assert fetch(base + "/health", {"Authorization": f"Bearer {token}"}).status == 200
        assert fetch(base + f"/session/{STORY}?token={token}").status == 303
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    logged = (out + err).decode()
    assert "GET /health" in logged and "token=***" in logged, logged
    assert token not in logged
