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
``GET /``, ``/session/{id}``     the session browser (:mod:`kode_sdk.web`)
==============================  ===============================================

Filters take the names of the query API (``agent_id``, ``template_id``,
``user_id``, ``role``, ``content_type``, ``tool_name``, ``is_error``,
``has_approval``, ``state``, ``created_after``, ``created_before``, ``limit``,
``offset``, ``sort_by``, ``sort_order``) or the shorter ones of the ``kode``
options (``agent``, ``template``, ``user``, ``tool``, ``errors``,
``approval``, ``after``, ``before``, ``sort``, ``order``). A bad filter
answers 400 with ``{"error": "..."}``.

With ``token`` every request must carry it (:class:`kode_sdk.web.TokenGate`).

>>> app = create_app(create_store({"type": "sqlite", "db_path": "agents.db"}))   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8080)                                # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .errors import InvalidAgentIdError, KodeError, RecordValidationError, StoreConfigError
from .ops.dump import plain_json, wire
from .ops.filters import message_filters, parse_int, pick_params, session_filters, tool_call_filters
from .ops.health import store_health, store_metrics_text
from .store.base import QueryableStore, Store, check_channel, validate_agent_id
from .web import TokenGate, page_routes

__all__ = ["create_app"]


def _json(value: Any, status: int = 200) -> Response:
    return JSONResponse(plain_json(value), status_code=status)


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    return pick_params(request.query_params, allowed)


Handler = Callable[[Request], Awaitable[Response]]


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
    browser. The store is opened on startup and (with ``close_store``) closed
    on shutdown. With ``token``, every request must carry it."""
    queryable = cast(QueryableStore, store)
    ready = False

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal ready
        await store.open()
        ready = True
        try:
            yield
        finally:
            ready = False
            if close_store:
                await store.close()

    async def health(request: Request) -> Response:
        status = await store_health(store)
        return _json(status, 200 if status.healthy else 503)

    async def ready_(request: Request) -> Response:
        return _json({"ready": ready}, 200 if ready and not getattr(store, "closed", False) else 503)

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
        Route("/metrics", _guard(metrics)),
        Route("/sessions", _guard(sessions)),
        Route("/messages", _guard(messages)),
        Route("/tool-calls", _guard(tool_calls)),
        Route("/agents/{agent_id}/stats", _guard(stats)),
        Route("/agents/{agent_id}/events", _guard(events)),
        *page_routes(queryable),
    ]
    middleware = [Middleware(TokenGate, token=token)] if token is not None else []
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
