"""Units of work of :class:`~kode_sdk.store.json_store.JSONStore`: many write
calls planned against one overlay of an agent's files and committed as one
journal entry.

Every JSONStore write is a *job*: called in the event loop's worker thread
before the agent is locked, it does the work that needs no files (encoding)
and returns a *plan*, which runs under the agent's exclusive lock and adds
:class:`~kode_sdk.store.json_files.Replace` / ``Append`` operations to a
:class:`Unit`. A plain write call is a unit of one job. ``store.transaction``
collects the jobs of its calls (:class:`JSONDriver`) and, at commit, runs
every plan in order in one unit: a plan that reads a file through
:meth:`Unit.read` sees what the plans before it wrote, and a list file's
state (:attr:`Unit.lists`) and the event logs' ends carry from one plan to
the next. The unit's operations, folded to one per file, are then one
:func:`~kode_sdk.store.json_files.commit`: one journal entry, so a crash
keeps all of the unit or none of it. Events appended in a transaction are
journaled appends to the same ``events/<channel>.log`` files, in the same
one-line-per-event format as outside one.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import StoreCorruptionError
from .events import PendingEvent
from .json_events import EventIndex
from .json_files import Append, Op, Replace, read_file
from .json_layout import EVENTS, ListState
from .transaction import Call, OverlayDriver

__all__ = ["COLLECTING", "JSONDriver", "Job", "Plan", "Unit", "fold"]

#: Adds one write call's operations to a unit (runs under the agent's lock).
Plan = Callable[["Unit"], None]
#: Prepares one write call (no files, no lock) and returns its plan.
Job = Callable[[], Plan]


@dataclass(slots=True)
class PlannedEvents:
    """Event lines planned in a unit, to enter the event index after the commit."""

    #: channel -> the log's size once the planned lines are appended
    ends: dict[str, int] = field(default_factory=dict)
    #: (channel, seq, offset, line length), in order
    lines: list[tuple[str, int, int, int]] = field(default_factory=list)
    seqs: set[int] = field(default_factory=set)


class Unit:
    """The operations planned so far for one journal entry of one agent."""

    def __init__(self, agent_id: str, agent_dir: Path, lock_fd: int) -> None:
        self.agent_id = agent_id
        self.agent_dir = agent_dir
        self.lock_fd = lock_fd
        self.ops: list[Op] = []
        #: The state of each list file a plan wrote, as it will be after the commit.
        self.lists: dict[str, ListState] = {}
        #: The agent's event index (read once per unit), when a plan appends events.
        self.event_index: EventIndex | None = None
        self.events = PlannedEvents()

    def add(self, ops: list[Op]) -> None:
        self.ops.extend(ops)

    def read(self, rel: str) -> bytes | None:
        """The bytes of the file ``rel`` as the operations planned so far leave
        it (``None``: no such file)."""
        mine = [op for op in self.ops if op.path == rel]
        data: bytes | None = None
        start = 0
        for index, op in enumerate(mine):
            if isinstance(op, Replace):
                data, start = op.data, index + 1
        if start == 0:
            data = read_file(self.agent_dir / rel)
        for op in mine[start:]:
            assert isinstance(op, Append)
            data = _appended(self.agent_dir / rel, data or b"", op)
        return data

    def folded_ops(self) -> list[Op]:
        """The planned operations, one per file (see :func:`fold`)."""
        return fold(self.ops)


def _appended(path: Path, data: bytes, op: Append) -> bytes:
    if len(data) < op.offset:
        raise StoreCorruptionError(f"{path}: {len(data)} bytes, fewer than the {op.offset} an append was planned on")
    return data[: op.offset] + op.data


def fold(ops: list[Op]) -> list[Op]:
    """``ops`` with the operations on one file merged into one, in the order
    each file first appears: applied to the same files, the result leaves
    them as ``ops`` applied in order would (``apply_ops`` checks every
    append's offset against the file as it was before the entry, so two
    appends to one file must become one)."""
    merged: dict[str, Op] = {}
    for op in ops:
        before = merged.get(op.path)
        if before is None or isinstance(op, Replace):
            merged[op.path] = op
        elif isinstance(before, Replace):
            merged[op.path] = Replace(op.path, _appended(Path(op.path), before.data, op))
        elif op.offset <= before.offset:
            merged[op.path] = op  # the earlier append's bytes are all cut off
        else:
            kept = op.offset - before.offset
            if kept > len(before.data):
                raise StoreCorruptionError(f"{op.path}: an append was planned past the end of the one before it")
            merged[op.path] = Append(op.path, before.offset, before.data[:kept] + op.data)
    return list(merged.values())


def event_log(channel: str) -> str:
    """The journal path of a channel's log (see ``json_layout.event_path``)."""
    return f"{EVENTS}/{channel}.log"


@dataclass(slots=True)
class Collecting:
    """While a transaction's call runs: the store whose jobs it queues, and where."""

    store: Any
    jobs: list[Job]


#: Set while a transaction's call runs: JSONStore writes queue their job here
#: instead of committing it.
COLLECTING: contextvars.ContextVar[Collecting | None] = contextvars.ContextVar("kode_json_tx", default=None)


class JobStore(Protocol):
    """What a :class:`JSONDriver` needs of its store (a JSONStore)."""

    async def _ensure_open(self) -> None: ...

    def _event_job(self, agent_id: str, rows: list[PendingEvent]) -> Job: ...

    async def _commit_jobs(self, agent_id: str, jobs: list[Job]) -> None: ...


class JSONDriver(OverlayDriver):
    """A JSONStore transaction: each call's job is queued (validated, not run);
    the commit plans them all in one unit and writes it as one journal entry,
    under the agent's locks, in one thread hop. A plan that fails (a
    duplicate event seq found only then) writes nothing; a crash keeps the
    whole entry (recovery completes it) or none of it."""

    atomic_on_crash = True

    def __init__(self, store: JobStore, agent_id: str) -> None:
        super().__init__()
        self._store = store
        self._agent_id = agent_id
        self._jobs: list[Job] = []

    async def write(self, call: Call) -> None:
        token = COLLECTING.set(Collecting(self._store, self._jobs))
        try:
            await call()
        finally:
            COLLECTING.reset(token)

    async def write_events(self, agent_id: str, rows: list[Any], call: Call) -> None:
        self._jobs.append(self._store._event_job(agent_id, rows))

    async def commit(self) -> None:
        jobs, self._jobs = self._jobs, []
        if jobs:
            await self._store._ensure_open()  # closed meanwhile: StoreClosedError, nothing written
            await self._store._commit_jobs(self._agent_id, jobs)

    async def rollback(self) -> None:
        self._jobs = []
        self._overlay = []
