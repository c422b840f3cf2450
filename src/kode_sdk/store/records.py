"""The record kinds a store keeps (:data:`RECORD_KINDS`, the one table that
delete, fork, consistency, prune, export and the copier walk), and records in:
dicts or models into validated records, and a message's wire form.

>>> [k.table for k in RECORD_KINDS if k.shape == "append"]
['history_windows', 'compression_records', 'recovered_files']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic_core import PydanticSerializationError

from .. import jsoncodec
from ..errors import (
    RecordValidationError,
)
from ..types import (
    AgentInfo,
    CompressionRecord,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    Record,
    RecoveredFile,
    Snapshot,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
)

__all__ = ["APPEND_KINDS", "DATA_TABLES", "RECORD_KINDS", "RecordKind", "RecordShape", "agent_info", "coerce_list",
           "kind_named", "message_to_wire", "record_json"]  # fmt: skip

#: How a kind is stored per agent. ``single``: one record, replaced on save;
#: ``list``: an ordered list, each save the whole list; ``append``: each save
#: adds one record at the end, loaded in save order; ``keyed``: records by
#: ``key`` (a save replaces the one with that key); ``log``: events by ``seq``.
RecordShape = Literal["single", "list", "append", "keyed", "log"]


@dataclass(frozen=True, slots=True)
class RecordKind:
    """One kind of record a store keeps for an agent.

    ``name`` is the kind in the export format (one JSONL line per record),
    ``table`` the SQL table or JSON file that holds it, ``key`` the field that
    identifies a record (``None`` when position or the agent alone does),
    ``save``/``load`` the Store methods that write and read it, ``argument``
    the name of the save method's record parameter (named in errors).
    """

    name: str
    model: type[Record]
    table: str
    shape: RecordShape
    key: str | None
    save: str
    load: str
    argument: str


#: Every kind, in the order an export lists an agent's records. ``info`` is
#: the agent's registry row; the others are the agent's data.
RECORD_KINDS: tuple[RecordKind, ...] = (
    RecordKind("info", AgentInfo, "agents", "single", None, "save_info", "load_info", "info"),
    RecordKind("message", Message, "messages", "list", None, "save_messages", "load_messages", "messages"),
    RecordKind("tool_call", ToolCallRecord, "tool_calls", "list", "id", "save_tool_call_records",
               "load_tool_call_records", "records"),
    RecordKind("todos", TodoSnapshot, "todos", "single", None, "save_todos", "load_todos", "snapshot"),
    RecordKind("event", Timeline, "events", "log", "seq", "append_events", "read_events", "timelines"),
    RecordKind("history_window", HistoryWindow, "history_windows", "append", "id", "save_history_window",
               "load_history_windows", "window"),
    RecordKind("compression_record", CompressionRecord, "compression_records", "append", "id",
               "save_compression_record", "load_compression_records", "record"),
    RecordKind("recovered_file", RecoveredFile, "recovered_files", "append", "path", "save_recovered_file",
               "load_recovered_files", "file"),
    RecordKind("media_cache", MediaCacheRecord, "media_cache", "list", "key", "save_media_cache",
               "load_media_cache", "records"),
    RecordKind("snapshot", Snapshot, "snapshots", "keyed", "id", "save_snapshot", "list_snapshots", "snapshot"),
)  # fmt: skip

#: The append-only kinds: one generic save and load per backend serves them.
APPEND_KINDS: tuple[RecordKind, ...] = tuple(k for k in RECORD_KINDS if k.shape == "append")

#: Every table (or file) holding an agent's data besides its registry row, in
#: the order of :data:`RECORD_KINDS`: what ``delete`` removes and a whole-store
#: scan reads.
DATA_TABLES: tuple[str, ...] = tuple(k.table for k in RECORD_KINDS if k.name != "info")


def kind_named(name: str) -> RecordKind:
    """The kind called ``name`` (its export name). Raises :class:`KeyError`."""
    for kind in RECORD_KINDS:
        if kind.name == name:
            return kind
    raise KeyError(name)


R = TypeVar("R", Message, ToolCallRecord, MediaCacheRecord)


def coerce_list(model: type[R], items: object, field_name: str) -> list[R]:
    """Validate a list argument item by item (models pass through untouched).

    Raises :class:`RecordValidationError` naming ``field_name[i]``.
    """
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        raise RecordValidationError(
            f"{field_name}: expected a list of {model.__name__}, got {type(items).__name__}", field=field_name
        )
    if type(items) is list and set(map(type, items)) <= {model}:
        return list(items)  # all validated already: no Python-level loop (hot path of save_*)
    out: list[R] = []
    for index, item in enumerate(items):
        out.append(item if type(item) is model else model.coerce(item, f"{field_name}[{index}]"))
    return out


def agent_info(agent_id: str, info: object) -> AgentInfo:
    """The ``info`` argument of ``save_info`` validated: an :class:`AgentInfo`
    whose ``agent_id`` is the agent's. Raises :class:`RecordValidationError`."""
    record = AgentInfo.coerce(info, "info")
    if record.agent_id != agent_id:
        raise RecordValidationError(
            f"info.agent_id: {record.agent_id!r} does not match the agent id {agent_id!r}", field="info.agent_id"
        )
    return record


def message_to_wire(message: Message) -> dict[str, Any]:
    """The KODE wire shape of a message, built directly (faster than model_dump)."""
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.metadata is not None:
        wire["metadata"] = message.metadata
    extra = message.__pydantic_extra__
    if extra:
        wire.update(extra)
    return wire


def record_json(record: Record, field: str) -> bytes:
    """A validated record's wire JSON: the bytes ``jsoncodec.encode(record.to_wire())``
    writes (big integers included), at about half the cost (pydantic
    serializes the model in one call, no dict in between).

    A record changed in place after validation so that it holds NaN or
    ±Infinity (validation refuses them) or an unpaired surrogate raises
    :class:`RecordValidationError` naming the place, as :func:`jsoncodec.encode`
    does: records serialize such floats as the strings ``"NaN"`` /
    ``"Infinity"``, and only output holding one of those is walked to tell a
    float from a genuine string.
    """
    try:
        out = record.model_dump_json(by_alias=True).encode("utf-8")
    except (PydanticSerializationError, UnicodeEncodeError) as exc:
        raise RecordValidationError(f"{field}: not encodable as JSON: {exc}", field=field) from None
    if b'"NaN"' in out or b'Infinity"' in out:
        jsoncodec.encode(record.to_wire(), field)  # raises, naming the place, for a float that is not finite
    return out
