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
    history/windows/<id>.json           one file per HistoryWindow
    history/compressions/<id>.json      one file per CompressionRecord
    history/recovered/<ts>-<path>.json  one file per RecoveredFile
    snapshots/<id>.json                 one file per Snapshot

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
previous content. Events are not journaled: each is one line written with one
``write`` and ``fsync``-ed; a torn last line (no newline) is never read, and
is moved to ``<channel>.log.torn-<ms>`` before the next append. ``delete``
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
import hashlib
import os
import re
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from .. import jsoncodec
from ..errors import (
    InvalidAgentIdError,
    RecordValidationError,
    StoreConfigError,
    StoreConnectionError,
    StoreCorruptionError,
)
from ..types import (
    CHANNELS,
    AgentInfo,
    AgentStats,
    CompressionRecord,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    RecoveredFile,
    SessionInfo,
    Snapshot,
    StoredMessage,
    StoredToolCall,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
    ToolCallState,
    ms_to_datetime,
    to_epoch_ms,
)
from .agent_ids import validate_agent_id
from .catalog import RecordTimes
from .events import PendingEvent, check_channel, duplicate_seq_error, event_rows, since_seq, timeline_from_wire
from .flock_lock import FlockAgentLock, acquire_flock_lock
from .json_files import (
    DIR_MODE,
    FILE_MODE,
    TMP_PREFIX,
    TRASH_PREFIX,
    Append,
    Op,
    Replace,
    commit,
    cut_torn_tail,
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
    sync_data,
)
from .lifecycle import BaseStore, operation, operation_iter
from .list_diff import SavedListCache
from .locks import AgentLock
from .policy import check_page, check_sort, time_bound
from .query_rules import stats_from_counts, user_id_of
from .records import coerce_list, message_to_wire
from .results import message_from_wire
from .search import MessageSearch, SearchCandidate, SearchRequest, SearchRow, SearchScan

__all__ = ["JSONStore"]

#: The folder of agent-lock files under the store's directory; ``~`` is no
#: agent-id character, so no agent directory can have this name.
LOCKS_DIR = "~locks"

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

META = "meta.json"
MESSAGES = "runtime/messages.jsonl"
TOOL_CALLS = "runtime/tool-calls.jsonl"
MEDIA_CACHE = "runtime/media-cache.jsonl"
TODOS = "runtime/todos.json"
SNAPSHOTS = "snapshots"
WINDOWS = "history/windows"
COMPRESSIONS = "history/compressions"
RECOVERED = "history/recovered"
LIST_FILES = (MESSAGES, TOOL_CALLS, MEDIA_CACHE)

_HEADER = re.compile(rb'\{"kode":"list","v":1,"gen":"([0-9a-f]{32})"\}\n')
_MESSAGE_LINE = re.compile(rb'\{"seq":(\d+),"createdAt":(-?\d+),"message":')
_ROLE = re.compile(rb'\{"role":"(user|assistant|system)"')


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _event_path(agent_dir: Path, channel: str) -> Path:
    return agent_dir / "events" / f"{channel}.log"


# --------------------------------------------------------------------------- list files


@dataclass(frozen=True, slots=True)
class _ListState:
    """A list file as read or written: its generation, byte size, and items.

    In a parsed file an item is ``(payload JSON bytes, createdAt ms)``; in the
    save cache it is ``(digest of the payload, createdAt ms)``, so a cached list
    costs a few dozen bytes per item. ``createdAt`` is 0 outside messages.
    """

    gen: str
    size: int
    items: list[tuple[bytes, int]]

    @property
    def version(self) -> int:
        return _version(self.gen, self.size)


def _version(gen: str, size: int) -> int:
    """The cache version of a list file: generation and size in one int."""
    return (int(gen, 16) << 64) | size


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


def _header(gen: str) -> bytes:
    return b'{"kode":"list","v":1,"gen":"%s"}\n' % gen.encode("ascii")


def _line(rel: str, seq: int, payload: bytes, created: int) -> bytes:
    if rel == MESSAGES:
        return b'{"seq":%d,"createdAt":%d,"message":%s}\n' % (seq, created, payload)
    return payload + b"\n"


def _parse_list(path: Path, rel: str, data: bytes) -> _ListState:
    header = _HEADER.match(data)
    if header is None:
        raise StoreCorruptionError(f"{path}: not a kode list file (missing or damaged header line)")
    body = data[header.end() :]
    if body and not body.endswith(b"\n"):
        raise StoreCorruptionError(f"{path}: the last line is incomplete")
    items: list[tuple[bytes, int]] = []
    for index, line in enumerate(body.split(b"\n")[:-1] if body else ()):
        if rel == MESSAGES:
            match = _MESSAGE_LINE.match(line)
            if match is None or int(match[1]) != index or not line.endswith(b"}"):
                raise StoreCorruptionError(f"{path}: line {index + 2} is not a stored message")
            items.append((line[match.end() : -1], int(match[2])))
        else:
            items.append((line, 0))
    return _ListState(header[1].decode("ascii"), len(data), items)


def _decode(payload: bytes, where: Path) -> Any:
    try:
        return jsoncodec.decode(payload)
    except ValueError as exc:
        raise StoreCorruptionError(f"{where}: damaged JSON ({exc})") from None


def _record(model: type[M], wire: Any, where: Path) -> M:
    try:
        return model.model_validate(wire)
    except RecordValidationError as exc:
        raise StoreCorruptionError(f"{where}: stored {model.__name__} is invalid: {exc}") from None


# --------------------------------------------------------------------------- event index


@dataclass(slots=True)
class _ChannelLog:
    """What is known of one channel's log: bytes of complete lines, and each
    line's seq and offset in file order."""

    size: int = 0
    seqs: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    ordered: bool = True


@dataclass(slots=True)
class _EventIndex:
    """Every seq stored for one agent (per incarnation of its directory)."""

    token: bytes
    logs: dict[str, _ChannelLog] = field(default_factory=lambda: {ch: _ChannelLog() for ch in CHANNELS})
    seen: set[int] = field(default_factory=set)

    def refresh(self, agent_dir: Path, *, repair: bool) -> bool:
        """Read what other writers appended since the last look. False when a
        log shrank (the index must be rebuilt). With ``repair`` (exclusive lock
        held), a torn last line is moved aside so the next append starts clean."""
        for channel, log in self.logs.items():
            path = _event_path(agent_dir, channel)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                if log.size:
                    return False
                continue
            try:
                size = os.fstat(fd).st_size
                if size < log.size:
                    return False
                chunk = os.pread(fd, size - log.size, log.size) if size > log.size else b""
            finally:
                os.close(fd)
            end = chunk.rfind(b"\n") + 1
            position = log.size
            for line in chunk[:end].split(b"\n")[:-1]:
                seq = _event_seq(line, path, position)
                if log.seqs and seq < log.seqs[-1]:
                    log.ordered = False
                log.seqs.append(seq)
                log.offsets.append(position)
                self.seen.add(seq)
                position += len(line) + 1
            log.size = position
            if end < len(chunk) and repair:
                cut_torn_tail(path, position)
        return True


def _event_seq(line: bytes, path: Path, offset: int) -> int:
    try:
        seq = jsoncodec.decode(line)["bookmark"]["seq"]
    except (ValueError, KeyError, TypeError):
        seq = None
    if type(seq) is not int:
        raise StoreCorruptionError(f"{path}: the line at byte {offset} is not a stored event")
    return seq


# --------------------------------------------------------------------------- the store


class JSONStore(MessageSearch, BaseStore):
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
        self._events: OrderedDict[str, _EventIndex] = OrderedDict()
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
            if not _is_agent_id(entry.name):
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

        def run() -> None:
            self._locked(agent_id, lambda agent_dir, _fd: commit(agent_dir, plan(agent_dir)), None, write=True)

        await self._in_thread(agent_id, run)

    async def _read(self, agent_id: str, fn: Callable[[Path], T], absent: T) -> T:
        return await self._in_thread(
            agent_id, lambda: self._locked(agent_id, lambda agent_dir, _fd: fn(agent_dir), absent, write=False)
        )

    # ----------------------------------------------------------------- list files

    def _cached_list(self, agent_id: str, rel: str, version: int) -> list[tuple[bytes, int]] | None:
        with self._cache_lock:
            return self._lists.get(f"{agent_id}/{rel}", version)

    def _remember_list(self, agent_id: str, rel: str, state: _ListState | None) -> None:
        with self._cache_lock:
            if state is None:
                self._lists.drop(f"{agent_id}/{rel}")
            else:
                self._lists.put(f"{agent_id}/{rel}", state.version, state.items)

    def _list_state(self, agent_id: str, agent_dir: Path, rel: str, *, for_replace: bool) -> _ListState | None:
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
        header = _HEADER.match(head)
        if header is not None:
            gen = header[1].decode("ascii")
            cached = self._cached_list(agent_id, rel, _version(gen, size))
            if cached is not None:
                return _ListState(gen, size, cached)
        data = read_file(path)
        if data is None:
            return None
        try:
            parsed = _parse_list(path, rel, data)
        except StoreCorruptionError as exc:
            if not for_replace:
                raise
            aside = set_aside(path, copy=True)
            logger.warning("%s; replacing it, the damaged file is kept as %s", exc, aside.name)
            return None
        return _ListState(parsed.gen, parsed.size, [(_digest(p), c) for p, c in parsed.items])

    def _plan_list(
        self, agent_id: str, agent_dir: Path, rel: str, payloads: list[bytes], *, append: bool, now: int
    ) -> tuple[list[Op], _ListState]:
        """Operations turning a list file into ``payloads`` (or, with
        ``append``, into its items followed by ``payloads``), and the state after."""
        state = self._list_state(agent_id, agent_dir, rel, for_replace=not append)
        old = state.items if state is not None else []
        digests = [_digest(payload) for payload in payloads]
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
            data = b"".join(_line(rel, i, payloads[i], items[i][1]) for i in range(start, len(items)))
            return [Append(rel, state.size, data)], _ListState(state.gen, state.size + len(data), items)
        gen = secrets.token_hex(16)
        data = b"".join([_header(gen), *(_line(rel, i, payloads[i], items[i][1]) for i in range(len(items)))])
        return [Replace(rel, data)], _ListState(gen, len(data), items)

    async def _save_list(self, agent_id: str, rel: str, encode: Callable[[], list[bytes]], *, append: bool) -> None:
        def run() -> None:
            payloads = encode()

            def locked(agent_dir: Path, _fd: int) -> None:
                now = _now_ms()
                ops, state = self._plan_list(agent_id, agent_dir, rel, payloads, append=append, now=now)
                if rel == MESSAGES:
                    meta_op = self._meta_count_op(agent_dir, len(state.items), changed=bool(ops), now=now)
                    if meta_op is not None:
                        ops.append(meta_op)
                try:
                    commit(agent_dir, ops)
                except BaseException:
                    self._remember_list(agent_id, rel, None)
                    raise
                self._remember_list(agent_id, rel, state)

            self._locked(agent_id, locked, None, write=True)

        await self._in_thread(agent_id, run)

    def _read_list(self, agent_dir: Path, rel: str) -> list[tuple[bytes, int]]:
        path = agent_dir / rel
        data = read_file(path)
        return [] if data is None else _parse_list(path, rel, data).items

    # ----------------------------------------------------------------- meta

    def _read_meta(self, agent_dir: Path) -> dict[str, Any] | None:
        path = agent_dir / META
        data = read_file(path)
        if data is None:
            return None
        doc = _decode(data, path)
        if (
            not isinstance(doc, dict)
            or doc.get("v") != 1
            or type(doc.get("updatedAt")) is not int
            or not isinstance(doc.get("info"), dict)
            or type(doc["info"].get("createdAt")) is not int
            or type(doc["info"].get("messageCount")) is not int
        ):
            raise StoreCorruptionError(f"{path}: not a kode agent meta file")
        return doc

    def _meta_count_op(self, agent_dir: Path, count: int, *, changed: bool, now: int) -> Op | None:
        doc = self._read_meta(agent_dir)
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
        await self._save_list(agent_id, MESSAGES, lambda: _encode_messages(items), append=False)

    @operation("saves")
    async def append_messages(self, agent_id: str, messages: Sequence[Message | Mapping[str, Any]]) -> None:
        """Append ``messages`` to the agent's conversation without rewriting it.

        Costs O(appended) I/O when this store has the list cached, else one
        read of the list file to learn its length and verify it.
        """
        items = coerce_list(Message, messages, "messages")
        await self._save_list(agent_id, MESSAGES, lambda: _encode_messages(items), append=True)

    @operation("loads")
    async def load_messages(self, agent_id: str) -> list[Message]:
        """The agent's conversation as last saved (``[]`` for an unknown agent)."""

        def read(agent_dir: Path) -> list[Message]:
            path = agent_dir / MESSAGES
            return [message_from_wire(_decode(p, path)) for p, _ in self._read_list(agent_dir, MESSAGES)]

        return await self._read(agent_id, read, [])

    # ----------------------------------------------------------------- tool calls and media cache

    @operation("saves")
    async def save_tool_call_records(
        self, agent_id: str, records: Sequence[ToolCallRecord | Mapping[str, Any]]
    ) -> None:
        """Replace the agent's tool-call records."""
        items = coerce_list(ToolCallRecord, records, "records")
        await self._save_list(agent_id, TOOL_CALLS, lambda: _encode_records(items, "records"), append=False)

    @operation("saves")
    async def upsert_tool_call_record(self, agent_id: str, record: ToolCallRecord | Mapping[str, Any]) -> None:
        """Write one tool-call record by id (replaced in place; a new id goes last)."""
        await self._upsert_tool_call_by_rewrite(agent_id, record)

    @operation("loads")
    async def load_tool_call_records(self, agent_id: str) -> list[ToolCallRecord]:
        """The agent's tool-call records as last saved."""
        return await self._load_records(agent_id, TOOL_CALLS, ToolCallRecord)

    @operation("saves")
    async def save_media_cache(self, agent_id: str, records: Sequence[MediaCacheRecord | Mapping[str, Any]]) -> None:
        """Replace the agent's media-cache records."""
        items = coerce_list(MediaCacheRecord, records, "records")
        await self._save_list(agent_id, MEDIA_CACHE, lambda: _encode_records(items, "records"), append=False)

    @operation("loads")
    async def load_media_cache(self, agent_id: str) -> list[MediaCacheRecord]:
        """The agent's media-cache records as last saved."""
        return await self._load_records(agent_id, MEDIA_CACHE, MediaCacheRecord)

    async def _load_records(self, agent_id: str, rel: str, model: type[M]) -> list[M]:
        def read(agent_dir: Path) -> list[M]:
            path = agent_dir / rel
            return [_record(model, _decode(p, path), path) for p, _ in self._read_list(agent_dir, rel)]

        return await self._read(agent_id, read, [])

    # ----------------------------------------------------------------- single-record files

    @operation("saves")
    async def save_todos(self, agent_id: str, snapshot: TodoSnapshot | Mapping[str, Any]) -> None:
        """Replace the agent's todo list."""
        record = TodoSnapshot.coerce(snapshot, "snapshot")
        data = _record_json(record, "snapshot")
        await self._write(agent_id, lambda _dir: [Replace(TODOS, data)])

    @operation("loads")
    async def load_todos(self, agent_id: str) -> TodoSnapshot | None:
        """The agent's todo list, or None."""
        return await self._read(agent_id, lambda agent_dir: _load_file(agent_dir / TODOS, TodoSnapshot), None)

    @operation("saves")
    async def save_info(self, agent_id: str, info: AgentInfo | Mapping[str, Any]) -> None:
        """Save the agent's :class:`AgentInfo`; from now on the agent exists."""
        record = AgentInfo.coerce(info, "info")
        if record.agent_id != agent_id:
            raise RecordValidationError(
                f"info.agent_id: {record.agent_id!r} does not match the agent id {agent_id!r}", field="info.agent_id"
            )
        info_json = _record_json(record, "info")

        def plan(_dir: Path) -> list[Op]:
            return [Replace(META, b'{"v":1,"updatedAt":%d,"info":%s}' % (_now_ms(), info_json))]

        await self._write(agent_id, plan)

    @operation("loads")
    async def load_info(self, agent_id: str) -> AgentInfo | None:
        """The agent's :class:`AgentInfo` (``message_count`` as of the latest
        save of info or messages), or None."""

        def read(agent_dir: Path) -> AgentInfo | None:
            doc = self._read_meta(agent_dir)
            return None if doc is None else _record(AgentInfo, doc["info"], agent_dir / META)

        return await self._read(agent_id, read, None)

    # ----------------------------------------------------------------- snapshots and history

    @operation("saves")
    async def save_snapshot(self, agent_id: str, snapshot: Snapshot | Mapping[str, Any]) -> None:
        """Save (or replace, by id) a snapshot."""
        record = Snapshot.coerce(snapshot, "snapshot")
        data = _record_json(record, "snapshot")
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
            snapshot = _load_file(agent_dir / name, Snapshot)
            return snapshot if snapshot is not None and snapshot.id == snapshot_id else None

        return await self._read(agent_id, read, None)

    @operation("loads")
    async def list_snapshots(self, agent_id: str) -> list[Snapshot]:
        """Every snapshot of the agent, newest first (ties: id descending)."""

        def read(agent_dir: Path) -> list[Snapshot]:
            snapshots = _load_dir(agent_dir / SNAPSHOTS, Snapshot)
            snapshots.sort(key=lambda s: (s.created_at, s.id), reverse=True)
            return snapshots

        return await self._read(agent_id, read, [])

    @operation("saves")
    async def save_history_window(self, agent_id: str, window: HistoryWindow | Mapping[str, Any]) -> None:
        """Save (or replace, by id) a history window."""
        record = HistoryWindow.coerce(window, "window")
        data = _record_json(record, "window")
        name = f"{WINDOWS}/{encode_name(record.id)}.json"
        await self._write(agent_id, lambda _dir: [Replace(name, data)])

    @operation("loads")
    async def load_history_windows(self, agent_id: str) -> list[HistoryWindow]:
        """The agent's history windows, oldest ``timestamp`` first (ties: id)."""
        return await self._read(
            agent_id, lambda d: sorted(_load_dir(d / WINDOWS, HistoryWindow), key=lambda w: (w.timestamp, w.id)), []
        )

    @operation("saves")
    async def save_compression_record(self, agent_id: str, record: CompressionRecord | Mapping[str, Any]) -> None:
        """Save (or replace, by id) a compression record."""
        item = CompressionRecord.coerce(record, "record")
        data = _record_json(item, "record")
        name = f"{COMPRESSIONS}/{encode_name(item.id)}.json"
        await self._write(agent_id, lambda _dir: [Replace(name, data)])

    @operation("loads")
    async def load_compression_records(self, agent_id: str) -> list[CompressionRecord]:
        """The agent's compression records, oldest ``timestamp`` first (ties: id)."""
        return await self._read(
            agent_id,
            lambda d: sorted(_load_dir(d / COMPRESSIONS, CompressionRecord), key=lambda r: (r.timestamp, r.id)),
            [],
        )

    @operation("saves")
    async def save_recovered_file(self, agent_id: str, file: RecoveredFile | Mapping[str, Any]) -> None:
        """Save a recovered file (one per path and timestamp; saving the same pair again replaces it)."""
        item = RecoveredFile.coerce(file, "file")
        data = _record_json(item, "file")
        name = f"{RECOVERED}/{item.timestamp}-{encode_name(item.path)}.json"
        await self._write(agent_id, lambda _dir: [Replace(name, data)])

    @operation("loads")
    async def load_recovered_files(self, agent_id: str) -> list[RecoveredFile]:
        """The agent's recovered files, oldest ``timestamp`` first (ties: path)."""
        return await self._read(
            agent_id,
            lambda d: sorted(_load_dir(d / RECOVERED, RecoveredFile), key=lambda f: (f.timestamp, f.path)),
            [],
        )

    # ----------------------------------------------------------------- events

    def _event_index(self, agent_id: str, agent_dir: Path, lock_fd: int, *, repair: bool) -> _EventIndex:
        """The agent's event index, brought up to date with the logs on disk."""
        token = read_token(lock_fd)
        with self._cache_lock:
            index = self._events.get(agent_id)
        if index is None or index.token != token or not index.refresh(agent_dir, repair=repair):
            index = _EventIndex(token)
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

    async def _append_rows(self, agent_id: str, rows: list[PendingEvent]) -> None:
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
                    _append_line(_event_path(agent_dir, channel), b"".join(lines))
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
                path = _event_path(agent_dir, name)
                with open(path, "rb") as handle:
                    handle.seek(start)
                    chunk = handle.read(log.size - start)
                for line in chunk.split(b"\n")[:-1]:
                    event = timeline_from_wire(_decode(line, path))
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
                if _is_agent_id(entry.name) and entry.is_dir(follow_symlinks=False):
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

    # ----------------------------------------------------------------- queries

    @operation("queries", agent=False)
    async def query_sessions(
        self,
        *,
        agent_id: str | None = None,
        template_id: str | None = None,
        user_id: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: str = "desc",
    ) -> list[SessionInfo]:
        """Agents with saved info, filtered, sorted by ``sort_by`` (ties: agent id in the same order)."""
        if agent_id is not None:
            validate_agent_id(agent_id)
        column, order = check_sort(sort_by, sort_order)
        limit, offset = check_page(limit, offset)
        after, before = time_bound(created_after, "created_after"), time_bound(created_before, "created_before")
        key_name = {"created_at": "createdAt", "updated_at": "updatedAt", "message_count": "messageCount"}[column]

        def run() -> list[SessionInfo]:
            rows: list[tuple[Any, str, dict[str, Any], int]] = []

            def visit(name: str, agent_dir: Path) -> None:
                doc = self._read_meta(agent_dir)
                if doc is None:
                    return
                info = doc["info"]
                created = info.get("createdAt")
                if template_id is not None and info.get("templateId") != template_id:
                    return
                if user_id is not None and user_id_of(info.get("metadata")) != user_id:
                    return
                if (after is not None and created < after) or (before is not None and created > before):
                    return
                value = doc["updatedAt"] if key_name == "updatedAt" else info.get(key_name)
                rows.append((value, name, info, doc["updatedAt"]))

            self._scan(agent_id, visit)
            rows.sort(key=lambda row: (row[0], row[1]), reverse=order == "desc")
            page = []
            for _, name, wire, updated in rows[offset : offset + limit]:
                info = _record(AgentInfo, wire, self._root / name / META)
                page.append(
                    SessionInfo(
                        agent_id=name,
                        template_id=info.template_id,
                        created_at=info.created_at,
                        updated_at=ms_to_datetime(updated),
                        message_count=info.message_count,
                        last_sfp_index=info.last_sfp_index,
                        breakpoint=info.breakpoint,
                        metadata=info.metadata,
                    )
                )
            return page

        return await asyncio.to_thread(run)

    @operation("queries", agent=False)
    async def query_messages(
        self,
        *,
        agent_id: str | None = None,
        role: str | None = None,
        content_type: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredMessage]:
        """Stored messages, newest first (``created_at``, then seq, then agent id, descending)."""
        if agent_id is not None:
            validate_agent_id(agent_id)
        limit, offset = check_page(limit, offset)
        after, before = time_bound(created_after, "created_after"), time_bound(created_before, "created_before")
        role_prefix = None if role is None else b'{"role":' + jsoncodec.encode(role)
        type_needle = None if content_type is None else b'"type":' + jsoncodec.encode(content_type)

        def run() -> list[StoredMessage]:
            rows: list[tuple[int, int, str, bytes, Path]] = []

            def visit(name: str, agent_dir: Path) -> None:
                path = agent_dir / MESSAGES
                for seq, (payload, created) in enumerate(self._read_list(agent_dir, MESSAGES)):
                    if (after is not None and created < after) or (before is not None and created > before):
                        continue
                    # The wire form starts with the role, so no decoding is needed to filter on it.
                    if role_prefix is not None and not payload.startswith(role_prefix):
                        continue
                    if type_needle is not None and (
                        type_needle not in payload
                        or all(block.get("type") != content_type for block in _decode(payload, path)["content"])
                    ):
                        continue
                    rows.append((created, seq, name, payload, path))

            self._scan(agent_id, visit)
            rows.sort(key=lambda row: (row[0], row[1], row[2]), reverse=True)
            page = []
            for created, seq, name, payload, path in rows[offset : offset + limit]:
                wire = _decode(payload, path)
                page.append(
                    StoredMessage(
                        agent_id=name,
                        seq=seq,
                        role=wire["role"],
                        content=wire["content"],
                        created_at=ms_to_datetime(created),
                        metadata=wire.get("metadata"),
                    )
                )
            return page

        return await asyncio.to_thread(run)

    async def _search_rows(self, request: SearchRequest) -> list[SearchRow]:
        """``search_messages`` by scanning every agent's messages (no index)."""
        role_prefix = None if request.role is None else b'{"role":' + jsoncodec.encode(request.role)
        after, before = request.created_after, request.created_before

        def run() -> list[SearchRow]:
            scan = SearchScan(request)

            def visit(name: str, agent_dir: Path) -> None:
                if request.template_id is not None or request.user_id is not None:
                    doc = self._read_meta(agent_dir)
                    if doc is None:
                        return
                    info = doc["info"]
                    if request.template_id is not None and info.get("templateId") != request.template_id:
                        return
                    if request.user_id is not None and user_id_of(info.get("metadata")) != request.user_id:
                        return
                path = agent_dir / MESSAGES
                for seq, (payload, created) in enumerate(self._read_list(agent_dir, MESSAGES)):
                    if (after is not None and created < after) or (before is not None and created > before):
                        continue
                    if role_prefix is not None and not payload.startswith(role_prefix):
                        continue
                    wire = _decode(payload, path)
                    scan.offer(SearchCandidate(name, seq, wire["role"], created, wire))

            self._scan(request.agent_id, visit)
            return scan.rows()

        return await asyncio.to_thread(run)

    @operation("queries", agent=False)
    async def query_tool_calls(
        self,
        *,
        agent_id: str | None = None,
        tool_name: str | None = None,
        is_error: bool | None = None,
        has_approval: bool | None = None,
        state: ToolCallState | str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredToolCall]:
        """Stored tool calls, newest first (``created_at``, then id, then agent id, descending)."""
        if agent_id is not None:
            validate_agent_id(agent_id)
        limit, offset = check_page(limit, offset)
        after, before = time_bound(created_after, "created_after"), time_bound(created_before, "created_before")
        wanted_state = _check_state(state)
        # Byte needles each record must contain to match: cheap to test, so
        # only candidates are decoded (a needle found elsewhere is re-checked).
        needles = [b'"name":' + jsoncodec.encode(tool_name)] if tool_name is not None else []
        if is_error is True:
            needles.append(b'"isError":true')

        def run() -> list[StoredToolCall]:
            rows: list[tuple[int, str, str, dict[str, Any], Path]] = []

            def visit(name: str, agent_dir: Path) -> None:
                path = agent_dir / TOOL_CALLS
                for payload, _ in self._read_list(agent_dir, TOOL_CALLS):
                    if any(needle not in payload for needle in needles):
                        continue
                    wire = _decode(payload, path)
                    created = wire.get("createdAt")
                    if not isinstance(created, int):
                        raise StoreCorruptionError(f"{path}: a tool call without createdAt")
                    if (
                        (tool_name is not None and wire.get("name") != tool_name)
                        or (is_error is not None and wire.get("isError") is not is_error)
                        or (has_approval is not None and _approval_required(wire) is not has_approval)
                        or (wanted_state is not None and wire.get("state") != wanted_state)
                        or (after is not None and created < after)
                        or (before is not None and created > before)
                    ):
                        continue
                    rows.append((created, str(wire.get("id")), name, wire, path))

            self._scan(agent_id, visit)
            rows.sort(key=lambda row: (row[0], row[1], row[2]), reverse=True)
            return [
                StoredToolCall.from_record(name, _record(ToolCallRecord, wire, path))
                for _, _, name, wire, path in rows[offset : offset + limit]
            ]

        return await asyncio.to_thread(run)

    @operation("queries")
    async def aggregate_stats(self, agent_id: str) -> AgentStats:
        """Counts of the agent's messages (by role), tool calls (by state and
        name) and snapshots; all zeros for an unknown agent."""

        def read(agent_dir: Path) -> AgentStats:
            by_role: dict[str, int] = {}
            path = agent_dir / MESSAGES
            items = self._read_list(agent_dir, MESSAGES)
            for payload, _ in items:
                match = _ROLE.match(payload)
                role = match[1].decode() if match else str(_decode(payload, path).get("role"))
                by_role[role] = by_role.get(role, 0) + 1
            by_state: dict[str, int] = {}
            by_name: dict[str, int] = {}
            calls_path = agent_dir / TOOL_CALLS
            for payload, _ in self._read_list(agent_dir, TOOL_CALLS):
                wire = _decode(payload, calls_path)
                by_state[wire["state"]] = by_state.get(wire["state"], 0) + 1
                by_name[wire["name"]] = by_name.get(wire["name"], 0) + 1
            try:
                snapshots = sum(1 for n in os.listdir(agent_dir / SNAPSHOTS) if n.endswith(".json"))
            except FileNotFoundError:
                snapshots = 0
            return stats_from_counts(
                total_messages=len(items),
                total_snapshots=snapshots,
                messages_by_role=by_role,
                tool_calls_by_state=by_state,
                tool_calls_by_name=by_name,
            )

        return await self._read(agent_id, read, AgentStats())

    # ------------------------------------------------------------------ whole-store primitives (store/catalog.py)

    @operation("loads", agent=False)
    async def list_stored_agents(self) -> builtins.list[str]:
        """Every agent with a directory (any stored record, info or not), sorted."""
        return await asyncio.to_thread(self._agent_names)

    @operation("loads")
    async def load_record_times(self, agent_id: str) -> RecordTimes:
        """Each message's ``createdAt`` (by position) and the session's ``updatedAt``."""

        def read(agent_dir: Path) -> RecordTimes:
            meta = self._read_meta(agent_dir)
            created = [c for _, c in self._read_list(agent_dir, MESSAGES)]
            return RecordTimes(created, None if meta is None else meta["updatedAt"])

        return await self._read(agent_id, read, RecordTimes())

    @operation("saves")
    async def restore_record_times(self, agent_id: str, times: RecordTimes) -> None:
        """Rewrite the messages' ``createdAt`` and the session's ``updatedAt``
        (see store/catalog.py), both files in one journaled transaction."""

        def run() -> None:
            def locked(agent_dir: Path, _fd: int) -> None:
                ops: builtins.list[Op] = []
                state: _ListState | None = None
                path = agent_dir / MESSAGES
                data = read_file(path)
                if data is not None and times.message_created_at:
                    parsed = _parse_list(path, MESSAGES, data)
                    created = times.message_created_at
                    items = [(p, created[i] if i < len(created) else c) for i, (p, c) in enumerate(parsed.items)]
                    gen = secrets.token_hex(16)
                    body = b"".join([_header(gen), *(_line(MESSAGES, i, p, c) for i, (p, c) in enumerate(items))])
                    ops.append(Replace(MESSAGES, body))
                    state = _ListState(gen, len(body), [(_digest(p), c) for p, c in items])
                meta = self._read_meta(agent_dir)
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
        cutoff = time_bound(created_before, "created_before")
        if cutoff is None:
            raise ValueError("created_before is required")
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


# --------------------------------------------------------------------------- helpers


def _is_agent_id(name: str) -> bool:
    try:
        validate_agent_id(name)
    except InvalidAgentIdError:
        return False
    return True


def _encode_messages(items: list[Message]) -> list[bytes]:
    return [jsoncodec.encode(message_to_wire(m), f"messages[{i}]") for i, m in enumerate(items)]


def _encode_records(items: Sequence[BaseModel], field_name: str) -> list[bytes]:
    return [_record_json(item, f"{field_name}[{i}]") for i, item in enumerate(items)]


def _record_json(record: BaseModel, field_name: str) -> bytes:
    """A validated record's wire JSON. pydantic's own serializer writes the
    same bytes as ``jsoncodec.encode(record.to_wire())`` (big integers
    included) at less than half the cost."""
    try:
        return record.model_dump_json(by_alias=True).encode("utf-8")
    except (PydanticSerializationError, UnicodeEncodeError) as exc:
        raise RecordValidationError(f"{field_name}: not encodable as JSON: {exc}", field=field_name) from None


def _approval_required(wire: dict[str, Any]) -> bool:
    approval = wire.get("approval")
    return isinstance(approval, dict) and approval.get("required") is True


def _check_state(state: ToolCallState | str | None) -> str | None:
    if state is None:
        return None
    try:
        return ToolCallState(state).value
    except ValueError:
        allowed = ", ".join(s.value for s in ToolCallState)
        raise ValueError(f"state must be one of {allowed}; got {state!r}") from None


def _load_file(path: Path, model: type[M]) -> M | None:
    data = read_file(path)
    return None if data is None else _record(model, _decode(data, path), path)


def _load_dir(directory: Path, model: type[M]) -> list[M]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if name.endswith(".json") and not name.startswith("."):
            record = _load_file(directory / name, model)
            if record is not None:
                out.append(record)
    return out


def _append_line(path: Path, line: bytes) -> None:
    """Append one line with a single ``write`` and ``fsync`` it."""
    created = False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except FileNotFoundError:
        try:
            os.mkdir(path.parent, DIR_MODE)
            fsync_dir(path.parent.parent)
        except FileExistsError:
            pass
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        created = True
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {path}: {written} of {len(line)} bytes")
        sync_data(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)
