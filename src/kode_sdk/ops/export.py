"""A portable JSON Lines format for a whole store, identical across backends.

The first line is a header; then, agent by agent (sorted by id), one line per
record, in the order info, messages, tool calls, todos, events (by seq),
history windows, compression records, recovered files, media cache, snapshots::

    {"format":"kode-sdk-export","version":2}
    {"agentId":"agt-1","kind":"info","record":{"agentId":"agt-1","templateId":"assistant",...},"updatedAt":...}
    {"agentId":"agt-1","createdAt":...,"kind":"message","record":{"content":[{"text":"Hi","type":"text"}],"role":"user",...}}
    {"agentId":"agt-1","kind":"event","record":{"bookmark":{"seq":1,"timestamp":...},"cursor":1,"event":{...}}}

Records are in the KODE wire shape (camelCase keys, epoch-ms timestamps) with
sorted keys, so exporting the same content from JSONStore, SqliteStore and
PostgresStore gives byte-identical files. Every agent with any stored record
is exported, whether or not its info was saved.

Versions: **2** (written since kode-sdk 0.2) carries the times a store keeps
outside the records: ``createdAt`` on each message line (when the message was
first saved, epoch ms) and ``updatedAt`` on the info line (the session's last
write). **1** had neither; it is still read, and importing it stamps messages
with the time of the import, as before.

Importing validates the whole file before writing anything, then writes agent
by agent with the same reconciling writes as :mod:`~kode_sdk.ops.copy`:
importing a file twice leaves the store as after the first import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .. import jsoncodec
from ..errors import AgentNotFoundError, KodeError, RecordValidationError
from ..store.agent_ids import validate_agent_id
from ..store.catalog import check_message_times, stored_agent_ids
from ..store.protocols import Store
from .copy import AgentOutcome, apply_agent
from .dump import AgentDump, canonical_json, read_agent, validate_record

__all__ = [
    "FORMAT",
    "READABLE_VERSIONS",
    "VERSION",
    "ExportFormatError",
    "ExportStats",
    "export_jsonl",
    "import_dumps",
    "import_jsonl",
    "parse_jsonl",
]

FORMAT = "kode-sdk-export"
VERSION = 2
#: Every version :func:`parse_jsonl` reads.
READABLE_VERSIONS = (1, 2)


class ExportFormatError(RecordValidationError):
    """An export file is malformed; the message names the line."""


@dataclass(slots=True)
class ExportStats:
    """How many agents and records an export or import handled."""

    agents: int = 0
    records: dict[str, int] = field(default_factory=dict)
    outcomes: list[AgentOutcome] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out: dict[str, Any] = {"agents": self.agents, "records": self.records}
        if self.outcomes:
            statuses: dict[str, int] = {}
            for outcome in self.outcomes:
                statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
            out["statuses"] = statuses
            conflicts = [o.to_json() for o in self.outcomes if o.status in ("conflict", "failed")]
            if conflicts:
                out["conflicts"] = conflicts
        return out


def header_line() -> bytes:
    """The first line of every export."""
    return canonical_json({"format": FORMAT, "version": VERSION})


async def export_jsonl(
    store: Store,
    out: IO[bytes],
    *,
    agent_ids: Sequence[str] | None = None,
    on_agent: Callable[[str], None] | None = None,
    batch_size: int = 16,
) -> ExportStats:
    """Write ``store`` (or only ``agent_ids``) to ``out`` as JSON Lines.

    Every agent with any stored record is written, info or not. An agent of
    ``agent_ids`` with nothing stored raises :class:`AgentNotFoundError`
    before anything is written.

    >>> with open("backup.jsonl", "wb") as f:            # doctest: +SKIP
    ...     stats = await export_jsonl(store, f)
    """
    stored = await stored_agent_ids(store)
    if agent_ids is None:
        ids = stored
    else:
        ids = sorted(set(agent_ids))
        known = set(stored)
        for agent_id in ids:
            if agent_id not in known:
                raise AgentNotFoundError(agent_id)
    stats = ExportStats()
    out.write(header_line() + b"\n")
    # Agents are read a batch at a time, concurrently (a PostgreSQL pool serves
    # them in parallel), and written in id order.
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        for dump in await asyncio.gather(*(read_agent(store, agent_id) for agent_id in batch)):
            if dump.empty:
                continue  # a registry row whose records are gone: nothing to carry
            for (kind, _), line in zip(dump.records(), dump.lines(), strict=True):
                out.write(line + b"\n")
                stats.records[kind] = stats.records.get(kind, 0) + 1
            stats.agents += 1
            if on_agent is not None:
                on_agent(dump.agent_id)
    return stats


def parse_jsonl(lines: Iterable[bytes | str]) -> Iterator[AgentDump]:
    """Parse and validate export lines into one :class:`AgentDump` per agent.

    Raises :class:`ExportFormatError` naming the first bad line. An agent's lines
    must be contiguous (as :func:`export_jsonl` writes them).
    """
    current: AgentDump | None = None
    seen: set[str] = set()
    saw_header = False
    version: Any = VERSION
    times: list[Any] = []  # the current agent's message createdAt values (version 2)
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        where = f"line {number}"
        try:
            item = jsoncodec.decode(text)  # exact: integers beyond 64 bits stay ints
        except ValueError as exc:
            raise ExportFormatError(f"{where}: not valid JSON ({exc})", field=where) from None
        if not isinstance(item, dict):
            raise ExportFormatError(f"{where}: expected a JSON object, got {type(item).__name__}", field=where)
        if not saw_header:
            if item.get("format") != FORMAT:
                raise ExportFormatError(f"{where}: not a kode-sdk export (the header line is missing)", field=where)
            version = item.get("version")
            if version not in READABLE_VERSIONS or isinstance(version, bool):
                readable = " or ".join(str(v) for v in READABLE_VERSIONS)
                raise ExportFormatError(
                    f"{where}: export format version {version!r} is not supported (expected {readable})",
                    field=where,
                )
            saw_header = True
            continue
        agent_id, kind, record = item.get("agentId"), item.get("kind"), item.get("record")
        try:
            validate_agent_id(agent_id)
        except KodeError as exc:
            raise ExportFormatError(f"{where}: {exc}", field=where) from None
        if not isinstance(kind, str):
            raise ExportFormatError(f"{where}: 'kind' must be a string", field=where)
        wire = validate_record(kind, record, where)
        assert isinstance(agent_id, str)
        if current is None or current.agent_id != agent_id:
            if agent_id in seen:
                raise ExportFormatError(f"{where}: records of agent {agent_id!r} are not contiguous", field=where)
            if current is not None:
                yield _finish(current, times, where)
            seen.add(agent_id)
            current = AgentDump(agent_id)
            times = []
        if kind == "info" and wire.get("agentId") != agent_id:
            raise ExportFormatError(
                f"{where}: info.agentId {wire.get('agentId')!r} differs from {agent_id!r}", field=where
            )
        if version >= 2:
            _take_times(current, kind, item, times, where)
        current.add(kind, wire)
    if not saw_header:
        raise ExportFormatError("the file is empty: not a kode-sdk export", field="line 1")
    if current is not None:
        yield _finish(current, times, "the end of the file")


def _take_times(dump: AgentDump, kind: str, item: dict[str, Any], times: list[Any], where: str) -> None:
    """Collect the store-kept times of a version-2 line (``createdAt`` on a
    message, ``updatedAt`` on info): all of an agent's messages carry one, or none."""
    if kind == "message":
        if dump.messages and ("createdAt" in item) != bool(times):
            raise ExportFormatError(
                f"{where}: some messages of agent {dump.agent_id!r} carry createdAt and some do not", field=where
            )
        if "createdAt" in item:
            times.append(check_message_times([item["createdAt"]], f"{where}.createdAt")[0])
    elif kind == "info" and "updatedAt" in item:
        dump.updated_at = check_message_times([item["updatedAt"]], f"{where}.updatedAt")[0]


def _finish(dump: AgentDump, times: list[Any], where: str) -> AgentDump:
    if times:
        try:
            dump.message_times = check_message_times(times, f"messages of agent {dump.agent_id!r}")
        except RecordValidationError as exc:
            raise ExportFormatError(f"{where}: {exc}", field=where) from None
    dump.normalize_order()
    return dump


async def import_jsonl(
    store: Store,
    lines: Iterable[bytes | str],
    *,
    overwrite: bool = False,
    dry_run: bool = False,
    on_agent: Callable[[AgentOutcome], None] | None = None,
) -> ExportStats:
    """Validate every line, then write each agent into ``store``.

    Nothing is written when any line is bad. Agents already identical are
    skipped; see :func:`~kode_sdk.ops.copy.apply_agent` for the rest.
    """
    return await import_dumps(store, list(parse_jsonl(lines)), overwrite=overwrite, dry_run=dry_run, on_agent=on_agent)


async def import_dumps(
    store: Store,
    dumps: Sequence[AgentDump],
    *,
    overwrite: bool = False,
    dry_run: bool = False,
    on_agent: Callable[[AgentOutcome], None] | None = None,
) -> ExportStats:
    """Write agents already parsed by :func:`parse_jsonl` into ``store`` (so a
    caller can validate a file before it opens, or creates, the store)."""
    stats = ExportStats()
    for want in dumps:
        have = await read_agent(store, want.agent_id)
        outcome = await apply_agent(store, want, have, overwrite=overwrite, dry_run=dry_run)
        stats.outcomes.append(outcome)
        stats.agents += 1
        for kind, _ in want.records():
            stats.records[kind] = stats.records.get(kind, 0) + 1
        if on_agent is not None:
            on_agent(outcome)
    return stats
