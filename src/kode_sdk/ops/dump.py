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
from ..store.records import RECORD_KINDS, RecordKind, kind_named

__all__ = ["KINDS", "AgentDigest", "AgentDump", "canonical_json", "plain_json", "read_agent", "wire"]

#: Record kinds (their export names), in the order they appear for each agent
#: in an export: a view of :data:`~kode_sdk.store.records.RECORD_KINDS`.
KINDS: tuple[str, ...] = tuple(kind.name for kind in RECORD_KINDS)


def dump_field(kind: RecordKind) -> str:
    """The :class:`AgentDump` field holding ``kind``: its table's name (``info``
    for the registry row)."""
    return "info" if kind.name == "info" else kind.table


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
        return next(self.records(), None) is None

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(kind, record)`` pairs in export order."""
        for kind in RECORD_KINDS:
            value = getattr(self, dump_field(kind))
            if kind.shape != "single":
                for record in value:
                    yield kind.name, record
            elif value is not None:
                yield kind.name, value

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
        record_kind = kind_named(kind)
        if record_kind.shape == "single":
            setattr(self, dump_field(record_kind), record)
        else:
            getattr(self, dump_field(record_kind)).append(record)

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
    try:
        model = kind_named(kind).model
    except KeyError:
        message = f"{where}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})"
        raise RecordValidationError(message, field=where) from None
    return model.coerce(record, f"{where}.record").model_dump(mode="json", by_alias=True)


async def read_agent(store: Store, agent_id: str) -> AgentDump:
    """Read everything ``store`` holds for ``agent_id`` (one call per record kind)."""
    loaded = await asyncio.gather(*(_load_kind(store, kind, agent_id) for kind in RECORD_KINDS))
    dump = AgentDump(agent_id)
    for kind, value in zip(RECORD_KINDS, loaded, strict=True):
        if kind.shape == "single":
            setattr(dump, dump_field(kind), None if value is None else wire(value))
        else:
            setattr(dump, dump_field(kind), [wire(record) for record in value])
    times = await load_record_times(store, agent_id)
    if times is not None:
        # Read apart from the records: a write in between shows as a length
        # mismatch, and then the times are treated as unknown (never misaligned).
        if len(times.message_created_at) == len(dump.messages):
            dump.message_times = list(times.message_created_at)
        dump.updated_at = times.updated_at if dump.info is not None else None
    dump.normalize_order()
    return dump


async def _load_kind(store: Store, kind: RecordKind, agent_id: str) -> Any:
    """What ``store`` holds of ``kind`` for the agent: a record or None
    (``single``), else a list (events read to the end)."""
    load = getattr(store, kind.load)
    if kind.shape == "log":
        return [timeline async for timeline in load(agent_id)]
    return await load(agent_id)
