"""Where :class:`~kode_sdk.store.json_store.JSONStore` keeps each record kind
under an agent's directory, and how its files are encoded: the list-file
format (header line with a generation, one item a line), record files, the
``meta.json`` wrapper of the info, and the one-file-per-record directories of
the append-only kinds.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from .. import jsoncodec
from ..errors import InvalidAgentIdError, RecordValidationError, StoreCorruptionError
from ..types import Message, Record
from .agent_ids import validate_agent_id
from .json_files import encode_name, read_file
from .records import RECORD_KINDS, RecordKind, message_to_wire, record_json

M = TypeVar("M", bound=BaseModel)

META = "meta.json"
MESSAGES = "runtime/messages.jsonl"
TOOL_CALLS = "runtime/tool-calls.jsonl"
MEDIA_CACHE = "runtime/media-cache.jsonl"
TODOS = "runtime/todos.json"
SNAPSHOTS = "snapshots"
EVENTS = "events"

#: Where each record kind (by its name in store/records.py) lives under an
#: agent's directory: a file, or a directory of one file per record.
KIND_FILES: dict[str, str] = {
    "info": META,
    "message": MESSAGES,
    "tool_call": TOOL_CALLS,
    "todos": TODOS,
    "event": EVENTS,
    "history_window": "history/windows",
    "compression_record": "history/compressions",
    "recovered_file": "history/recovered",
    "media_cache": MEDIA_CACHE,
    "snapshot": SNAPSHOTS,
}
#: The list files (header line, one item a line): the kinds of shape ``list``.
LIST_FILES = tuple(KIND_FILES[kind.name] for kind in RECORD_KINDS if kind.shape == "list")

LIST_HEADER = re.compile(rb'\{"kode":"list","v":1,"gen":"([0-9a-f]{32})"\}\n')
MESSAGE_LINE = re.compile(rb'\{"seq":(\d+),"createdAt":(-?\d+),"message":')
ROLE_PREFIX = re.compile(rb'\{"role":"(user|assistant|system)"')


def now_ms() -> int:
    """Now, in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def event_path(agent_dir: Path, channel: str) -> Path:
    """The log file of one event channel."""
    return agent_dir / EVENTS / f"{channel}.log"


# --------------------------------------------------------------------------- list files


@dataclass(frozen=True, slots=True)
class ListState:
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
        return list_version(self.gen, self.size)


def list_version(gen: str, size: int) -> int:
    """The cache version of a list file: generation and size in one int."""
    return (int(gen, 16) << 64) | size


def digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


def list_header(gen: str) -> bytes:
    return b'{"kode":"list","v":1,"gen":"%s"}\n' % gen.encode("ascii")


def list_line(rel: str, seq: int, payload: bytes, created: int) -> bytes:
    if rel == MESSAGES:
        return b'{"seq":%d,"createdAt":%d,"message":%s}\n' % (seq, created, payload)
    return payload + b"\n"


def parse_list(path: Path, rel: str, data: bytes) -> ListState:
    header = LIST_HEADER.match(data)
    if header is None:
        raise StoreCorruptionError(f"{path}: not a kode list file (missing or damaged header line)")
    body = data[header.end() :]
    if body and not body.endswith(b"\n"):
        raise StoreCorruptionError(f"{path}: the last line is incomplete")
    items: list[tuple[bytes, int]] = []
    for index, line in enumerate(body.split(b"\n")[:-1] if body else ()):
        if rel == MESSAGES:
            match = MESSAGE_LINE.match(line)
            if match is None or int(match[1]) != index or not line.endswith(b"}"):
                raise StoreCorruptionError(f"{path}: line {index + 2} is not a stored message")
            items.append((line[match.end() : -1], int(match[2])))
        else:
            items.append((line, 0))
    return ListState(header[1].decode("ascii"), len(data), items)


def decode(payload: bytes, where: Path) -> Any:
    try:
        return jsoncodec.decode(payload)
    except ValueError as exc:
        raise StoreCorruptionError(f"{where}: damaged JSON ({exc})") from None


def stored_record(model: type[M], wire: Any, where: Path) -> M:
    try:
        return model.model_validate(wire)
    except RecordValidationError as exc:
        raise StoreCorruptionError(f"{where}: stored {model.__name__} is invalid: {exc}") from None


def read_list(agent_dir: Path, rel: str) -> list[tuple[bytes, int]]:
    path = agent_dir / rel
    data = read_file(path)
    return [] if data is None else parse_list(path, rel, data).items


# --------------------------------------------------------------------------- record files


def read_meta(agent_dir: Path) -> dict[str, Any] | None:
    path = agent_dir / META
    return parse_meta(path, read_file(path))


def parse_meta(path: Path, data: bytes | None) -> dict[str, Any] | None:
    """The document of a ``meta.json`` holding ``data`` (None: no file)."""
    if data is None:
        return None
    doc = decode(data, path)
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


def encode_messages(items: list[Message]) -> list[bytes]:
    return [jsoncodec.encode(message_to_wire(m), f"messages[{i}]") for i, m in enumerate(items)]


def encode_records(items: Sequence[Record], field_name: str) -> list[bytes]:
    return [record_json(item, f"{field_name}[{i}]") for i, item in enumerate(items)]


def load_file(path: Path, model: type[M]) -> M | None:
    data = read_file(path)
    return None if data is None else stored_record(model, decode(data, path), path)


def load_dir(directory: Path, model: type[M]) -> list[M]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if name.endswith(".json") and not name.startswith("."):
            record = load_file(directory / name, model)
            if record is not None:
                out.append(record)
    return out


#: Separates an appended record's position from its key in its file name
#: (``000000000007.w1.json``). :func:`encode_name` never writes ``.``, so a
#: name with no dot before ``.json`` is a file of the earlier layout
#: (``<key>.json``).
_ORDINAL_SEP = "."


def _ordinal(name: str) -> int:
    """The position written in an appended record's file name (0: none)."""
    head, sep, _ = name.removesuffix(".json").partition(_ORDINAL_SEP)
    return int(head) if sep and head.isdigit() else 0


def appended_file(kind: RecordKind, record: Record, names: Iterable[str]) -> str:
    """The file of a new record of an append-only kind, after those named in
    ``names`` (the kind's directory as the unit will leave it):
    ``<dir>/<position>.<key>.json``, the position one past the largest there.

    Every save adds a file, so the same id saved twice is kept twice and the
    kind loads in save order, as on the SQL backends.
    """
    assert kind.key is not None
    position = max(map(_ordinal, names), default=0) + 1
    return f"{KIND_FILES[kind.name]}/{position:012d}{_ORDINAL_SEP}{encode_name(str(getattr(record, kind.key)))}.json"


def appended_names(agent_dir: Path, kind: RecordKind) -> list[str]:
    """The file names in ``kind``'s directory (none yet: ``[]``)."""
    try:
        return os.listdir(agent_dir / KIND_FILES[kind.name])
    except FileNotFoundError:
        return []


def load_appended(agent_dir: Path, kind: RecordKind, model: type[M]) -> list[M]:
    """The records of an append-only kind in save order.

    Files of the earlier layout (``<key>.json``, one per key, written before
    positions were kept) come first, oldest ``timestamp`` first as that layout
    loaded them, then every positioned file by its position.
    """
    key = kind.key
    assert key is not None
    directory = agent_dir / KIND_FILES[kind.name]
    earlier: list[M] = []
    positioned: list[tuple[int, M]] = []
    for name in appended_names(agent_dir, kind):
        if not name.endswith(".json") or name.startswith("."):
            continue
        record = load_file(directory / name, model)
        if record is None:
            continue
        position = _ordinal(name)
        if position:
            positioned.append((position, record))
        else:
            earlier.append(record)
    earlier.sort(key=attrgetter("timestamp", key))
    positioned.sort(key=itemgetter(0))
    return earlier + [record for _, record in positioned]


def is_agent_id(name: str) -> bool:
    try:
        validate_agent_id(name)
    except InvalidAgentIdError:
        return False
    return True
