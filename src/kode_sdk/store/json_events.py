"""The event logs of :class:`~kode_sdk.store.json_store.JSONStore`: one
append-only ``events/<channel>.log`` per channel (one Timeline a line, each
append one ``write`` and ``fsync``; inside ``store.transaction`` the same
lines are a journaled append instead), and the per-agent index of the seqs
they hold (refreshed from the files, so other writers' appends are seen).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import jsoncodec
from ..errors import StoreCorruptionError
from ..types import CHANNELS
from .json_files import DIR_MODE, FILE_MODE, cut_torn_tail, fsync_dir, sync_data
from .json_layout import event_path


@dataclass(slots=True)
class ChannelLog:
    """What is known of one channel's log: bytes of complete lines, and each
    line's seq and offset in file order."""

    size: int = 0
    seqs: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    ordered: bool = True


@dataclass(slots=True)
class EventIndex:
    """Every seq stored for one agent (per incarnation of its directory)."""

    token: bytes
    logs: dict[str, ChannelLog] = field(default_factory=lambda: {ch: ChannelLog() for ch in CHANNELS})
    seen: set[int] = field(default_factory=set)

    def refresh(self, agent_dir: Path, *, repair: bool) -> bool:
        """Read what other writers appended since the last look. False when a
        log shrank (the index must be rebuilt). With ``repair`` (exclusive lock
        held), a torn last line is moved aside so the next append starts clean."""
        for channel, log in self.logs.items():
            path = event_path(agent_dir, channel)
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
                seq = event_seq(line, path, position)
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


def event_seq(line: bytes, path: Path, offset: int) -> int:
    try:
        seq = jsoncodec.decode(line)["bookmark"]["seq"]
    except (ValueError, KeyError, TypeError):
        seq = None
    if type(seq) is not int:
        raise StoreCorruptionError(f"{path}: the line at byte {offset} is not a stored event")
    return seq


def append_line(path: Path, line: bytes) -> None:
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
