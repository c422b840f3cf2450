"""A small read-only ASGI app over a store (starlette; run it with uvicorn or
``kode serve``).

==============================  ===============================================
``GET /health``                 200 with the health status when healthy, else 503
``GET /ready``                  200 once the store is open, else 503
``GET /metrics``                Prometheus text exposition
``GET /sessions``               ``query_sessions``; filters as query parameters
``GET /messages``               ``query_messages``
``GET /tool-calls``             ``query_tool_calls``
``GET /agents/{id}/stats``      ``aggregate_stats`` (404 for an unknown agent)
``GET /agents/{id}/events``     the agent's events (``since``, ``channel``)
``GET /api/search``             ``search_messages`` (``q`` or ``query``, and filters)
``GET /`` and other pages       the session browser (:mod:`kode_sdk.web`): ``/``,
                                ``/session/{id}``, ``/search``
==============================  ===============================================

Filters take the names of the query API (``agent_id``, ``template_id``,
``user_id``, ``role``, ``content_type``, ``tool_name``, ``is_error``,
``has_approval``, ``state``, ``created_after``, ``created_before``, ``limit``,
``offset``, ``sort_by``, ``sort_order``) or the shorter ones of the ``kode``
options (``agent``, ``template``, ``user``, ``tool``, ``errors``,
``approval``, ``after``, ``before``, ``sort``, ``order``). A bad filter
answers 400 with ``{"error": "..."}``.

With ``token`` every request must carry it (:class:`kode_sdk.web.TokenGate`).

The app starts even when the store cannot be opened (the database is down,
not yet created, or unreachable): it keeps retrying in the background, and
until the store opens ``/health`` and ``/ready`` answer 503 with the reason
and every other route answers 503 too.

>>> app = create_app(create_store({"type": "sqlite", "db_path": "agents.db"}))   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8080)                                # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .errors import InvalidAgentIdError, KodeError, RecordValidationError, StoreConfigError
from .ops.dump import plain_json, wire
from .ops.filters import (
    SEARCH_PARAMS,
    message_filters,
    parse_int,
    pick_params,
    search_filters,
    session_filters,
    tool_call_filters,
)
from .ops.health import store_health, store_metrics_text, unhealthy_status
from .redact import redact
from .store.agent_ids import validate_agent_id
from .store.events import check_channel
from .store.protocols import QueryableStore, Store
from .web import TokenGate, page_routes

__all__ = ["create_app"]

logger = logging.getLogger("kode_sdk.server")

# Seconds between attempts to open a store that could not be opened at start.
_RETRY_FIRST_S = 0.5
_RETRY_MAX_S = 5.0


def _json(value: Any, status: int = 200) -> Response:
    return JSONResponse(plain_json(value), status_code=status)


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    return pick_params(request.query_params, allowed)


Handler = Callable[[Request], Awaitable[Response]]


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "not opened yet"
    return redact(f"{type(exc).__name__}: {exc}")


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except (InvalidAgentIdError, RecordValidationError, StoreConfigError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        except KodeError as exc:
            return _json({"error": str(exc)}, 503)

    return wrapped


def create_app(store: Store, *, close_store: bool = True, token: str | None = None) -> Starlette:
    """An ASGI app serving ``store`` read-only: the JSON API and the session
    browser. The store is opened on startup (retried in the background while
    it cannot be) and, with ``close_store``, closed on shutdown. With
    ``token``, every request must carry it."""
    queryable = cast(QueryableStore, store)
    ready = False
    open_error: Exception | None = None

    async def try_open() -> bool:
        nonlocal ready, open_error
        try:
            await store.open()
        except Exception as exc:
            open_error = exc
            return False
        ready, open_error = True, None
        return True

    async def keep_opening() -> None:
        delay = _RETRY_FIRST_S
        while not await try_open():
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
        logger.warning("the store is open; serving")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal ready
        retry: asyncio.Task[None] | None = None
        if not await try_open():
            logger.warning("the store cannot be opened yet (retrying; 503 until then): %s", _reason(open_error))
            retry = asyncio.create_task(keep_opening())
        try:
            yield
        finally:
            ready = False
            if retry is not None:
                retry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retry
            if close_store:
                await store.close()

    def not_ready() -> Response:
        return _json({"error": f"the store is not open yet: {_reason(open_error)}"}, 503)

    def guard_ready(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            return await handler(request) if ready else not_ready()

        return wrapped

    async def health(request: Request) -> Response:
        if not ready:
            return _json(unhealthy_status(open_error or RuntimeError("the store is not open")), 503)
        status = await store_health(store)
        return _json(status, 200 if status.healthy else 503)

    async def ready_(request: Request) -> Response:
        if not ready:
            return _json({"ready": False, "error": _reason(open_error)}, 503)
        return _json({"ready": ready}, 200 if not getattr(store, "closed", False) else 503)

    async def metrics(request: Request) -> Response:
        text = await store_metrics_text(store)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def sessions(request: Request) -> Response:
        kwargs = session_filters(
            _params(request, ("agent", "template", "user", "after", "before", "limit", "offset", "sort", "order"))
        )
        return _json(await queryable.query_sessions(**kwargs))

    async def messages(request: Request) -> Response:
        kwargs = message_filters(
            _params(request, ("agent", "role", "content_type", "after", "before", "limit", "offset"))
        )
        return _json(await queryable.query_messages(**kwargs))

    async def tool_calls(request: Request) -> Response:
        keys = ("agent", "tool", "errors", "approval", "state", "after", "before", "limit", "offset")
        return _json(await queryable.query_tool_calls(**tool_call_filters(_params(request, keys))))

    async def search(request: Request) -> Response:
        text, kwargs = search_filters(_params(request, SEARCH_PARAMS))
        return _json(await queryable.search_messages(text, **kwargs))

    async def stats(request: Request) -> Response:
        agent_id = validate_agent_id(request.path_params["agent_id"])
        if not await store.exists(agent_id):
            return _json({"error": f"agent {agent_id!r} not found"}, 404)
        result = await queryable.aggregate_stats(agent_id)
        return _json({"agentId": agent_id, **result.model_dump(mode="json", by_alias=True)})

    async def events(request: Request) -> Response:
        agent_id = validate_agent_id(request.path_params["agent_id"])
        params = _params(request, ("since", "channel", "limit"))
        since = parse_int(params["since"], "since") if "since" in params else None
        limit = parse_int(params.get("limit", "1000"), "limit")
        if not 1 <= limit <= 10_000:
            raise ValueError(f"limit must be from 1 to 10000; got {limit}")
        channel = check_channel(params.get("channel"))
        if not await store.exists(agent_id):
            return _json({"error": f"agent {agent_id!r} not found"}, 404)
        out: list[dict[str, Any]] = []
        async for timeline in store.read_events(agent_id, since=since, channel=channel):
            out.append(wire(timeline))
            if len(out) >= limit:
                break
        return _json(out)

    routes = [
        Route("/health", _guard(health)),
        Route("/ready", _guard(ready_)),
        Route("/metrics", _guard(guard_ready(metrics))),
        Route("/sessions", _guard(guard_ready(sessions))),
        Route("/messages", _guard(guard_ready(messages))),
        Route("/tool-calls", _guard(guard_ready(tool_calls))),
        Route("/api/search", _guard(guard_ready(search))),
        Route("/agents/{agent_id}/stats", _guard(guard_ready(stats))),
        Route("/agents/{agent_id}/events", _guard(guard_ready(events))),
        *page_routes(queryable, guard_ready),
    ]
    middleware = [Middleware(TokenGate, token=token)] if token is not None else []
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
