"""Copy any store into any other (JSON → SQLite → PostgreSQL → …), through the
:class:`~kode_sdk.store.protocols.Store` protocol only.

>>> report = await migrate(JSONStore("./data/store"), SqliteStore("./data/agents.db"))   # doctest: +SKIP
>>> report.ok, report.copied, report.identical                                          # doctest: +SKIP
(True, 1000, 0)

Re-running is safe and cheap, and never destroys data that exists only in
the destination. Each agent of the source is compared with what the
destination already holds (:func:`find_conflicts`):

* **identical** agents are skipped;
* agents **missing** from the destination are copied;
* when the destination holds an **older state** of the same agent, it is
  **updated**: its messages, tool calls, history windows, compression records,
  recovered files and media cache are prefixes of the source's lists, each
  tool call it holds is the source's or an earlier update of it (an older
  ``updatedAt``), its events and snapshots are the source's (by seq, by id),
  and its todos (``version``, ``updatedAt``) and info (message count, last
  SFP index, last bookmark seq; same template, creation time and lineage
  prefix) did not get further than the source's. Only what is missing is
  written: message, event and other list tails are appended;
* **anything else is a conflict**: a message appended in the destination, a
  tool call approved or completed there, a todo list or an info that moved on.
  The agent is left untouched and reported (the run is not ``ok``), unless
  ``overwrite=True`` deletes it from the destination and copies it again.

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

from ..store.catalog import RecordTimes, restore_record_times, stored_agent_ids
from ..store.protocols import Store
from ..store.records import APPEND_KINDS, RECORD_KINDS
from .dump import AgentDigest, AgentDump, dump_field, read_agent

__all__ = ["AgentOutcome", "MigrationReport", "apply_agent", "find_conflicts", "migrate", "verify"]

#: The kinds whose destination list must be a prefix of the source's: the
#: append-only kinds and the media cache (messages and tool calls have rules of their own).
_PREFIX_KINDS = tuple(k for k in RECORD_KINDS if k.shape == "append" or k.name == "media_cache")

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


def _progress(info: dict[str, Any]) -> tuple[int, int, int]:
    """How far an agent's info says it has got: (message count, last SFP index, last event seq)."""
    bookmark = info.get("lastBookmark") or {}
    return (info.get("messageCount", 0), info.get("lastSfpIndex", -1), bookmark.get("seq", -1))


def _info_problem(want: dict[str, Any] | None, have: dict[str, Any] | None) -> str | None:
    if have is None or want == have:
        return None
    if want is None:
        return "destination has agent info, source has none"
    for key in ("templateId", "createdAt"):
        if want.get(key) != have.get(key):
            return f"agent info {key} differs between source and destination"
    if not _is_prefix(have.get("lineage", []), want.get("lineage", [])):
        return "destination's agent lineage is not a prefix of the source's"
    ahead, behind = _progress(want), _progress(have)
    # Info has no clock of its own: the destination is an older state only when
    # the source went further and the destination went nowhere the source did not.
    if all(h <= w for h, w in zip(behind, ahead, strict=True)) and behind != ahead:
        return None
    return "destination's agent info is newer than the source's or differs from it"


def _todos_problem(want: dict[str, Any] | None, have: dict[str, Any] | None) -> str | None:
    if have is None or want == have:
        return None
    if want is None:
        return "destination has todos, source has none"
    behind, ahead = (have["version"], have["updatedAt"]), (want["version"], want["updatedAt"])
    if all(h <= w for h, w in zip(behind, ahead, strict=True)) and behind != ahead:
        return None
    return "destination's todos are newer than the source's or differ from them"


def _tool_call_problem(want: list[dict[str, Any]], have: list[dict[str, Any]]) -> str | None:
    if len(have) > len(want):
        return f"destination has {len(have) - len(want)} tool call(s) the source does not"
    for mine, theirs in zip(have, want, strict=False):
        if mine["id"] != theirs["id"]:
            return f"destination has tool call {mine['id']!r} where the source has {theirs['id']!r}"
        # A record changes state over time; the one updated later is the newer state.
        if mine != theirs and mine["updatedAt"] >= theirs["updatedAt"]:
            return (
                f"tool call {mine['id']!r} is newer in the destination or differs "
                f"(destination {mine['state']}, source {theirs['state']})"
            )
    return None


def _message_problem(want: list[dict[str, Any]], have: list[dict[str, Any]]) -> str | None:
    if len(have) > len(want):
        return f"destination has {len(have) - len(want)} message(s) the source does not"
    for position, (mine, theirs) in enumerate(zip(have, want, strict=False)):
        if mine != theirs:
            return f"message {position} differs between source and destination"
    return None


def find_conflicts(want: AgentDump, have: AgentDump) -> list[str]:
    """Why the destination (``have``) is not an older state of the source
    (``want``): each problem names data that copying ``want`` would destroy.

    The destination is an older state when each list it holds is a prefix of
    the source's (events: a subset by seq, each event equal; snapshots: by id,
    each equal), each tool call it holds is the source's or an earlier update
    of it (``updatedAt``), and its todos and info did not get further than the
    source's. An empty list means copying is safe.
    """
    problems = [
        p
        for p in (
            _info_problem(want.info, have.info),
            _message_problem(want.messages, have.messages),
            _tool_call_problem(want.tool_calls, have.tool_calls),
            _todos_problem(want.todos, have.todos),
        )
        if p is not None
    ]
    wanted_events = {e["bookmark"]["seq"]: e for e in want.events}
    for event in have.events:
        seq = event["bookmark"]["seq"]
        if seq not in wanted_events:
            problems.append(f"destination has event seq {seq}, source does not")
            break
        if wanted_events[seq] != event:
            problems.append(f"event seq {seq} differs between source and destination")
            break
    for kind in _PREFIX_KINDS:
        name = dump_field(kind)
        if not _is_prefix(getattr(have, name), getattr(want, name)):
            problems.append(f"destination's {name.replace('_', ' ')} are not a prefix of the source's")
    wanted_snapshots = {s["id"]: s for s in want.snapshots}
    for snapshot in have.snapshots:
        if snapshot["id"] not in wanted_snapshots:
            problems.append(f"destination has snapshot {snapshot['id']!r}, source does not")
            break
        if wanted_snapshots[snapshot["id"]] != snapshot:
            problems.append(f"snapshot {snapshot['id']!r} differs between source and destination")
            break
    return problems


async def apply_agent(
    dst: Store, want: AgentDump, have: AgentDump, *, overwrite: bool = False, dry_run: bool = False
) -> AgentOutcome:
    """Make ``dst`` hold ``want`` for its agent, given that it now holds ``have``.

    Writes only what differs (see the module docs); idempotent.
    """
    agent_id = want.agent_id
    if want.same_as(have):
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
        # The destination's messages are a prefix of the source's (or it was
        # just emptied): append the tail, never rewrite what is there.
        await dst.append_messages(agent_id, want.messages[len(have.messages) :])
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
    for kind in APPEND_KINDS:
        # Append-only: the destination holds a prefix (checked above); save the rest.
        save = getattr(dst, kind.save)
        name = dump_field(kind)
        for record in getattr(want, name)[len(getattr(have, name)) :]:
            await save(agent_id, record)
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
    # Every write above stamped "now": give the messages and the session the
    # source's times back, last (a run killed before this completes them on re-run).
    if want.message_times is not None and (
        writes or want.message_times != have.message_times or want.updated_at != have.updated_at
    ):
        times = RecordTimes(want.message_times, want.updated_at)
        if await restore_record_times(dst, agent_id, times, len(want.messages)):
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
    ids = await stored_agent_ids(src) if agent_ids is None else list(agent_ids)
    report = MigrationReport(dry_run=dry_run)

    source_digests: dict[str, AgentDigest] = {}
    plain_digests: dict[str, AgentDigest] = {}

    async def one(agent_id: str) -> AgentOutcome:
        want, have = await asyncio.gather(read_agent(src, agent_id), read_agent(dst, agent_id))
        source_digests[agent_id] = want.digest()
        plain_digests[agent_id] = want.without_times().digest()
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
        report.mismatches = await _verify_against(
            dst, {a: (source_digests[a], plain_digests[a]) for a in checked}, batch_size
        )
        report.digests = [source_digests[a] for a in sorted(source_digests)]
        report.verified = not report.mismatches
    return report


async def _verify_against(
    dst: Store, expected: dict[str, tuple[AgentDigest, AgentDigest]], batch_size: int
) -> list[dict[str, Any]]:
    """Compare ``dst`` with the source digests (with times, and without them
    for a destination that keeps no times)."""
    mismatches: list[dict[str, Any]] = []
    ids = sorted(expected)

    async def one(agent_id: str) -> None:
        dump = await read_agent(dst, agent_id)
        full, plain = expected[agent_id]
        want = plain if dump.message_times is None else full
        got = dump.digest()
        if got.sha256 != want.sha256:
            mismatches.append({"agentId": agent_id, "source": want.to_json(), "destination": got.to_json()})

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
    ids = await stored_agent_ids(src) if agent_ids is None else list(agent_ids)
    mismatches: list[dict[str, Any]] = []
    digests: list[AgentDigest] = []

    async def one(agent_id: str) -> None:
        want, have = await asyncio.gather(read_agent(src, agent_id), read_agent(dst, agent_id))
        a, b = want.digest(), have.digest()
        digests.append(a)
        if have.message_times is None and want.message_times is not None:
            a = want.without_times().digest()  # the destination keeps no times
        if a.sha256 != b.sha256:
            mismatches.append({"agentId": agent_id, "source": a.to_json(), "destination": b.to_json()})

    for start in range(0, len(ids), batch_size):
        await asyncio.gather(*(one(a) for a in ids[start : start + batch_size]))
    digests.sort(key=lambda d: d.agent_id)
    mismatches.sort(key=lambda m: str(m["agentId"]))
    return mismatches, digests
