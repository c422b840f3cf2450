"""Crash-safe file primitives behind :class:`~kode_sdk.store.json_store.JSONStore`.

Three pieces, each POSIX-only (``fcntl.flock``, ``fsync`` of directories):

* **Agent locks** (:func:`lock_agent`): ``<agent>/.lock`` is ``flock``-ed,
  shared by readers and exclusively by writers, so store instances and
  processes on one directory serialize their calls per agent. After the lock is
  taken the path is checked to still name the locked inode: a waiter that
  wakes up on the lock file of a directory deleted meanwhile starts over.
  The lock file holds a random *incarnation token* written when the directory
  was created, so caches can tell a deleted-and-recreated agent from the old one.
* **The journal** (:func:`commit`): every write call is one transaction of
  :class:`Replace` and :class:`Append` operations. Their bytes are first
  written to ``<agent>/journal.wal`` with a SHA-256 trailer and ``fsync``-ed
  (the write-ahead copy); then each operation is applied (a replace writes a
  temporary file, ``fsync``\\ s it and ``os.replace``\\ s it over the target; an
  append truncates the target to its recorded length and writes there) and the
  touched directories are ``fsync``-ed; last, the journal is emptied. Both
  operations are idempotent, so replaying a journal twice is harmless.
* **Recovery** (:func:`recover_agent`): a non-empty journal whose trailer
  checks out is rolled forward; a truncated or corrupt one (the crash came
  while it was being written, so nothing of it was applied) is renamed to
  ``journal.wal.corrupt-<ms>`` with a logged warning and the files stay as
  they were. Stray temporary files are removed.

The journal file of an agent is created once, with the directory, and reused
(emptied, not unlinked), so a commit costs no directory ``fsync`` for it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import jsoncodec
from ..errors import StoreCorruptionError

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "JOURNAL_NAME",
    "LOCK_NAME",
    "TMP_PREFIX",
    "TRASH_PREFIX",
    "Append",
    "Op",
    "Replace",
    "commit",
    "cut_torn_tail",
    "decode_journal",
    "encode_journal",
    "encode_name",
    "ensure_agent_dir",
    "fsync_dir",
    "journal_pending",
    "lock_agent",
    "read_file",
    "read_token",
    "recover_agent",
    "remove_tree",
    "set_aside",
    "sync_data",
    "write_journal",
]

logger = logging.getLogger("kode_sdk.store.json")

DIR_MODE = 0o700
FILE_MODE = 0o600
LOCK_NAME = ".lock"
JOURNAL_NAME = "journal.wal"
TMP_PREFIX = ".tmp."
#: Prefix of a deleted agent's directory until it is removed. ``~`` is not
#: allowed in agent ids, so no agent can be named like this.
TRASH_PREFIX = "~trash-"

_MAGIC = b"KODE-JOURNAL 1\n"
_DIGEST_HEX = 64
_OPEN_FLAGS = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)

# --------------------------------------------------------------------------- names

_SAFE_NAME_CHARS = re.compile(r"[A-Za-z0-9_-]")
_MAX_NAME = 180


def encode_name(text: str) -> str:
    """A file name standing for ``text`` (an arbitrary id), reversible in the
    usual case and never ``.``, ``..``, hidden, or holding a separator.

    Characters outside ``[A-Za-z0-9_-]`` become ``%XX`` (UTF-8 bytes, so ``.``
    too). A name longer than 180 characters keeps a readable head and ends in
    ``~`` plus a SHA-256 of ``text``: distinct ids still get distinct names,
    and file names stay under every file system's limit.

    >>> encode_name("snap 1/../x")
    'snap%201%2F%2E%2E%2Fx'
    """
    out = []
    for ch in text:
        if _SAFE_NAME_CHARS.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
    name = "".join(out)
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        name = f"{name[:100]}~{digest}"
    return name


# --------------------------------------------------------------------------- small file helpers


def sync_data(fd: int) -> None:
    """Make a file's data durable (``fdatasync`` where available: it also
    flushes the size, which is all the metadata a later read needs)."""
    _fdatasync(fd)


_fdatasync = getattr(os, "fdatasync", os.fsync)


def fsync_dir(path: Path) -> None:
    """``fsync`` a directory, making the names created or removed in it durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def read_file(path: Path) -> bytes | None:
    """The bytes of ``path``, or ``None`` when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        chunks = []
        while True:
            chunk = os.read(fd, max(size, 65536))
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def set_aside(path: Path, *, copy: bool = False) -> Path:
    """Rename (or, with ``copy``, hard-link) ``path`` to ``<path>.corrupt-<ms>``
    so a damaged file is kept for inspection but no longer read."""
    stamp = time.time_ns() // 1_000_000
    for attempt in range(100):
        target = path.with_name(f"{path.name}.corrupt-{stamp}" + (f"-{attempt}" if attempt else ""))
        try:
            os.link(path, target)
        except FileExistsError:
            continue
        if not copy:
            os.unlink(path)
        fsync_dir(path.parent)
        return target
    raise FileExistsError(errno.EEXIST, "no free name to set a corrupt file aside", str(path))


def cut_torn_tail(path: Path, good_size: int) -> None:
    """Cut a log back to ``good_size`` bytes (the end of its last complete
    line), keeping the cut bytes in ``<path>.torn-<ms>`` and logging a warning."""
    fd = os.open(path, os.O_RDWR | _OPEN_FLAGS)
    try:
        size = os.fstat(fd).st_size
        if size <= good_size:
            return
        torn = os.pread(fd, size - good_size, good_size)
        side = path.with_name(f"{path.name}.torn-{time.time_ns() // 1_000_000}-{secrets.token_hex(4)}")
        side_fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, FILE_MODE)
        try:
            _write_all(side_fd, torn, 0)
            sync_data(side_fd)
        finally:
            os.close(side_fd)
        os.ftruncate(fd, good_size)
        sync_data(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
    logger.warning(
        "%s: the last %d bytes were an incomplete line (a write interrupted by a crash); moved to %s",
        path,
        len(torn),
        side.name,
    )


def remove_tree(path: Path) -> None:
    """Remove a directory tree, ignoring entries that are already gone."""
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- agent directories and locks


def ensure_agent_dir(agent_dir: Path) -> None:
    """Create ``agent_dir`` with its lock file (holding a fresh incarnation
    token) and empty journal, and make them durable. Safe to race: another
    creator's files are kept."""
    created = False
    try:
        os.mkdir(agent_dir, DIR_MODE)
        created = True
    except FileExistsError:
        pass
    lock = agent_dir / LOCK_NAME
    if not lock.exists():
        tmp = agent_dir / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, FILE_MODE)
        try:
            _write_all(fd, secrets.token_hex(16).encode(), 0)
            sync_data(fd)
        finally:
            os.close(fd)
        try:
            # link() never replaces: if another creator won, its token stays.
            os.link(tmp, lock)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        fd = os.open(agent_dir / JOURNAL_NAME, os.O_WRONLY | os.O_CREAT | _OPEN_FLAGS, FILE_MODE)
        os.close(fd)
        fsync_dir(agent_dir)
    if created:
        fsync_dir(agent_dir.parent)


def lock_agent(agent_dir: Path, *, exclusive: bool, create: bool) -> int | None:
    """``flock`` the agent's lock file and return its descriptor (close it to
    unlock). ``None`` when the agent has no directory and ``create`` is false.

    Blocks until the lock is free; call it off the event loop.
    """
    path = agent_dir / LOCK_NAME
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
        except FileNotFoundError:
            if not create:
                return None
            with contextlib.suppress(FileNotFoundError):  # deleted while we created it: try again
                ensure_agent_dir(agent_dir)
            continue
        try:
            fcntl.flock(fd, mode)
            if os.path.samestat(os.stat(path), os.fstat(fd)):
                return fd
        except FileNotFoundError:
            pass  # the directory was deleted while we waited
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def read_token(lock_fd: int) -> bytes:
    """The incarnation token stored in a lock file."""
    return os.pread(lock_fd, 64, 0)


# --------------------------------------------------------------------------- journal


@dataclass(frozen=True, slots=True)
class Replace:
    """Replace the file at ``path`` (relative to the agent directory) with ``data``."""

    path: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Append:
    """Make the file at ``path`` hold its first ``offset`` bytes followed by ``data``."""

    path: str
    offset: int
    data: bytes


Op = Replace | Append

# Relative paths a journal may name: plain components, none hidden, no "..".
_REL_PATH = re.compile(r"[A-Za-z0-9_%~-][A-Za-z0-9._%~-]*(/[A-Za-z0-9_%~-][A-Za-z0-9._%~-]*)*")
_RESERVED = frozenset({LOCK_NAME, JOURNAL_NAME})


def _target(agent_dir: Path, rel: str) -> Path:
    if not _REL_PATH.fullmatch(rel) or rel in _RESERVED:
        raise StoreCorruptionError(f"{agent_dir}: journal names an invalid path {rel!r}")
    target = agent_dir / rel
    # Defence in depth: the pattern already excludes "..", but never let a
    # journal write outside its agent's directory.
    if os.path.commonpath([os.path.abspath(target), os.path.abspath(agent_dir)]) != os.path.abspath(agent_dir):
        raise StoreCorruptionError(f"{agent_dir}: journal path {rel!r} escapes the agent directory")
    return target


def encode_journal(ops: Sequence[Op]) -> bytes:
    """The journal bytes of a transaction: magic, a JSON header describing the
    operations, their data back to back, and a SHA-256 trailer."""
    described: list[dict[str, object]] = []
    for op in ops:
        if isinstance(op, Replace):
            described.append({"op": "replace", "path": op.path, "size": len(op.data)})
        else:
            described.append({"op": "append", "path": op.path, "offset": op.offset, "size": len(op.data)})
    body = b"".join([_MAGIC, jsoncodec.encode({"ops": described}), b"\n", *(op.data for op in ops)])
    return body + b"\n" + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n"


def decode_journal(blob: bytes) -> list[Op] | None:
    """The operations of a journal, or ``None`` when it is truncated or corrupt."""
    trailer = _DIGEST_HEX + 2
    if len(blob) < len(_MAGIC) + trailer or not blob.startswith(_MAGIC):
        return None
    body, tail = blob[:-trailer], blob[-trailer:]
    if tail[:1] != b"\n" or tail[-1:] != b"\n":
        return None
    if hashlib.sha256(body).hexdigest().encode("ascii") != tail[1:-1]:
        return None
    header_end = body.find(b"\n", len(_MAGIC))
    try:
        header = jsoncodec.decode(body[len(_MAGIC) : header_end])
        position = header_end + 1
        ops: list[Op] = []
        for item in header["ops"]:
            data = body[position : position + item["size"]]
            position += item["size"]
            if item["op"] == "replace":
                ops.append(Replace(item["path"], data))
            elif item["op"] == "append":
                ops.append(Append(item["path"], item["offset"], data))
            else:
                return None
    except (ValueError, KeyError, TypeError):
        return None
    return ops if position == len(body) else None


def write_journal(agent_dir: Path, ops: Sequence[Op]) -> int:
    """Write ``ops`` to the agent's journal durably and return its open
    descriptor (the caller applies the operations, then empties and closes it)."""
    path = agent_dir / JOURNAL_NAME
    created = False
    try:
        fd = os.open(path, os.O_RDWR | _OPEN_FLAGS)
    except FileNotFoundError:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _OPEN_FLAGS, FILE_MODE)
        created = True
    try:
        blob = encode_journal(ops)
        try:
            _write_all(fd, blob, 0)
            os.ftruncate(fd, len(blob))
            sync_data(fd)
            if created:
                fsync_dir(agent_dir)
        except BaseException:
            # Not durably written, so not committed: make sure it is never replayed.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            raise
    except BaseException:
        os.close(fd)
        raise
    return fd


def _ensure_parent(agent_dir: Path, parent: Path, to_sync: set[Path]) -> None:
    if parent == agent_dir or parent.is_dir():
        return
    _ensure_parent(agent_dir, parent.parent, to_sync)
    try:
        os.mkdir(parent, DIR_MODE)
    except FileExistsError:
        return
    to_sync.add(parent.parent)


def apply_ops(agent_dir: Path, ops: Sequence[Op]) -> None:
    """Apply journaled operations and ``fsync`` what they touched. Idempotent."""
    targets = [_target(agent_dir, op.path) for op in ops]
    for op, target in zip(ops, targets, strict=True):
        # Checked before anything is touched, so a bad journal changes nothing.
        if isinstance(op, Append) and op.offset > 0:
            try:
                size = os.stat(target).st_size
            except FileNotFoundError:
                size = 0
            if size < op.offset:
                raise StoreCorruptionError(
                    f"{target}: holds {size} bytes, fewer than the {op.offset} an append was planned on"
                )
    to_sync: set[Path] = set()
    for op, target in zip(ops, targets, strict=True):
        _ensure_parent(agent_dir, target.parent, to_sync)
        if isinstance(op, Replace):
            tmp = agent_dir / f"{TMP_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, FILE_MODE)
            try:
                _write_all(fd, op.data, 0)
                sync_data(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            to_sync.add(target.parent)
        else:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | _OPEN_FLAGS, FILE_MODE)
            try:
                size = os.fstat(fd).st_size
                if size == 0:
                    to_sync.add(target.parent)  # possibly just created
                if size > op.offset:
                    os.ftruncate(fd, op.offset)  # a replay: drop what the first attempt wrote
                _write_all(fd, op.data, op.offset)
                sync_data(fd)
            finally:
                os.close(fd)
    for directory in to_sync:
        fsync_dir(directory)


def commit(agent_dir: Path, ops: Sequence[Op]) -> None:
    """Apply ``ops`` as one crash-safe transaction (the caller holds the
    agent's exclusive lock). A crash before the journal is durable loses the
    whole transaction; after it, recovery completes the whole transaction.

    If applying fails after the journal is durable (a full disk, say), the
    error propagates and the journal stays: the next call on the agent, or the
    next ``open()``, completes the transaction.
    """
    if not ops:
        return
    fd = write_journal(agent_dir, ops)
    try:
        apply_ops(agent_dir, ops)
        # No fsync: if this is lost, a replay redoes the same idempotent
        # operations, and any later commit overwrites the journal durably first.
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def journal_pending(agent_dir: Path) -> bool:
    """True when the agent's journal holds a transaction not known to be applied."""
    try:
        return os.stat(agent_dir / JOURNAL_NAME).st_size > 0
    except FileNotFoundError:
        return False


def recover_agent(agent_dir: Path) -> str:
    """Finish or discard an interrupted transaction (the caller holds the
    agent's exclusive lock) and remove stray temporary files.

    Returns ``"clean"``, ``"rolled_forward"`` or ``"set_aside"``.
    """
    outcome = "clean"
    path = agent_dir / JOURNAL_NAME
    blob = read_file(path)
    if blob:
        ops = decode_journal(blob)
        if ops is not None:
            try:
                apply_ops(agent_dir, ops)
            except StoreCorruptionError:
                ops = None
        if ops is not None:
            fd = os.open(path, os.O_WRONLY | _OPEN_FLAGS)
            try:
                os.ftruncate(fd, 0)
                sync_data(fd)
            finally:
                os.close(fd)
            outcome = "rolled_forward"
            logger.info("%s: completed an interrupted write from its journal", agent_dir)
        else:
            aside = set_aside(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | _OPEN_FLAGS, FILE_MODE)
            os.close(fd)
            fsync_dir(agent_dir)
            outcome = "set_aside"
            logger.warning(
                "%s: the journal of an interrupted write is truncated or corrupt; nothing of it was applied, "
                "the files keep their previous content, and it was kept as %s",
                agent_dir,
                aside.name,
            )
    for name in os.listdir(agent_dir):
        if name.startswith(TMP_PREFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(agent_dir / name)
    return outcome
