"""The PostgresStore class: the Store contract on PostgreSQL, each method a
short composition of the package's parts (see :mod:`kode_sdk.store.postgres`
for how it is built and which module does what).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from ... import jsoncodec
from ...errors import RecordValidationError, StoreClosedError
from ...types import (
    AgentInfo,
    ConsistencyCheckResult,
    DatabaseHealth,
    MediaCacheRecord,
    Message,
    Record,
    SessionInfo,
    Snapshot,
    StorageMetrics,
    StoredMessage,
    StoredToolCall,
    StoreHealthStatus,
    StoreMetrics,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
    now_utc,
    to_epoch_ms,
)
from ..agent_ids import validate_agent_id
from ..appended import AppendedRecords
from ..catalog import RecordTimes
from ..events import EventCommitter, check_channel, event_rows, since_seq, timeline_from_wire
from ..lifecycle import operation, operation_iter
from ..list_diff import SavedListCache
from ..locks import AgentLock
from ..queries import AgentCounts, MessageQuery, QueryFront, SessionQuery, ToolCallQuery
from ..query_rules import fork_agent_ids, user_id_of
from ..records import RecordKind, coerce_list, record_json
from ..results import message_from_wire, session_info, stored_message, stored_tool_call, tool_call_record_from_wire
from ..search import SearchRequest, SearchRow
from ..transaction import TransactionDriver
from ..writable import probe_writable
from . import sql
from .connections import PostgresConnections
from .consistency import CONSISTENCY_QUERY, consistency_issues
from .events import EVENT_PAGE, MAX_SEQ, commit_events, first_seq_after, read_page
from .fork import fork_agent
from .lists import MESSAGES, TOOL_CALLS, append_messages, save_list, upsert_tool_call
from .locks import acquire_advisory_lock, acquire_lease_lock
from .pooler import LeaseAgentLock
from .queries import STATS_QUERY, list_query, messages_query, search_query, sessions_query, tool_calls_query
from .sql import doc, load, now_ms, text
from .tail import listen_tail, poll_tail
from .transaction import PostgresDriver

__all__ = ["PostgresStore"]


class PostgresStore(QueryFront, AppendedRecords, PostgresConnections):
    """A :class:`~kode_sdk.store.protocols.ExtendedStore` in PostgreSQL, shared by any
    number of workers.

    ``connection`` is a DSN or a dict of parts (``host, port, database, user,
    password, max, idle_timeout_ms, connection_timeout_ms, ssl``, also ``dsn``,
    ``schema``, ``pooler``, ``lock_lease_ms`` and ``replicas``; see
    :mod:`kode_sdk.store.postgres.config` and docs/postgres-guide.md).
    ``schema`` (default ``public``) is created if missing, unless ``create``
    is false: then a schema without kode tables raises
    :class:`~kode_sdk.errors.StoreConfigError` and nothing is created.
    ``file_store_base_dir`` is accepted for the hybrid layout of the reference
    design; here it is only checked for writability by :meth:`health_check`.
    The constructor does no I/O.

    >>> store = PostgresStore({"host": "127.0.0.1", "database": "kode", "user": "kode"})
    >>> store
    <PostgresStore 127.0.0.1:5432/kode user=kode schema=public (new)>
    """

    backend_name = "postgres"

    def __init__(
        self,
        connection: Mapping[str, Any] | str,
        file_store_base_dir: str | os.PathLike[str] | None = None,
        *,
        schema: str | None = None,
        create: bool = True,
    ) -> None:
        super().__init__(connection, schema, create)
        self._file_dir = Path(file_store_base_dir) if file_store_base_dir is not None else None
        self._messages_cache: SavedListCache = SavedListCache()
        self._tool_calls_cache: SavedListCache = SavedListCache()
        # False only to measure what the index costs (bench/run.py --search-index off).
        self._search_index = True
        self._event_commits = EventCommitter(functools.partial(commit_events, self))
        self._held_locks: set[AgentLock] = set()
        self._leases: dict[str, set[LeaseAgentLock]] = {}  # held lease locks by agent (behind a pooler)

    def __repr__(self) -> str:
        return f"<PostgresStore {self._settings.describe()} ({self._state})>"

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding this store's tables."""
        return self._settings.schema

    async def _close(self) -> None:
        try:
            await self._event_commits.wait_idle()
            for lock in list(self._held_locks):
                with contextlib.suppress(Exception):
                    await lock.release()
        finally:
            await self._close_connections()

    @operation("saves")
    async def append_event(self, agent_id: str, timeline: Timeline | Mapping[str, Any]) -> None:
        """Append one event; returns once it is committed (concurrent appends
        share one commit) and visible to every worker. A ``seq`` already
        stored raises :class:`RecordValidationError`, nothing written."""
        await self._event_commits.append(event_rows(agent_id, timeline, single=True))

    @operation("saves")
    async def append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None:
        """Append a batch of events in one transaction (one round trip): all or
        none. A seq already stored, or repeated in the batch, raises
        :class:`RecordValidationError` for this call only."""
        rows = event_rows(agent_id, timelines)
        if rows:
            await self._event_commits.append(rows)

    @operation_iter("loads")
    async def read_events(
        self, agent_id: str, *, since: Any = None, channel: str | None = None
    ) -> AsyncIterator[Timeline]:
        """Yield the agent's events in ``bookmark.seq`` order (``seq > since``),
        optionally of one channel; read in keyset pages of 1,000."""
        only = check_channel(channel)
        first = first_seq_after(since_seq(since))
        while first <= MAX_SEQ:
            async with self._connection() as conn:
                rows = await read_page(conn, agent_id, only, first)
            for _, document in rows:
                yield timeline_from_wire(load(document))
            if len(rows) < EVENT_PAGE:
                return
            first = rows[-1][0] + 1

    async def tail_events(
        self, agent_id: str, since: Any = None, channel: str | None = None, *, poll_interval_s: float = 1.0
    ) -> AsyncIterator[Timeline]:
        """Yield the agent's events as any worker appends them, forever.

        Starts after ``since`` (a Bookmark, Timeline or seq; ``None``: from the
        first event), then waits: LISTEN on a dedicated connection wakes it,
        the ``events`` table is the source of truth (``seq > last seen`` after
        every wake-up, and every ``poll_interval_s`` anyway), so nothing is
        missed or yielded twice, even across a reconnect. While the server is
        unreachable it retries quietly. Stop by leaving the loop; to release the
        connection at once, iterate inside ``contextlib.aclosing``::

            async with contextlib.aclosing(store.tail_events("agt-1")) as events:
                async for timeline in events:
                    ...
        """
        await self._ensure_open()
        validate_agent_id(agent_id)
        only = check_channel(channel)
        first = first_seq_after(since_seq(since))
        # LISTEN needs a session of its own, which a transaction pooler does
        # not give: behind one, poll the table instead.
        tail = poll_tail if self._pooled else listen_tail
        async with contextlib.aclosing(tail(self, agent_id, only, first, poll_interval_s)) as timelines:
            async for timeline in timelines:
                yield timeline

    @operation("saves")
    async def save_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Replace the agent's messages with ``messages``, writing only the
        positions that changed (a rewritten position keeps its ``created_at``).

        The diff compares each message's wire form with an independent copy of
        what was saved last (cached per agent, checked against the row version
        under the row lock), so only changed messages are encoded and sent.
        """
        await save_list(self, MESSAGES, agent_id, coerce_list(Message, messages, "messages"))

    @operation("saves")
    async def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Append ``messages`` after the stored ones: no re-read, one round trip for the rows."""
        await append_messages(self, agent_id, coerce_list(Message, messages, "messages"))

    @operation("loads")
    async def load_messages(self, agent_id: str) -> list[Message]:
        """The agent's messages, in order (``[]`` for an unknown agent)."""
        return [message_from_wire(wire) for wire in await self._fetch_docs(sql.MESSAGE_SQL.load, [agent_id])]

    @operation("saves")
    async def save_tool_call_records(
        self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]
    ) -> None:
        """Replace the agent's tool-call records, writing only changed positions
        (compared with snapshots of the records saved last)."""
        await save_list(self, TOOL_CALLS, agent_id, coerce_list(ToolCallRecord, records, "records"))

    @operation("saves")
    async def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None:
        """Write one tool-call record by id: replaced in place, a new id goes
        last. One row and one round trip, whatever the list's length."""
        await upsert_tool_call(self, agent_id, ToolCallRecord.coerce(record, "record"))

    def _transaction_driver(self, agent_id: str) -> TransactionDriver:
        return PostgresDriver(self, agent_id, (self._messages_cache, self._tool_calls_cache))

    @operation("loads")
    async def load_tool_call_records(self, agent_id: str) -> list[ToolCallRecord]:
        """The agent's tool-call records, in order."""
        return [tool_call_record_from_wire(wire) for wire in await self._fetch_docs(sql.TOOL_CALL_SQL.load, [agent_id])]

    @operation("saves")
    async def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None:
        """Replace the agent's todo list."""
        record = TodoSnapshot.coerce(snapshot, "snapshot")
        data, raw = doc(record_json(record, "snapshot"))
        await self._execute(sql.SAVE_TODOS, [agent_id, record.version, to_epoch_ms(record.updated_at), data, raw])

    @operation("loads")
    async def load_todos(self, agent_id: str) -> TodoSnapshot | None:
        """The agent's todo list, or ``None``."""
        docs = await self._fetch_docs(sql.LOAD_TODOS, [agent_id])
        return TodoSnapshot.model_validate(docs[0]) if docs else None

    async def _save_appended(self, kind: RecordKind, agent_id: str, record: Record) -> None:
        """Append the validated ``record`` of the append-only ``kind``: one
        row, its key in the column of the same name."""
        await self._execute(sql.APPEND_RECORD[kind.name], sql.appended_row(kind, agent_id, record))

    async def _load_appended(self, kind: RecordKind, agent_id: str) -> list[Any]:
        """The agent's records of the append-only ``kind``, in save order."""
        return [kind.model.model_validate(d) for d in await self._fetch_docs(sql.LOAD_APPENDED[kind.name], [agent_id])]

    @operation("saves")
    async def save_media_cache(self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]) -> None:
        """Replace the agent's media cache."""
        items = coerce_list(MediaCacheRecord, records, "records")
        rows = []
        for pos, item in enumerate(items):
            data, raw = doc(record_json(item, f"records[{pos}]"))
            rows.append((agent_id, pos, text(item.key), data, raw))
        async with self._transaction() as conn:
            await conn.execute(sql.CLEAR_MEDIA_CACHE, [agent_id])
            if rows:
                await conn.cursor().executemany(sql.INSERT_MEDIA_CACHE, rows)

    @operation("loads")
    async def load_media_cache(self, agent_id: str) -> list[MediaCacheRecord]:
        """The agent's media cache, in order."""
        return [MediaCacheRecord.model_validate(d) for d in await self._fetch_docs(sql.LOAD_MEDIA_CACHE, [agent_id])]

    @operation("saves")
    async def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None:
        """Save a snapshot (the same ``id`` again replaces it)."""
        item = Snapshot.coerce(snapshot, "snapshot")
        data, raw = doc(record_json(item, "snapshot"))
        await self._execute(sql.SAVE_SNAPSHOT, [agent_id, text(item.id), to_epoch_ms(item.created_at), data, raw])

    @operation("loads")
    async def load_snapshot(self, agent_id: str, snapshot_id: str) -> Snapshot | None:
        """One snapshot by id, or ``None``."""
        if not isinstance(snapshot_id, str):
            raise RecordValidationError(
                f"snapshot_id: expected a str, got {type(snapshot_id).__name__}", field="snapshot_id"
            )
        docs = await self._fetch_docs(sql.LOAD_SNAPSHOT, [agent_id, text(snapshot_id)])
        return Snapshot.model_validate(docs[0]) if docs else None

    @operation("loads")
    async def list_snapshots(self, agent_id: str) -> list[Snapshot]:
        """The agent's snapshots, newest first."""
        return [Snapshot.model_validate(d) for d in await self._fetch_docs(sql.LIST_SNAPSHOTS, [agent_id])]

    @operation("saves")
    async def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None:
        """Save the agent's :class:`AgentInfo`; from then on the agent exists."""
        item = AgentInfo.coerce(info, "info")
        if item.agent_id != agent_id:
            raise RecordValidationError(
                f"info.agent_id: {item.agent_id!r} does not match the agent id {agent_id!r}", field="info.agent_id"
            )
        data, raw = doc(record_json(item, "info"))
        user = user_id_of(item.metadata)
        await self._execute(
            sql.SAVE_INFO,
            [
                agent_id,
                data,
                raw,
                text(item.template_id),
                text(user) if user is not None else None,
                to_epoch_ms(item.created_at),
                now_ms(),
                item.message_count,
                item.last_sfp_index,
                item.breakpoint.value if item.breakpoint is not None else None,
            ],
        )

    @operation("loads")
    async def load_info(self, agent_id: str) -> AgentInfo | None:
        """The agent's info, or ``None``; ``message_count`` reflects the last message save."""
        async with self._connection() as conn:
            cur = await conn.execute(sql.LOAD_INFO, [agent_id])
            row = await cur.fetchone()
        if row is None:
            return None
        wire = load(row[0])
        wire["messageCount"] = row[1]
        return AgentInfo.model_validate(wire)

    @operation("loads")
    async def exists(self, agent_id: str) -> bool:
        """True once ``save_info`` ran for the agent."""
        async with self._connection() as conn:
            cur = await conn.execute("SELECT 1 FROM agents WHERE agent_id = %s AND info IS NOT NULL", [agent_id])
            return await cur.fetchone() is not None

    @operation("deletes")
    async def delete(self, agent_id: str) -> None:
        """Remove every record of the agent, in every table, in one transaction."""
        try:
            async with self._transaction() as conn:
                for statement in sql.DELETE_AGENT:
                    await conn.execute(statement, [agent_id])
        finally:
            self._messages_cache.drop(agent_id)
            self._tool_calls_cache.drop(agent_id)

    # The public query methods are QueryFront's (store/queries.py): these
    # primitives get the validated request and read the page.

    async def _session_rows(self, q: SessionQuery) -> list[SessionInfo]:
        """``query_sessions``: one page of agents (see :func:`sessions_query`)."""
        query, params = sessions_query(q)
        rows = await self._read_rows(query, params)
        return [
            session_info(
                aid,
                created,
                updated,
                count,
                template,
                sfp,
                bp,
                load(info_raw).get("metadata") if info_raw is not None else load(meta) if meta is not None else None,
            )
            for aid, template, created, updated, count, sfp, bp, info_raw, meta in rows
        ]

    async def _search_rows(self, request: SearchRequest) -> list[SearchRow]:
        """``search_messages``: the GIN index finds the rows (see :func:`search_query`)."""
        query, params = search_query(request)
        rows = await self._read_rows(query, params)
        return [
            SearchRow(agent, seq, role, int(created), jsoncodec.decode(text), float(score))
            for agent, seq, role, created, text, score in rows
        ]

    async def _message_rows(self, q: MessageQuery) -> list[StoredMessage]:
        """``query_messages``: one page of messages (see :func:`messages_query`)."""
        query, params = messages_query(q)
        rows = await self._read_rows(query, params)
        return [stored_message(aid, seq, role, created, load(document)) for aid, seq, role, created, document in rows]

    async def _tool_call_rows(self, q: ToolCallQuery) -> list[StoredToolCall]:
        """``query_tool_calls``: one page of tool calls (see :func:`tool_calls_query`)."""
        query, params = tool_calls_query(q)
        rows = await self._read_rows(query, params)
        return [stored_tool_call(aid, load(document)) for aid, document in rows]

    async def _agent_counts(self, agent_id: str) -> AgentCounts:
        """``aggregate_stats``: the counts in one round trip (:data:`STATS_QUERY`)."""
        rows = await self._read_rows(STATS_QUERY, {"a": agent_id})
        counts: dict[str, dict[str, int]] = {"role": {}, "state": {}, "name": {}, "snapshots": {}}
        for kind, key, count in rows:
            counts[kind][key] = int(count)
        return AgentCounts(counts["role"], counts["state"], counts["name"], counts["snapshots"].get("", 0))

    async def health_check(self) -> StoreHealthStatus:
        """Whether the database answers (and how fast) and the file directory
        accepts writes. Raises only :class:`StoreClosedError` after ``close()``;
        any other failure is reported, scrubbed of secrets."""
        if self._state == "closed":
            raise StoreClosedError("postgres store is closed")
        started = time.perf_counter()
        files = probe_writable(self._file_dir, create=True)
        try:
            await self._ensure_open()
            began = time.perf_counter()
            async with self._connection() as conn:
                await conn.execute("SELECT 1")
            database = DatabaseHealth(connected=True, latency_ms=(time.perf_counter() - began) * 1000)
        except Exception as exc:
            detail = self._settings.scrub(str(exc)) or type(exc).__name__
            database = DatabaseHealth(connected=False, error=detail)
        self.metrics.record("other", "health_check", (time.perf_counter() - started) * 1000, database.connected)
        return StoreHealthStatus(
            healthy=database.connected and files.writable,
            database=database,
            file_system=files,
            checked_at=now_utc(),
        )

    @operation("queries")
    async def check_consistency(self, agent_id: str) -> ConsistencyCheckResult:
        """Look for broken invariants of the agent's rows (gaps in positions,
        counters that disagree with the rows, info that does not load)."""
        async with self._connection() as conn:
            cur = await conn.execute(CONSISTENCY_QUERY, {"a": agent_id})
            row = await cur.fetchone()
        assert row is not None
        issues = consistency_issues(agent_id, row)
        return ConsistencyCheckResult(consistent=not issues, issues=issues, checked_at=now_utc())

    @operation("queries", agent=False)
    async def get_metrics(self) -> StoreMetrics:
        """Operation counters, latency percentiles, and what the schema holds
        (``db_size_bytes``: tables, indexes and TOAST of this store's schema)."""
        async with self._connection() as conn:
            cur = await conn.execute(sql.METRICS, [self._settings.schema])
            row = await cur.fetchone()
        assert row is not None
        storage = StorageMetrics(
            total_agents=int(row[0]),
            total_messages=int(row[1]),
            total_tool_calls=int(row[2]),
            db_size_bytes=int(row[3]) if row[3] is not None else None,
        )
        return self.metrics.snapshot(storage)

    @operation("saves")
    async def batch_fork(self, agent_id: str, count: int) -> list[str]:
        """Create ``count`` forks of the agent in one transaction: info (new id,
        lineage + source), messages, tool calls, todos and snapshots."""
        new_ids = fork_agent_ids(agent_id, count)
        async with self._transaction() as conn:
            await fork_agent(conn, agent_id, new_ids, now_ms())
        return new_ids

    @operation("other")
    async def acquire_agent_lock(self, agent_id: str, timeout_ms: int = 30_000) -> AgentLock:
        """Wait up to ``timeout_ms`` for the agent's lock, then raise
        :class:`LockTimeoutError`. The lock is a session advisory lock on a
        connection of its own, held until ``release()`` or until that
        connection (or this process) dies; it never expires.

        >>> lock = await store.acquire_agent_lock("agt-1", timeout_ms=5000)   # doctest: +SKIP
        >>> try: ...
        ... finally: await lock.release()
        """
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
            raise ValueError(f"timeout_ms must be an int >= 0; got {timeout_ms!r}")
        if self._state != "open":
            raise StoreClosedError("postgres store is closed")
        lock: AgentLock
        if self._pooled:
            lock = await acquire_lease_lock(self, agent_id, timeout_ms, self._forget_lease)
            self._leases.setdefault(agent_id, set()).add(lock)
        else:
            lock = await acquire_advisory_lock(self, agent_id, timeout_ms, self._held_locks.discard)
        self._held_locks.add(lock)
        return lock

    @operation("queries", agent=False)
    async def list_stored_agents(self) -> list[str]:
        """Every agent with any stored record, info or not, sorted."""
        async with self._connection() as conn:
            cur = await conn.execute(cast(Any, sql.LIST_STORED_AGENTS))
            return [row[0] for row in await cur.fetchall()]

    @operation("loads")
    async def load_record_times(self, agent_id: str) -> RecordTimes:
        """Each message's ``created_at`` (by position) and the session's ``updated_at``."""
        async with self._connection() as conn:
            cur = await conn.execute(sql.MESSAGE_TIMES, [agent_id])
            created = [int(row[0]) for row in await cur.fetchall()]
            cur = await conn.execute(sql.SESSION_TIME, [agent_id])
            row = await cur.fetchone()
        return RecordTimes(created, None if row is None else int(row[0]))

    @operation("saves")
    async def restore_record_times(self, agent_id: str, times: RecordTimes) -> None:
        """Set the messages' ``created_at`` and the session's ``updated_at`` (see store/catalog.py)."""
        async with self._transaction() as conn:
            if times.message_created_at:
                await conn.execute(sql.RESTORE_MESSAGE_TIMES, [times.message_created_at, agent_id])
            if times.updated_at is not None:
                await conn.execute(sql.RESTORE_SESSION_TIME, [times.updated_at, agent_id])

    def _forget_lease(self, lock: LeaseAgentLock) -> None:
        self._held_locks.discard(lock)
        held = self._leases.get(lock.agent_id)
        if held is not None:
            held.discard(lock)
            if not held:
                del self._leases[lock.agent_id]

    def _before_write(self, agent_id: str) -> None:
        """A store holding a lapsed lease of ``agent_id`` writes nothing for it."""
        if self._leases:
            for lock in self._leases.get(agent_id, ()):
                lock.check()

    @operation("deletes", agent=False)
    async def prune(
        self,
        *,
        created_before: datetime | int,
        template_id: str | None = None,
        dry_run: bool = False,
    ) -> list[str]:
        """Delete every agent created strictly before ``created_before`` (of
        ``template_id`` only, when given) and return their ids, sorted.

        One statement however many agents: a data-modifying CTE deletes the
        registry rows and, from their ``RETURNING`` list, every table's rows
        (there are no foreign keys to cascade). ``dry_run`` only lists them.

        >>> await store.prune(created_before=datetime(2025, 1, 1, tzinfo=UTC))   # doctest: +SKIP
        ['agt-old-1', 'agt-old-2']
        """
        cutoff = to_epoch_ms(created_before)  # epoch ms already: store/policy.py checked the arguments
        where = "info IS NOT NULL AND created_at < %s"
        params: list[Any] = [cutoff]
        if template_id is not None:
            where += " AND template_id = %s"
            params.append(template_id)
        if dry_run:
            async with self._connection() as conn:
                cur = await conn.execute(f"SELECT agent_id FROM agents WHERE {where}", params)
                return sorted(row[0] for row in await cur.fetchall())
        # Pending events of doomed agents must reach the table before it is cleared.
        statement = sql.prune_statement(where)
        async with self._transaction() as conn:
            cur = await conn.execute(statement, params)
            doomed = sorted(row[0] for row in await cur.fetchall())
        for agent_id in doomed:
            self._messages_cache.drop(agent_id)
            self._tool_calls_cache.drop(agent_id)
        return doomed

    @operation("queries", agent=False)
    async def list(self, prefix: str | None = None) -> list[str]:
        """Ids of existing agents, sorted; ``prefix`` matches literally and
        case-sensitively (an index range, not LIKE)."""
        query, params = list_query(prefix)
        return [row[0] for row in await self._read_rows(query, params)]
