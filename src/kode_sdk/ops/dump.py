"""One agent's whole content as plain, canonical JSON: the unit that
:mod:`~kode_sdk.ops.copy` copies, :mod:`~kode_sdk.ops.export` writes and
the verify pass hashes.

Everything is read through the :class:`~kode_sdk.store.protocols.Store` protocol, so
it works for every backend. Each record is re-validated and dumped in the KODE
wire shape (camelCase keys, epoch-ms timestamps), and lines are encoded with
sorted keys: the same content read from two backends gives the same bytes,
whatever key order a database (PostgreSQL's jsonb) kept.

>>> dump = await read_agent(store, "agt-1")          # doctest: +SKIP
>>> dump.digest().sha256                             # doctest: +SKIP
'5b0c…'
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .. import jsoncodec
from ..errors import RecordValidationError
from ..store.catalog import load_record_times
from ..store.protocols import Store
from ..types import (
    AgentInfo,
    CompressionRecord,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    Record,
    RecoveredFile,
    Snapshot,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
)

__all__ = ["KINDS", "AgentDigest", "AgentDump", "canonical_json", "plain_json", "read_agent", "wire"]

#: Record kinds, in the order they appear for each agent in an export.
KINDS: tuple[str, ...] = (
    "info",
    "message",
    "tool_call",
    "todos",
    "event",
    "history_window",
    "compression_record",
    "recovered_file",
    "media_cache",
    "snapshot",
)

#: The record model behind each kind (used to validate imported lines).
MODELS: dict[str, type[Record]] = {
    "info": AgentInfo,
    "message": Message,
    "tool_call": ToolCallRecord,
    "todos": TodoSnapshot,
    "event": Timeline,
    "history_window": HistoryWindow,
    "compression_record": CompressionRecord,
    "recovered_file": RecoveredFile,
    "media_cache": MediaCacheRecord,
    "snapshot": Snapshot,
}


def plain_json(value: Any) -> Any:
    """Query results as plain JSON: models in camelCase with ISO-8601 times,
    lists and dicts recursively (what ``--json`` and the HTTP API print)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    return value


def canonical_json(value: Any) -> bytes:
    """Compact JSON with sorted keys: equal values give equal bytes.

    :func:`kode_sdk.jsoncodec.encode` with sorted keys (integers beyond 64 bits
    included, deterministically); the values come from a store, so are not
    walked again for NaN.
    """
    return jsoncodec.encode(value, sort_keys=True, check_finite=False)


def wire(record: BaseModel) -> dict[str, Any]:
    """``record`` normalised to the KODE wire shape (plain JSON).

    The record is validated again from its own dump, so a model a backend built
    without validation (``model_construct``) comes out exactly like one built
    from input.
    """
    model = type(record)
    raw = record.model_dump(by_alias=True, warnings=False)
    return model.model_validate(raw).model_dump(mode="json", by_alias=True)


@dataclass(frozen=True, slots=True)
class AgentDigest:
    """Per-kind record counts and a SHA-256 over an agent's canonical lines."""

    agent_id: str
    counts: dict[str, int]
    sha256: str

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (for ``--json`` output)."""
        return {"agentId": self.agent_id, "counts": self.counts, "sha256": self.sha256}


@dataclass(slots=True)
class AgentDump:
    """Everything stored for one agent, as wire-shape dicts in canonical order.

    ``events`` are in ``seq`` order and ``snapshots`` in (``createdAt``, ``id``)
    order, so two backends that list them differently still compare equal.

    ``message_times`` (each message's ``createdAt``) and ``updated_at`` (the
    session's) are the times a store keeps outside the records; ``None`` when
    unknown (a store without :class:`~kode_sdk.store.catalog.StoreCatalog`, a
    version-1 export).
    """

    agent_id: str
    info: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    todos: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    history_windows: list[dict[str, Any]] = field(default_factory=list)
    compression_records: list[dict[str, Any]] = field(default_factory=list)
    recovered_files: list[dict[str, Any]] = field(default_factory=list)
    media_cache: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    message_times: list[int] | None = None
    updated_at: int | None = None

    @property
    def empty(self) -> bool:
        """True when nothing at all is stored for the agent."""
        return self.info is None and self.todos is None and not any(records for _, records in self._lists())

    def _lists(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        yield "message", self.messages
        yield "tool_call", self.tool_calls
        yield "event", self.events
        yield "history_window", self.history_windows
        yield "compression_record", self.compression_records
        yield "recovered_file", self.recovered_files
        yield "media_cache", self.media_cache
        yield "snapshot", self.snapshots

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(kind, record)`` pairs in export order."""
        lists = dict(self._lists())
        for kind in KINDS:
            if kind == "info":
                if self.info is not None:
                    yield kind, self.info
            elif kind == "todos":
                if self.todos is not None:
                    yield kind, self.todos
            else:
                for record in lists[kind]:
                    yield kind, record

    def lines(self) -> Iterator[bytes]:
        """The agent's export lines (without newlines), in :meth:`records` order.

        A message line carries its ``createdAt`` and the info line the
        session's ``updatedAt`` beside the record, when they are known.
        """
        position = 0
        for kind, record in self.records():
            line: dict[str, Any] = {"agentId": self.agent_id, "kind": kind, "record": record}
            if kind == "message":
                if self.message_times is not None:
                    line["createdAt"] = self.message_times[position]
                position += 1
            elif kind == "info" and self.updated_at is not None:
                line["updatedAt"] = self.updated_at
            yield canonical_json(line)

    def without_times(self) -> AgentDump:
        """A copy that carries no store-kept times (to compare with a store that keeps none)."""
        copy = dataclasses.replace(self)
        copy.message_times, copy.updated_at = None, None
        return copy

    def same_as(self, other: AgentDump) -> bool:
        """True when ``other`` holds the same records and, where both dumps
        know them, the same times."""
        if self.message_times is None or other.message_times is None:
            return self.without_times() == other.without_times()
        if self.updated_at is None:
            return self == dataclasses.replace(other, updated_at=None)
        return self == other

    def add(self, kind: str, record: dict[str, Any]) -> None:
        """Add one record of ``kind`` (as read from an export line)."""
        if kind == "info":
            self.info = record
        elif kind == "todos":
            self.todos = record
        else:
            dict(self._lists())[kind].append(record)

    def normalize_order(self) -> None:
        """Put events and snapshots in canonical order."""
        self.events.sort(key=lambda e: e["bookmark"]["seq"])
        self.snapshots.sort(key=lambda s: (s.get("createdAt", 0), s["id"]))

    def digest(self) -> AgentDigest:
        """Counts per kind and the SHA-256 of the canonical lines."""
        hasher = hashlib.sha256()
        counts = dict.fromkeys(KINDS, 0)
        for line, (kind, _) in zip(self.lines(), self.records(), strict=True):
            hasher.update(line)
            hasher.update(b"\n")
            counts[kind] += 1
        return AgentDigest(self.agent_id, counts, hasher.hexdigest())


def validate_record(kind: str, record: Any, where: str) -> dict[str, Any]:
    """Validate one imported record of ``kind`` and return its canonical wire form.

    Raises :class:`RecordValidationError` naming ``where`` (e.g. ``line 12``).
    """
    model = MODELS.get(kind)
    if model is None:
        raise RecordValidationError(f"{where}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})", field=where)
    return model.coerce(record, f"{where}.record").model_dump(mode="json", by_alias=True)


async def read_agent(store: Store, agent_id: str) -> AgentDump:
    """Read everything ``store`` holds for ``agent_id`` (one call per record kind)."""

    async def events() -> list[Timeline]:
        return [timeline async for timeline in store.read_events(agent_id)]

    # Two gathers keep every result precisely typed (asyncio.gather overloads stop at six).
    info, messages, tool_calls, todos, timeline = await asyncio.gather(
        store.load_info(agent_id),
        store.load_messages(agent_id),
        store.load_tool_call_records(agent_id),
        store.load_todos(agent_id),
        events(),
    )
    windows, compressions, recovered, media, snapshots = await asyncio.gather(
        store.load_history_windows(agent_id),
        store.load_compression_records(agent_id),
        store.load_recovered_files(agent_id),
        store.load_media_cache(agent_id),
        store.list_snapshots(agent_id),
    )
    dump = AgentDump(
        agent_id=agent_id,
        info=None if info is None else wire(info),
        messages=[wire(m) for m in messages],
        tool_calls=[wire(r) for r in tool_calls],
        todos=None if todos is None else wire(todos),
        events=[wire(t) for t in timeline],
        history_windows=[wire(w) for w in windows],
        compression_records=[wire(c) for c in compressions],
        recovered_files=[wire(f) for f in recovered],
        media_cache=[wire(m) for m in media],
        snapshots=[wire(s) for s in snapshots],
    )
    times = await load_record_times(store, agent_id)
    if times is not None:
        # Read apart from the records: a write in between shows as a length
        # mismatch, and then the times are treated as unknown (never misaligned).
        if len(times.message_created_at) == len(dump.messages):
            dump.message_times = list(times.message_created_at)
        dump.updated_at = times.updated_at if dump.info is not None else None
    dump.normalize_order()
    return dump
