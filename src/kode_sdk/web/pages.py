"""The session browser: read-only HTML pages over a :class:`QueryableStore`.

==================================  ==============================================
``GET /``                           sessions, with the ``query_sessions`` filters and paging
``GET /session/{agent_id}``         one session: conversation with tool calls inline,
                                    tool calls, stats with charts, event timeline
``GET /search``                     ``search_messages`` over all sessions; each hit links
                                    to its message in its session
``GET /static/…``                   the stylesheet (shipped in the package)
==================================  ==============================================

Every stored value reaches the page through Jinja's autoescaping (and a
Content-Security-Policy allowing no script at all backs it up), so a message
holding ``<script>`` shows as text. Pages link with plain ``<a href>``; no
JavaScript is used anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import InvalidAgentIdError, KodeError, RecordValidationError, StoreConfigError
from ..ops.filters import SEARCH_PARAMS, parse_int, pick_params, search_filters, session_filters
from ..store.agent_ids import validate_agent_id
from ..store.events import check_channel
from ..store.protocols import QueryableStore
from ..types import CHANNELS, MessageHit, SessionInfo, StoredMessage, Timeline
from .charts import duration_chart, is_failed, success_chart

__all__ = ["MESSAGES_PER_PAGE", "page_routes"]

Handler = Callable[[Request], Awaitable[Response]]

#: Messages shown per page of a conversation.
MESSAGES_PER_PAGE = 200
#: Events shown per page of the timeline.
EVENTS_PER_PAGE = 500
SESSIONS_PER_PAGE = 50
HITS_PER_PAGE = 20

_HERE = Path(__file__).parent
T = TypeVar("T")

_SESSION_KEYS = ("agent", "template", "user", "after", "before", "limit", "offset", "sort", "order")

#: Sent with every page: no script may run, whatever a page holds.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _shown(value: Any) -> Any:
    # NUL is valid in stored text but not in HTML (browsers turn it into U+FFFD): show a visible symbol.
    return value.replace("\x00", "\u2400") if isinstance(value, str) else value


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def _when(value: datetime | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _iso(value: datetime | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_shown,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = _pretty
    env.filters["compact"] = lambda value: json.dumps(value, ensure_ascii=False, default=str)
    env.filters["when"] = _when
    env.filters["iso"] = _iso
    env.filters["seg"] = lambda text: quote(str(text), safe="")
    env.filters["ms"] = lambda value: f"{value:,.1f} ms"
    env.globals["CHANNELS"] = CHANNELS
    return env


def _pager(
    params: dict[str, str], default_limit: int, shown: int, error: str | None
) -> tuple[int, dict[str, Any] | None, dict[str, Any] | None]:
    """This page's offset and the query parameters of the previous and next
    pages (``None`` where there is none; a full page may have a next one)."""
    if error is not None:
        return 0, None, None
    limit, offset = int(params.get("limit", default_limit)), int(params.get("offset", 0))
    previous = {**params, "offset": max(offset - limit, 0)} if offset > 0 else None
    following = {**params, "offset": offset + limit} if shown == limit else None
    return offset, previous, following


class _Pages:
    def __init__(self, store: QueryableStore) -> None:
        self.store = store
        self.env = _environment()

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        root = str(request.scope.get("root_path", ""))

        def link(path: str, query: Mapping[str, Any] | None = None, fragment: str = "") -> str:
            kept = {k: v for k, v in (query or {}).items() if v not in (None, "")}
            url = root + path + ("?" + urlencode(kept) if kept else "")
            return url + ("#" + fragment if fragment else "")

        html = self.env.get_template(name).render(root=root, link=link, **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def failure(self, request: Request, status: int, message: str) -> Response:
        return self.render(request, "error.html", status, title=f"Error {status}", message=message)

    async def _listing(
        self,
        request: Request,
        keys: tuple[str, ...],
        per_page: int,
        fetch: Callable[[dict[str, str]], Awaitable[list[T]]],
    ) -> tuple[dict[str, str], list[T], int, dict[str, Any]]:
        """A paged listing: the query parameters given, the rows ``fetch``
        found for them, the status, and the context every listing renders
        (the form, an error, the offset and the neighbouring pages)."""
        form = {key: request.query_params.get(key, "") for key in keys}
        error = None
        rows: list[T] = []
        params: dict[str, str] = {}
        try:
            params = {k: v for k, v in pick_params(request.query_params, keys).items() if v != ""}
            form.update(params)
            rows = await fetch(params)
        except (InvalidAgentIdError, RecordValidationError, StoreConfigError, ValueError) as exc:
            error = str(exc)
        offset, previous, following = _pager(params, per_page, len(rows), error)
        page = {"form": form, "error": error, "offset": offset, "previous": previous, "following": following}
        return params, rows, 400 if error else 200, page

    async def sessions(self, request: Request) -> Response:
        async def fetch(params: dict[str, str]) -> list[SessionInfo]:
            return await self.store.query_sessions(**session_filters({"limit": str(SESSIONS_PER_PAGE), **params}))

        _, rows, status, page = await self._listing(request, _SESSION_KEYS, SESSIONS_PER_PAGE, fetch)
        return self.render(request, "sessions.html", status, title="Sessions", rows=rows, **page)

    async def search(self, request: Request) -> Response:
        async def fetch(params: dict[str, str]) -> list[MessageHit]:
            if not params.get("q", "").strip():
                return []
            text, kwargs = search_filters({"limit": str(HITS_PER_PAGE), **params})
            return await self.store.search_messages(text, **kwargs)

        params, hits, status, page = await self._listing(request, SEARCH_PARAMS, HITS_PER_PAGE, fetch)
        title = f"Search: {params['q']}" if params.get("q") else "Search"
        return self.render(request, "search.html", status, title=title, hits=[(h, _marked(h)) for h in hits], **page)

    async def session(self, request: Request) -> Response:
        try:
            agent_id = validate_agent_id(request.path_params["agent_id"])
            params = pick_params(request.query_params, ("start", "channel", "since"))
            start = parse_int(params.get("start", "0"), "start")
            since = parse_int(params["since"], "since") if params.get("since") else None
            channel = check_channel(params.get("channel") or None)
            if start < 0:
                raise ValueError(f"start must be 0 or more; got {start}")
        except (InvalidAgentIdError, RecordValidationError, ValueError) as exc:
            return self.failure(request, 400, str(exc))
        found = await self.store.query_sessions(agent_id=agent_id, limit=1)
        if not found:
            return self.failure(request, 404, f"There is no session {agent_id!r} in this store.")
        info = found[0]
        stats = await self.store.aggregate_stats(agent_id)
        records = await self.store.load_tool_call_records(agent_id)
        messages = await self._message_page(agent_id, stats.total_messages, start)
        by_id = {record.id: record for record in records}
        inline = {
            block.get("id")
            for message in messages
            for block in message.content
            if block.get("type") == "tool_use" and block.get("id") in by_id
        }
        events: list[Timeline] = []
        async for timeline in self.store.read_events(agent_id, since=since, channel=channel):
            events.append(timeline)
            if len(events) > EVENTS_PER_PAGE:
                break
        more_events = len(events) > EVENTS_PER_PAGE
        events = events[:EVENTS_PER_PAGE]
        total = stats.total_messages
        pages = [
            (s, min(s + MESSAGES_PER_PAGE, total) - 1) for s in range(0, max(total, 1), MESSAGES_PER_PAGE) if s < total
        ]
        return self.render(
            request,
            "session.html",
            title=f"Session {agent_id}",
            info=info,
            stats=stats,
            messages=messages,
            start=start,
            pages=pages,
            calls=by_id,
            records=records,
            failed=[r for r in records if is_failed(r)],
            is_failed=is_failed,
            inline=inline,
            others=[r for r in records if r.id not in inline],
            success=success_chart(records),
            durations=duration_chart(records),
            events=events,
            channel=channel,
            since=since,
            next_since=events[-1].bookmark.seq if more_events and events else None,
        )

    async def _message_page(self, agent_id: str, total: int, start: int) -> list[StoredMessage]:
        # query_messages answers newest first: page from the end so the page reads in order.
        if start >= total:
            return []
        end = min(start + MESSAGES_PER_PAGE, total)
        newest_first = await self.store.query_messages(agent_id=agent_id, limit=end - start, offset=total - end)
        return newest_first[::-1]


def _guard(pages: _Pages, handler: Any) -> Any:
    async def wrapped(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except KodeError as exc:
            return pages.failure(request, 503, f"The store could not answer: {exc}")
        return response

    return wrapped


def _marked(hit: MessageHit) -> list[tuple[str, bool]]:
    """The snippet cut at its highlights: (text, is a match) pieces, for the
    template to escape one by one and wrap the matches in ``<mark>``."""
    pieces: list[tuple[str, bool]] = []
    at = 0
    for start, end in sorted(hit.highlights):
        start, end = max(start, at), min(end, len(hit.snippet))
        if start >= end:
            continue
        if start > at:
            pieces.append((hit.snippet[at:start], False))
        pieces.append((hit.snippet[start:end], True))
        at = end
    if at < len(hit.snippet):
        pieces.append((hit.snippet[at:], False))
    return pieces


def _page_of(seq: int) -> int:
    return seq - seq % MESSAGES_PER_PAGE


def page_routes(store: QueryableStore, wrap: Callable[[Handler], Handler] | None = None) -> list[BaseRoute]:
    """The browser's routes over ``store`` (mount them beside the JSON API).

    ``wrap`` goes around every page handler (the app's "store not open yet"
    answer, say)."""
    pages = _Pages(store)
    pages.env.globals["page_of"] = _page_of

    def page(handler: Handler) -> Handler:
        guarded: Handler = _guard(pages, handler)
        return guarded if wrap is None else wrap(guarded)

    return [
        Route("/", page(pages.sessions), name="sessions_page"),
        Route("/session/{agent_id}", page(pages.session), name="session_page"),
        Route("/search", page(pages.search), name="search_page"),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
