"""Copy any store into any other (JSON → SQLite → PostgreSQL → …), through the
:class:`~kode_sdk.store.base.Store` protocol only.

>>> report = await migrate(JSONStore("./data/store"), SqliteStore("./data/agents.db"))   # doctest: +SKIP
>>> report.ok, report.copied, report.identical                                          # doctest: +SKIP
(True, 1000, 0)

Re-running is safe and cheap. Each agent of the source is compared with what
the destination already holds:

* identical agents are skipped;
* lists a store replaces whole (messages, tool calls, todos, media cache, info)
  are saved again only when they differ;
* append-only records (events, history windows, compression records, recovered
  files) are appended only past what the destination already has: events by
  ``seq``, the others when the destination's list is a prefix of the source's;
  snapshots by id;
* anything in the destination that the source does not explain (an event seq
  the source lacks, a history window that differs) is a *conflict*: the agent
  is left untouched and reported, unless ``overwrite=True`` deletes it from the
  destination and copies it again.

So a migration killed halfway just runs again and completes with nothing
duplicated. The agent's info is written last: a half-copied agent does not
show in the destination's ``list()``.

After copying, a verify pass reads every agent back from both stores and
compares per-kind counts and a SHA-256 of the canonical records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..ops.dump import AgentDigest, AgentDump, read_agent
from .base import Store

__all__ = ["AgentOutcome", "MigrationReport", "apply_agent", "migrate", "verify"]

Status = Literal["identical", "copied", "updated", "conflict", "would_copy", "would_update", "failed"]


@dataclass(slots=True)
class AgentOutcome:
    """What happened to one agent."""

    agent_id: str
    status: Status
    writes: int = 0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out: dict[str, Any] = {"agentId": self.agent_id, "status": self.status, "writes": self.writes}
        if self.problems:
            out["problems"] = self.problems
        return out


@dataclass(slots=True)
class MigrationReport:
    """The outcome of :func:`migrate`: per-agent results and the verify pass."""

    dry_run: bool
    outcomes: list[AgentOutcome] = field(default_factory=list)
    verified: bool | None = None
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    digests: list[AgentDigest] = field(default_factory=list)

    def count(self, *statuses: str) -> int:
        """How many agents ended in one of ``statuses``."""
        return sum(1 for o in self.outcomes if o.status in statuses)

    @property
    def total(self) -> int:
        """Agents in the source."""
        return len(self.outcomes)

    @property
    def copied(self) -> int:
        """Agents written fresh (or that would be, in a dry run)."""
        return self.count("copied", "would_copy")

    @property
    def updated(self) -> int:
        """Agents that existed in the destination and were completed or refreshed."""
        return self.count("updated", "would_update")

    @property
    def identical(self) -> int:
        """Agents skipped because the destination already held them identically."""
        return self.count("identical")

    @property
    def conflicts(self) -> list[AgentOutcome]:
        """Agents left untouched because the destination holds content the source lacks."""
        return [o for o in self.outcomes if o.status in ("conflict", "failed")]

    @property
    def ok(self) -> bool:
        """No conflict, no failure, and (when verified) no mismatch."""
        return not self.conflicts and not self.mismatches and self.verified is not False

    def to_json(self, *, agents: bool = False) -> dict[str, Any]:
        """Plain-JSON summary; ``agents=True`` adds every outcome and digest."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "dryRun": self.dry_run,
            "total": self.total,
            "copied": self.copied,
            "updated": self.updated,
            "identical": self.identical,
            "conflicts": [o.to_json() for o in self.conflicts],
            "writes": sum(o.writes for o in self.outcomes),
            "verified": self.verified,
            "mismatches": self.mismatches,
        }
        if agents:
            out["agents"] = [o.to_json() for o in self.outcomes]
            out["digests"] = [d.to_json() for d in self.digests]
        return out


def _is_prefix(short: Sequence[Any], long: Sequence[Any]) -> bool:
    return len(short) <= len(long) and list(long[: len(short)]) == list(short)


def find_conflicts(want: AgentDump, have: AgentDump) -> list[str]:
    """What the destination (``have``) holds that copying ``want`` cannot reconcile
    without deleting: the store API has no way to remove single appended records."""
    problems: list[str] = []
    if have.info is not None and want.info is None:
        problems.append("destination has agent info, source has none")
    if have.todos is not None and want.todos is None:
        problems.append("destination has todos, source has none")
    wanted_events = {e["bookmark"]["seq"]: e for e in want.events}
    for event in have.events:
        seq = event["bookmark"]["seq"]
        if seq not in wanted_events:
            problems.append(f"destination has event seq {seq}, source does not")
            break
        if wanted_events[seq] != event:
            problems.append(f"event seq {seq} differs between source and destination")
            break
    for name in ("history_windows", "compression_records", "recovered_files"):
        if not _is_prefix(getattr(have, name), getattr(want, name)):
            problems.append(f"destination's {name.replace('_', ' ')} are not a prefix of the source's")
    wanted_snapshots = {s["id"] for s in want.snapshots}
    extra = [s["id"] for s in have.snapshots if s["id"] not in wanted_snapshots]
    if extra:
        problems.append(f"destination has snapshot {extra[0]!r}, source does not")
    return problems


async def apply_agent(
    dst: Store, want: AgentDump, have: AgentDump, *, overwrite: bool = False, dry_run: bool = False
) -> AgentOutcome:
    """Make ``dst`` hold ``want`` for its agent, given that it now holds ``have``.

    Writes only what differs (see the module docs); idempotent.
    """
    agent_id = want.agent_id
    if want == have:
        return AgentOutcome(agent_id, "identical")
    status: Status = "copied" if have.empty else "updated"
    problems = find_conflicts(want, have)
    if problems:
        if not overwrite:
            return AgentOutcome(agent_id, "conflict", problems=problems)
        status = "copied"
        if not dry_run:
            await dst.delete(agent_id)
        have = AgentDump(agent_id)
    if dry_run:
        return AgentOutcome(agent_id, "would_copy" if status == "copied" else "would_update", problems=problems)

    writes = 0
    if want.messages != have.messages:
        await dst.save_messages(agent_id, want.messages)
        writes += 1
    if want.tool_calls != have.tool_calls:
        await dst.save_tool_call_records(agent_id, want.tool_calls)
        writes += 1
    if want.todos is not None and want.todos != have.todos:
        await dst.save_todos(agent_id, want.todos)
        writes += 1
    if want.media_cache != have.media_cache:
        await dst.save_media_cache(agent_id, want.media_cache)
        writes += 1
    for window in want.history_windows[len(have.history_windows) :]:
        await dst.save_history_window(agent_id, window)
        writes += 1
    for record in want.compression_records[len(have.compression_records) :]:
        await dst.save_compression_record(agent_id, record)
        writes += 1
    for file in want.recovered_files[len(have.recovered_files) :]:
        await dst.save_recovered_file(agent_id, file)
        writes += 1
    have_snapshots = {s["id"]: s for s in have.snapshots}
    for snapshot in want.snapshots:
        if have_snapshots.get(snapshot["id"]) != snapshot:
            await dst.save_snapshot(agent_id, snapshot)
            writes += 1
    have_seqs = {e["bookmark"]["seq"] for e in have.events}
    for event in want.events:
        if event["bookmark"]["seq"] not in have_seqs:
            await dst.append_event(agent_id, event)
            writes += 1
    # Last, so that a half-copied agent is not yet listed in the destination.
    if want.info is not None and want.info != have.info:
        await dst.save_info(agent_id, want.info)
        writes += 1
    return AgentOutcome(agent_id, status, writes=writes)


ProgressCallback = Callable[[AgentOutcome], None]


async def migrate(
    src: Store,
    dst: Store,
    *,
    agent_ids: Sequence[str] | None = None,
    dry_run: bool = False,
    overwrite: bool = False,
    verify_after: bool = True,
    batch_size: int = 16,
    on_agent: ProgressCallback | None = None,
) -> MigrationReport:
    """Copy every agent of ``src`` (or ``agent_ids``) into ``dst``.

    ``batch_size`` agents are read and written concurrently (a PostgreSQL pool
    uses them in parallel; SQLite serialises them cheaply). ``on_agent`` is
    called once per agent, e.g. to advance a progress bar. With
    ``verify_after`` every agent is read back from both stores and compared
    (skipped in a dry run). Both stores must be open or openable; neither is
    closed.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    ids = sorted(await src.list()) if agent_ids is None else list(agent_ids)
    report = MigrationReport(dry_run=dry_run)

    source_digests: dict[str, AgentDigest] = {}

    async def one(agent_id: str) -> AgentOutcome:
        want, have = await asyncio.gather(read_agent(src, agent_id), read_agent(dst, agent_id))
        source_digests[agent_id] = want.digest()
        try:
            outcome = await apply_agent(dst, want, have, overwrite=overwrite, dry_run=dry_run)
        except Exception as exc:
            # One bad agent does not stop the others; it is reported and the run fails.
            outcome = AgentOutcome(agent_id, "failed", problems=[f"{type(exc).__name__}: {exc}"])
        if on_agent is not None:
            on_agent(outcome)
        return outcome

    for start in range(0, len(ids), batch_size):
        report.outcomes.extend(await asyncio.gather(*(one(a) for a in ids[start : start + batch_size])))

    if verify_after and not dry_run:
        # The source was read moments ago (its digests are kept); only the
        # destination is read back. Identical agents were just compared in full.
        checked = [o.agent_id for o in report.outcomes if o.status in ("copied", "updated")]
        report.mismatches = await _verify_against(dst, {a: source_digests[a] for a in checked}, batch_size)
        report.digests = [source_digests[a] for a in sorted(source_digests)]
        report.verified = not report.mismatches
    return report


async def _verify_against(dst: Store, expected: dict[str, AgentDigest], batch_size: int) -> list[dict[str, Any]]:
    mismatches: list[dict[str, Any]] = []
    ids = sorted(expected)

    async def one(agent_id: str) -> None:
        got = (await read_agent(dst, agent_id)).digest()
        if got.sha256 != expected[agent_id].sha256:
            mismatches.append(
                {"agentId": agent_id, "source": expected[agent_id].to_json(), "destination": got.to_json()}
            )

    for start in range(0, len(ids), batch_size):
        await asyncio.gather(*(one(a) for a in ids[start : start + batch_size]))
    mismatches.sort(key=lambda m: str(m["agentId"]))
    return mismatches


async def verify(
    src: Store, dst: Store, agent_ids: Sequence[str] | None = None, *, batch_size: int = 16
) -> tuple[list[dict[str, Any]], list[AgentDigest]]:
    """Compare ``agent_ids`` (default: every agent of ``src``) in both stores.

    Returns the mismatches (agent id, both digests) and the source digests.
    """
    ids = sorted(await src.list()) if agent_ids is None else list(agent_ids)
    mismatches: list[dict[str, Any]] = []
    digests: list[AgentDigest] = []

    async def one(agent_id: str) -> None:
        want, have = await asyncio.gather(read_agent(src, agent_id), read_agent(dst, agent_id))
        a, b = want.digest(), have.digest()
        digests.append(a)
        if a.sha256 != b.sha256:
            mismatches.append({"agentId": agent_id, "source": a.to_json(), "destination": b.to_json()})

    for start in range(0, len(ids), batch_size):
        await asyncio.gather(*(one(a) for a in ids[start : start + batch_size]))
    digests.sort(key=lambda d: d.agent_id)
    mismatches.sort(key=lambda m: str(m["agentId"]))
    return mismatches, digests
