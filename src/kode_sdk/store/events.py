"""Events in: validation and 64-bit bounds of timelines, and group commit
(:class:`EventCommitter`: concurrent ``append_event`` callers share one commit,
each awaiting it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import jsoncodec
from ..errors import (
    RecordValidationError,
    StoreClosedError,
)
from ..types import (
    CHANNELS,
    Bookmark,
    Timeline,
)

#: The range of an event's ``seq`` and ``timestamp``: 64-bit signed, what the
#: SQL backends' BIGINT/INTEGER columns hold. Checked here, above the backends,
#: so every backend refuses the same events (a JSON log could hold 2**70; a
#: database column cannot).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(slots=True)
class PendingEvent:
    """One validated, encoded event on its way to the database."""

    agent_id: str
    seq: int
    channel: str
    event_type: str
    timestamp: int
    data: str  # the Timeline's wire JSON


def check_int64(value: int, field: str) -> int:
    """Refuse an integer a 64-bit column cannot hold, naming the field."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise RecordValidationError(f"{field}: {value} is outside the 64-bit integer range", field=field)
    return value


def event_row(agent_id: str, timeline: Timeline, field: str = "timeline") -> PendingEvent:
    """Encode a validated timeline for storage, after checking its bounds."""
    seq = check_int64(timeline.bookmark.seq, f"{field}.bookmark.seq")
    timestamp = check_int64(timeline.bookmark.timestamp, f"{field}.bookmark.timestamp")
    return PendingEvent(
        agent_id=agent_id,
        seq=seq,
        channel=timeline.event["channel"],
        event_type=timeline.event["type"],
        timestamp=timestamp,
        data=jsoncodec.dumps(
            {
                "cursor": timeline.cursor,
                "bookmark": {"seq": seq, "timestamp": timestamp},
                "event": timeline.event,
                **(timeline.__pydantic_extra__ or {}),
            },
            "timeline",
        ),
    )


def event_rows(agent_id: str, timelines: object, *, single: bool = False) -> list[PendingEvent]:
    """Validate and encode what ``append_event`` (``single``: one timeline) or
    ``append_events`` (a sequence of them) was given.

    Every check happens here, before anything is queued or sent: the record
    shape, the 64-bit bounds, and a seq repeated inside the batch. An error
    names the item (``timelines[3].bookmark.seq: ...``).
    """
    if single:
        return [event_row(agent_id, Timeline.coerce(timelines, "timeline"))]
    if isinstance(timelines, (str, bytes, Mapping)) or not isinstance(timelines, Iterable):
        raise RecordValidationError(
            f"timelines: expected a list of timelines, got {type(timelines).__name__}", field="timelines"
        )
    rows: list[PendingEvent] = []
    seen: set[int] = set()
    for i, item in enumerate(timelines):
        field = f"timelines[{i}]"
        row = event_row(agent_id, Timeline.coerce(item, field), field)
        if row.seq in seen:
            raise RecordValidationError(
                f"{field}.bookmark.seq: seq {row.seq} appears twice in this batch", field=f"{field}.bookmark.seq"
            )
        seen.add(row.seq)
        rows.append(row)
    return rows


def duplicate_seq_error(agent_id: str, seqs: Iterable[int]) -> RecordValidationError:
    """The error for an append whose seq(s) the agent already has stored."""
    found = sorted(seqs)
    shown = ", ".join(str(seq) for seq in found[:10]) + (", ..." if len(found) > 10 else "")
    noun = "seq" if len(found) == 1 else "seqs"
    return RecordValidationError(
        f"timeline.bookmark.seq: {noun} {shown} already stored for agent {agent_id!r}; "
        "nothing of this call was written",
        field="timeline.bookmark.seq",
    )


def since_seq(since: Any) -> int | None:
    """The ``seq`` a ``read_events(since=...)`` argument names: a
    :class:`~kode_sdk.types.Bookmark`, a dict with ``seq``, a :class:`Timeline`,
    or a plain int. ``None`` means from the start."""
    if since is None:
        return None
    if isinstance(since, bool):
        raise RecordValidationError("since: expected a Bookmark or an int seq, got a bool", field="since")
    if isinstance(since, int):
        return since
    if isinstance(since, Timeline):
        return since.bookmark.seq
    seq = getattr(since, "seq", None)
    if seq is None and isinstance(since, Mapping):
        seq = since.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool):
        return seq
    raise RecordValidationError(
        f"since: expected a Bookmark, a dict with an int 'seq', or an int; got {type(since).__name__}", field="since"
    )


def check_channel(channel: str | None) -> str | None:
    """Validate a ``read_events(channel=...)`` filter."""
    if channel is None or channel in CHANNELS:
        return channel
    raise RecordValidationError(f"channel: {channel!r} is not one of 'progress', 'control', 'monitor'", field="channel")


def timeline_from_wire(wire: dict[str, Any]) -> Timeline:
    """Rebuild a :class:`Timeline` from JSON this library wrote."""
    bookmark = wire.pop("bookmark")
    return Timeline.model_construct(bookmark=Bookmark.model_construct(**bookmark), **wire)


class EventCommitter:
    """Group commit for event appends: callers that append *at the same time*
    share one commit, and every caller returns only once its own events are
    committed (nothing is acknowledged from a queue).

    The first caller commits its batch alone, at once (no added latency).
    Callers arriving while a commit is in flight wait; when it ends, all of
    them are committed together in one transaction. If that joint commit
    fails (a duplicate seq, a value the database refuses), each batch is
    retried in a transaction of its own, so an error reaches only the caller
    whose batch caused it and every other batch is stored.

    ``commit(rows)`` is the backend's: write ``rows`` (possibly of several
    agents) in one transaction, or raise and write nothing.
    """

    def __init__(self, commit: Callable[[list[PendingEvent]], Awaitable[None]]) -> None:
        self._commit = commit
        self._busy = False
        self._waiting: list[tuple[list[PendingEvent], asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def append(self, rows: list[PendingEvent]) -> None:
        """Commit ``rows`` (one caller's batch); return once committed."""
        if self._busy:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((rows, future))
            await future
            return
        self._busy = True
        try:
            await self._commit(rows)
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._waiting:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                group = [(rows, future) for rows, future in group if not future.done()]  # cancelled callers
                if len(group) > 1:
                    try:
                        await self._commit([row for rows, _ in group for row in rows])
                    except Exception:
                        pass  # retried one batch at a time below
                    else:
                        for _, future in group:
                            if not future.done():
                                future.set_result(None)
                        continue
                for rows, future in group:
                    try:
                        await self._commit(rows)
                    except Exception as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(None)
        except BaseException as exc:  # cancelled (the loop is ending): nobody waits in vain
            for _, future in self._waiting:
                if not future.done():
                    future.set_exception(StoreClosedError(f"event commit interrupted: {exc!r}"))
            self._waiting = []
            raise
        finally:
            self._busy = False

    async def wait_idle(self) -> None:
        """Wait until every commit in flight has ended (before closing)."""
        while self._busy:
            drainer = self._drainer
            if drainer is not None and not drainer.done():
                with contextlib.suppress(Exception):
                    await asyncio.shield(drainer)
            else:
                await asyncio.sleep(0.001)
