"""Read-only commands: ``sessions``, ``messages``, ``search``, ``tool-calls``,
``stats``, ``events``, ``health`` and ``metrics``.

Filters mirror the query API. Tables for people; ``--json`` prints one JSON
document (``events --json`` prints JSON Lines, one event per line, so
``--follow`` can stream).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from ..errors import AgentNotFoundError, StoreConfigError
from ..ops.dump import wire
from ..ops.filters import message_filters, session_filters, tool_call_filters
from ..ops.health import store_health, store_metrics, store_metrics_text, unhealthy_status
from ..store.agent_ids import validate_agent_id
from ..store.capabilities import EventTailing
from ..store.catalog import stored_agent_ids
from ..store.events import check_channel
from ..store.protocols import QueryableStore, Store
from ..types import MessageHit, SessionInfo, StoredMessage, StoredToolCall, Timeline
from .app import JsonOption, State, UsageError, app, emit_json, emit_jsonl, run_async, run_with_store, stdout
from .text import cell, inert

__all__ = ["events", "health", "messages", "metrics", "search", "sessions", "stats", "tool_calls"]

Agent = Annotated[str | None, typer.Option("--agent", "-a", help="Only this agent.")]
After = Annotated[
    str | None, typer.Option("--after", help="Created at or after: ISO date/time, epoch ms, or 90d/12h ago.")
]
Before = Annotated[
    str | None, typer.Option("--before", help="Created at or before: ISO date/time, epoch ms, or 90d/12h ago.")
]
Limit = Annotated[int, typer.Option("--limit", "-n", help="At most this many rows (1–10000).")]
Offset = Annotated[int, typer.Option("--offset", help="Skip this many rows first.")]

T = TypeVar("T")


def _queryable(store: Store) -> QueryableStore:
    if not isinstance(store, QueryableStore):
        raise UsageError(f"{type(store).__name__} does not answer queries")
    return store


def _table(title: str, *names: str) -> Table:
    """A table whose id columns never wrap (people copy them into other commands)."""
    table = Table(*names, title=title)
    for column in table.columns:
        if column.header in ("agent", "id", "seq"):
            column.no_wrap = True
    return table


def _show_rows(
    ctx: typer.Context,
    json: bool,
    fetch: Callable[[QueryableStore], Awaitable[Sequence[T]]],
    title: str,
    columns: Sequence[str],
    row: Callable[[T], Sequence[str | Text]],
) -> None:
    """Run one query on the store: print its rows as JSON (``--json``) or as a
    table of ``columns``, a row each."""

    async def go(store: Store) -> None:
        rows = await fetch(_queryable(store))
        if json:
            emit_json(rows)
            return
        table = _table(title, *columns)
        for item in rows:
            table.add_row(*row(item))
        stdout.print(table)

    run_with_store(ctx, go)


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _preview(content: list[dict[str, Any]], width: int = 60) -> str:
    parts: list[str] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            parts.append(f"[tool_use {block.get('name')}]")
        elif kind == "tool_result":
            parts.append(f"[tool_result{' error' if block.get('is_error') else ''}]")
        else:
            parts.append(f"[{kind}]")
    text = inert(" ".join(parts).replace("\n", " "))
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
def sessions(
    ctx: typer.Context,
    agent: Agent = None,
    template: Annotated[str | None, typer.Option("--template", "-t", help="Only this template.")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user (metadata userId).")] = None,
    after: After = None,
    before: Before = None,
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[str, typer.Option("--sort", help="created_at, updated_at or message_count.")] = "created_at",
    order: Annotated[str, typer.Option("--order", help="asc or desc.")] = "desc",
    json: JsonOption = False,
) -> None:
    """List agent sessions, newest first."""
    params = {"agent": agent, "template": template, "user": user, "after": after, "before": before}
    kwargs = session_filters({**params, "limit": limit, "offset": offset, "sort": sort, "order": order})

    def row(session: SessionInfo) -> tuple[str | Text, ...]:
        user_id = session.metadata.get("userId", session.metadata.get("user_id", ""))
        return (
            cell(session.agent_id),
            cell(session.template_id),
            _time(session.created_at),
            _time(session.updated_at),
            str(session.message_count),
            cell(session.breakpoint.value if session.breakpoint else ""),
            cell(user_id or ""),
        )

    columns = ("agent", "template", "created", "updated", "msgs", "breakpoint", "user")
    _show_rows(ctx, json, lambda store: store.query_sessions(**kwargs), "sessions", columns, row)


@app.command()
def messages(
    ctx: typer.Context,
    agent: Agent = None,
    role: Annotated[str | None, typer.Option("--role", "-r", help="user, assistant or system.")] = None,
    content_type: Annotated[
        str | None, typer.Option("--content-type", "-c", help="Only messages with a block of this type.")
    ] = None,
    after: After = None,
    before: Before = None,
    limit: Limit = 100,
    offset: Offset = 0,
    json: JsonOption = False,
) -> None:
    """List stored messages, newest first."""
    kwargs = message_filters(
        {
            "agent": agent,
            "role": role,
            "content_type": content_type,
            "after": after,
            "before": before,
            "limit": limit,
            "offset": offset,
        }
    )

    def row(message: StoredMessage) -> tuple[str | Text, ...]:
        created = _time(message.created_at)
        return cell(message.agent_id), str(message.seq), cell(message.role), created, cell(_preview(message.content))

    columns = ("agent", "seq", "role", "created", "content")
    _show_rows(ctx, json, lambda store: store.query_messages(**kwargs), "messages", columns, row)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help='Words that must all appear; "quoted words" as a phrase.')],
    agent: Agent = None,
    template: Annotated[str | None, typer.Option("--template", "-t", help="Only sessions of this template.")] = None,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Only this user's sessions (metadata userId).")
    ] = None,
    role: Annotated[str | None, typer.Option("--role", "-r", help="user, assistant or system.")] = None,
    after: After = None,
    before: Before = None,
    limit: Limit = 20,
    offset: Offset = 0,
    json: JsonOption = False,
) -> None:
    """Find messages across every session: best matches first (text, tool inputs, tool results)."""
    kwargs = message_filters(
        {"agent": agent, "role": role, "after": after, "before": before, "limit": limit, "offset": offset}
    )
    if template is not None:
        kwargs["template_id"] = template
    if user is not None:
        kwargs["user_id"] = user

    def row(hit: MessageHit) -> tuple[str | Text, ...]:
        return cell(hit.agent_id), str(hit.seq), cell(hit.role), _time(hit.created_at), _marked(hit)

    columns = ("agent", "seq", "role", "created", "match")
    _show_rows(ctx, json, lambda store: store.search_messages(query, **kwargs), "search", columns, row)


def _marked(hit: MessageHit) -> Text:
    """The snippet with its matches in bold; stored text is never markup and
    its control characters show as escapes (each piece escaped on its own, so
    the highlight offsets still fall on the right characters)."""
    text = Text()
    done = 0
    for start, end in hit.highlights:
        text.append(inert(hit.snippet[done:start]))
        text.append(inert(hit.snippet[start:end]), style="bold yellow")
        done = end
    text.append(inert(hit.snippet[done:]))
    return text


@app.command("tool-calls")
def tool_calls(
    ctx: typer.Context,
    agent: Agent = None,
    tool: Annotated[str | None, typer.Option("--tool", help="Only calls of this tool.")] = None,
    errors: Annotated[
        bool | None, typer.Option("--errors/--no-errors", help="Only failed calls / only successful ones.")
    ] = None,
    approval: Annotated[
        bool | None, typer.Option("--approval/--no-approval", help="Only calls that needed approval / did not.")
    ] = None,
    state: Annotated[str | None, typer.Option("--state", help="pending, completed, failed, denied, …")] = None,
    after: After = None,
    before: Before = None,
    limit: Limit = 100,
    offset: Offset = 0,
    json: JsonOption = False,
) -> None:
    """List tool calls, newest first."""
    kwargs = tool_call_filters(
        {
            "agent": agent,
            "tool": tool,
            "errors": errors,
            "approval": approval,
            "state": state,
            "after": after,
            "before": before,
            "limit": limit,
            "offset": offset,
        }
    )

    def row(call: StoredToolCall) -> tuple[str | Text, ...]:
        decision = call.approval.decision or ("required" if call.approval.required else "")
        return (
            cell(call.agent_id),
            cell(call.tool_call_id),
            cell(call.tool_name),
            cell(call.state.value),
            "yes" if call.is_error else "",
            cell(decision),
            "" if call.duration_ms is None else f"{call.duration_ms:g}",
            _time(call.created_at),
        )

    columns = ("agent", "id", "tool", "state", "error", "approval", "ms", "created")
    _show_rows(ctx, json, lambda store: store.query_tool_calls(**kwargs), "tool calls", columns, row)


@app.command()
def stats(
    ctx: typer.Context, agent: Annotated[str, typer.Argument(help="Agent id.")], json: JsonOption = False
) -> None:
    """Totals for one agent: messages by role, tool calls by state and name, snapshots."""
    validate_agent_id(agent)

    async def go(store: Store) -> None:
        if not await store.exists(agent):
            raise AgentNotFoundError(agent)
        result = await _queryable(store).aggregate_stats(agent)
        if json:
            emit_json({"agentId": agent, **result.model_dump(mode="json", by_alias=True)})
            return
        table = Table("what", "count", title=f"stats of {agent}")
        table.add_row("messages", str(result.total_messages))
        for role, n in sorted(result.messages_by_role.items()):
            table.add_row(cell(f"  role {role}"), str(n))
        table.add_row("tool calls", str(result.total_tool_calls))
        for state, n in sorted(result.tool_calls_by_state.items()):
            table.add_row(cell(f"  state {state}"), str(n))
        for name, n in sorted(result.tool_calls_by_name.items()):
            table.add_row(cell(f"  tool {name}"), str(n))
        table.add_row("snapshots", str(result.total_snapshots))
        stdout.print(table)

    run_with_store(ctx, go)


def _event_line(timeline: Timeline) -> str:
    event = timeline.event
    detail = {k: v for k, v in event.items() if k not in ("channel", "type")}
    text = str(detail)[:80] if detail else ""
    line = f"{timeline.bookmark.seq:>8}  {timeline.bookmark.timestamp}  {event['channel']:<8}  {event['type']}  {text}"
    return inert(line)


@app.command()
def events(
    ctx: typer.Context,
    agent: Annotated[str, typer.Argument(help="Agent id.")],
    since: Annotated[int | None, typer.Option("--since", help="Only events with seq greater than this.")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="progress, control or monitor.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events (Ctrl-C stops).")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls with --follow.")] = 0.5,
    json: Annotated[bool, typer.Option("--json", help="JSON Lines: one event per line.")] = False,
) -> None:
    """Print an agent's event timeline in seq order (JSON Lines with --json)."""
    validate_agent_id(agent)
    check_channel(channel)
    if interval <= 0:
        raise UsageError("--interval must be positive")

    def show(timeline: Timeline) -> None:
        if json:
            emit_jsonl(wire(timeline))
        else:
            stdout.print(_event_line(timeline), highlight=False, markup=False)

    async def go(store: Store) -> None:
        last = since
        shown = False
        async for timeline in store.read_events(agent, since=last, channel=channel):
            show(timeline)
            shown = True
            last = timeline.bookmark.seq
        if not follow:
            # An agent is known by any stored record, info or not; the full
            # listing is read only when the agent has no events and no info.
            if not shown and not await store.exists(agent) and agent not in await stored_agent_ids(store):
                raise AgentNotFoundError(agent)
            return
        if isinstance(store, EventTailing):
            # PostgreSQL: LISTEN/NOTIFY wakes the tail; no polling delay.
            async with contextlib.aclosing(store.tail_events(agent, since=last, channel=channel)) as live:
                async for timeline in live:
                    show(timeline)
            return
        while True:
            await asyncio.sleep(interval)
            async for timeline in store.read_events(agent, since=last, channel=channel):
                show(timeline)
                last = timeline.bookmark.seq

    try:
        run_with_store(ctx, go)
    except KeyboardInterrupt:
        if not follow:
            raise
        # Ctrl-C is how --follow is meant to end.
        raise typer.Exit(0) from None


@app.command()
def health(ctx: typer.Context, json: JsonOption = False) -> None:
    """Check the store answers; exit 0 when healthy, 1 when not (2: no such store).

    A store that cannot be opened is reported like any unhealthy one, with the
    reason (``--json`` always prints a status document).
    """
    state: State = ctx.obj

    async def go() -> bool:
        store = state.store()
        try:
            try:
                await store.open()
            except StoreConfigError as exc:
                if json:
                    emit_json(unhealthy_status(exc))
                raise
            except Exception as exc:
                status = unhealthy_status(exc)
            else:
                status = await store_health(store)
        finally:
            await store.close()
        if json:
            emit_json(status)
        else:
            mark = "[green]healthy[/]" if status.healthy else "[red]UNHEALTHY[/]"
            latency = status.database.latency_ms
            stdout.print(f"{mark}  database connected={status.database.connected}", highlight=False)
            if latency is not None:
                stdout.print(f"  latency {latency:.2f} ms", highlight=False)
            stdout.print(f"  file system writable={status.file_system.writable}", highlight=False)
            for problem in (status.database.error, status.file_system.error):
                if problem:
                    stdout.print(f"  {inert(problem)}", highlight=False, markup=False)
        return status.healthy

    if not run_async(ctx, go):
        raise typer.Exit(1)


@app.command()
def metrics(
    ctx: typer.Context,
    prometheus: Annotated[bool, typer.Option("--prometheus", help="Prometheus text exposition format.")] = False,
    json: JsonOption = False,
) -> None:
    """Store metrics: operation counts, latency, what the store holds."""
    if prometheus and json:
        raise UsageError("--prometheus and --json are exclusive")

    async def go(store: Store) -> None:
        if prometheus:
            typer.echo(await store_metrics_text(store), nl=False)
            return
        result = await store_metrics(store)
        if json:
            emit_json(result)
            return
        table = Table("metric", "value", title="store metrics")
        for name, value in result.operations.model_dump().items():
            table.add_row(f"operations.{name}", str(value))
        for name, value in result.storage.model_dump().items():
            table.add_row(f"storage.{name}", "" if value is None else str(value))
        for name, value in result.performance.model_dump().items():
            table.add_row(f"performance.{name}", f"{value:.3f}")
        stdout.print(table)

    run_with_store(ctx, go)
