"""The unit of work: ``async with store.transaction(agent_id) as tx:``.

A :class:`StoreTransaction` offers the store's write methods for one agent;
what is written through it is committed all at once when the block ends, or
not at all if the block raises. Every call goes through the store's own
public method, so validation, bounds and metrics are exactly those of the
normal write path (decided once, above the backends); only *where* the
write lands differs, and a backend says that with a
:class:`TransactionDriver`:

* SQLite collects each call's job and runs them all in one thread hop and
  one ``BEGIN IMMEDIATE`` … ``COMMIT``;
* PostgreSQL sends each call's statements into one pipelined transaction on
  one connection (one round trip at ``COMMIT`` for the step paths);
* JSONStore collects each call's plan and, at commit, plans them all
  against one overlay of the agent's files and writes them as one journal
  entry (:mod:`kode_sdk.store.json_unit`);
* :class:`BufferedDriver` (any store without a driver of its own) keeps the
  validated calls and replays them at commit (see :class:`BufferedDriver`
  for what that promises).

Reads through ``tx`` (``load_messages``, ``load_tool_call_records``,
``load_info``, ``load_todos``) see the transaction's own writes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

from ..errors import RecordValidationError, StoreClosedError
from ..types import (
    AgentInfo,
    CompressionRecord,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    RecoveredFile,
    Snapshot,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
)

__all__ = ["BufferedDriver", "OverlayDriver", "StoreTransaction", "TransactionDriver"]

T = TypeVar("T")

#: A store call to run in the transaction (``lambda: store.save_info(a, info)``).
Call = Callable[[], Awaitable[Any]]


class TransactionDriver:
    """How one backend runs a transaction's calls. One driver per transaction.

    ``write`` runs a store call so that what it writes joins the transaction
    (and is validated now: a bad argument raises at the call, inside the
    block). ``read`` runs a store read so that it sees those writes.
    ``commit`` makes them durable and visible at once; ``rollback`` forgets
    them. ``write_events`` receives validated event rows (see
    :func:`kode_sdk.store.events.event_rows`) together with a replay call.
    """

    #: True when neither a crash during ``commit`` nor a write failing in it
    #: can keep part of the writes.
    atomic_on_crash = False

    async def write(self, call: Call) -> None:
        """Run ``call`` (a store write) inside the transaction."""
        raise NotImplementedError

    async def write_events(self, agent_id: str, rows: list[Any], call: Call) -> None:
        """Append validated event ``rows`` inside the transaction; ``call``
        appends them through the store's public method."""
        await self.write(call)

    async def read(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` (a store read) so that it sees the transaction's writes."""
        raise NotImplementedError

    async def commit(self) -> None:
        """Commit every write of the transaction, all or none."""
        raise NotImplementedError

    async def rollback(self) -> None:
        """Discard every write of the transaction (nothing was visible)."""
        raise NotImplementedError


class OverlayDriver(TransactionDriver):
    """A driver whose writes stay out of the store until the commit.

    Reads through the transaction see its writes for messages, tool calls,
    info and todos: :class:`StoreTransaction` lays the queued writes (each
    remembered with :meth:`note`) over the stored state.
    """

    def __init__(self) -> None:
        # (kind, payload) of each queued write, for reads that must see them.
        self._overlay: list[tuple[str, Any]] = []

    def note(self, kind: str, payload: Any) -> None:
        """Remember a queued write's effect for reads through the transaction."""
        self._overlay.append((kind, payload))

    async def read(self, call: Callable[[], Awaitable[T]]) -> T:
        """Not used: :class:`StoreTransaction` overlays the queued writes itself."""
        return await call()


class BufferedDriver(OverlayDriver):
    """Queue validated calls and replay them, in order, at commit.

    For stores with no transaction of their own (the in-memory test stores,
    a sync store wrapped for async). Arguments are validated when the call
    is made (through the same coercion the store's methods use), nothing is
    visible before the commit, and an exception inside the block writes
    nothing. The commit replays the calls one after another; each replayed
    call is one of the store's own writes (a concurrent writer of the same
    agent can interleave between them, as between separate calls: hold
    ``agent_lock`` to exclude one), so a crash *during* the commit can keep a
    prefix of the calls, and so can a call that fails during the replay (a
    duplicate event seq found only then): the calls before it stay written.
    ``atomic_on_crash`` is False to say so; the conformance suite checks
    those two guarantees only where it is True.
    """

    atomic_on_crash = False

    def __init__(self, store: Any, agent_id: str) -> None:
        super().__init__()
        self._store = store
        self._agent_id = agent_id
        self._calls: list[Call] = []

    async def write(self, call: Call) -> None:
        """Queue ``call`` for the commit."""
        self._calls.append(call)

    async def commit(self) -> None:
        """Replay the queued calls in order."""
        calls, self._calls = self._calls, []
        if not calls:
            return
        for call in calls:
            await call()

    async def rollback(self) -> None:
        """Forget the queued calls."""
        self._calls = []
        self._overlay = []


class StoreTransaction:
    """The write methods of a store, for one agent, committed all or nothing.

    Obtained from ``store.transaction(agent_id)``; use it only inside its
    ``async with`` block. Each method takes the same arguments as the
    store's method of the same name; ``agent_id`` must be the
    transaction's agent (one agent per transaction: every row of a step
    shares its shard key). Arguments are validated at the call, so a bad one
    raises inside the block and nothing of the transaction is written.

    >>> async with store.transaction("agt-1") as tx:           # doctest: +SKIP
    ...     await tx.append_messages("agt-1", [{"role": "user", "content": "hi"}])
    ...     await tx.append_events("agt-1", events)
    """

    def __init__(self, store: Any, agent_id: str, driver: TransactionDriver) -> None:
        self.agent_id = agent_id
        self._store: Any = store
        self._driver = driver
        self._state: Literal["open", "committed", "rolled back"] = "open"
        self._writes = 0
        #: True when a crash during the commit can never keep part of the writes
        #: (SQLite, PostgreSQL, JSONStore); False for the buffered replay.
        self.atomic_on_crash: bool = driver.atomic_on_crash

    def __repr__(self) -> str:
        return f"<StoreTransaction agent_id={self.agent_id!r} {self._state}>"

    # ------------------------------------------------------------------ plumbing

    def _check(self, agent_id: str) -> None:
        if self._state != "open":
            raise StoreClosedError(f"transaction of agent {self.agent_id!r} is {self._state}: use it inside its block")
        if agent_id != self.agent_id:
            raise RecordValidationError(
                f"agent_id: {agent_id!r} is not the transaction's agent {self.agent_id!r}", field="agent_id"
            )

    async def _write(self, agent_id: str, call: Call, kind: str = "", payload: Any = None) -> None:
        self._check(agent_id)
        await self._driver.write(call)
        self._writes += 1
        if isinstance(self._driver, OverlayDriver) and kind:
            self._driver.note(kind, payload)

    async def _finish(self, ok: bool) -> None:
        started = time.perf_counter()
        committed = False
        try:
            if ok:
                self._state = "committed"
                await self._driver.commit()
                committed = True
            else:
                self._state = "rolled back"
                await self._driver.rollback()
        except BaseException:
            self._state = "rolled back"
            raise
        finally:
            if ok:
                elapsed = (time.perf_counter() - started) * 1000
                self._store.metrics.record("saves", "transaction", elapsed, committed)

    # ------------------------------------------------------------------ writes

    async def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Append ``messages`` after the stored ones (see ``Store.append_messages``)."""
        from .records import coerce_list

        items = coerce_list(Message, messages, "messages")
        await self._write(agent_id, lambda: self._store.append_messages(agent_id, items), "append_messages", items)

    async def save_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Replace the conversation with ``messages`` (see ``Store.save_messages``)."""
        from .records import coerce_list

        items = coerce_list(Message, messages, "messages")
        await self._write(agent_id, lambda: self._store.save_messages(agent_id, items), "save_messages", items)

    async def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None:
        """Write one tool-call record by id (a new id goes last)."""
        item = ToolCallRecord.coerce(record, "record")
        await self._write(agent_id, lambda: self._store.upsert_tool_call_record(agent_id, item), "upsert", item)

    async def save_tool_call_records(
        self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]
    ) -> None:
        """Replace the tool-call records (see ``Store.save_tool_call_records``)."""
        from .records import coerce_list

        items = coerce_list(ToolCallRecord, records, "records")
        await self._write(
            agent_id, lambda: self._store.save_tool_call_records(agent_id, items), "save_tool_calls", items
        )

    async def append_event(self, agent_id: str, timeline: Timeline | Mapping[str, Any]) -> None:
        """Append one event (committed with the transaction)."""
        from .events import event_rows

        self._check(agent_id)
        rows = event_rows(agent_id, timeline, single=True)
        await self._driver.write_events(agent_id, rows, lambda: self._store.append_event(agent_id, timeline))
        self._writes += 1

    async def append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None:
        """Append a batch of events (committed with the transaction)."""
        from .events import event_rows

        self._check(agent_id)
        rows = event_rows(agent_id, timelines)
        if rows:
            await self._driver.write_events(agent_id, rows, lambda: self._store.append_events(agent_id, timelines))
            self._writes += 1

    async def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None:
        """Save the agent's info (see ``Store.save_info``)."""
        item = AgentInfo.coerce(info, "info")
        await self._write(agent_id, lambda: self._store.save_info(agent_id, item), "info", item)

    async def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None:
        """Replace the agent's todo list."""
        item = TodoSnapshot.coerce(snapshot, "snapshot")
        await self._write(agent_id, lambda: self._store.save_todos(agent_id, item), "todos", item)

    async def save_history_window(self, agent_id: str, window: HistoryWindow | Mapping[str, Any]) -> None:
        """Save a history window."""
        await self._save_appended(agent_id, "history_window", window)

    async def save_compression_record(self, agent_id: str, record: CompressionRecord | Mapping[str, Any]) -> None:
        """Save a compression record."""
        await self._save_appended(agent_id, "compression_record", record)

    async def save_recovered_file(self, agent_id: str, file: RecoveredFile | Mapping[str, Any]) -> None:
        """Save a recovered file."""
        await self._save_appended(agent_id, "recovered_file", file)

    async def _save_appended(self, agent_id: str, name: str, record: Any) -> None:
        """Save one record of the append-only kind ``name`` (see ``records.APPEND_KINDS``)."""
        from .records import kind_named

        kind = kind_named(name)
        item = kind.model.coerce(record, kind.argument)
        await self._write(agent_id, lambda: getattr(self._store, kind.save)(agent_id, item))

    async def save_media_cache(self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]) -> None:
        """Replace the media cache records."""
        from .records import coerce_list

        items = coerce_list(MediaCacheRecord, records, "records")
        await self._write(agent_id, lambda: self._store.save_media_cache(agent_id, items))

    async def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None:
        """Save a snapshot."""
        item = Snapshot.coerce(snapshot, "snapshot")
        await self._write(agent_id, lambda: self._store.save_snapshot(agent_id, item))

    # ------------------------------------------------------------------ reads (see own writes)

    async def load_messages(self, agent_id: str) -> list[Message]:
        """The conversation as it will be after the commit."""

        def step(messages: list[Message], kind: str, payload: Any) -> list[Message]:
            if kind == "append_messages":
                return messages + list(payload)
            return list(payload) if kind == "save_messages" else messages

        return await self._load_list(agent_id, lambda: self._store.load_messages(agent_id), step)

    async def load_tool_call_records(self, agent_id: str) -> list[ToolCallRecord]:
        """The tool-call records as they will be after the commit."""

        def step(records: list[ToolCallRecord], kind: str, payload: Any) -> list[ToolCallRecord]:
            if kind == "save_tool_calls":
                return list(payload)
            return upserted(records, payload) if kind == "upsert" else records

        return await self._load_list(agent_id, lambda: self._store.load_tool_call_records(agent_id), step)

    async def _load_list(
        self, agent_id: str, load: Callable[[], Awaitable[list[T]]], step: Callable[[list[T], str, Any], list[T]]
    ) -> list[T]:
        """A list kind as it will be after the commit: what ``load`` reads, with
        each buffered write applied by ``step`` (unbuffered: read in the transaction)."""
        self._check(agent_id)
        if isinstance(self._driver, OverlayDriver):
            items = await load()
            for kind, payload in self._driver._overlay:
                items = step(items, kind, payload)
            return items
        return await self._driver.read(load)

    async def load_info(self, agent_id: str) -> AgentInfo | None:
        """The agent's info as it will be after the commit."""
        return await self._load_single(agent_id, "info", lambda: self._store.load_info(agent_id))

    async def load_todos(self, agent_id: str) -> TodoSnapshot | None:
        """The agent's todo list as it will be after the commit."""
        return await self._load_single(agent_id, "todos", lambda: self._store.load_todos(agent_id))

    async def _load_single(self, agent_id: str, kind: str, load: Callable[[], Awaitable[T]]) -> T:
        """A single-record kind as it will be after the commit: the last one
        this transaction saved (buffered), else what ``load`` reads."""
        self._check(agent_id)
        if isinstance(self._driver, OverlayDriver):
            latest: list[T] = [p for k, p in self._driver._overlay if k == kind]
            return latest[-1] if latest else await load()
        return await self._driver.read(load)


def upserted(records: list[ToolCallRecord], record: ToolCallRecord) -> list[ToolCallRecord]:
    """``records`` with ``record`` replacing the one of the same id, or appended."""
    for index, existing in enumerate(records):
        if existing.id == record.id:
            return [*records[:index], record, *records[index + 1 :]]
    return [*records, record]
