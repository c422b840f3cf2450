"""Serve a store over real HTTP on 127.0.0.1 (uvicorn in a thread) and ask it
things, for the tests of the pages, the token and the browser."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from typing import Any

import uvicorn

from kode_sdk.cli.app import parse_store_spec
from kode_sdk.server import create_app
from kode_sdk.store.factory import create_store


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(spec: str, *, token: str | None = None) -> Iterator[str]:
    """Serve the store ``spec`` names; yields the base URL."""
    port = free_port()
    app = create_app(create_store(parse_store_spec(spec)), token=token)
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


@dataclass
class Answer:
    """One HTTP answer."""

    status: int
    headers: Message
    text: str

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.text)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, headers: dict[str, str] | None = None) -> Answer:
    """``GET url`` without following redirects."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=30) as response:
            return Answer(response.status, response.headers, response.read().decode())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.headers, exc.read().decode())


class Page(HTMLParser):
    """What the tests look at in a page: links, element ids (with their
    classes) and the text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: dict[str, str] = {}
        self.tags: list[str] = []
        self._text: list[str] = []
        self.feed(html)
        self.text = " ".join(" ".join(self._text).split())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if found.get("id"):
            self.ids[str(found["id"])] = found.get("class") or ""

    def handle_data(self, data: str) -> None:
        self._text.append(data)
