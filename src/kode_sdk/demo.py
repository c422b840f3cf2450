"""The kode-sdk demo: several agents working at once on the embedded SQLite
store in ``./data``, then what the query API finds about them.

Run it with ``make demo``, ``python -m kode_sdk.demo`` or ``kode demo``.

Three scripted agents run concurrently: a researcher that keeps a todo list,
searches notes and takes a snapshot; an operator whose ``deploy`` needs
approval (the demo's operator grants it); an analyst whose metrics tool fails
and who works around it. Every message, tool call, approval and event goes
through the store. Afterwards the demo prints the sessions, the failed tool
calls, the approvals, and per-agent statistics with the tool success rate.

Run it again and the same agents are resumed from the store and continue
their conversations. With ``ANTHROPIC_API_KEY`` (or ``OPENAI_API_KEY``) set,
the researcher talks to the real model instead of its script (model from
``KODE_DEMO_MODEL`` when set).
"""

from __future__ import annotations

import ast
import asyncio
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from .agent import (
    Agent,
    AgentTemplate,
    AnthropicProvider,
    OpenAIProvider,
    Provider,
    ScriptedProvider,
    TemplateRegistry,
    ToolRegistry,
    todo_write,
)
from .agent.providers.scripted import ScriptTurn, text, tool_use
from .errors import ProviderError
from .store.factory import create_extended_store
from .store.protocols import ExtendedStore
from .types import Timeline

__all__ = ["main", "run_demo"]

# --------------------------------------------------------------------------- tools

tools = ToolRegistry([todo_write])

_NOTES = {
    "wal": [
        "WAL mode lets readers continue while one writer appends to the write-ahead log.",
        "Checkpoints move WAL pages back into the main database file.",
        "synchronous=NORMAL is durable across application crashes in WAL mode.",
    ],
    "locks": ["Advisory locks in PostgreSQL are held per session and freed when the connection dies."],
}


@tools.tool
async def search_notes(query: str) -> list[str]:
    """Search the team's notes.

    Args:
        query: Words to look for.
    """
    await asyncio.sleep(0.15)
    words = query.lower().split()
    return [note for key, notes in _NOTES.items() if any(key in w for w in words) for note in notes]


@tools.tool
async def word_count(text: str) -> int:
    """Count the words of a text.

    Args:
        text: The text to count.
    """
    return len(text.split())


@tools.tool
async def check_health(service: str) -> dict[str, Any]:
    """Check a service's health.

    Args:
        service: The service name.
    """
    await asyncio.sleep(0.2)
    return {"service": service, "status": "healthy", "p99_ms": 84, "error_rate": 0.0012}


@tools.tool
async def deploy(service: str, version: str) -> str:
    """Deploy a version of a service to production (needs approval).

    Args:
        service: The service name.
        version: The version to ship.
    """
    await asyncio.sleep(0.2)
    return f"{service} {version} is live on 12/12 hosts"


@tools.tool
async def fetch_metrics(service: str, days: int = 7) -> dict[str, Any]:
    """Fetch a service's traffic metrics.

    Args:
        service: The service name.
        days: How many days back.
    """
    await asyncio.sleep(0.1)
    raise ConnectionError("metrics backend at 10.0.0.7:9090 refused the connection")


_OPERATORS: dict[type, Callable[..., float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError("only numbers, + - * / and parentheses are allowed")


@tools.tool
async def calculator(expression: str) -> float:
    """Evaluate an arithmetic expression.

    Args:
        expression: Numbers with + - * / and parentheses.
    """
    return round(_evaluate(ast.parse(expression, mode="eval")), 4)


# --------------------------------------------------------------------------- agents


@dataclass(frozen=True)
class DemoAgent:
    """One agent of the demo: its template, its script and what it is asked."""

    agent_id: str
    template: AgentTemplate
    script: Sequence[ScriptTurn]
    question: str
    snapshot_each_run: bool = False


TEMPLATES = TemplateRegistry(
    [
        {
            "id": "researcher",
            "system_prompt": (
                "You are a careful researcher. Plan with todo_write, search the notes, then answer in two sentences."
            ),
            "tools": ["todo_write", "search_notes", "word_count"],
        },
        {
            "id": "operator",
            "system_prompt": "You operate production services. Check health before any deploy.",
            "tools": ["check_health", "deploy"],
            "require_approval": ["deploy"],
        },
        {
            "id": "analyst",
            "system_prompt": "You analyse service traffic. If live data is unavailable, estimate and say so.",
            "tools": ["fetch_metrics", "calculator"],
        },
    ]
)

_PLAN = [
    {"id": "search", "title": "Search the notes on WAL mode", "status": "in_progress"},
    {"id": "answer", "title": "Write a two-sentence answer", "status": "pending"},
]
_DONE = [{**item, "status": "completed"} for item in _PLAN]

AGENTS = [
    DemoAgent(
        agent_id="demo-researcher",
        template=TEMPLATES.get("researcher"),
        script=[
            [
                text("I'll plan first, then search the notes."),
                tool_use("todo_write", {"todos": _PLAN}),
                tool_use("search_notes", {"query": "sqlite wal mode"}),
            ],
            [
                tool_use("todo_write", {"todos": _DONE}),
                tool_use("word_count", {"text": " ".join(_NOTES["wal"])}),
            ],
            "In WAL mode readers never block the single writer, which appends to a separate log that "
            "checkpoints fold back into the database. With synchronous=NORMAL that is durable across crashes.",
        ],
        question="What does WAL mode change for SQLite writers?",
        snapshot_each_run=True,
    ),
    DemoAgent(
        agent_id="demo-operator",
        template=TEMPLATES.get("operator"),
        script=[
            [text("Checking health before deploying."), tool_use("check_health", {"service": "api"})],
            [
                text("Healthy. Requesting approval to deploy."),
                tool_use("deploy", {"service": "api", "version": "2.4.1"}),
            ],
            "api 2.4.1 is deployed to all 12 hosts after approval; health was green beforehand.",
        ],
        question="Ship api 2.4.1 to production.",
    ),
    DemoAgent(
        agent_id="demo-analyst",
        template=TEMPLATES.get("analyst"),
        script=[
            [text("Fetching live metrics."), tool_use("fetch_metrics", {"service": "api", "days": 7})],
            [
                text("The metrics backend is unreachable; estimating from the last weekly report."),
                tool_use("calculator", {"expression": "(1250 - 1180) / 1180 * 100"}),
            ],
            "API traffic grew about 5.9% week over week (an estimate: live metrics were unreachable).",
        ],
        question="How did API traffic change this week?",
    ),
]


def real_provider(console: Console) -> Provider | None:
    """The real model provider the environment asks for, if any."""
    model = os.environ.get("KODE_DEMO_MODEL")
    try:
        if os.environ.get("ANTHROPIC_API_KEY"):
            return AnthropicProvider(model) if model else AnthropicProvider()
        if os.environ.get("OPENAI_API_KEY"):
            return OpenAIProvider(model) if model else OpenAIProvider()
    except ProviderError as exc:  # the extra is not installed: the scripted demo still runs
        console.print(f"[yellow]{exc}; the researcher uses its script.[/]")
    return None


# --------------------------------------------------------------------------- progress display


@dataclass
class Progress:
    """What the live table shows for one agent."""

    provider: str
    run: int = 0
    state: str = "starting"
    last: str = ""
    tools_ok: int = 0
    tools_failed: int = 0
    tokens: int = 0
    events: int = 0
    answer: str = ""
    notes: list[str] = field(default_factory=list)

    def on_event(self, timeline: Timeline) -> None:
        event = timeline.event
        kind = event["type"]
        self.events += 1
        if kind == "state_changed":
            self.state = event["to"]
        elif kind == "tool_start":
            self.last = f"→ {event['call']['name']}"
        elif kind == "tool_executed":
            if event["is_error"]:
                self.tools_failed += 1
                self.last = f"✗ {event['name']}"
            else:
                self.tools_ok += 1
                self.last = f"✓ {event['name']} ({event['duration_ms']:.0f} ms)"
        elif kind == "token_usage":
            self.tokens += int(event["total_tokens"])
        elif kind == "permission_required":
            self.last = f"? approval for {event['tool']}"
        elif kind == "permission_decided":
            self.last = f"{event['decision']} {event['tool']} by {event['decided_by']}"


def progress_table(progress: dict[str, Progress]) -> Table:
    """The live table: one row per agent."""
    table = Table(title="Agents at work", expand=False)
    for column in ("agent", "provider", "run", "state", "last step", "tools ok", "failed", "tokens", "events"):
        table.add_column(
            column, justify="right" if column in ("run", "tools ok", "failed", "tokens", "events") else "left"
        )
    for agent_id, row in progress.items():
        table.add_row(
            agent_id,
            row.provider,
            str(row.run),
            row.state,
            row.last,
            str(row.tools_ok),
            str(row.tools_failed),
            str(row.tokens),
            str(row.events),
        )
    return table


# --------------------------------------------------------------------------- running


async def open_agent(spec: DemoAgent, store: ExtendedStore, provider: Provider) -> Agent:
    """Resume the agent when the store has it (a second run), else create it."""
    if await store.exists(spec.agent_id):
        return await Agent.resume_from_store(
            spec.agent_id, store=store, provider=provider, templates=TEMPLATES, strategy="crash", tools=tools
        )
    return await Agent.create(
        provider=provider,
        store=store,
        template=spec.template,
        agent_id=spec.agent_id,
        metadata={"userId": "demo-user", "demo": True},
        tools=tools,
    )


async def run_agent(
    spec: DemoAgent, store: ExtendedStore, provider: Provider, row: Progress, say: Callable[[str], None]
) -> None:
    """Drive one agent through this run's question, approving what it asks for."""
    exists = await store.exists(spec.agent_id)
    if exists:
        info = await store.load_info(spec.agent_id)
        row.state = info.breakpoint.value if info and info.breakpoint else "stored"
    agent: Agent | None = None
    try:
        agent = await open_agent(spec, store, provider)
        agent.on("*", row.on_event)
        if exists:
            row.notes.append(f"resumed from the store with {len(agent.messages)} messages")
        row.run = 1 + sum(
            1 for m in agent.messages if m.role == "user" and any(b.get("type") == "text" for b in m.content)
        )
        for permission_id in agent.pending_permissions:  # left waiting by an interrupted earlier run
            await agent.decide(permission_id, "allow", note="approved on resume", by="demo-operator")
        question = spec.question if row.run == 1 else f"{spec.question} (run {row.run})"
        result = await agent.chat(question)
        while result.status == "paused":
            for permission_id in result.permission_ids:
                call = next(r for r in agent.tool_calls if r.id == permission_id)
                say(f"[bold yellow]{spec.agent_id}[/] asks to run [bold]{call.name}[/]({call.input}); approving")
                await asyncio.sleep(0.3)  # the "human" takes a moment
                result = await agent.decide(permission_id, "allow", note="change ticket OPS-42", by="demo-operator")
        row.answer = result.text
        if spec.snapshot_each_run:
            await agent.snapshot(label=f"after run {row.run}")
        row.state = "done"
    except Exception as exc:
        row.state = "error"
        row.last = f"{type(exc).__name__}: {exc}"
        raise


async def run_demo(console: Console | None = None) -> int:
    """Run every demo agent at once, then print what the query API finds. Returns an exit code."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=150)  # piped or captured: room for the tables
    store = await create_extended_store()
    try:
        real = real_provider(console)
        providers: dict[str, Provider] = {}
        progress: dict[str, Progress] = {}
        for index, spec in enumerate(AGENTS):
            use_real = real is not None and index == 0
            providers[spec.agent_id] = real if use_real and real else ScriptedProvider(spec.script, loop=True)
            progress[spec.agent_id] = Progress(provider=providers[spec.agent_id].name)
        backend = type(store).__name__
        console.print(Panel.fit(f"kode-sdk demo · {len(AGENTS)} agents · store: {backend}", style="bold cyan"))
        notes: list[str] = []
        with Live(progress_table(progress), console=console, refresh_per_second=8) as live:

            def say(message: str) -> None:
                notes.append(message)
                live.console.print(message)

            async def refresh() -> None:
                while True:
                    live.update(progress_table(progress))
                    await asyncio.sleep(0.1)

            ticker = asyncio.create_task(refresh())
            try:
                outcomes = await asyncio.gather(
                    *(
                        run_agent(spec, store, providers[spec.agent_id], progress[spec.agent_id], say)
                        for spec in AGENTS
                    ),
                    return_exceptions=True,
                )
            finally:
                ticker.cancel()
                live.update(progress_table(progress))
        console.print()
        failures = [
            (spec.agent_id, o) for spec, o in zip(AGENTS, outcomes, strict=True) if isinstance(o, BaseException)
        ]
        for agent_id, row in progress.items():
            for note in row.notes:
                console.print(f"[dim]{agent_id}: {note}[/]")
            if row.answer:
                console.print(f"[bold]{agent_id}[/] ▸ {row.answer}")
        for agent_id, error in failures:
            console.print(f"[bold red]{agent_id} failed:[/] {type(error).__name__}: {error}")
        await report(store, console)
        return 1 if failures else 0
    finally:
        await store.close()


# --------------------------------------------------------------------------- the query report


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


async def report(store: ExtendedStore, console: Console) -> None:
    """Print the sessions, failed tool calls, approvals and per-agent stats the store reports."""
    ids = [spec.agent_id for spec in AGENTS]

    sessions = [
        s for s in await store.query_sessions(limit=100, sort_by="created_at", sort_order="asc") if s.agent_id in ids
    ]
    table = Table(title="Sessions (query_sessions)")
    for column in ("agent", "template", "messages", "breakpoint", "user", "created", "updated"):
        table.add_column(column, justify="right" if column == "messages" else "left")
    for s in sessions:
        table.add_row(
            s.agent_id,
            s.template_id,
            str(s.message_count),
            s.breakpoint.value if s.breakpoint else "",
            str(s.metadata.get("userId", "")),
            _when(s.created_at),
            _when(s.updated_at),
        )
    console.print(table)

    failed = [c for c in await store.query_tool_calls(is_error=True, limit=50) if c.agent_id in ids]
    table = Table(title="Failed tool calls (query_tool_calls is_error=True)")
    for column in ("agent", "tool", "state", "error", "duration ms", "when"):
        table.add_column(column)
    for c in failed:
        duration = f"{c.duration_ms:.1f}" if c.duration_ms is not None else ""
        table.add_row(c.agent_id, c.tool_name, c.state.value, c.error or "", duration, _when(c.created_at))
    console.print(table)

    approved = [c for c in await store.query_tool_calls(has_approval=True, limit=50) if c.agent_id in ids]
    table = Table(title="Calls that needed approval (query_tool_calls has_approval=True)")
    for column in ("agent", "tool", "decision", "by", "note", "state", "audit trail"):
        table.add_column(column)
    for c in approved:
        trail = " → ".join(entry.state.value for entry in c.audit_trail)
        table.add_row(
            c.agent_id,
            c.tool_name,
            c.approval.decision or "waiting",
            c.approval.decided_by or "",
            c.approval.note or "",
            c.state.value,
            trail,
        )
    console.print(table)

    table = Table(title="Per-agent stats (aggregate_stats)")
    for column in ("agent", "messages", "tool calls", "completed", "failed", "snapshots", "success rate", "by tool"):
        table.add_column(column, justify="left" if column in ("agent", "by tool") else "right")
    for agent_id in ids:
        stats = await store.aggregate_stats(agent_id)
        completed = stats.tool_calls_by_state.get("completed", 0)
        failed_count = stats.tool_calls_by_state.get("failed", 0)
        rate = f"{completed / stats.total_tool_calls:.0%}" if stats.total_tool_calls else "–"
        by_tool = ", ".join(f"{name}×{count}" for name, count in sorted(stats.tool_calls_by_name.items()))
        table.add_row(
            agent_id,
            str(stats.total_messages),
            str(stats.total_tool_calls),
            str(completed),
            str(failed_count),
            str(stats.total_snapshots),
            rate,
            by_tool,
        )
    console.print(table)

    metrics = await store.get_metrics()
    perf = metrics.performance
    console.print(
        f"[dim]store: {metrics.storage.total_agents} agents, {metrics.storage.total_messages} messages, "
        f"{metrics.storage.total_tool_calls} tool calls · this run: {metrics.operations.saves} saves, "
        f"{metrics.operations.loads} loads, {metrics.operations.queries} queries, "
        f"p50 {perf.p50_latency_ms:.2f} ms, p95 {perf.p95_latency_ms:.2f} ms[/]"
    )
    console.print("[dim]Run the demo again: the same agents are resumed from the store and continue.[/]")


def main() -> int:
    """Entry point of ``python -m kode_sdk.demo`` and ``kode demo``."""
    return asyncio.run(run_demo())


if __name__ == "__main__":
    raise SystemExit(main())
