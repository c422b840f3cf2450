"""The agent loop: a conversation with a model that calls tools, persisted step
by step through the :class:`~kode_sdk.store.protocols.Store` protocol alone.

One step: call the provider with the history and the template's tools, store
the assistant message, run each tool it asked for (a
:class:`~kode_sdk.types.ToolCallRecord` moving ``pending → executing →
completed | failed``, one audit entry per move), store the tool results, and go
again until the model stops asking for tools::

    agent = await Agent.create(provider=provider, store=store,
                               template={"id": "assistant", "system_prompt": "Be brief.", "tools": [add]})
    print(await agent.send("What is 2 + 3?"))

Everything needed to continue lives in the store — messages, tool-call records
(approvals and audit trails included), the event timeline, todos, snapshots and
the :class:`~kode_sdk.types.AgentInfo` with its breakpoint — so
:meth:`Agent.resume_from_store` rebuilds the agent in another process, after a
crash or a restart, and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from .. import jsoncodec
from ..errors import (
    AgentExistsError,
    AgentNotFoundError,
    AgentStateError,
    KodeError,
    ProviderError,
    RecordValidationError,
)
from ..store.agent_ids import validate_agent_id
from ..store.capabilities import AgentLocking
from ..store.protocols import Store
from ..store.query_rules import fork_agent_ids
from ..types import (
    AgentInfo,
    Bookmark,
    BreakpointState,
    Message,
    Snapshot,
    Timeline,
    TodoItem,
    TodoSnapshot,
    ToolCallApproval,
    ToolCallAuditEntry,
    ToolCallRecord,
    ToolCallState,
    now_utc,
    to_epoch_ms,
)
from .events import EventBus, Handler, last_stored_seq
from .permissions import check_decision
from .providers.base import ModelRequest, Provider, TextDelta, TurnComplete
from .templates import AgentTemplate, TemplateRegistry
from .tools import Tool, ToolContext, ToolRegistry, default_registry, to_json_result

logger = logging.getLogger("kode_sdk.agent")

__all__ = ["Agent", "CompleteResult", "ResumeStrategy"]

ResumeStrategy = Literal["crash", "manual"]

_TERMINAL = frozenset({ToolCallState.COMPLETED, ToolCallState.FAILED, ToolCallState.DENIED, ToolCallState.SEALED})
_IN_FLIGHT = frozenset({ToolCallState.PENDING, ToolCallState.APPROVED, ToolCallState.EXECUTING})

# Where the loop can stay for long (a model call, a tool, a human, idle): the
# AgentInfo is saved on reaching these. The other breakpoints are passed
# through at once; their transitions are recorded as state_changed events only,
# which saves four of nine info writes per tool-using turn.
_DURABLE_BREAKPOINTS = frozenset(
    {
        BreakpointState.READY,
        BreakpointState.STREAMING_MODEL,
        BreakpointState.TOOL_EXECUTING,
        BreakpointState.AWAITING_APPROVAL,
    }
)

SEALED_RESULT = (
    "This tool call was interrupted: the agent stopped while it was in flight and was resumed later. "
    "Its outcome is unknown and it was not retried."
)


@contextlib.asynccontextmanager
async def _store_lock(store: Store, agent_id: str, timeout_ms: int) -> AsyncIterator[None]:
    """Hold the agent's lock when the store has agent locks (SqliteStore,
    PostgresStore, JSONStore); a store without them relies on the caller's own
    discipline. Inside a caller's ``store.agent_lock(agent_id)`` this nests."""
    if not isinstance(store, AgentLocking):
        yield
        return
    async with store.agent_lock(agent_id, timeout_ms):
        yield


class _ChunkStream:
    """Streamed text chunks into the store in batches (``append_events``).

    A chunk arriving while the previous batch is being written joins the next
    batch: a fast store adds no delay (each chunk is written as it comes), a
    slow one gets bigger batches, at most ``max_batch`` (then the stream waits
    for the write, so memory stays bounded). Each chunk reaches subscribers
    once it is stored, as every event does.
    """

    def __init__(self, bus: EventBus, step: int, max_batch: int = 50) -> None:
        self._bus = bus
        self._step = step
        self._max_batch = max_batch
        self._pending: list[dict[str, Any]] = []
        self._writing: asyncio.Task[Any] | None = None

    async def add(self, delta: str) -> None:
        """Queue one chunk; start a write unless one is in flight."""
        self._pending.append({"step": self._step, "delta": delta})
        if self._writing is not None:
            if not self._writing.done() and len(self._pending) < self._max_batch:
                return
            writing, self._writing = self._writing, None
            await writing
        batch, self._pending = self._pending, []
        self._writing = asyncio.ensure_future(self._bus.emit_many("progress", "text_chunk", batch))

    async def flush(self) -> None:
        """Write everything still pending; return once it is stored."""
        writing, self._writing = self._writing, None
        try:
            if writing is not None:
                await writing
        finally:
            batch, self._pending = self._pending, []
            if batch:
                await self._bus.emit_many("progress", "text_chunk", batch)


class _Unit:
    """What one step writes, committed together by :meth:`Agent._step`."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.records: dict[str, ToolCallRecord] = {}  # by id: a call's last state in the step
        self.save_info = False


class CompleteResult(BaseModel):
    """What :meth:`Agent.chat` and :meth:`Agent.decide` return.

    ``status`` is ``"ok"`` when the model finished its turn (``text`` is its
    final text) and ``"paused"`` when tool calls wait for a decision
    (``permission_ids`` names them). ``last`` is the bookmark of the last event.
    """

    status: Literal["ok", "paused"]
    text: str = ""
    last: Bookmark | None = None
    permission_ids: list[str] = Field(default_factory=list)


def _text_of(message: Message) -> str:
    return "".join(block["text"] for block in message.content if block.get("type") == "text")


def _tool_uses(message: Message | None) -> list[dict[str, Any]]:
    if message is None or message.role != "assistant":
        return []
    return [block for block in message.content if block.get("type") == "tool_use"]


def _last_safe_point(messages: Sequence[Message]) -> int:
    """The index of the last message after which the conversation is whole
    (no tool use left without its result): where a snapshot or a fork may cut."""
    for index in range(len(messages) - 1, -1, -1):
        if not _tool_uses(messages[index]):
            return index
    return -1


def _result_text(record: ToolCallRecord) -> str:
    if record.state is ToolCallState.FAILED:
        return f"Error: {record.error}"
    if record.state is ToolCallState.DENIED:
        note = record.approval.note
        return f"Permission denied: {record.error}" + (f" ({note})" if note else "")
    if record.state is ToolCallState.SEALED:
        return SEALED_RESULT
    result = record.result
    if isinstance(result, str):
        return result
    return jsoncodec.dumps(result, "result")


def _result_block(record: ToolCallRecord) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": record.id,
        "content": _result_text(record),
        "is_error": record.state is not ToolCallState.COMPLETED,
    }


class Agent:
    """One agent: a template, a provider and a store, driven by :meth:`chat`.

    Build one with :meth:`create` (new id) or :meth:`resume_from_store`
    (existing id); the constructor is internal. One agent object runs one
    ``chat``/``decide`` at a time; when the store offers agent locks
    (:class:`~kode_sdk.store.protocols.ExtendedStore`), each of those calls also
    holds the agent's lock, so two processes never drive the same agent at once.
    """

    def __init__(
        self,
        *,
        store: Store,
        provider: Provider,
        template: AgentTemplate,
        tools: Sequence[Tool],
        info: AgentInfo,
        messages: list[Message],
        records: Iterable[ToolCallRecord],
        todos: TodoSnapshot | None,
        bus: EventBus,
        lock_timeout_ms: int,
    ) -> None:
        self._store = store
        self._provider = provider
        self._template = template
        self._tools = {t.name: t for t in tools}
        self._info = info
        self._messages = messages
        self._todos = todos
        self._bus = bus
        self._lock_timeout_ms = lock_timeout_ms
        self._busy = asyncio.Lock()
        self._set_records(records)
        self._last_sfp = _last_safe_point(messages)

    def _set_records(self, records: Iterable[ToolCallRecord]) -> None:
        self._records: dict[str, ToolCallRecord] = {}
        self._unit: _Unit | None = None
        self._stale = False  # a step failed to commit: reload before the next one
        # Ids of calls waiting for a decision / left in flight, kept up to date
        # by _track so checks need not scan every record an old agent has.
        self._waiting: dict[str, None] = {}
        self._in_flight: dict[str, None] = {}
        for record in records:
            self._track(record)

    # ------------------------------------------------------------------ construction

    @classmethod
    async def create(
        cls,
        *,
        provider: Provider,
        store: Store,
        template: AgentTemplate | Mapping[str, Any],
        agent_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tools: ToolRegistry | None = None,
        lock_timeout_ms: int = 30_000,
    ) -> Agent:
        """Start a new agent and save its :class:`~kode_sdk.types.AgentInfo`.

        ``template`` is an :class:`AgentTemplate` or a dict; its tool names are
        looked up in ``tools`` (default: the registry ``@tool`` fills).
        ``agent_id`` defaults to a fresh ``agt-…`` id; an id the store already
        holds raises :class:`~kode_sdk.errors.AgentExistsError`.
        """
        made = AgentTemplate.coerce(template)
        resolved = (tools or default_registry).resolve(made.tools)
        agent_id = validate_agent_id(agent_id if agent_id is not None else f"agt-{uuid.uuid4().hex[:16]}")
        if await store.exists(agent_id):
            raise AgentExistsError(agent_id)
        info = AgentInfo(
            agent_id=agent_id,
            template_id=made.id,
            metadata=dict(metadata or {}),
            breakpoint=BreakpointState.READY,
        )
        agent = cls(
            store=store,
            provider=provider,
            template=made,
            tools=resolved,
            info=info,
            messages=[],
            records=[],
            todos=None,
            bus=EventBus(store, agent_id),
            lock_timeout_ms=lock_timeout_ms,
        )
        async with agent._guard():
            await agent._emit("monitor", "agent_created", {"template_id": made.id})
            await agent._save_info()
        return agent

    @classmethod
    async def resume_from_store(
        cls,
        agent_id: str,
        *,
        store: Store,
        provider: Provider,
        templates: TemplateRegistry | AgentTemplate | Mapping[str, Any] | Sequence[AgentTemplate | Mapping[str, Any]],
        strategy: ResumeStrategy = "crash",
        tools: ToolRegistry | None = None,
        lock_timeout_ms: int = 30_000,
    ) -> Agent:
        """Rebuild an agent from the store alone and emit ``agent_resumed``.

        ``strategy="crash"`` assumes the previous run died: tool calls it left
        in flight (pending, approved or executing) are sealed — state
        ``sealed``, an audit entry, and a tool result telling the model the
        outcome is unknown — so none runs twice. Calls awaiting approval keep
        waiting for :meth:`decide`. ``strategy="manual"`` changes nothing; in-flight
        calls stay as they are until :meth:`seal_in_flight`, and ``chat``
        refuses to run past them.
        """
        if strategy not in ("crash", "manual"):
            raise ValueError(f"strategy must be 'crash' or 'manual'; got {strategy!r}")
        validate_agent_id(agent_id)
        registry = TemplateRegistry.coerce(templates)
        # Load under the lock: a call another live process is running must not
        # be mistaken for one left behind by a crash.
        async with _store_lock(store, agent_id, lock_timeout_ms):
            info = await store.load_info(agent_id)
            if info is None:
                raise AgentNotFoundError(agent_id)
            template = registry.get(info.template_id)
            agent = cls(
                store=store,
                provider=provider,
                template=template,
                tools=(tools or default_registry).resolve(template.tools),
                info=info,
                messages=[],
                records=[],
                todos=None,
                bus=EventBus(store, agent_id),
                lock_timeout_ms=lock_timeout_ms,
            )
            async with agent._busy:
                await agent._reload(info)
                await agent._resume(strategy)
        return agent

    async def _resume(self, strategy: ResumeStrategy) -> None:
        stopped_at = self._info.breakpoint
        sealed: list[str] = []
        async with self._step():  # the repair is one transaction too
            if strategy == "crash":
                sealed = await self._seal("sealed on resume: the agent stopped while this call was in flight")
                if not self.pending_permissions:
                    await self._append_tool_results()
            await self._emit(
                "monitor",
                "agent_resumed",
                {
                    "strategy": strategy,
                    "sealed": sealed,
                    "in_flight": list(self._in_flight),
                    "breakpoint": stopped_at.value if stopped_at else None,
                    "message_count": len(self._messages),
                },
            )
            await self._set_breakpoint(
                BreakpointState.AWAITING_APPROVAL if self.pending_permissions else BreakpointState.READY
            )

    # ------------------------------------------------------------------ state, read-only

    @property
    def agent_id(self) -> str:
        """This agent's id."""
        return self._info.agent_id

    @property
    def template(self) -> AgentTemplate:
        """The template the agent was made from."""
        return self._template

    @property
    def store(self) -> Store:
        """The store everything is written to."""
        return self._store

    @property
    def provider(self) -> Provider:
        """The model provider."""
        return self._provider

    @property
    def info(self) -> AgentInfo:
        """The agent's info as last saved."""
        return self._info

    @property
    def breakpoint(self) -> BreakpointState | None:
        """Where the loop stands."""
        return self._info.breakpoint

    @property
    def messages(self) -> list[Message]:
        """The conversation (a copy)."""
        return list(self._messages)

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        """Every tool-call record, oldest first (a copy)."""
        return list(self._records.values())

    @property
    def pending_permissions(self) -> list[str]:
        """Ids of tool calls waiting for :meth:`decide`."""
        return list(self._waiting)

    @property
    def todos(self) -> TodoSnapshot | None:
        """The todo list, if one was ever set."""
        return self._todos

    @property
    def last_bookmark(self) -> Bookmark | None:
        """The bookmark of the last event emitted."""
        return self._bus.last_bookmark

    # ------------------------------------------------------------------ events

    def on(self, type: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(timeline)`` for every event of ``type`` (``"*"``: every
        event); returns a function that removes it. Handlers run inside the
        loop: they must not call :meth:`chat` or :meth:`decide` themselves
        (schedule those with ``asyncio.create_task`` instead)."""
        return self._bus.on(type, handler)

    def subscribe(self, channels: Iterable[str] | str | None = None, since: Any = None) -> AsyncIterator[Timeline]:
        """Events of ``channels`` as :class:`~kode_sdk.types.Timeline` envelopes:
        the stored ones after ``since`` (when given), then live ones."""
        return self._bus.subscribe(channels, since)

    async def _emit(self, channel: str, type: str, data: dict[str, Any] | None = None) -> Timeline:
        return await self._bus.emit(channel, type, data)

    # ------------------------------------------------------------------ conversation

    async def send(self, text: str | Message | Sequence[dict[str, Any]]) -> str:
        """Send a user message and return the model's final text.

        Raises :class:`~kode_sdk.errors.AgentStateError` if a tool call needs
        approval first (use :meth:`chat` and :meth:`decide` for those flows).
        """
        result = await self.chat(text)
        if result.status == "paused":
            raise AgentStateError(
                f"agent {self.agent_id!r} paused: tool calls {result.permission_ids} await approval; "
                "use chat() and decide()"
            )
        return result.text

    async def chat(self, input: str | Message | Sequence[dict[str, Any]]) -> CompleteResult:
        """Send a user message and run the loop until the model is done or a
        tool call needs approval."""
        message = input if isinstance(input, Message) else Message.coerce({"role": "user", "content": input}, "input")
        if message.role != "user":
            raise ValueError(f"chat takes a user message; got role {message.role!r}")
        async with self._guard():
            if self.pending_permissions:
                raise AgentStateError(
                    f"agent {self.agent_id!r} is waiting for decisions on {self.pending_permissions}; "
                    "call decide() first"
                )
            if self._in_flight:
                raise AgentStateError(
                    f"agent {self.agent_id!r} has tool calls in flight from an earlier run: {list(self._in_flight)}; "
                    "call seal_in_flight() first"
                )
            await self._append(message)
            return await self._run()

    async def decide(
        self, permission_id: str, decision: Literal["allow", "deny"], note: str | None = None, *, by: str = "user"
    ) -> CompleteResult:
        """Allow or deny a tool call waiting for approval.

        The decision goes into the call's ``approval`` and audit trail and a
        ``permission_decided`` control event. Once no call waits any more the
        loop continues — allowed calls run, denied ones report the denial to
        the model — and the outcome is returned as from :meth:`chat`.
        """
        verdict = check_decision(decision)
        async with self._guard():
            record = self._records.get(permission_id)
            if record is None or record.state is not ToolCallState.APPROVAL_REQUIRED:
                state = "unknown" if record is None else record.state.value
                raise AgentStateError(
                    f"no tool call {permission_id!r} awaits a decision (state: {state}); "
                    f"waiting: {self.pending_permissions}"
                )
            now = now_utc()
            approval = record.approval.model_copy(
                update={"decision": verdict, "decided_by": by, "decided_at": now, "note": note}
            )
            if verdict == "allow":
                record = self._move(record, ToolCallState.APPROVED, f"allowed by {by}", approval=approval)
            else:
                record = self._move(
                    record,
                    ToolCallState.DENIED,
                    f"denied by {by}",
                    approval=approval,
                    is_error=True,
                    error=f"the call was denied by {by}",
                    completed_at=now,
                )
            waiting = self.pending_permissions
            async with self._step():
                await self._save_record(record)
                await self._emit(
                    "control",
                    "permission_decided",
                    {"call_id": record.id, "tool": record.name, "decision": verdict, "decided_by": by, "note": note},
                )
                if waiting:
                    await self._save_info()  # the paused breakpoint and last bookmark, stored under the lock
            if waiting:
                return CompleteResult(status="paused", last=self._bus.last_bookmark, permission_ids=waiting)
            return await self._run()

    async def seal_in_flight(self, note: str = "sealed by the application") -> list[str]:
        """Seal every tool call left in flight (after a ``manual`` resume); returns their ids."""
        async with self._guard(), self._step():
            sealed = await self._seal(note)
            if not self.pending_permissions:
                await self._append_tool_results()
            await self._save_info()
        return sealed

    # ------------------------------------------------------------------ snapshots and forks

    async def snapshot(self, label: str | None = None) -> str:
        """Save the conversation up to its last safe point as a snapshot; returns its id."""
        messages = self._messages[: self._last_sfp + 1]
        snapshot = Snapshot(
            id=f"snap-{to_epoch_ms(now_utc())}-{secrets.token_hex(4)}",
            messages=messages,
            last_sfp_index=self._last_sfp,
            last_bookmark=self._bus.last_bookmark,
            metadata={"label": label} if label is not None else None,
        )
        await self._store.save_snapshot(self.agent_id, snapshot)
        await self._emit(
            "monitor", "snapshot_created", {"snapshot_id": snapshot.id, "label": label, "message_count": len(messages)}
        )
        return snapshot.id

    async def fork(self, snapshot_id: str | None = None) -> Agent:
        """A new agent continuing from a snapshot (default: from now, at the
        last safe point). Its lineage is this agent's plus this agent's id; it
        gets copies of the messages, the tool-call records they mention and the
        todos, and shares the provider, store and template."""
        if snapshot_id is None:
            messages = self._messages[: self._last_sfp + 1]
        else:
            snapshot = await self._store.load_snapshot(self.agent_id, snapshot_id)
            if snapshot is None:
                raise AgentStateError(f"agent {self.agent_id!r} has no snapshot {snapshot_id!r}")
            messages = list(snapshot.messages)
        child_id = fork_agent_ids(self.agent_id, 1)[0]
        used = {block["id"] for m in messages for block in _tool_uses(m)}
        records = [r for r in self._records.values() if r.id in used]
        info = AgentInfo(
            agent_id=child_id,
            template_id=self._template.id,
            lineage=[*self._info.lineage, self.agent_id],
            config_version=self._info.config_version,
            metadata=dict(self._info.metadata),
            breakpoint=BreakpointState.READY,
        )
        await self._store.save_messages(child_id, messages)
        if records:
            await self._store.save_tool_call_records(child_id, records)
        if self._todos is not None:
            await self._store.save_todos(child_id, self._todos)
        child = Agent(
            store=self._store,
            provider=self._provider,
            template=self._template,
            tools=list(self._tools.values()),
            info=info,
            messages=list(messages),
            records=records,
            todos=self._todos,
            bus=EventBus(self._store, child_id),
            lock_timeout_ms=self._lock_timeout_ms,
        )
        await child._emit("monitor", "agent_forked", {"parent_id": self.agent_id, "snapshot_id": snapshot_id})
        # The info goes last: the fork "exists" only once everything it needs is stored.
        await child._save_info()
        await self._emit("monitor", "fork_created", {"child_id": child_id, "snapshot_id": snapshot_id})
        return child

    # ------------------------------------------------------------------ todos

    async def set_todos(self, todos: Sequence[TodoItem | Mapping[str, Any]]) -> TodoSnapshot:
        """Replace the todo list (version + 1) and emit ``todo_changed``."""
        items = [TodoItem.coerce(item, f"todos[{i}]") for i, item in enumerate(todos)]
        version = (self._todos.version + 1) if self._todos is not None else 1
        snapshot = TodoSnapshot(todos=items, version=version)
        await self._store.save_todos(self.agent_id, snapshot)
        self._todos = snapshot
        await self._emit(
            "monitor",
            "todo_changed",
            {"version": version, "total": len(items), "completed": sum(t.status == "completed" for t in items)},
        )
        return snapshot

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> CompleteResult:
        step = 0
        while True:
            waiting = await self._settle_tool_calls()
            if waiting:
                await self._set_breakpoint(BreakpointState.AWAITING_APPROVAL)
                return CompleteResult(status="paused", last=self._bus.last_bookmark, permission_ids=waiting)
            if step >= self._template.max_steps:
                await self._emit(
                    "monitor",
                    "error",
                    {"phase": "loop", "message": f"stopped after max_steps={self._template.max_steps} model calls"},
                )
                return await self._finish("max_steps")
            step += 1
            assistant = await self._call_model(step)
            if not _tool_uses(assistant):
                return await self._finish("end_turn")

    async def _finish(self, reason: str) -> CompleteResult:
        text = next((_text_of(m) for m in reversed(self._messages) if m.role == "assistant"), "")
        async with self._step():
            await self._set_breakpoint(BreakpointState.READY, save=False)
            await self._emit("progress", "done", {"reason": reason})
            await self._save_info()
        return CompleteResult(status="ok", text=text, last=self._bus.last_bookmark)

    async def _call_model(self, step: int) -> Message:
        async with self._step():
            await self._set_breakpoint(BreakpointState.PRE_MODEL)
            await self._set_breakpoint(BreakpointState.STREAMING_MODEL)
        request = ModelRequest(
            system=self._template.system_prompt,
            messages=list(self._messages),
            tools=[t.spec for t in self._tools.values()],
            max_tokens=self._template.max_tokens,
            agent_id=self.agent_id,
        )
        started = time.perf_counter()
        turn: TurnComplete | None = None
        chunks = _ChunkStream(self._bus, step)
        try:
            async for event in self._provider.stream(request):
                if isinstance(event, TextDelta):
                    if event.text:
                        await chunks.add(event.text)
                elif isinstance(event, TurnComplete):
                    turn = event
            await chunks.flush()
            if turn is None:
                raise ProviderError(f"provider {self._provider.name!r} ended its stream without a complete turn")
            assistant = Message.coerce({"role": "assistant", "content": turn.content}, "assistant turn")
        except Exception as exc:
            try:
                await chunks.flush()  # the chunks received before the failure come first
            except Exception:
                logger.exception("text chunks of step %d could not be stored", step)
            async with self._step():
                await self._emit(
                    "monitor", "error", {"phase": "model", "message": f"{type(exc).__name__}: {exc}", "step": step}
                )
                await self._set_breakpoint(BreakpointState.READY)
            if isinstance(exc, KodeError):
                raise
            raise ProviderError(f"provider {self._provider.name!r} failed: {type(exc).__name__}: {exc}") from exc
        usage = turn.usage
        async with self._step():  # the model's turn: its message and events, all or none
            await self._append(assistant)
            await self._emit(
                "monitor",
                "token_usage",
                {
                    "step": step,
                    "model": turn.model,
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "total_tokens": usage.total_tokens,
                },
            )
            await self._emit(
                "monitor",
                "step_complete",
                {
                    "step": step,
                    "stop_reason": turn.stop_reason,
                    "tool_uses": len(_tool_uses(assistant)),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )
        return assistant

    async def _settle_tool_calls(self) -> list[str]:
        """Run the tool calls of the last assistant message that can run, store
        their results as one user message once every call has one, and return
        the ids still waiting for a decision."""
        uses = _tool_uses(self._messages[-1] if self._messages else None)
        if not uses:
            return []
        created = [self._open_record(use) for use in uses if use["id"] not in self._records]
        if created:
            # Every new record is stored now, in order (an upsert puts a new id
            # last), in one transaction with the events that announce them.
            async with self._step():
                await self._set_breakpoint(BreakpointState.TOOL_PENDING)
                for record in created:
                    await self._save_record(self._records[record.id])
                for record in created:
                    if record.state is ToolCallState.APPROVAL_REQUIRED:
                        await self._emit(
                            "control",
                            "permission_required",
                            {"call_id": record.id, "tool": record.name, "input": record.input},
                        )
                    elif record.state is ToolCallState.DENIED:
                        await self._emit_tool_end(record)
        for use in uses:
            record = self._records[use["id"]]
            if record.state in (ToolCallState.PENDING, ToolCallState.APPROVED):
                await self._execute(record)
        waiting = [u["id"] for u in uses if self._records[u["id"]].state is ToolCallState.APPROVAL_REQUIRED]
        if not waiting:
            async with self._step():
                await self._append_tool_results()
                await self._set_breakpoint(BreakpointState.POST_TOOL)
        return waiting

    def _open_record(self, use: dict[str, Any]) -> ToolCallRecord:
        now = now_utc()
        record = ToolCallRecord(
            id=use["id"],
            name=use["name"],
            input=use.get("input", {}),
            state=ToolCallState.PENDING,
            created_at=now,
            updated_at=now,
            audit_trail=[ToolCallAuditEntry(state=ToolCallState.PENDING, timestamp=to_epoch_ms(now))],
        )
        verdict = self._template.permission.evaluate(record.name)
        if verdict == "ask":
            return self._move(
                record,
                ToolCallState.APPROVAL_REQUIRED,
                "the template requires approval",
                approval=ToolCallApproval(required=True),
            )
        if verdict == "deny":
            approval = ToolCallApproval(required=False, decision="deny", decided_by="policy", decided_at=now)
            return self._move(
                record,
                ToolCallState.DENIED,
                "denied by the template's permission policy",
                approval=approval,
                is_error=True,
                error="the template's permission policy denies this tool",
                completed_at=now,
            )
        self._track(record)
        return record

    async def _execute(self, record: ToolCallRecord) -> None:
        # Committed before the tool runs: if the process dies now, resume finds
        # the call in flight and seals it instead of running it a second time.
        async with self._step():
            await self._set_breakpoint(BreakpointState.PRE_TOOL)
            started_at = now_utc()
            record = self._move(record, ToolCallState.EXECUTING, started_at=started_at)
            await self._save_record(record)
            await self._set_breakpoint(BreakpointState.TOOL_EXECUTING)
            await self._emit(
                "progress", "tool_start", {"call": {"id": record.id, "name": record.name, "input": record.input}}
            )
        started = time.perf_counter()
        tool = self._tools.get(record.name)
        try:
            if tool is None:
                known = ", ".join(self._tools) or "none"
                raise LookupError(f"there is no tool named {record.name!r} (available: {known})")
            value = await tool.run(record.input, ToolContext(agent_id=self.agent_id, call_id=record.id, agent=self))
            result, error = to_json_result(value), None
        except Exception as exc:
            # The model sees the failure as an error result and can react to it.
            result, error = None, f"{type(exc).__name__}: {exc}"
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        record = self._move(
            record,
            ToolCallState.COMPLETED if error is None else ToolCallState.FAILED,
            error,
            result=result,
            error=error,
            is_error=error is not None,
            completed_at=now_utc(),
            duration_ms=duration_ms,
        )
        async with self._step():
            await self._save_record(record)
            await self._emit_tool_end(record)
            await self._emit(
                "monitor",
                "tool_executed",
                {
                    "call_id": record.id,
                    "name": record.name,
                    "state": record.state.value,
                    "is_error": record.is_error,
                    "duration_ms": duration_ms,
                },
            )
            if error is not None:
                await self._emit("monitor", "error", {"phase": "tool", "call_id": record.id, "message": error})

    async def _emit_tool_end(self, record: ToolCallRecord) -> None:
        await self._emit(
            "progress",
            "tool_end",
            {
                "call": {
                    "id": record.id,
                    "name": record.name,
                    "state": record.state.value,
                    "is_error": record.is_error,
                    "duration_ms": record.duration_ms,
                }
            },
        )

    async def _append_tool_results(self) -> None:
        """Store the tool results of the last assistant message, if every call has one."""
        uses = _tool_uses(self._messages[-1] if self._messages else None)
        if not uses:
            return
        records = [self._records.get(u["id"]) for u in uses]
        if all(r is not None and r.state in _TERMINAL for r in records):
            await self._append(Message(role="user", content=[_result_block(r) for r in records if r is not None]))

    async def _seal(self, note: str) -> list[str]:
        """Seal the calls left in flight, including tool uses of the last
        assistant message that never got a record (the process died first)."""
        for use in _tool_uses(self._messages[-1] if self._messages else None):
            if use["id"] not in self._records:
                self._open_record(use)
        sealed = list(self._in_flight)
        for call_id in sealed:
            self._move(
                self._records[call_id],
                ToolCallState.SEALED,
                note,
                is_error=True,
                error="interrupted",
                completed_at=now_utc(),
            )
        if sealed:
            for call_id in sealed:
                await self._save_record(self._records[call_id])
            for call_id in sealed:
                await self._emit_tool_end(self._records[call_id])
        return sealed

    # ------------------------------------------------------------------ persistence

    def _move(
        self, record: ToolCallRecord, state: ToolCallState, note: str | None = None, **changes: Any
    ) -> ToolCallRecord:
        """Move ``record`` to ``state`` with one audit entry; keeps it as the current record."""
        now = now_utc()
        entry = ToolCallAuditEntry(state=state, timestamp=to_epoch_ms(now), note=note)
        moved = record.model_copy(
            update={"state": state, "updated_at": now, "audit_trail": [*record.audit_trail, entry], **changes}
        )
        self._track(moved)
        return moved

    def _track(self, record: ToolCallRecord) -> None:
        self._records[record.id] = record
        if record.state is ToolCallState.APPROVAL_REQUIRED:
            self._waiting[record.id] = None
        else:
            self._waiting.pop(record.id, None)
        if record.state in _IN_FLIGHT:
            self._in_flight[record.id] = None
        else:
            self._in_flight.pop(record.id, None)

    @contextlib.asynccontextmanager
    async def _step(self) -> AsyncIterator[None]:
        """Persist what the block writes as one transaction: the messages it
        appends, the tool-call records it changes (one row each), the events it
        emits and the info, all committed together at the end of the block (or,
        if the block raises, none of them). Blocks nest into the outermost."""
        if self._unit is not None:
            yield
            return
        unit = self._unit = _Unit()
        seq, bookmark = self._bus.seq, self._bus.last_bookmark
        self._bus.hold()
        try:
            try:
                yield
            finally:
                self._unit = None
                events = self._bus.held()
            await self._commit(unit, events)
        except BaseException:
            # Nothing of the step was stored: number events as before it, and
            # take the state from the store on the next call (this object may
            # hold messages and records the store does not).
            self._bus.reset(seq, bookmark)
            self._stale = True
            raise

    async def _commit(self, unit: _Unit, events: list[Timeline]) -> None:
        agent_id = self.agent_id
        for attempt in (1, 2):
            info = self._info
            if unit.save_info:
                last = events[-1].bookmark if events else self._bus.last_bookmark
                info = self._info_now(last)
            try:
                async with self._store.transaction(agent_id) as tx:
                    if unit.messages:
                        await tx.append_messages(agent_id, unit.messages)
                    for record in unit.records.values():
                        await tx.upsert_tool_call_record(agent_id, record)
                    if events:
                        await tx.append_events(agent_id, events)
                    if unit.save_info:
                        await tx.save_info(agent_id, info)
            except RecordValidationError:
                if not events or attempt == 2:
                    raise
                # Another writer (a second Agent over the same id, an earlier
                # process) took these seqs: number them after what the store holds.
                events = self._bus.renumber(
                    events, await last_stored_seq(self._store, agent_id, self._info.last_bookmark)
                )
                continue
            break
        if unit.save_info:
            self._info = info
        await self._bus.dispatch_stored(events)

    async def _save_record(self, record: ToolCallRecord) -> None:
        """Store one tool call's new state (one row), in the current step if any."""
        if self._unit is not None:
            self._unit.records[record.id] = record
        else:
            await self._store.upsert_tool_call_record(self.agent_id, record)

    async def _append(self, message: Message) -> None:
        if self._unit is not None:
            self._unit.messages.append(message)
        else:
            await self._store.append_messages(self.agent_id, [message])
        self._messages.append(message)
        if not _tool_uses(message):
            self._last_sfp = len(self._messages) - 1

    async def _set_breakpoint(self, state: BreakpointState, *, save: bool = True) -> None:
        previous = self._info.breakpoint
        if previous is not state:
            await self._emit(
                "monitor", "state_changed", {"from": previous.value if previous else None, "to": state.value}
            )
        self._info = self._info.model_copy(update={"breakpoint": state})
        if save and state in _DURABLE_BREAKPOINTS:
            await self._save_info()

    def _info_now(self, last_bookmark: Bookmark | None) -> AgentInfo:
        return self._info.model_copy(
            update={
                "message_count": len(self._messages),
                "last_sfp_index": self._last_sfp,
                "last_bookmark": last_bookmark,
            }
        )

    async def _save_info(self) -> None:
        if self._unit is not None:
            self._unit.save_info = True  # written at the commit, with the step's last bookmark
            return
        self._info = self._info_now(self._bus.last_bookmark)
        await self._store.save_info(self.agent_id, self._info)

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """One loop at a time in this object and, where the store has agent
        locks, in every process; and the state this object holds is the
        store's (another worker may have moved the agent on meanwhile)."""
        async with self._busy, _store_lock(self._store, self.agent_id, self._lock_timeout_ms):
            stored = await self._store.load_info(self.agent_id)
            if stored is not None and (
                self._stale
                or stored.last_bookmark != self._info.last_bookmark
                or stored.message_count != len(self._messages)
            ):
                await self._reload(stored)
            yield

    async def _reload(self, info: AgentInfo) -> None:
        """Take the agent's state from the store."""
        agent_id = self.agent_id
        self._stale = False
        self._info = info
        self._messages = await self._store.load_messages(agent_id)
        self._set_records(await self._store.load_tool_call_records(agent_id))
        self._todos = await self._store.load_todos(agent_id)
        self._last_sfp = _last_safe_point(self._messages)
        self._bus.reset(await last_stored_seq(self._store, agent_id, info.last_bookmark), info.last_bookmark)

    def __repr__(self) -> str:
        state = self._info.breakpoint.value if self._info.breakpoint else "new"
        return f"<Agent {self.agent_id!r} template={self._template.id!r} {state} messages={len(self._messages)}>"
