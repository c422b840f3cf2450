"""SqliteStore: the embedded default backend — one SQLite file in WAL mode.

The Store contract on SQLite: each call validates its arguments, builds the
job that does all its SQL (statements and row values from sql.py), and runs it
on the connection thread (:meth:`SqliteStore._hop`) or, for bounded reads, on
the caller's own read connection (:meth:`SqliteStore._read`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from ... import jsoncodec
from ...errors import (
    AgentNotFoundError,
    RecordValidationError,
    SchemaVersionError,
    StoreClosedError,
    StoreConnectionError,
)
from ...types import (
    AgentInfo,
    ConsistencyCheckResult,
    DatabaseHealth,
    FileSystemHealth,
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
    ms_to_datetime,
    now_utc,
    to_epoch_ms,
)
from ..appended import AppendedRecords
from ..catalog import RecordTimes
from ..events import (
    EventCommitter,
    PendingEvent,
    check_channel,
    check_int64,
    duplicate_seq_error,
    event_rows,
    since_seq,
)
from ..flock_lock import FlockAgentLock, acquire_flock_lock
from ..lifecycle import BaseStore, operation, operation_iter
from ..list_diff import (
    SavedListCache,
    changed_positions,
    message_keys,
    message_snapshot,
    message_snapshot_from_wire,
    tool_call_keys,
    tool_call_snapshot,
    updated_snapshots,
)
from ..locks import AgentLock
from ..policy import DriverErrorKind
from ..queries import AgentCounts, MessageQuery, QueryFront, SessionQuery, ToolCallQuery
from ..query_rules import fork_agent_ids, prefix_upper_bound, user_id_of
from ..records import RecordKind, coerce_list, kind_named, message_to_wire, record_json
from ..results import message_from_wire, session_info_from_wire, stored_message, stored_tool_call
from ..search import SearchRequest, SearchRow
from ..sql_where import Where, check_str
from ..transaction import TransactionDriver
from ..writable import probe_writable
from .blob import pack, unpack
from .checkpointer import Checkpointer
from .connection import CallerReaders, open_writer
from .consistency import consistency_issues
from .fts import search_job
from .sql import (
    APPEND_ROW,
    COPY_ROWS,
    COUNT_ROLES,
    ENSURE_AGENT,
    FIND_TOOL_CALL,
    INSERT_EVENT,
    INSERT_MESSAGE,
    INSERT_TOOL_CALL,
    LAST_MESSAGE,
    LOAD_IN_ORDER,
    ROLES,
    SAVE_INFO,
    SET_MESSAGE_STATE,
    SET_TOOL_CALL_STATE,
    TOUCH_AGENT,
    UPDATE_INFO,
    UPDATE_MESSAGE,
    UPDATE_TOOL_CALL,
    created_at_floor,
    load_tool_call,
    message_row_parts,
    new_version,
    now_ms,
    tool_call_columns,
)
from .thread import ConnectionThread, claim
from .transactions import INLINE, InlineBusy, is_busy, transaction
from .unit import TX_SCOPE, SqliteDriver

__all__ = ["SqliteStore"]

#: The longest list :meth:`SqliteStore._read_list` reads on the caller's thread
#: (about a millisecond of decoding; query pages are bounded alike).
INLINE_LIST_ROWS = 256

T = TypeVar("T")

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EVENT_PAGE = 1000
_MEDIA_CACHE = kind_named("media_cache")


# --------------------------------------------------------------------------- store


class SqliteStore(QueryFront, AppendedRecords, BaseStore):
    """The embedded default store: one SQLite database file in WAL mode.

    >>> store = SqliteStore("./data/agents.db")          # no I/O yet
    >>> async def main() -> None:                        # doctest: +SKIP
    ...     async with store:
    ...         await store.save_info("agt-1", {"agent_id": "agt-1", "template_id": "assistant"})
    ...         print(await store.query_sessions(template_id="assistant"))

    **Threads.** One dedicated worker thread (``kode-sqlite``) owns the
    connection; every store call does all its SQL in one hop to that thread,
    each write in one ``BEGIN IMMEDIATE … COMMIT`` transaction, each
    multi-statement read in one snapshot. A write made while that thread is
    idle runs on the calling thread instead, under the thread's run lock (no
    hop; it never waits for a lock there: see ``_hop``). The bounded query reads
    (``query_*``, :meth:`aggregate_stats`, :meth:`list`, :meth:`exists`,
    :meth:`load_info`) skip the hop when the worker is idle: they run on the
    calling thread's own ``query_only`` connection (see ``_read``). A second
    thread (``kode-sqlite-checkpoint``, its own connection) moves the WAL into
    the database file, so no call waits for a checkpoint.

    **Durability.** ``journal_mode=WAL`` with ``synchronous=NORMAL``: a call
    that returned has committed and survives the process being killed; a power
    loss or OS crash can lose the commits since the last background checkpoint
    (about the last second of writes), never corrupt the file.
    :meth:`append_event` is no exception: concurrent appends share one
    commit, and each returns once that commit is done.

    **Several processes** may open the same file: writers take turns (each
    waits up to 10 s for the write lock, then retries), readers never block.
    Incremental saves check a per-agent version inside the write transaction,
    so a save by another process is never overwritten by a stale diff.

    **Incremental saves.** ``save_messages`` and ``save_tool_call_records``
    take the whole list but write only the positions that changed (a
    rewritten message keeps its first ``created_at``). Objects mutated in
    place after a save are detected: every save compares the whole list with
    a snapshot of what was saved — in C, a fraction of a microsecond per
    position, but still proportional to the history. ``append_messages`` is
    the constant-cost way to grow a conversation. Tool-call ids must be unique
    within an agent's list. History windows, compression records and recovered
    files are append-only and load in save order; a snapshot saved again with
    the same id replaces the old one.

    **Locks** (:meth:`acquire_agent_lock`) are ``flock`` locks on files: they
    work across processes on one machine (POSIX only).

    **file_store_base_dir** is accepted for configuration compatibility with
    the reference design, but every record is kept in the database (one
    database is the whole truth). When given, that directory holds the agent
    lock files (``<dir>/locks/<agent_id>.lock``) and is what
    :meth:`health_check` probes for writability; otherwise the database file's
    directory is used. Processes sharing a database must agree on it, or their
    locks will not see each other.

    **create** (default ``True``): :meth:`open` creates the database file
    (0600) and its parent folders when missing. With ``create=False`` a
    missing file raises :class:`~kode_sdk.errors.StoreConfigError` and
    nothing is created (what read-only tools want).
    """

    backend_name = "sqlite"

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        file_store_base_dir: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
    ) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.create = create
        self.file_store_base_dir = Path(file_store_base_dir) if file_store_base_dir is not None else None
        self._conn: sqlite3.Connection | None = None
        self._busy_timeout_ms = 0  # the writer's, read when it opens
        self._waits = True  # whether the writer's busy timeout is set now (see _set_waits)
        self._thread: ConnectionThread | None = None
        self._event_commits = EventCommitter(self._commit_events)
        # Only ever touched on the worker thread.
        self._message_cache = SavedListCache()
        self._tool_call_cache = SavedListCache()
        self._locks: set[FlockAgentLock] = set()
        self._checkpointer: Checkpointer | None = None
        # Read connections used on the callers' threads (see _read); one a thread.
        self._readers = CallerReaders(self.db_path)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.db_path)!r})"

    @property
    def _base_dir(self) -> Path:
        if self.file_store_base_dir is not None:
            return self.file_store_base_dir
        return self.db_path.parent

    @property
    def _lock_dir(self) -> Path:
        return self._base_dir / "locks"

    # ------------------------------------------------------------------ lifecycle

    async def _open(self) -> None:
        thread = ConnectionThread()
        try:
            future, _ = thread.submit(self._connect)
            await future
        except BaseException:
            thread.stop()
            raise
        self._thread = thread
        if str(self.db_path) != ":memory:":
            self._checkpointer = Checkpointer(self.db_path)

    def _connect(self) -> None:
        self._conn = open_writer(self.db_path, create=self.create)
        self._busy_timeout_ms = int(self._conn.execute("PRAGMA busy_timeout").fetchone()[0])
        self._waits = True

    def _set_waits(self, conn: sqlite3.Connection, waits: bool) -> None:
        """Give the writer the busy timeout (``waits``) or none. Jobs on the
        connection thread wait for the write lock; inline jobs on the caller's
        thread never do. The PRAGMA runs only when the kind of job changes,
        so a run of inline writes (the common case) or of thread jobs runs
        none. Called under the connection thread's run lock."""
        if self._waits != waits:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms if waits else 0}")
            self._waits = waits

    def _driver_error_kind(self, exc: Exception) -> DriverErrorKind | None:
        """sqlite3's exceptions, classified for :func:`~kode_sdk.store.policy.driver_error`."""
        if isinstance(exc, sqlite3.IntegrityError):
            return "conflict"
        if isinstance(exc, sqlite3.DataError | sqlite3.InterfaceError | sqlite3.ProgrammingError | OverflowError):
            return "input"  # a value the driver cannot bind
        if isinstance(exc, sqlite3.Error):
            return "connection"  # locked, unreadable, disk full: the database, not the call
        return None

    async def _close(self) -> None:
        try:
            await self._event_commits.wait_idle()
        finally:
            for lock in list(self._locks):
                await lock.release()
            checkpointer, self._checkpointer = self._checkpointer, None
            if checkpointer is not None:
                # Closed before the writer, so the writer's connection can be
                # the last one and fold the WAL back into the file.
                await asyncio.to_thread(checkpointer.stop)
            thread, self._thread = self._thread, None
            self._readers.close()
            if thread is not None:
                try:
                    future, _ = thread.submit(self._disconnect)
                    await future
                finally:
                    thread.stop()

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._set_waits(conn, True)
                conn.execute("PRAGMA optimize")
            conn.close()

    # ------------------------------------------------------------------ the hop

    async def _hop(self, job: Callable[[sqlite3.Connection], T], *, inline: bool = False) -> T:
        """Run ``job`` on the worker thread; SQLite errors other than integrity
        errors become :class:`StoreConnectionError`.

        ``inline=True`` (the bounded writes of the contract's write methods and
        of ``store.transaction()``'s commit) runs the job on the caller's thread
        instead when the worker is idle: a commit then costs no thread switch
        (two per call otherwise, the largest part of a small write). It never
        waits for a lock there: the connection's busy timeout is 0 while it
        runs, and a job that finds the write lock taken before committing
        anything goes to the worker, which waits as always. Reads keep the hop
        or the caller-thread read connection (:meth:`_read`).
        """
        scope = TX_SCOPE.get()
        if scope is not None and scope.store is self:
            if scope.collecting:
                scope.jobs.append(job)
                return None  # type: ignore[return-value]  # a write's job returns nothing
            job = scope.through(job)
        thread = self._thread
        if thread is None:
            raise StoreClosedError("sqlite store is closed")
        checkpointer = self._checkpointer

        def work() -> T:
            conn = self._conn
            if conn is None:
                raise StoreClosedError("sqlite store is closed")
            changes = conn.total_changes
            try:
                return job(conn)
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                raise StoreConnectionError(f"SQLite error on {str(self.db_path)!r}: {exc}") from exc
            finally:
                if checkpointer is not None and conn.total_changes != changes:
                    checkpointer.note_write()

        if inline and thread.idle():
            try:
                ran, result = thread.run_inline(lambda: self._inline(work))
            except InlineBusy:
                ran, result = False, None
            if ran:
                return cast(T, result)

        def waiting() -> T:
            # On the connection thread a job waits for the write lock, up to the busy timeout.
            conn = self._conn
            if conn is None:
                raise StoreClosedError("sqlite store is closed")
            self._set_waits(conn, True)
            return work()

        future, box = thread.submit(waiting)
        try:
            return await future
        except BaseException:
            claim(box)  # a job that never started now never will
            raise

    def _inline(self, work: Callable[[], T]) -> T:
        # On the caller's thread, under the connection thread's run lock.
        conn = self._conn
        if conn is None:
            raise StoreClosedError("sqlite store is closed")
        # Here the connection never waits for a lock (a job that must wait
        # raises the timeout itself, see transactions.py).
        self._set_waits(conn, False)
        INLINE.active, INLINE.wrote, INLINE.busy_timeout_ms, INLINE.waited = True, False, self._busy_timeout_ms, False
        try:
            return work()
        except StoreConnectionError as exc:
            # Busy before anything was committed (say a snapshot during another
            # connection's WAL recovery): the worker runs it and waits instead.
            cause = exc.__cause__
            if isinstance(cause, sqlite3.OperationalError) and is_busy(cause) and not INLINE.wrote:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise InlineBusy from exc
            raise
        finally:
            INLINE.active = False
            if INLINE.waited:
                self._waits = True

    # ------------------------------------------------------------------ caller-thread reads

    async def _read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run the read-only ``job`` on this thread's read connection, without
        the hop to the worker thread, when that is sure to answer as the hop
        would; otherwise through :meth:`_hop`.

        Why it answers the same: every acknowledged write was committed before
        its call returned, and a WAL reader's statement sees every commit made
        before it started. Taken only while the worker is idle (nothing queued
        or running), so a read made after a write that is still in flight (say
        one whose caller was cancelled) waits behind it as before: a store's
        calls keep their order. Inside ``store.transaction()`` a read must see
        the unit's uncommitted writes, which only the worker's connection
        holds: those hop too, as do ``:memory:`` stores. The connection is
        ``query_only`` with no busy timeout, so it never blocks the event loop
        on a lock (a busy answer retries through the hop, which waits). Only
        bounded, indexed reads use it (query pages, counts, ids, whole lists up
        to :data:`INLINE_LIST_ROWS` rows): the loop then
        spends the query's own time (tens of µs on W3), less than the hop's two
        thread switches (docs/benchmarks.md, "Caller-thread reads")."""
        scope = TX_SCOPE.get()
        thread = self._thread
        if (scope is None or scope.store is not self) and thread is not None and thread.idle():
            conn = self._readers.connection()
            if conn is not None:
                try:
                    return job(conn)
                except sqlite3.OperationalError as exc:
                    if not is_busy(exc):
                        raise StoreConnectionError(f"SQLite error on {str(self.db_path)!r}: {exc}") from exc
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                except sqlite3.IntegrityError:
                    raise
                except sqlite3.Error as exc:
                    raise StoreConnectionError(f"SQLite error on {str(self.db_path)!r}: {exc}") from exc
        return await self._hop(job)

    async def _read_list(
        self, sql: str, params: tuple[Any, ...], convert: Callable[[Iterable[Any]], builtins.list[T]]
    ) -> builtins.list[T]:
        """An agent's whole list (``sql`` selects it in order), ``convert``-ed.

        A list of at most :data:`INLINE_LIST_ROWS` rows is read on the caller's
        thread when :meth:`_read` can (no hop: W4 reads 20 histories of 120
        messages); a longer one is read again, whole, on the worker, so the
        event loop never decodes more than that many rows at once.
        """

        def capped(conn: sqlite3.Connection) -> builtins.list[T] | None:
            rows = conn.execute(f"{sql} LIMIT {INLINE_LIST_ROWS + 1}", params).fetchall()
            return None if len(rows) > INLINE_LIST_ROWS else convert(rows)

        found = await self._read(capped)
        if found is not None:
            return found
        return await self._hop(lambda conn: convert(conn.execute(sql, params)))

    # ------------------------------------------------------------------ events

    async def _commit_events(self, rows: list[PendingEvent]) -> None:
        """Insert ``rows`` (one or more agents) in one transaction, or nothing.

        A seq already stored raises :class:`RecordValidationError` naming it
        (only ever for a single agent's batch: the group committer retries a
        failed joint commit batch by batch)."""

        def job(conn: sqlite3.Connection) -> None:
            try:
                with transaction(conn, write=True):
                    now = now_ms()
                    if len(rows) == 1:  # the common sequential append: execute beats executemany
                        r = rows[0]
                        conn.execute(ENSURE_AGENT, (r.agent_id, now))
                        conn.execute(INSERT_EVENT, (r.agent_id, r.seq, r.channel, r.event_type, r.timestamp, r.data))
                        return
                    conn.executemany(
                        ENSURE_AGENT, [(agent_id, now) for agent_id in dict.fromkeys(r.agent_id for r in rows)]
                    )
                    conn.executemany(
                        INSERT_EVENT, [(r.agent_id, r.seq, r.channel, r.event_type, r.timestamp, r.data) for r in rows]
                    )
            except sqlite3.IntegrityError:
                agent_id = rows[0].agent_id
                seqs = [r.seq for r in rows if r.agent_id == agent_id]
                stored: set[int] = set()
                for start in range(0, len(seqs), 500):  # SQLite's bound-parameter limit
                    chunk = seqs[start : start + 500]
                    query = f"SELECT seq FROM events WHERE agent_id = ? AND seq IN ({','.join('?' * len(chunk))})"
                    stored.update(seq for (seq,) in conn.execute(query, (agent_id, *chunk)))
                raise duplicate_seq_error(agent_id, stored or seqs) from None

        await self._hop(job, inline=True)

    @operation("saves")
    async def append_event(self, agent_id: str, timeline: Timeline | Mapping[str, Any]) -> None:
        """Append one event; its ``bookmark.seq`` must be new for this agent
        (else :class:`RecordValidationError`, nothing written).

        Returns once the event is committed (concurrent appends share one
        commit) and visible to every other store object and process."""
        await self._event_commits.append(event_rows(agent_id, timeline, single=True))

    @operation("saves")
    async def append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None:
        """Append a batch of events in one transaction: all of them or none.

        A seq already stored (or repeated in the batch) raises
        :class:`RecordValidationError` and writes nothing of this call; other
        callers' appends are never affected."""
        rows = event_rows(agent_id, timelines)
        if rows:
            await self._event_commits.append(rows)

    @operation_iter("loads")
    async def read_events(
        self, agent_id: str, *, since: Any = None, channel: str | None = None
    ) -> AsyncIterator[Timeline]:
        """Yield the agent's events in ``bookmark.seq`` order (across channels),
        only those after ``since`` (a Bookmark, dict with ``seq``, or int) and on
        ``channel`` when given. Sees every event this store appended before."""
        after = since_seq(since)
        check_channel(channel)
        if after is not None:
            if after >= _INT64_MAX:
                return
            if after < _INT64_MIN:
                after = None
        lower = after
        while True:
            rows = await self._hop(_event_page_job(agent_id, lower, channel))
            for data in rows:
                yield Timeline.model_validate_json(unpack(data[1]))
            if len(rows) < _EVENT_PAGE:
                return
            lower = rows[-1][0]

    # ------------------------------------------------------------------ messages

    @staticmethod
    def _stored_message_snapshots(conn: sqlite3.Connection, agent_id: str) -> list[Any]:
        """Snapshots of the stored messages, read back from the database."""
        return [
            message_snapshot_from_wire(jsoncodec.decode(unpack(data)))
            for (data,) in conn.execute("SELECT data FROM messages WHERE agent_id = ? ORDER BY seq", (agent_id,))
        ]

    @operation("saves")
    async def save_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Replace the agent's conversation with ``messages``.

        Incremental: only positions that differ from what is stored are
        written (a rewritten row keeps its first ``created_at``), rows beyond
        the new length are deleted. ``message_count`` becomes ``len(messages)``.
        """
        validated = coerce_list(Message, messages, "messages")

        def job(conn: sqlite3.Connection) -> None:
            keys = message_keys(validated)
            now = now_ms()
            with transaction(conn, write=True):
                row = conn.execute("SELECT msg_version FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
                cached = [] if row is None else self._message_cache.get(agent_id, row[0])
                old = cached if cached is not None else self._stored_message_snapshots(conn, agent_id)
                changed = changed_positions(keys, old)
                updates: list[tuple[str, str, str | bytes, str, int]] = []
                inserts: list[tuple[str, int, str, str, int, str | bytes]] = []
                created_at = now
                if len(validated) > len(old):
                    created_at = created_at_floor(conn, agent_id, len(old), now)
                for index in changed:
                    message = validated[index]
                    role, block_types, data = message_row_parts(message, message_to_wire(message), f"messages[{index}]")
                    if index < len(old):
                        updates.append((role, block_types, data, agent_id, index))
                    else:
                        inserts.append((agent_id, index, role, block_types, created_at, data))
                version = new_version()
                conn.execute(SET_MESSAGE_STATE, (agent_id, now, len(validated), version))
                if len(validated) < len(old):
                    conn.execute("DELETE FROM messages WHERE agent_id = ? AND seq >= ?", (agent_id, len(validated)))
                if updates:
                    conn.executemany(UPDATE_MESSAGE, updates)
                if inserts:
                    conn.executemany(INSERT_MESSAGE, inserts)
            # After a miss, snapshot every message (once): later comparisons then
            # meet leaves shared with the caller's objects, compared by identity.
            snapshots = (
                list(map(message_snapshot, validated))
                if cached is None
                else updated_snapshots(cached, validated, changed, message_snapshot)
            )
            self._message_cache.put(agent_id, version, snapshots)

        await self._hop(job, inline=True)

    @operation("saves")
    async def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Append ``messages`` after the stored ones: a pure append (nothing is
        read back or compared), the fastest way to grow a conversation."""
        validated = coerce_list(Message, messages, "messages")

        def job(conn: sqlite3.Connection) -> None:
            parts = [message_row_parts(m, message_to_wire(m), f"messages[{i}]") for i, m in enumerate(validated)]
            now = now_ms()
            version = new_version()
            with transaction(conn, write=True):
                row = conn.execute(LAST_MESSAGE, (agent_id,)).fetchone()
                old_version, base, last_created_at = (None, 0, None) if row is None else row
                created_at = now if last_created_at is None or last_created_at <= now else last_created_at
                # The agents row first: messages reference it.
                conn.execute(SET_MESSAGE_STATE, (agent_id, now, base + len(parts), version))
                conn.executemany(
                    INSERT_MESSAGE,
                    [
                        (agent_id, base + i, role, types, created_at, data)
                        for i, (role, types, data) in enumerate(parts)
                    ],
                )
            # The diff cache of save_messages is kept current only where it
            # exists (in place: O(new messages)); a caller that only appends
            # (the agent loop) pays for no snapshot.
            cached = self._message_cache.get(agent_id, old_version) if old_version is not None else None
            if cached is not None:
                cached.extend(map(message_snapshot, validated))
                self._message_cache.put(agent_id, version, cached)
            else:
                self._message_cache.drop(agent_id)

        await self._hop(job, inline=True)

    @operation("loads")
    async def load_messages(self, agent_id: str) -> list[Message]:
        """The agent's conversation in order (``[]`` for an unknown agent)."""

        # Rows were validated when saved: rebuilt without re-validation, like the
        # other backends (measured 20 % faster than model_validate_json, whose
        # content-block validators are Python code run for every block).
        decode = jsoncodec.decode
        return await self._read_list(
            "SELECT data FROM messages WHERE agent_id = ? ORDER BY seq",
            (agent_id,),
            lambda rows: [message_from_wire(decode(unpack(data))) for (data,) in rows],
        )

    # ------------------------------------------------------------------ tool calls

    @operation("saves")
    async def save_tool_call_records(
        self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]
    ) -> None:
        """Replace the agent's tool-call records with ``records`` (ids must be
        unique). Incremental like :meth:`save_messages`."""
        validated = coerce_list(ToolCallRecord, records, "records")
        seen: dict[str, int] = {}
        for index, record in enumerate(validated):
            first = seen.setdefault(record.id, index)
            if first != index:
                raise RecordValidationError(
                    f"records[{index}].id: tool call id {record.id!r} is already used by records[{first}]",
                    field=f"records[{index}].id",
                )

        def job(conn: sqlite3.Connection) -> None:
            now = now_ms()
            with transaction(conn, write=True):
                row = conn.execute("SELECT tc_version FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
                cached = [] if row is None else self._tool_call_cache.get(agent_id, row[0])
                if cached is not None:
                    old = cached
                else:
                    old = [
                        tool_call_snapshot(load_tool_call(data))
                        for (data,) in conn.execute(
                            "SELECT data FROM tool_calls WHERE agent_id = ? ORDER BY pos", (agent_id,)
                        )
                    ]
                changed = changed_positions(tool_call_keys(validated), old)
                moved: list[tuple[str, int]] = []
                updates: list[tuple[Any, ...]] = []
                inserts: list[tuple[Any, ...]] = []
                for index in changed:
                    record = validated[index]
                    columns = tool_call_columns(record, pack(record_json(record, f"records[{index}]")))
                    if index < len(old):
                        if old[index][0]["id"] == record.id:
                            updates.append((*columns, agent_id, index))
                            continue
                        moved.append((agent_id, index))
                    inserts.append((agent_id, record.id, index, *columns))
                version = new_version()
                conn.execute(SET_TOOL_CALL_STATE, (agent_id, now, version))
                # Deletes first, so an id moving to another position never collides.
                if len(validated) < len(old):
                    conn.execute("DELETE FROM tool_calls WHERE agent_id = ? AND pos >= ?", (agent_id, len(validated)))
                if moved:
                    conn.executemany("DELETE FROM tool_calls WHERE agent_id = ? AND pos = ?", moved)
                if updates:
                    conn.executemany(UPDATE_TOOL_CALL, updates)
                if inserts:
                    conn.executemany(INSERT_TOOL_CALL, inserts)
            snapshots = (
                list(map(tool_call_snapshot, validated))
                if cached is None
                else updated_snapshots(cached, validated, changed, tool_call_snapshot)
            )
            self._tool_call_cache.put(agent_id, version, snapshots)

        await self._hop(job, inline=True)

    @operation("saves")
    async def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None:
        """Write one tool-call record by id: the stored record of that id is
        replaced in place, a new id goes last. One row, whatever the list's length."""
        validated = ToolCallRecord.coerce(record, "record")
        columns = tool_call_columns(validated, pack(record_json(validated, "record")))
        cache = self._tool_call_cache

        def job(conn: sqlite3.Connection) -> None:
            version = new_version()
            # The diff cache of save_tool_call_records is kept current only
            # where it exists: a caller that only upserts (the agent loop)
            # pays for no snapshot and no version read.
            cached = cache.latest(agent_id)
            with transaction(conn, write=True):
                if cached is not None:
                    row = conn.execute("SELECT tc_version FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
                    if row is None or row[0] != cached[0]:
                        cached = None
                conn.execute(SET_TOOL_CALL_STATE, (agent_id, now_ms(), version))
                found, end = conn.execute(FIND_TOOL_CALL, (agent_id, validated.id)).fetchone()
                if found is not None:
                    pos = found
                    conn.execute(UPDATE_TOOL_CALL, (*columns, agent_id, pos))
                else:
                    pos = end
                    conn.execute(INSERT_TOOL_CALL, (agent_id, validated.id, pos, *columns))
            if cached is not None and pos <= len(cached[1]):
                items = cached[1]
                cache.put(agent_id, version, [*items[:pos], tool_call_snapshot(validated), *items[pos + 1 :]])
            else:
                cache.drop(agent_id)

        await self._hop(job, inline=True)

    def _transaction_driver(self, agent_id: str) -> TransactionDriver:
        return SqliteDriver(self)

    @operation("loads")
    async def load_tool_call_records(self, agent_id: str) -> list[ToolCallRecord]:
        """The agent's tool-call records in order (``[]`` for an unknown agent)."""

        return await self._read_list(
            "SELECT data FROM tool_calls WHERE agent_id = ? ORDER BY pos",
            (agent_id,),
            lambda rows: [load_tool_call(data) for (data,) in rows],
        )

    # ------------------------------------------------------------------ todos

    @operation("saves")
    async def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None:
        """Replace the agent's todo list."""
        validated = TodoSnapshot.coerce(snapshot, "snapshot")
        data = pack(record_json(validated, "snapshot"))
        updated_at = to_epoch_ms(validated.updated_at)

        def job(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                conn.execute(TOUCH_AGENT, (agent_id, now_ms()))
                conn.execute(
                    "INSERT INTO todos (agent_id, updated_at, data) VALUES (?, ?, ?) ON CONFLICT (agent_id) "
                    "DO UPDATE SET updated_at = excluded.updated_at, data = excluded.data",
                    (agent_id, updated_at, data),
                )

        await self._hop(job, inline=True)

    @operation("loads")
    async def load_todos(self, agent_id: str) -> TodoSnapshot | None:
        """The agent's todo list, or ``None`` if none was saved."""

        def job(conn: sqlite3.Connection) -> str | bytes | None:
            row = conn.execute("SELECT data FROM todos WHERE agent_id = ?", (agent_id,)).fetchone()
            return None if row is None else unpack(row[0])

        data = await self._hop(job)
        return None if data is None else TodoSnapshot.model_validate_json(data)

    # ------------------------------------------------------------------ append-only lists

    async def _save_appended(self, kind: RecordKind, agent_id: str, record: Record) -> None:
        """The save of an append-only kind: the validated ``record`` stored
        after the agent's last one."""
        data = pack(record_json(record, kind.argument))
        sql = APPEND_ROW[kind.table]

        def job(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                conn.execute(TOUCH_AGENT, (agent_id, now_ms()))
                conn.execute(sql, (agent_id, agent_id, data))

        await self._hop(job, inline=True)

    async def _load_records(self, kind: RecordKind, agent_id: str) -> list[Any]:
        """The load of an append-only kind (and of the media cache): every
        record of the agent, in save order."""
        sql = LOAD_IN_ORDER[kind.table]
        model = kind.model

        def job(conn: sqlite3.Connection) -> list[str | bytes]:
            return [unpack(data) for (data,) in conn.execute(sql, (agent_id,))]

        return [model.model_validate_json(data) for data in await self._hop(job)]

    _load_appended = _load_records

    @operation("saves")
    async def save_media_cache(self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]) -> None:
        """Replace the agent's media cache with ``records``."""
        validated = coerce_list(MediaCacheRecord, records, "records")
        rows = [(agent_id, i, pack(record_json(r, f"records[{i}]"))) for i, r in enumerate(validated)]

        def job(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                conn.execute(TOUCH_AGENT, (agent_id, now_ms()))
                conn.execute("DELETE FROM media_cache WHERE agent_id = ?", (agent_id,))
                conn.executemany("INSERT INTO media_cache (agent_id, idx, data) VALUES (?, ?, ?)", rows)

        await self._hop(job, inline=True)

    @operation("loads")
    async def load_media_cache(self, agent_id: str) -> list[MediaCacheRecord]:
        """The agent's media cache, in the order saved."""
        return await self._load_records(_MEDIA_CACHE, agent_id)

    # ------------------------------------------------------------------ snapshots

    @operation("saves")
    async def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None:
        """Save a snapshot (a snapshot with the same id is replaced)."""
        validated = Snapshot.coerce(snapshot, "snapshot")
        data = pack(record_json(validated, "snapshot"))
        created_at = to_epoch_ms(validated.created_at)

        def job(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                conn.execute(TOUCH_AGENT, (agent_id, now_ms()))
                conn.execute(
                    "INSERT INTO snapshots (agent_id, id, created_at, data) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (agent_id, id) DO UPDATE SET created_at = excluded.created_at, data = excluded.data",
                    (agent_id, validated.id, created_at, data),
                )

        await self._hop(job, inline=True)

    @operation("loads")
    async def load_snapshot(self, agent_id: str, snapshot_id: str) -> Snapshot | None:
        """The snapshot ``snapshot_id`` of the agent, or ``None``."""
        check_str(snapshot_id, "snapshot_id")

        def job(conn: sqlite3.Connection) -> str | bytes | None:
            row = conn.execute(
                "SELECT data FROM snapshots WHERE agent_id = ? AND id = ?", (agent_id, snapshot_id)
            ).fetchone()
            return None if row is None else unpack(row[0])

        data = await self._hop(job)
        return None if data is None else Snapshot.model_validate_json(data)

    @operation("loads")
    async def list_snapshots(self, agent_id: str) -> list[Snapshot]:
        """The agent's snapshots, newest first (``created_at``, then id, descending)."""

        def job(conn: sqlite3.Connection) -> list[str | bytes]:
            return [
                unpack(data)
                for (data,) in conn.execute(
                    "SELECT data FROM snapshots WHERE agent_id = ? ORDER BY created_at DESC, id DESC", (agent_id,)
                )
            ]

        return [Snapshot.model_validate_json(data) for data in await self._hop(job)]

    # ------------------------------------------------------------------ info

    @operation("saves")
    async def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None:
        """Save the agent's info (from then on :meth:`exists` is true).

        ``info.agent_id`` must equal ``agent_id``.
        """
        validated = AgentInfo.coerce(info, "info")
        if validated.agent_id != agent_id:
            raise RecordValidationError(
                f"info.agent_id: {validated.agent_id!r} does not match the agent id {agent_id!r}",
                field="info.agent_id",
            )
        data = record_json(validated, "info").decode("utf-8")
        message_count = check_int64(validated.message_count, "info.message_count")
        template_id = validated.template_id
        user_id = user_id_of(validated.metadata)
        created_at = to_epoch_ms(validated.created_at)

        def job(conn: sqlite3.Connection) -> None:
            now = now_ms()
            # Usually only info and the counters change: then an UPDATE that
            # leaves the indexed identity columns out of its SET list touches
            # two index entries instead of six. Each statement is atomic alone,
            # and the second runs only when the first matched no row.
            if conn.execute(
                UPDATE_INFO, (data, now, message_count, agent_id, template_id, user_id, created_at)
            ).rowcount:
                return
            conn.execute(SAVE_INFO, (agent_id, data, template_id, user_id, created_at, now, message_count))

        await self._hop(job, inline=True)

    @operation("loads")
    async def load_info(self, agent_id: str) -> AgentInfo | None:
        """The agent's info, or ``None``. ``message_count`` reflects the latest
        :meth:`save_messages` / :meth:`save_info`."""

        def job(conn: sqlite3.Connection) -> tuple[str, int] | None:
            row = conn.execute(
                "SELECT info, message_count FROM agents WHERE agent_id = ? AND template_id IS NOT NULL", (agent_id,)
            ).fetchone()
            return None if row is None else (str(row[0]), int(row[1]))

        found = await self._read(job)
        if found is None:
            return None
        loaded = AgentInfo.model_validate_json(found[0])
        loaded.message_count = found[1]
        return loaded

    @operation("loads")
    async def exists(self, agent_id: str) -> bool:
        """True once :meth:`save_info` ran for the agent (and it was not deleted)."""

        def job(conn: sqlite3.Connection) -> bool:
            sql = "SELECT 1 FROM agents WHERE agent_id = ? AND template_id IS NOT NULL"
            return conn.execute(sql, (agent_id,)).fetchone() is not None

        return await self._read(job)

    @operation("deletes")
    async def delete(self, agent_id: str) -> None:
        """Remove every record of the agent, in every table (one transaction).
        Deleting an unknown agent does nothing."""

        def job(conn: sqlite3.Connection) -> None:
            self._message_cache.drop(agent_id)
            self._tool_call_cache.drop(agent_id)
            # Child rows go with the registry row (ON DELETE CASCADE).
            conn.execute("DELETE FROM agents WHERE agent_id = ?", (agent_id,))

        await self._hop(job)

    # ------------------------------------------------------------------ queries
    # The public methods are QueryFront's (store/queries.py): these primitives
    # get the validated request and read the page.

    async def _session_rows(self, q: SessionQuery) -> builtins.list[SessionInfo]:
        """``query_sessions``: agents with saved info, filtered, one page."""
        where = Where("?", "template_id IS NOT NULL")
        where.equal("agent_id", q.agent_id)
        where.equal("template_id", q.template_id)
        where.equal("user_id", q.user_id)
        where.compare("created_at", ">=", q.created_after)
        where.compare("created_at", "<=", q.created_before)
        direction = q.sort_order.upper()
        sql = (
            f"SELECT agent_id, info, created_at, updated_at, message_count FROM agents {where.sql()}"
            f"ORDER BY {q.sort_by} {direction}, agent_id {direction} LIMIT ? OFFSET ?"
        )
        decode = jsoncodec.decode
        return [
            session_info_from_wire(row_agent, created_at, updated_at, message_count, decode(data))
            for row_agent, data, created_at, updated_at, message_count in await self._read(
                _fetch_all(sql, [*where.params, q.limit, q.offset])
            )
        ]

    async def _message_rows(self, q: MessageQuery) -> builtins.list[StoredMessage]:
        """``query_messages``: messages across agents, newest first, one page."""
        where = Where("?")
        where.equal("agent_id", q.agent_id)
        where.equal("role", q.role)
        if q.content_type is not None:
            where.add("EXISTS (SELECT 1 FROM json_each(messages.block_types) WHERE value = ?)", q.content_type)
        where.compare("created_at", ">=", q.created_after)
        where.compare("created_at", "<=", q.created_before)
        # Within one agent created_at never decreases along seq (see
        # created_at_floor), so seq order is the same order, read backwards
        # on the primary key. Across agents, walk the created_at index newest
        # first, filtering as it goes, and stop at the limit: with a role
        # filter SQLite would otherwise estimate a scan and a full sort cheaper.
        if q.agent_id is not None:
            source, order = "messages", "seq DESC"
        else:
            source, order = "messages INDEXED BY messages_by_time", "created_at DESC, seq DESC, agent_id DESC"
        sql = f"SELECT agent_id, seq, created_at, data FROM {source} {where.sql()}ORDER BY {order} LIMIT ? OFFSET ?"
        decode = jsoncodec.decode
        found = []
        for row_agent, seq, created_at, data in await self._read(_fetch_all(sql, [*where.params, q.limit, q.offset])):
            wire = decode(unpack(data))
            found.append(stored_message(row_agent, seq, wire["role"], created_at, wire))
        return found

    async def _search_rows(self, request: SearchRequest) -> builtins.list[SearchRow]:
        """``search_messages``: FTS5 finds the rows, bm25 ranks them (see fts.py)."""
        # bm25 is lower-is-better; a hit's score is higher-is-better.
        return [
            SearchRow(agent, seq, role, created_at, jsoncodec.decode(unpack(data)), -rank)
            for agent, seq, role, created_at, rank, data in await self._hop(search_job(request))
        ]

    async def _tool_call_rows(self, q: ToolCallQuery) -> builtins.list[StoredToolCall]:
        """``query_tool_calls``: tool calls across agents, newest first, one page."""
        where = Where("?")
        where.equal("agent_id", q.agent_id)
        where.equal("name", q.tool_name)
        where.equal("is_error", None if q.is_error is None else int(q.is_error))
        where.equal("approval_required", None if q.has_approval is None else int(q.has_approval))
        where.equal("state", q.state)
        where.compare("created_at", ">=", q.created_after)
        where.compare("created_at", "<=", q.created_before)
        sql = (
            f"SELECT agent_id, data FROM tool_calls {where.sql()}"
            "ORDER BY created_at DESC, id DESC, agent_id DESC LIMIT ? OFFSET ?"
        )
        decode = jsoncodec.decode
        return [
            stored_tool_call(row_agent, decode(unpack(data)))
            for row_agent, data in await self._read(_fetch_all(sql, [*where.params, q.limit, q.offset]))
        ]

    async def _agent_counts(self, agent_id: str) -> AgentCounts:
        """``aggregate_stats``: the agent's counts, in one read transaction."""

        def job(conn: sqlite3.Connection) -> AgentCounts:
            with transaction(conn, write=False):
                # Message.role is one of three values: one pass over the
                # agent's rows, no GROUP BY sorter.
                counts = conn.execute(COUNT_ROLES, (agent_id,)).fetchone()
                by_state_name = conn.execute(
                    "SELECT state, name, COUNT(*) FROM tool_calls WHERE agent_id = ? GROUP BY state, name", (agent_id,)
                ).fetchall()
                snapshots = conn.execute("SELECT COUNT(*) FROM snapshots WHERE agent_id = ?", (agent_id,)).fetchone()
            by_state: dict[str, int] = {}
            by_name: dict[str, int] = {}
            for state, name, count in by_state_name:
                by_state[state] = by_state.get(state, 0) + count
                by_name[name] = by_name.get(name, 0) + count
            by_role = {role: count for role, count in zip(ROLES, counts, strict=True) if count}
            return AgentCounts(by_role, by_state, by_name, int(snapshots[0]))

        return await self._read(job)

    # ------------------------------------------------------------------ operations

    async def health_check(self) -> StoreHealthStatus:
        """Probe the database (``SELECT 1`` latency) and the store directory
        (a file write). Never raises for an unreachable database (one that
        cannot be opened or answers with an error): reports it instead.
        Raises :class:`StoreClosedError` after :meth:`close`."""
        if self.closed:
            raise StoreClosedError("sqlite store is closed")
        base = self._base_dir
        started = time.perf_counter()

        def job(conn: sqlite3.Connection) -> tuple[DatabaseHealth, FileSystemHealth]:
            started = time.perf_counter()
            try:
                conn.execute("SELECT 1").fetchone()
                database = DatabaseHealth(connected=True, latency_ms=(time.perf_counter() - started) * 1000)
            except sqlite3.Error as exc:
                database = DatabaseHealth(connected=False, error=f"SQLite error: {exc}")
            return database, probe_writable(base, create=True)

        try:
            await self._ensure_open()
            database, file_system = await self._hop(job)
        except (StoreConnectionError, SchemaVersionError, OSError) as exc:
            database = DatabaseHealth(connected=False, error=str(exc))
            file_system = await asyncio.to_thread(probe_writable, base, create=True)
        self.metrics.record("other", "health_check", (time.perf_counter() - started) * 1000, database.connected)
        return StoreHealthStatus(
            healthy=database.connected and file_system.writable,
            database=database,
            file_system=file_system,
            checked_at=now_utc(),
        )

    @operation("other")
    async def check_consistency(self, agent_id: str) -> ConsistencyCheckResult:
        """Check the agent's stored records against each other; every problem
        found is reported as a sentence in ``issues``."""

        def job(conn: sqlite3.Connection) -> list[str]:
            with transaction(conn, write=False):
                return consistency_issues(conn, agent_id)

        issues = await self._hop(job)
        return ConsistencyCheckResult(consistent=not issues, issues=issues, checked_at=now_utc())

    @operation("other", agent=False)
    async def get_metrics(self) -> StoreMetrics:
        """Operation counters, latency percentiles and what the database holds."""
        wal_path = Path(str(self.db_path) + "-wal")

        def job(conn: sqlite3.Connection) -> StorageMetrics:
            with transaction(conn, write=False):
                # Every agent with a stored record, info or not (see store/catalog.py).
                agents = conn.execute("SELECT COUNT(*) FROM agents").fetchone()[0]
                messages = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
                tool_calls = conn.execute("SELECT COUNT(*) FROM tool_calls").fetchone()[0]
                page_count = conn.execute("PRAGMA page_count").fetchone()[0]
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            try:
                wal_size = wal_path.stat().st_size
            except OSError:
                wal_size = 0
            return StorageMetrics(
                total_agents=agents,
                total_messages=messages,
                total_tool_calls=tool_calls,
                db_size_bytes=page_count * page_size + wal_size,
            )

        return self.metrics.snapshot(await self._hop(job))

    @operation("other")
    async def acquire_agent_lock(self, agent_id: str, timeout_ms: int = 30_000) -> AgentLock:
        """Take the agent's exclusive lock, waiting up to ``timeout_ms``, else
        raise :class:`LockTimeoutError`.

        The lock is ``flock`` on ``<lock dir>/<agent_id>.lock``: it excludes
        other processes on this machine and other acquires in this process
        (even from this store). It has no expiry: it is held until released,
        until this store closes, or until the process dies.
        """
        lock = await acquire_flock_lock(self._lock_dir, agent_id, timeout_ms, self._locks.discard)
        self._locks.add(lock)
        return lock

    @operation("saves")
    async def batch_fork(self, agent_id: str, count: int) -> list[str]:
        """Make ``count`` copies of the agent (info with lineage extended,
        messages, tool calls, todos, snapshots) in one transaction; returns the
        new ids. Raises :class:`AgentNotFoundError` if the agent has no info."""
        new_ids = fork_agent_ids(agent_id, count)

        def job(conn: sqlite3.Connection) -> None:
            now = now_ms()
            with transaction(conn, write=True):
                row = conn.execute(
                    "SELECT info, message_count FROM agents WHERE agent_id = ? AND template_id IS NOT NULL", (agent_id,)
                ).fetchone()
                if row is None:
                    raise AgentNotFoundError(agent_id)
                source = AgentInfo.model_validate(jsoncodec.decode(row[0]))
                agent_rows = []
                for new_id in new_ids:
                    fork = source.model_copy(
                        update={
                            "agent_id": new_id,
                            "lineage": [*source.lineage, agent_id],
                            "created_at": ms_to_datetime(now),
                            "message_count": row[1],
                        }
                    )
                    agent_rows.append(
                        (
                            new_id,
                            jsoncodec.dumps(fork.to_wire(), "info"),
                            fork.template_id,
                            user_id_of(fork.metadata),
                            now,
                        )
                    )
                conn.executemany(
                    "INSERT INTO agents (agent_id, info, template_id, user_id, created_at, updated_at, message_count, "
                    "msg_version, tc_version) "
                    "SELECT ?, ?, ?, ?, ?, ?, message_count, 0, 0 FROM agents WHERE agent_id = ?",
                    [(*r, now, agent_id) for r in agent_rows],
                )
                pairs = [(new_id, agent_id) for new_id in new_ids]
                for copy_rows in COPY_ROWS:
                    conn.executemany(copy_rows, pairs)

        await self._hop(job)
        return new_ids

    # ------------------------------------------------------------------ whole-store primitives (store/catalog.py)

    @operation("loads", agent=False)
    async def list_stored_agents(self) -> builtins.list[str]:
        """Every agent with any stored record, info or not, sorted: each one
        has a registry row (foreign keys make it so)."""

        def job(conn: sqlite3.Connection) -> builtins.list[str]:
            return [agent for (agent,) in conn.execute("SELECT agent_id FROM agents ORDER BY agent_id")]

        return await self._hop(job)

    @operation("loads")
    async def load_record_times(self, agent_id: str) -> RecordTimes:
        """Each message's ``created_at`` (by position) and the session's ``updated_at``."""

        def job(conn: sqlite3.Connection) -> RecordTimes:
            with transaction(conn, write=False):
                created = [
                    c
                    for (c,) in conn.execute(
                        "SELECT created_at FROM messages WHERE agent_id = ? ORDER BY seq", (agent_id,)
                    )
                ]
                row = conn.execute(
                    "SELECT updated_at FROM agents WHERE agent_id = ? AND info IS NOT NULL", (agent_id,)
                ).fetchone()
            return RecordTimes(created, None if row is None else row[0])

        return await self._hop(job)

    @operation("saves")
    async def restore_record_times(self, agent_id: str, times: RecordTimes) -> None:
        """Set the messages' ``created_at`` and the session's ``updated_at`` (see store/catalog.py)."""
        rows = [(created, agent_id, seq) for seq, created in enumerate(times.message_created_at)]

        def job(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                conn.executemany("UPDATE messages SET created_at = ? WHERE agent_id = ? AND seq = ?", rows)
                if times.updated_at is not None:
                    conn.execute("UPDATE agents SET updated_at = ? WHERE agent_id = ?", (times.updated_at, agent_id))

        await self._hop(job)

    # ------------------------------------------------------------------ retention (kode prune)

    @operation("deletes", agent=False)
    async def prune(
        self,
        *,
        created_before: datetime | int,
        template_id: str | None = None,
        dry_run: bool = False,
    ) -> builtins.list[str]:
        """Delete every agent created strictly before ``created_before`` (of
        ``template_id`` only, when given) and return their ids, sorted.

        One ``DELETE … RETURNING`` in one transaction, however many agents: the
        child rows follow by ``ON DELETE CASCADE``. ``dry_run`` only lists them.

        >>> await store.prune(created_before=datetime(2025, 1, 1, tzinfo=UTC))   # doctest: +SKIP
        ['agt-old-1', 'agt-old-2']
        """
        cutoff = to_epoch_ms(created_before)  # epoch ms already: store/policy.py checked the arguments
        where = "template_id IS NOT NULL AND created_at < ?"
        params: tuple[Any, ...] = (cutoff,)
        if template_id is not None:
            where += " AND template_id = ?"
            params += (template_id,)

        def job(conn: sqlite3.Connection) -> builtins.list[str]:
            if dry_run:
                return [a for (a,) in conn.execute(f"SELECT agent_id FROM agents WHERE {where}", params)]
            with transaction(conn, write=True):
                doomed = [a for (a,) in conn.execute(f"DELETE FROM agents WHERE {where} RETURNING agent_id", params)]
            for agent_id in doomed:
                self._message_cache.drop(agent_id)
                self._tool_call_cache.drop(agent_id)
            return doomed

        return sorted(await self._hop(job))

    # Defined last: inside the class body, `list` names this method from here on.
    @operation("loads", agent=False)
    async def list(self, prefix: str | None = None) -> list[str]:
        """Ids of agents with saved info, sorted; only those starting with
        ``prefix`` (case-sensitive, no wildcards) when given."""
        where = Where("?", "template_id IS NOT NULL")
        if prefix is not None and check_str(prefix, "prefix"):
            where.add("agent_id >= ?", prefix)
            where.compare("agent_id", "<", prefix_upper_bound(prefix))
        sql = f"SELECT agent_id FROM agents {where.sql()}ORDER BY agent_id"
        params = where.params

        def job(conn: sqlite3.Connection) -> builtins.list[str]:
            return [agent for (agent,) in conn.execute(sql, params)]

        return await self._read(job)


def _event_page_job(
    agent_id: str, after: int | None, channel: str | None
) -> Callable[[sqlite3.Connection], list[tuple[int, str]]]:
    where = Where("?")
    where.add("agent_id = ?", agent_id)
    where.compare("seq", ">", after)
    where.equal("channel", channel)
    return _fetch_all(f"SELECT seq, data FROM events {where.sql()}ORDER BY seq LIMIT ?", [*where.params, _EVENT_PAGE])


def _fetch_all(sql: str, params: builtins.list[Any]) -> Callable[[sqlite3.Connection], builtins.list[Any]]:
    """The job of a read: every row ``sql`` selects."""

    def job(conn: sqlite3.Connection) -> builtins.list[Any]:
        return conn.execute(sql, params).fetchall()

    return job
