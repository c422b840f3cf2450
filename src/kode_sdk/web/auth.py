"""Token access for ``kode serve``: who may read the store over HTTP.

Bound to a loopback address the server may run without a token; bound to any
other address it must have one (:func:`check_bind`). With a token every
request — pages, JSON, ``/health`` alike — must carry it, as
``Authorization: Bearer <token>`` or as the cookie a browser receives by
visiting any page once with ``?token=<token>`` (the answer redirects to the
same page without the token, so it does not stay in the address bar or the
history). Comparisons take constant time, and :class:`RedactTokenFilter`
keeps the token out of uvicorn's access log.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
from urllib.parse import urlencode

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["COOKIE", "TOKEN_ENV", "RedactTokenFilter", "TokenGate", "check_bind", "is_loopback"]

#: The environment variable ``kode serve`` reads the token from.
TOKEN_ENV = "KODE_SERVE_TOKEN"
#: The cookie that carries the token for a browser.
COOKIE = "kode_token"

_QUERY_TOKEN = re.compile(r"(?<=[?&]token=)[^&\s\"]*")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """``ValueError`` when serving on ``host`` would need a token and none is set
    (an empty token counts as none)."""
    if token is not None and not token:
        raise ValueError("the token must not be empty")
    if token is None and not is_loopback(host):
        raise ValueError(
            f"binding {host} opens the store to other machines: give a token "
            "(--token, or the KODE_SERVE_TOKEN environment variable), or bind 127.0.0.1"
        )


def _same(given: str, token: bytes) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token)


class TokenGate:
    """ASGI middleware letting through only requests that carry ``token``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("the token must not be empty")
        self.app = app
        self._token = token.encode("utf-8", "surrogatepass")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = request.query_params.get("token")
        if given is not None:
            response = self._login(request, given)
        elif self._carried(request):
            await self.app(scope, receive, send)
            return
        else:
            response = self._refuse(request, "this server needs a token")
        await response(scope, receive, send)

    def _carried(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(value.strip(), self._token):
            return True
        cookie = request.cookies.get(COOKIE)
        return cookie is not None and _same(cookie, self._token)

    def _login(self, request: Request, given: str) -> Response:
        if not _same(given, self._token):
            return self._refuse(request, "wrong token")
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        # "//host/x" would send the browser to another site: keep the redirect on this one.
        target = URL(path="/" + request.url.path.lstrip("/"), query=urlencode(rest))
        response = RedirectResponse(str(target), status_code=303)
        response.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/")
        return response

    @staticmethod
    def _refuse(request: Request, why: str) -> Response:
        headers = {"WWW-Authenticate": 'Bearer realm="kode"'}
        if "text/html" in request.headers.get("accept", ""):
            text = (
                f"401: {why}. Open this page once with ?token=<token> (the token given to kode serve), "
                "or send the header Authorization: Bearer <token>."
            )
            return PlainTextResponse(text, status_code=401, headers=headers)
        return JSONResponse({"error": f"{why}: send Authorization: Bearer <token>"}, status_code=401, headers=headers)


class RedactTokenFilter(logging.Filter):
    """Replace the value of a ``token=`` query parameter in log records (uvicorn
    logs each request's path with its query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact, and keep the record."""
        if isinstance(record.args, tuple):
            record.args = tuple(_QUERY_TOKEN.sub("***", arg) if isinstance(arg, str) else arg for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = _QUERY_TOKEN.sub("***", record.msg)
        return True
