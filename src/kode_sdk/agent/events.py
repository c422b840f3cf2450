"""An agent's event bus: every event is stored first, then handed to listeners.

Events go to one timeline with three channels — ``progress`` (text chunks,
tool start/end, done), ``control`` (permission required/decided) and
``monitor`` (state changes, steps, token usage, tools executed, errors,
resumes). Each gets the next ``seq`` (rising by one, across channels) and is
written with :meth:`Store.append_event` (streamed text chunks: in batches, with
:meth:`Store.append_events`) before any handler sees it, so what a
subscriber is shown is always what a later reader of the store will find.

``on(type, handler)`` calls ``handler(timeline)`` for every event of that type
(``"*"``: every event); ``subscribe(channels, since=...)`` replays stored events
after ``since`` and then follows live ones.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeAlias

from ..errors import RecordValidationError
from ..store.events import check_channel, since_seq
from ..store.protocols import Store
from ..types import CHANNELS, Bookmark, Timeline

__all__ = ["EventBus", "Handler", "last_stored_seq"]

logger = logging.getLogger("kode_sdk.agent")

Handler: TypeAlias = Callable[[Timeline], Awaitable[None] | None]


async def last_stored_seq(store: Store, agent_id: str, hint: Bookmark | None = None) -> int:
    """The highest event ``seq`` stored for ``agent_id`` (0 when none).

    ``hint`` (the bookmark saved in the agent's info) makes this a short range
    read of the events after it, instead of a scan of the whole timeline.
    """
    last = hint.seq if hint is not None else 0
    async for timeline in store.read_events(agent_id, since=hint):
        last = max(last, timeline.bookmark.seq)
    return last


class EventBus:
    """Numbers, stores and dispatches one agent's events."""

    def __init__(self, store: Store, agent_id: str, last_seq: int = 0, last_bookmark: Bookmark | None = None) -> None:
        self._store = store
        self._agent_id = agent_id
        self._seq = last_seq
        self.last_bookmark: Bookmark | None = last_bookmark
        self._handlers: dict[str, list[Handler]] = {}
        self._subscribers: list[tuple[frozenset[str], asyncio.Queue[Timeline]]] = []
        # While a step is being persisted as one transaction: (channel, type,
        # event) of each event emitted, numbered and stored at its commit.
        self._held: list[Timeline] | None = None

    @property
    def seq(self) -> int:
        """The seq of the last event emitted (0 before the first)."""
        return self._seq

    def reset(self, last_seq: int, last_bookmark: Bookmark | None) -> None:
        """Continue numbering after ``last_seq`` (the agent was reloaded from the store)."""
        self._seq = last_seq
        self.last_bookmark = last_bookmark

    def hold(self) -> None:
        """Hold the events emitted from now on: :meth:`emit` numbers them but
        neither stores nor dispatches them; :meth:`held` hands them to the
        caller, which stores them in its transaction and then calls
        :meth:`dispatch_stored`."""
        self._held = []

    def held(self) -> list[Timeline]:
        """Stop holding; return the events held."""
        events, self._held = self._held or [], None
        return events

    def renumber(self, events: list[Timeline], last_seq: int) -> list[Timeline]:
        """``events`` numbered again after ``last_seq`` (another writer took their seqs)."""
        self._seq = last_seq
        return [self._next(dict(t.event)) for t in events]

    async def dispatch_stored(self, events: list[Timeline]) -> None:
        """Hand events stored by the caller's transaction to subscribers and handlers."""
        if events:
            self.last_bookmark = events[-1].bookmark
        for timeline in events:
            await self._dispatch(timeline.event["channel"], timeline.event["type"], timeline)

    async def emit(self, channel: str, type: str, data: dict[str, Any] | None = None) -> Timeline:
        """Store an event, then hand it to subscribers and handlers; returns it.
        (While events are held, see :meth:`hold`: numbered, stored later.)"""
        event = {"channel": channel, "type": type, **(data or {})}
        timeline = self._next(event)
        if self._held is not None:
            self._held.append(timeline)
            self.last_bookmark = timeline.bookmark
            return timeline
        try:
            await self._store.append_event(self._agent_id, timeline)
        except RecordValidationError:
            # Another writer (a second Agent over the same id, an earlier
            # process) took this seq: continue after what the store holds.
            self._seq = await last_stored_seq(self._store, self._agent_id, self.last_bookmark)
            timeline = self._next(event)
            await self._store.append_event(self._agent_id, timeline)
        self.last_bookmark = timeline.bookmark
        await self._dispatch(channel, type, timeline)
        return timeline

    async def emit_many(self, channel: str, type: str, items: list[dict[str, Any]]) -> list[Timeline]:
        """Store several events of one kind with one ``append_events`` (one
        transaction), then hand each to subscribers and handlers, in order.
        The agent loop uses it for streamed text chunks."""
        if not items:
            return []
        events = [{"channel": channel, "type": type, **data} for data in items]
        timelines = [self._next(event) for event in events]
        try:
            await self._store.append_events(self._agent_id, timelines)
        except RecordValidationError:
            # Another writer took some of these seqs: continue after what the store holds.
            self._seq = await last_stored_seq(self._store, self._agent_id, self.last_bookmark)
            timelines = [self._next(event) for event in events]
            await self._store.append_events(self._agent_id, timelines)
        self.last_bookmark = timelines[-1].bookmark
        for timeline in timelines:
            await self._dispatch(channel, type, timeline)
        return timelines

    async def _dispatch(self, channel: str, type: str, timeline: Timeline) -> None:
        for channels, queue in self._subscribers:
            if channel in channels:
                queue.put_nowait(timeline)
        for handler in (*self._handlers.get(type, ()), *self._handlers.get("*", ())):
            try:
                outcome = handler(timeline)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                # A listener's bug must not stop the agent; it is logged with its traceback.
                logger.exception("event handler %r failed on %s event", handler, type)

    def _next(self, event: dict[str, Any]) -> Timeline:
        self._seq += 1
        now = int(time.time() * 1000)
        return Timeline(cursor=self._seq, bookmark=Bookmark(seq=self._seq, timestamp=now), event=event)

    def on(self, type: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(timeline)`` for each event of ``type`` (``"*"``: all);
        returns a function that removes the handler again."""
        if not isinstance(type, str) or not type:
            raise ValueError(f"event type must be a non-empty string; got {type!r}")
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        self._handlers.setdefault(type, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(type, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    async def subscribe(
        self, channels: Iterable[str] | str | None = None, since: Any = None
    ) -> AsyncIterator[Timeline]:
        """Yield events of ``channels`` (default: all three): first the stored
        ones after ``since`` (a Bookmark, a dict with ``seq``, or an int), when
        given, then live ones as they are emitted. Leave the loop to stop."""
        if isinstance(channels, str):
            channels = [channels]
        wanted = frozenset(channels) if channels is not None else frozenset(CHANNELS)
        for channel in wanted:
            check_channel(channel)
        queue: asyncio.Queue[Timeline] = asyncio.Queue()
        entry = (wanted, queue)
        # Listen before replaying, so nothing emitted during the replay is missed.
        self._subscribers.append(entry)
        try:
            last = 0
            start = since_seq(since)
            if start is not None:
                last = start
                async for timeline in self._store.read_events(self._agent_id, since=start):
                    if timeline.event["channel"] in wanted and timeline.bookmark.seq > last:
                        last = timeline.bookmark.seq
                        yield timeline
            while True:
                timeline = await queue.get()
                if timeline.bookmark.seq > last:
                    last = timeline.bookmark.seq
                    yield timeline
        finally:
            self._subscribers.remove(entry)
