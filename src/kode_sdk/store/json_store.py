"""JSONStore: every agent in its own directory of JSON files, crash-safe.

The default store for one process (or a few on one machine) that wants
nothing but a directory. It implements :class:`~kode_sdk.store.protocols.Store` and
:class:`~kode_sdk.store.protocols.QueryableStore` (queries scan the files).

>>> store = JSONStore("./data/store")                          # doctest: +SKIP
>>> async with store:                                           # doctest: +SKIP
...     await store.save_messages("agt-1", [{"role": "user", "content": "Hello!"}])

Layout, under ``<base_dir>/<agent_id>/`` (directories 0700, files 0600)::

    .lock                       flock target; holds the directory's incarnation token
    journal.wal                 the write-ahead journal (empty between writes)
    meta.json                   {"v": 1, "updatedAt": ms, "info": <AgentInfo wire JSON>}
    runtime/messages.jsonl      header line, then {"seq", "createdAt", "message"} per line
    runtime/tool-calls.jsonl    header line, then one ToolCallRecord per line
    runtime/media-cache.jsonl   header line, then one MediaCacheRecord per line
    runtime/todos.json          TodoSnapshot
    events/<channel>.log        one Timeline per line, appended and fsync'd
    history/windows/<n>.<id>.json       one file per saved HistoryWindow, n its position
    history/compressions/<n>.<id>.json  one file per saved CompressionRecord
    history/recovered/<n>.<path>.json   one file per saved RecoveredFile
    snapshots/<id>.json                 one file per Snapshot

Where each record kind lives, and the file formats, are in
:mod:`kode_sdk.store.json_layout` (one entry per kind of
:data:`~kode_sdk.store.records.RECORD_KINDS`); the event logs are
:mod:`kode_sdk.store.json_events`, the scan-based queries
:mod:`kode_sdk.store.json_queries`, the journal :mod:`kode_sdk.store.json_files`.
Ids inside file names go through :func:`~kode_sdk.store.json_files.encode_name`
(percent-encoding, never ``.``/``..``/separators). ``meta.json`` wraps the
info so ``updated_at`` (for :meth:`query_sessions`) is stored beside it without
becoming an extra field of the loaded :class:`AgentInfo`. The list files start
with a header holding a random *generation*, replaced on every rewrite; a
list is cached in memory (a 16-byte digest and the ``createdAt`` of each item)
with its generation and size, and a save diffs the new list against it:
when only the tail grew (every turn of a running agent), just the new lines
are appended, so a save costs O(new messages) in I/O, though
encoding the list to compare it stays O(history). Every message line keeps
the ``createdAt`` of the first save of that message at that position.

Crash safety
------------
Each write call is one transaction through the agent's journal (see
:mod:`kode_sdk.store.json_files`): the new bytes of every file it changes are
written to ``journal.wal`` and ``fsync``-ed, then applied (temporary file,
``fsync``, ``os.replace``, directory ``fsync``; or truncate-and-append), then
the journal is emptied. So ``save_messages``, which also rewrites
``meta.json`` to update ``message_count``, changes both files or neither:
a crash after the journal is durable is completed by recovery, one before is
as if the call never ran. Recovery runs for every agent on ``open()`` and, on
any later call, for an agent whose journal is not empty (another process may
have crashed while this store was open). A truncated or corrupt journal is
renamed ``journal.wal.corrupt-<ms>`` with a warning and the files keep their
previous content. Events are not journaled (outside a transaction): each is
one line written with one ``write`` and ``fsync``-ed; a torn last line (no
newline) is never read, and is moved to ``<channel>.log.torn-<ms>`` before
the next append. ``store.transaction(agent_id)`` commits every write of its
block, event lines included, as one journal entry (see
:mod:`kode_sdk.store.json_unit`): after a crash all of it is there or none. ``delete``
renames the directory to ``~trash-…`` (one atomic step) and then removes it;
``open()`` removes trash a crash left behind. A damaged file is never read
as empty: loading it raises :class:`~kode_sdk.errors.StoreCorruptionError`;
a full-list save over it keeps the damaged file as ``<name>.corrupt-<ms>``.

Concurrency
-----------
Calls on one agent are serialized by an asyncio lock per agent (inside one
store) and by ``flock`` on ``<agent>/.lock`` (across store instances and
processes): writers exclusive, readers shared. Every call does its file work
in one ``asyncio.to_thread``-style hop. Under the exclusive lock, caches are
checked against the files (list generation and size; event-log sizes and the
incarnation token), so a second instance's writes are seen, and an event seq
stored by any instance is refused with
:class:`~kode_sdk.errors.RecordValidationError` rather than written twice.
POSIX only (``fcntl``), on a local file system (``flock`` over NFS is not
reliable). File data is made durable with ``fdatasync``, directories with ``fsync``.

Cost
----
A running agent's turn (save the grown message list, the grown tool-call
list, six events, the info) costs about 15 syncs: messages 4 (journal, append,
``meta.json`` temp file, directory), tool calls 2, one per event, info 3.
Syncs dominate: everything else is a few milliseconds even at 200 turns.
Queries read every agent's files (shared lock, no decoding of rows that cheap
byte tests rule out), so they grow with the store; use SQLite or PostgreSQL for
many agents.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import contextlib
import os
import secrets
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from .. import jsoncodec
from ..errors import (
    InvalidAgentIdError,
    RecordValidationError,
    StoreConfigError,
    StoreConnectionError,
    StoreCorruptionError,
)
from ..types import (
    AgentInfo,
    MediaCacheRecord,
    Message,
    Record,
    Snapshot,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
    to_epoch_ms,
)
from .appended import AppendedRecords
from .catalog import RecordTimes
from .events import PendingEvent, check_channel, duplicate_seq_error, event_rows, since_seq, timeline_from_wire
from .flock_lock import FlockAgentLock, acquire_flock_lock
from .json_events import EventIndex, append_line
from .json_files import (
    DIR_MODE,
    TMP_PREFIX,
    TRASH_PREFIX,
    Append,
    Op,
    Replace,
    commit,
    encode_name,
    fsync_dir,
    journal_pending,
    lock_agent,
    logger,
    read_file,
    read_token,
    recover_agent,
    remove_tree,
    set_aside,
)
from .json_layout import (
    KIND_FILES,
    LIST_FILES,
    LIST_HEADER,
    MEDIA_CACHE,
    MESSAGES,
    META,
    SNAPSHOTS,
    TODOS,
    TOOL_CALLS,
    ListState,
    appended_file,
    appended_names,
    decode,
    digest,
    encode_messages,
    encode_records,
    event_path,
    is_agent_id,
    list_header,
    list_line,
    list_version,
    load_appended,
    load_dir,
    load_file,
    now_ms,
    parse_list,
    parse_meta,
    read_list,
    read_meta,
    stored_record,
)
from .json_queries import JSONQueries
from .json_unit import COLLECTING, Job, JSONDriver, Plan, Unit, event_log
from .lifecycle import BaseStore, operation, operation_iter
from .list_diff import SavedListCache
from .locks import AgentLock
from .records import RecordKind, agent_info, coerce_list, record_json
from .results import message_from_wire
from .transaction import TransactionDriver

__all__ = ["JSONStore"]

#: The folder of agent-lock files under the store's directory; ``~`` is no
#: agent-id character, so no agent directory can have this name.
LOCKS_DIR = "~locks"

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class JSONStore(JSONQueries, AppendedRecords, BaseStore):
    """A :class:`~kode_sdk.store.protocols.QueryableStore` over a directory of JSON files.

    ``base_dir`` is created (mode 0700) on :meth:`open`, unless ``create`` is
    false: then a missing directory raises
    :class:`~kode_sdk.errors.StoreConfigError` and nothing is created. The
    constructor does no I/O. See the module documentation for the layout and
    crash safety.
    """

    backend_name = "json"

    def __init__(self, base_dir: str | os.PathLike[str], *, create: bool = True) -> None:
        super().__init__()
        self.base_dir = Path(base_dir)
        self.create = create
        self._root = self.base_dir
        self._real_root = ""
        self._agent_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._cache_lock = threading.Lock()
        self._lists = SavedListCache(max_agents=512)
        self._events: OrderedDict[str, EventIndex] = OrderedDict()
        self._max_event_indexes = 256
        self._held_locks: set[FlockAgentLock] = set()

    def __repr__(self) -> str:
        return f"JSONStore({os.fspath(self.base_dir)!r})"

    # ----------------------------------------------------------------- lifecycle

    async def _open(self) -> None:
        await asyncio.to_thread(self._open_sync)

    def _open_sync(self) -> None:
        root = self.base_dir.absolute()
        if not self.create and not root.is_dir():
            raise StoreConfigError(f"store directory {str(root)!r} does not exist (create=False: nothing created)")
        try:
            os.makedirs(root, mode=DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise StoreConnectionError(f"cannot create the store directory {root}: {exc.strerror}") from None
        if not os.access(root, os.W_OK | os.X_OK):
            raise StoreConnectionError(f"the store directory {root} is not writable")
        self._root = root
        self._real_root = os.path.realpath(root)
        with os.scandir(root) as entries:
            found = list(entries)
        for entry in found:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if entry.name.startswith(TRASH_PREFIX):
                remove_tree(Path(entry.path))  # a delete interrupted after its rename
                continue
            if not is_agent_id(entry.name):
                continue
            agent_dir = Path(entry.path)
            if journal_pending(agent_dir) or any(name.startswith(TMP_PREFIX) for name in os.listdir(agent_dir)):
                fd = lock_agent(agent_dir, exclusive=True, create=False)
                if fd is not None:
                    try:
                        recover_agent(agent_dir)
                    except OSError as exc:
                        # E.g. a full disk: the journal stays and the agent's next
                        # call retries; every other agent is still readable.
                        logger.warning("could not recover %s yet (%s); retried on its next call", agent_dir, exc)
                    finally:
                        os.close(fd)

    async def _close(self) -> None:
        for lock in list(self._held_locks):
            await lock.release()
        with self._cache_lock:
            self._lists.clear()
            self._events.clear()

    # ----------------------------------------------------------------- plumbing

    def _agent_dir(self, agent_id: str) -> Path:
        path = self._root / agent_id
        # validate_agent_id already rules out separators and dot names; also
        # refuse a directory that resolves elsewhere (a planted symlink).
        if os.path.dirname(os.path.realpath(path)) != self._real_root:
            raise InvalidAgentIdError(f"agent directory of {agent_id!r} resolves outside {self._root}")
        return path

    async def _in_thread(self, agent_id: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a worker thread holding the agent's asyncio lock until
        the thread is done, even if the caller is cancelled: file work is never
        abandoned halfway, and never overlaps other work of this store on the agent."""
        lock = self._agent_locks.get(agent_id)
        if lock is None:
            lock = self._agent_locks[agent_id] = asyncio.Lock()
        async with lock:
            future = asyncio.get_running_loop().run_in_executor(None, fn)
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                with contextlib.suppress(BaseException):
                    await asyncio.wait({future})
                raise
            except OSError as exc:
                # A full disk, a read-only remount, EIO: a KodeError naming the
                # cause, not a bare OSError. The journal keeps the files whole.
                reason = exc.strerror or str(exc)
                raise StoreConnectionError(f"JSONStore {self._root}: agent {agent_id!r}: {reason}") from exc

    def _locked(self, agent_id: str, fn: Callable[[Path, int], T], absent: T, *, write: bool) -> T:
        """Call ``fn(agent_dir, lock_fd)`` holding the agent's file lock
        (exclusive for ``write``), after completing any interrupted write.
        A read of an agent with no directory returns ``absent``."""
        agent_dir = self._agent_dir(agent_id)
        fd = lock_agent(agent_dir, exclusive=write, create=write)
        if fd is None:
            return absent
        try:
            if journal_pending(agent_dir):
                if not write:  # recovery writes: trade the shared lock for an exclusive one
                    os.close(fd)
                    fd = lock_agent(agent_dir, exclusive=True, create=False)
                    if fd is None:
                        return absent
                if journal_pending(agent_dir):
                    recover_agent(agent_dir)
            return fn(agent_dir, fd)
        finally:
            if fd is not None:
                os.close(fd)

    async def _write(self, agent_id: str, plan: Callable[[Path], list[Op]]) -> None:
        """Commit the operations ``plan(agent_dir)`` returns, as one transaction."""

        def add(unit: Unit) -> None:
            unit.add(plan(unit.agent_dir))

        await self._commit_job(agent_id, lambda: add)

    async def _commit_job(self, agent_id: str, job: Job) -> None:
        """Commit one write call's job as one journal entry, or, inside a
        transaction's call, queue it for the transaction's commit."""
        scope = COLLECTING.get()
        if scope is not None and scope.store is self:
            scope.jobs.append(job)
            return
        await self._commit_jobs(agent_id, [job])

    async def _commit_jobs(self, agent_id: str, jobs: list[Job]) -> None:
        """Run ``jobs`` (their preparation first, then, under the agent's
        exclusive lock, their plans in order in one :class:`Unit`) and commit
        what they planned as one journal entry: all of it or nothing."""

        def run() -> None:
            plans = [job() for job in jobs]
            self._locked(
                agent_id, lambda agent_dir, fd: self._commit_unit(agent_id, agent_dir, fd, plans), None, write=True
            )

        await self._in_thread(agent_id, run)

    def _commit_unit(self, agent_id: str, agent_dir: Path, lock_fd: int, plans: list[Plan]) -> None:
        unit = Unit(agent_id, agent_dir, lock_fd)
        for plan in plans:
            plan(unit)  # a plan that raises leaves the files and the caches as they were
        try:
            commit(agent_dir, unit.folded_ops())
        except BaseException:
            for rel in unit.lists:
                self._remember_list(agent_id, rel, None)
            if unit.event_index is not None:
                self._forget_events(agent_id)
            raise
        for rel, state in unit.lists.items():
            self._remember_list(agent_id, rel, state)
        index = unit.event_index
        if index is not None:
            for channel, seq, offset, length in unit.events.lines:
                log = index.logs[channel]
                if log.seqs and seq < log.seqs[-1]:
                    log.ordered = False
                log.seqs.append(seq)
                log.offsets.append(offset)
                log.size = offset + length
                index.seen.add(seq)

    def _transaction_driver(self, agent_id: str) -> TransactionDriver:
        return JSONDriver(self, agent_id)

    async def _read(self, agent_id: str, fn: Callable[[Path], T], absent: T) -> T:
        return await self._in_thread(
            agent_id, lambda: self._locked(agent_id, lambda agent_dir, _fd: fn(agent_dir), absent, write=False)
        )

    # ----------------------------------------------------------------- list files

    def _cached_list(self, agent_id: str, rel: str, version: int) -> list[tuple[bytes, int]] | None:
        with self._cache_lock:
            return self._lists.get(f"{agent_id}/{rel}", version)

    def _remember_list(self, agent_id: str, rel: str, state: ListState | None) -> None:
        with self._cache_lock:
            if state is None:
                self._lists.drop(f"{agent_id}/{rel}")
            else:
                self._lists.put(f"{agent_id}/{rel}", state.version, state.items)

    def _list_state(self, agent_id: str, agent_dir: Path, rel: str, *, for_replace: bool) -> ListState | None:
        """The current state of a list file (cache checked against the file's
        header and size), or None when it does not exist. A damaged file
        raises, unless ``for_replace``: then it is kept aside and treated as absent."""
        path = agent_dir / rel
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            head = os.pread(fd, 64, 0)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        header = LIST_HEADER.match(head)
        if header is not None:
            gen = header[1].decode("ascii")
            cached = self._cached_list(agent_id, rel, list_version(gen, size))
            if cached is not None:
                return ListState(gen, size, cached)
        data = read_file(path)
        if data is None:
            return None
        try:
            parsed = parse_list(path, rel, data)
        except StoreCorruptionError as exc:
            if not for_replace:
                raise
            aside = set_aside(path, copy=True)
            logger.warning("%s; replacing it, the damaged file is kept as %s", exc, aside.name)
            return None
        return ListState(parsed.gen, parsed.size, [(digest(p), c) for p, c in parsed.items])

    def _plan_list(
        self, unit: Unit, rel: str, payloads: list[bytes], *, append: bool, now: int
    ) -> tuple[list[Op], ListState]:
        """Operations turning a list file into ``payloads`` (or, with
        ``append``, into its items followed by ``payloads``), and the state after."""
        if rel in unit.lists:
            state: ListState | None = unit.lists[rel]  # as an earlier plan of the unit left it
        else:
            state = self._list_state(unit.agent_id, unit.agent_dir, rel, for_replace=not append)
        old = state.items if state is not None else []
        digests = [digest(payload) for payload in payloads]
        start: int | None
        if append:
            items = old + [(digest, now) for digest in digests]
            start = len(old)
            payloads = [b""] * len(old) + payloads  # only the new tail is written
        else:
            # A message keeps its first-save time while it stays unchanged at its position.
            items = [
                (digest, old[i][1] if i < len(old) and old[i][0] == digest else now) for i, digest in enumerate(digests)
            ]
            prefix = 0
            shared = min(len(old), len(digests))
            while prefix < shared and old[prefix][0] == digests[prefix]:
                prefix += 1
            start = prefix if prefix == len(old) else None
        if state is not None and start is not None:
            if start == len(items):
                return [], state
            data = b"".join(list_line(rel, i, payloads[i], items[i][1]) for i in range(start, len(items)))
            return [Append(rel, state.size, data)], ListState(state.gen, state.size + len(data), items)
        gen = secrets.token_hex(16)
        data = b"".join([list_header(gen), *(list_line(rel, i, payloads[i], items[i][1]) for i in range(len(items)))])
        return [Replace(rel, data)], ListState(gen, len(data), items)

    async def _save_list(self, agent_id: str, rel: str, encode: Callable[[], list[bytes]], *, append: bool) -> None:
        def job() -> Plan:
            payloads = encode()
            return lambda unit: self._plan_list_save(unit, rel, payloads, append=append)

        await self._commit_job(agent_id, job)

    def _plan_list_save(self, unit: Unit, rel: str, payloads: list[bytes], *, append: bool) -> None:
        """Plan a list save (and, for messages, the ``message_count`` in ``meta.json``)."""
        now = now_ms()
        ops, state = self._plan_list(unit, rel, payloads, append=append, now=now)
        if rel == MESSAGES:
            meta_op = self._meta_count_op(unit, len(state.items), changed=bool(ops), now=now)
            if meta_op is not None:
                ops.append(meta_op)
        unit.add(ops)
        unit.lists[rel] = state

    # ----------------------------------------------------------------- meta

    def _meta_count_op(self, unit: Unit, count: int, *, changed: bool, now: int) -> Op | None:
        doc = parse_meta(unit.agent_dir / META, unit.read(META))
        if doc is None or (not changed and doc["info"].get("messageCount") == count):
            return None
        doc["info"]["messageCount"] = count
        doc["updatedAt"] = now
        return Replace(META, jsoncodec.encode(doc, "info"))

    # ----------------------------------------------------------------- messages

    @operation("saves")
    async def save_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Replace the agent's conversation with ``messages`` (and update
        ``message_count``). Only a grown tail is written when the rest is unchanged."""
        items = coerce_list(Message, messages, "messages")
        await self._save_list(agent_id, MESSAGES, lambda: encode_messages(items), append=False)

    @operation("saves")
    async def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Append ``messages`` to the agent's conversation without rewriting it.

        Costs O(appended) I/O when this store has the list cached, else one
        read of the list file to learn its length and verify it.
        """
        items = coerce_list(Message, messages, "messages")
        await self._save_list(agent_id, MESSAGES, lambda: encode_messages(items), append=True)

    @operation("loads")
    async def load_messages(self, agent_id: str) -> list[Message]:
        """The agent's conversation as last saved (``[]`` for an unknown agent)."""

        def read(agent_dir: Path) -> list[Message]:
            path = agent_dir / MESSAGES
            return [message_from_wire(decode(p, path)) for p, _ in read_list(agent_dir, MESSAGES)]

        return await self._read(agent_id, read, [])

    # ----------------------------------------------------------------- tool calls and media cache

    @operation("saves")
    async def save_tool_call_records(
        self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]
    ) -> None:
        """Replace the agent's tool-call records."""
        items = coerce_list(ToolCallRecord, records, "records")
        await self._save_list(agent_id, TOOL_CALLS, lambda: encode_records(items, "records"), append=False)

    @operation("saves")
    async def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None:
        """Write one tool-call record by id (replaced in place; a new id goes last).

        One journaled write: the list is read, changed and saved under the
        agent's lock (the stored records are not validated again)."""
        item = ToolCallRecord.coerce(record, "record")

        def plan(unit: Unit) -> None:
            path = unit.agent_dir / TOOL_CALLS
            stored = unit.read(TOOL_CALLS)
            payloads = [] if stored is None else [p for p, _ in parse_list(path, TOOL_CALLS, stored).items]
            line = record_json(item, "record")
            for index, payload in enumerate(payloads):
                wire = decode(payload, path)
                if not isinstance(wire, dict):
                    raise StoreCorruptionError(f"{path}: line {index + 2} is not a stored ToolCallRecord")
                if wire.get("id") == item.id:
                    payloads[index] = line
                    break
            else:
                payloads.append(line)
            self._plan_list_save(unit, TOOL_CALLS, payloads, append=False)

        await self._commit_job(agent_id, lambda: plan)

    @operation("loads")
    async def load_tool_call_records(self, agent_id: str) -> list[ToolCallRecord]:
        """The agent's tool-call records as last saved."""
        return await self._load_records(agent_id, TOOL_CALLS, ToolCallRecord)

    @operation("saves")
    async def save_media_cache(self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]) -> None:
        """Replace the agent's media-cache records."""
        items = coerce_list(MediaCacheRecord, records, "records")
        await self._save_list(agent_id, MEDIA_CACHE, lambda: encode_records(items, "records"), append=False)

    @operation("loads")
    async def load_media_cache(self, agent_id: str) -> list[MediaCacheRecord]:
        """The agent's media-cache records as last saved."""
        return await self._load_records(agent_id, MEDIA_CACHE, MediaCacheRecord)

    async def _load_records(self, agent_id: str, rel: str, model: type[M]) -> list[M]:
        def read(agent_dir: Path) -> list[M]:
            path = agent_dir / rel
            return [stored_record(model, decode(p, path), path) for p, _ in read_list(agent_dir, rel)]

        return await self._read(agent_id, read, [])

    # ----------------------------------------------------------------- single-record files

    @operation("saves")
    async def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None:
        """Replace the agent's todo list."""
        record = TodoSnapshot.coerce(snapshot, "snapshot")
        data = record_json(record, "snapshot")
        await self._write(agent_id, lambda _dir: [Replace(TODOS, data)])

    @operation("loads")
    async def load_todos(self, agent_id: str) -> TodoSnapshot | None:
        """The agent's todo list, or None."""
        return await self._read(agent_id, lambda agent_dir: load_file(agent_dir / TODOS, TodoSnapshot), None)

    @operation("saves")
    async def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None:
        """Save the agent's :class:`AgentInfo`; from now on the agent exists."""
        info_json = record_json(agent_info(agent_id, info), "info")

        def plan(_dir: Path) -> list[Op]:
            return [Replace(META, b'{"v":1,"updatedAt":%d,"info":%s}' % (now_ms(), info_json))]

        await self._write(agent_id, plan)

    @operation("loads")
    async def load_info(self, agent_id: str) -> AgentInfo | None:
        """The agent's :class:`AgentInfo` (``message_count`` as of the latest
        save of info or messages), or None."""

        def read(agent_dir: Path) -> AgentInfo | None:
            doc = read_meta(agent_dir)
            return None if doc is None else stored_record(AgentInfo, doc["info"], agent_dir / META)

        return await self._read(agent_id, read, None)

    # ----------------------------------------------------------------- snapshots and history

    @operation("saves")
    async def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None:
        """Save (or replace, by id) a snapshot."""
        record = Snapshot.coerce(snapshot, "snapshot")
        data = record_json(record, "snapshot")
        name = f"{SNAPSHOTS}/{encode_name(record.id)}.json"
        await self._write(agent_id, lambda _dir: [Replace(name, data)])

    @operation("loads")
    async def load_snapshot(self, agent_id: str, snapshot_id: str) -> Snapshot | None:
        """The snapshot with ``snapshot_id``, or None."""
        if not isinstance(snapshot_id, str):
            raise RecordValidationError(
                f"snapshot_id: expected a str, got {type(snapshot_id).__name__}", field="snapshot_id"
            )
        name = f"{SNAPSHOTS}/{encode_name(snapshot_id)}.json"

        def read(agent_dir: Path) -> Snapshot | None:
            snapshot = load_file(agent_dir / name, Snapshot)
            return snapshot if snapshot is not None and snapshot.id == snapshot_id else None

        return await self._read(agent_id, read, None)

    @operation("loads")
    async def list_snapshots(self, agent_id: str) -> list[Snapshot]:
        """Every snapshot of the agent, newest first (ties: id descending)."""

        def read(agent_dir: Path) -> list[Snapshot]:
            snapshots = load_dir(agent_dir / SNAPSHOTS, Snapshot)
            snapshots.sort(key=lambda s: (s.created_at, s.id), reverse=True)
            return snapshots

        return await self._read(agent_id, read, [])

    async def _save_appended(self, kind: RecordKind, agent_id: str, record: Record) -> None:
        """Add one record of an append-only kind as a file of its own, after
        every one saved before (see :func:`~kode_sdk.store.json_layout.appended_file`)."""
        data = record_json(record, kind.argument)
        directory = KIND_FILES[kind.name] + "/"

        def plan(unit: Unit) -> None:
            # Files planned earlier in the same unit count too (a transaction's saves).
            planned = [op.path[len(directory) :] for op in unit.ops if op.path.startswith(directory)]
            names = appended_names(unit.agent_dir, kind) + planned
            unit.add([Replace(appended_file(kind, record, names), data)])

        await self._commit_job(agent_id, lambda: plan)

    async def _load_appended(self, kind: RecordKind, agent_id: str) -> list[Any]:
        return await self._read(agent_id, lambda agent_dir: load_appended(agent_dir, kind, kind.model), [])

    # ----------------------------------------------------------------- events

    def _event_index(self, agent_id: str, agent_dir: Path, lock_fd: int, *, repair: bool) -> EventIndex:
        """The agent's event index, brought up to date with the logs on disk."""
        token = read_token(lock_fd)
        with self._cache_lock:
            index = self._events.get(agent_id)
        if index is None or index.token != token or not index.refresh(agent_dir, repair=repair):
            index = EventIndex(token)
            index.refresh(agent_dir, repair=repair)
        with self._cache_lock:
            self._events[agent_id] = index
            self._events.move_to_end(agent_id)
            while len(self._events) > self._max_event_indexes:
                self._events.popitem(last=False)
        return index

    def _forget_events(self, agent_id: str) -> None:
        with self._cache_lock:
            self._events.pop(agent_id, None)

    @operation("saves")
    async def append_event(self, agent_id: str, timeline: Timeline | Mapping[str, Any]) -> None:
        """Append one event to its channel's log, durably (``fsync``) before returning.

        A seq already stored for the agent, by this or any other store on the
        directory, raises :class:`RecordValidationError`.
        """
        await self._append_rows(agent_id, event_rows(agent_id, timeline, single=True))

    @operation("saves")
    async def append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None:
        """Append a batch of events under one exclusive lock of the agent: each
        channel's lines in one ``write`` and ``fsync``, durable before returning.

        Every seq is checked first: one already stored (or repeated in the
        batch) raises :class:`RecordValidationError` and writes nothing.
        (A crash in the middle of a batch spanning channels can keep the
        channels written before it: the logs are append-only files, not a
        journaled transaction.)
        """
        rows = event_rows(agent_id, timelines)
        if rows:
            await self._append_rows(agent_id, rows)

    def _event_job(self, agent_id: str, rows: list[PendingEvent]) -> Job:
        """The job of an event append inside a transaction: journaled appends
        to the channel logs (the same lines as outside one), every seq checked
        against the stored ones and those the unit already appends."""

        def job() -> Plan:
            by_channel: dict[str, list[tuple[int, bytes]]] = {}
            for row in rows:
                by_channel.setdefault(row.channel, []).append((row.seq, row.data.encode("utf-8") + b"\n"))

            def plan(unit: Unit) -> None:
                index = unit.event_index
                if index is None:
                    try:
                        index = self._event_index(agent_id, unit.agent_dir, unit.lock_fd, repair=True)
                    except BaseException:
                        self._forget_events(agent_id)
                        raise
                    unit.event_index = index
                planned = unit.events
                stored = [row.seq for row in rows if row.seq in index.seen or row.seq in planned.seqs]
                if stored:
                    raise duplicate_seq_error(agent_id, stored)
                for channel, lines in by_channel.items():
                    start = offset = planned.ends.get(channel, index.logs[channel].size)
                    for seq, line in lines:
                        planned.lines.append((channel, seq, offset, len(line)))
                        planned.seqs.add(seq)
                        offset += len(line)
                    planned.ends[channel] = offset
                    unit.add([Append(event_log(channel), start, b"".join(line for _, line in lines))])

            return plan

        return job

    async def _append_rows(self, agent_id: str, rows: list[PendingEvent]) -> None:
        scope = COLLECTING.get()
        if scope is not None and scope.store is self:
            scope.jobs.append(self._event_job(agent_id, rows))
            return
        by_channel: dict[str, list[PendingEvent]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)

        def append(agent_dir: Path, lock_fd: int) -> None:
            try:
                index = self._event_index(agent_id, agent_dir, lock_fd, repair=True)
                stored = [row.seq for row in rows if row.seq in index.seen]
                if stored:
                    raise duplicate_seq_error(agent_id, stored)
                for channel, group in by_channel.items():
                    lines = [row.data.encode("utf-8") + b"\n" for row in group]
                    append_line(event_path(agent_dir, channel), b"".join(lines))
                    log = index.logs[channel]
                    for row, line in zip(group, lines, strict=True):
                        if log.seqs and row.seq < log.seqs[-1]:
                            log.ordered = False
                        log.seqs.append(row.seq)
                        log.offsets.append(log.size)
                        log.size += len(line)
                        index.seen.add(row.seq)
            except RecordValidationError:
                raise
            except BaseException:
                self._forget_events(agent_id)
                raise

        await self._in_thread(agent_id, lambda: self._locked(agent_id, append, None, write=True))

    @operation("other")
    async def acquire_agent_lock(self, agent_id: str, timeout_ms: int = 30_000) -> AgentLock:
        """Take the agent's exclusive lock, waiting up to ``timeout_ms``, else
        raise :class:`LockTimeoutError`.

        ``flock`` on ``<base_dir>/~locks/<agent_id>.lock`` (no agent id can
        name that folder): it excludes other processes and other acquires in
        this process, even from this store (not re-entrant; ``agent_lock``
        blocks nest). No expiry: held until released, this store closes, or
        the process dies.
        """
        lock = await acquire_flock_lock(self._root / LOCKS_DIR, agent_id, timeout_ms, self._held_locks.discard)
        self._held_locks.add(lock)
        return lock

    @operation_iter("loads")
    async def read_events(
        self, agent_id: str, *, since: Any = None, channel: str | None = None
    ) -> AsyncIterator[Timeline]:
        """The agent's events in ``bookmark.seq`` order across channels;
        ``since`` keeps those with a greater seq, ``channel`` one channel."""
        after = since_seq(since)
        wanted = check_channel(channel)

        def read(agent_dir: Path, lock_fd: int) -> list[Timeline]:
            try:
                index = self._event_index(agent_id, agent_dir, lock_fd, repair=False)
            except BaseException:
                self._forget_events(agent_id)
                raise
            found: list[Timeline] = []
            for name, log in index.logs.items():
                if wanted is not None and name != wanted:
                    continue
                start = 0
                if after is not None and log.ordered:
                    first = bisect.bisect_right(log.seqs, after)
                    start = log.offsets[first] if first < len(log.offsets) else log.size
                if start >= log.size:
                    continue
                path = event_path(agent_dir, name)
                with open(path, "rb") as handle:
                    handle.seek(start)
                    chunk = handle.read(log.size - start)
                for line in chunk.split(b"\n")[:-1]:
                    event = timeline_from_wire(decode(line, path))
                    if after is None or event.bookmark.seq > after:
                        found.append(event)
            found.sort(key=lambda event: event.bookmark.seq)
            return found

        events: list[Timeline] = await self._in_thread(agent_id, lambda: self._locked(agent_id, read, [], write=False))
        for event in events:
            yield event

    # ----------------------------------------------------------------- existence

    @operation("loads")
    async def exists(self, agent_id: str) -> bool:
        """True once ``save_info`` ran for the agent (and it was not deleted)."""
        return await asyncio.to_thread(lambda: (self._agent_dir(agent_id) / META).is_file())

    @operation("deletes")
    async def delete(self, agent_id: str) -> None:
        """Remove every file of the agent. Unknown agents are ignored."""

        def remove(agent_dir: Path, _fd: int) -> Path:
            trash = self._root / f"{TRASH_PREFIX}{agent_id}-{secrets.token_hex(8)}"
            os.rename(agent_dir, trash)  # the atomic step: from here the agent is gone
            fsync_dir(self._root)
            return trash

        def run() -> None:
            agent_dir = self._agent_dir(agent_id)
            if not agent_dir.is_dir():
                return
            try:
                trash = self._locked(agent_id, remove, None, write=True)
            finally:
                self._forget_events(agent_id)
                for rel in LIST_FILES:
                    self._remember_list(agent_id, rel, None)
            if trash is not None:
                remove_tree(trash)

        await self._in_thread(agent_id, run)

    def _agent_names(self) -> list[str]:
        names = []
        with os.scandir(self._root) as entries:
            for entry in entries:
                if is_agent_id(entry.name) and entry.is_dir(follow_symlinks=False):
                    names.append(entry.name)
        names.sort()
        return names

    def _scan(self, agent_id: str | None, fn: Callable[[str, Path], None]) -> None:
        """Call ``fn(agent_id, agent_dir)`` for one agent or every agent, each
        under its shared file lock."""
        names = [agent_id] if agent_id is not None else self._agent_names()
        for name in names:

            def visit(agent_dir: Path, _fd: int, name: str = name) -> None:
                fn(name, agent_dir)

            self._locked(name, visit, None, write=False)

    # ------------------------------------------------------------------ whole-store primitives (store/catalog.py)

    @operation("loads", agent=False)
    async def list_stored_agents(self) -> builtins.list[str]:
        """Every agent with a directory (any stored record, info or not), sorted."""
        return await asyncio.to_thread(self._agent_names)

    @operation("loads")
    async def load_record_times(self, agent_id: str) -> RecordTimes:
        """Each message's ``createdAt`` (by position) and the session's ``updatedAt``."""

        def read(agent_dir: Path) -> RecordTimes:
            meta = read_meta(agent_dir)
            created = [c for _, c in read_list(agent_dir, MESSAGES)]
            return RecordTimes(created, None if meta is None else meta["updatedAt"])

        return await self._read(agent_id, read, RecordTimes())

    @operation("saves")
    async def restore_record_times(self, agent_id: str, times: RecordTimes) -> None:
        """Rewrite the messages' ``createdAt`` and the session's ``updatedAt``
        (see store/catalog.py), both files in one journaled transaction."""

        def run() -> None:
            def locked(agent_dir: Path, _fd: int) -> None:
                ops: builtins.list[Op] = []
                state: ListState | None = None
                path = agent_dir / MESSAGES
                data = read_file(path)
                if data is not None and times.message_created_at:
                    parsed = parse_list(path, MESSAGES, data)
                    created = times.message_created_at
                    items = [(p, created[i] if i < len(created) else c) for i, (p, c) in enumerate(parsed.items)]
                    gen = secrets.token_hex(16)
                    lines = (list_line(MESSAGES, i, p, c) for i, (p, c) in enumerate(items))
                    body = b"".join([list_header(gen), *lines])
                    ops.append(Replace(MESSAGES, body))
                    state = ListState(gen, len(body), [(digest(p), c) for p, c in items])
                meta = read_meta(agent_dir)
                if meta is not None and times.updated_at is not None:
                    meta["updatedAt"] = times.updated_at
                    ops.append(Replace(META, jsoncodec.encode(meta, "info")))
                try:
                    commit(agent_dir, ops)
                except BaseException:
                    self._remember_list(agent_id, MESSAGES, None)
                    raise
                if state is not None:
                    self._remember_list(agent_id, MESSAGES, state)

            self._locked(agent_id, locked, None, write=True)

        await self._in_thread(agent_id, run)

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

        Files have no set-based delete: this scans every agent's info, then
        deletes the matching agents one by one (each delete atomic on its own).
        ``dry_run`` only lists them.
        """
        cutoff = to_epoch_ms(created_before)  # epoch ms already: store/policy.py checked the arguments
        doomed: builtins.list[str] = []
        for agent_id in await self.list():
            info = await self.load_info(agent_id)
            if info is None or to_epoch_ms(info.created_at) >= cutoff:
                continue
            if template_id is None or info.template_id == template_id:
                doomed.append(agent_id)
        if not dry_run:
            for agent_id in doomed:
                await self.delete(agent_id)
        return doomed

    # `list` comes last: inside the class body its name shadows the builtin.
    @operation("loads", agent=False)
    async def list(self, prefix: str | None = None) -> builtins.list[str]:
        """Ids of the agents whose info was saved, sorted; ``prefix`` keeps
        those starting with it (case-sensitive, no wildcards)."""
        if prefix is not None and not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str or None, got {type(prefix).__name__}")

        def scan() -> builtins.list[str]:
            return [
                name
                for name in self._agent_names()
                if (prefix is None or name.startswith(prefix)) and (self._root / name / META).is_file()
            ]

        return await asyncio.to_thread(scan)
