"""Rows into results: the read path's conversion, shared by every backend.

What a store reads back it wrote itself, from records validated on the way
in, so reading validates nothing again: the decoded wire dicts become models
through :func:`construct` (pydantic's ``model_construct`` without its
per-field Python loop), enums through their value map, timestamps through one
``timedelta`` addition (:func:`~kode_sdk.types.ms_to_datetime`, inlined), and
the shapes this library writes read by key, with no pass over the dict.
Measured on W3 (10 bash_run calls a query): ``ToolCallRecord.model_validate_json``
plus the validating ``StoredToolCall`` took 22-60 µs a record (the machine is
shared), most of it Python validators run per timestamp, enum and JSON value;
decoding and building here takes ~14 µs.

A wire dict missing a field (written by a version with fewer fields) is not
guessed at: :func:`tool_call_record_from_wire` then validates it, which fills
the defaults exactly as a save would have.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from ..types import (
    BreakpointState,
    Message,
    SessionInfo,
    StoredMessage,
    StoredToolCall,
    ToolCallApproval,
    ToolCallAuditEntry,
    ToolCallRecord,
    ToolCallState,
)

__all__ = [
    "construct",
    "message_from_wire",
    "session_info",
    "session_info_from_wire",
    "stored_message",
    "stored_tool_call",
    "tool_call_record_from_wire",
]

M = TypeVar("M", bound=BaseModel)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ``timedelta(0, 0, 0, ms)`` below is ``timedelta(milliseconds=ms)``: the
# positional form skips keyword parsing (0.43 against 0.69 µs a call).

_setattr = object.__setattr__
_new = object.__new__
# BaseModel's slots, set through their descriptors (no attribute lookup by name).
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def construct(
    cls: type[M], fields: dict[str, Any], extra: dict[str, Any] | None = None, fields_set: set[str] | None = None
) -> M:
    """A ``cls`` holding ``fields`` (every field, by name) as they are: what
    ``model_construct`` builds, minus its per-field defaults and alias lookups.
    ``extra`` holds the unknown keys of a model that keeps them; ``fields_set``
    the fields given explicitly (default: all)."""
    model: M = _new(cls)
    _setattr(model, "__dict__", fields)
    _set_fields_set(model, set(fields) if fields_set is None else fields_set)
    _set_extra(model, extra)
    _set_private(model, None)
    return model


def message_from_wire(wire: dict[str, Any]) -> Message:
    """Rebuild a :class:`Message` from JSON this library wrote (no
    re-validation): what ``Message.model_construct(**wire)`` builds, ~4x faster
    (W4 reads 2,400 messages back)."""
    fields = {"role": wire["role"], "content": wire["content"], "metadata": wire.get("metadata")}
    size = len(wire)
    if size == 2:
        return construct(Message, fields, {}, {"role", "content"})
    if size == 3 and "metadata" in wire:
        return construct(Message, fields, {}, {"role", "content", "metadata"})
    return Message.model_construct(**wire)  # unknown keys: pydantic sorts them out


def _enum(enum: type[Any], value: Any) -> Any:
    member = enum._value2member_map_.get(value)
    return member if member is not None else enum(value)


def session_info(
    agent_id: str,
    created_at: int,
    updated_at: int,
    message_count: int,
    template_id: str,
    last_sfp_index: int,
    breakpoint: str | None,
    metadata: dict[str, Any] | None,
) -> SessionInfo:
    """A :class:`SessionInfo` from stored columns (times in epoch ms)."""
    return construct(
        SessionInfo,
        {
            "agent_id": agent_id,
            "template_id": template_id,
            "created_at": _EPOCH + timedelta(0, 0, 0, created_at),
            "updated_at": _EPOCH + timedelta(0, 0, 0, updated_at),
            "message_count": message_count,
            "last_sfp_index": last_sfp_index,
            "breakpoint": None if breakpoint is None else _enum(BreakpointState, breakpoint),
            "metadata": metadata if metadata is not None else {},
        },
    )


def session_info_from_wire(
    agent_id: str, created_at: int, updated_at: int, message_count: int, info: dict[str, Any]
) -> SessionInfo:
    """A :class:`SessionInfo` from stored columns and the agent's info wire dict."""
    return session_info(
        agent_id,
        created_at,
        updated_at,
        message_count,
        info["templateId"],
        info.get("lastSfpIndex", -1),
        info.get("breakpoint"),
        info.get("metadata"),
    )


def stored_message(agent_id: str, seq: int, role: str, created_at: int, wire: dict[str, Any]) -> StoredMessage:
    """A :class:`StoredMessage` from stored columns and the message's wire dict."""
    return construct(
        StoredMessage,
        {
            "agent_id": agent_id,
            "seq": seq,
            "role": role,
            "content": wire["content"],
            "created_at": _EPOCH + timedelta(0, 0, 0, created_at),
            "metadata": wire.get("metadata"),
        },
    )


def _names(model: type[BaseModel]) -> dict[str, str]:
    """Wire key (the camelCase alias) → field name."""
    return {(field.alias or name): name for name, field in model.model_fields.items()}


_RECORD_NAMES = _names(ToolCallRecord)
_APPROVAL_NAMES = _names(ToolCallApproval)
_AUDIT_NAMES = _names(ToolCallAuditEntry)
_RECORD_TIMES = ("started_at", "completed_at", "created_at", "updated_at")


def _partition(
    wire: dict[str, Any], names: dict[str, str], fields: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``wire`` as (``fields`` plus the fields found, by name; extras)."""
    extra: dict[str, Any] = {}
    for key, value in wire.items():
        name = names.get(key)
        if name is None:
            extra[key] = value
        else:
            fields[name] = value
    return fields, extra


def _split(wire: dict[str, Any], names: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``wire`` as (fields by name, extras); None unless every field is there."""
    fields, extra = _partition(wire, names, {})
    return (fields, extra) if len(fields) == len(names) else None


#: The wire keys of an approval as this library writes it (all of them,
#: camelCase); checked against the model below so a new field cannot be missed.
_APPROVAL_WIRE = ("required", "decision", "decidedBy", "decidedAt", "note", "meta")
assert set(_APPROVAL_NAMES) == set(_APPROVAL_WIRE), "results.py: ToolCallApproval's fields changed"


def _approval(wire: Any) -> ToolCallApproval | None:
    if type(wire) is not dict:
        return None
    if len(wire) == len(_APPROVAL_WIRE):  # the shape this library writes: no loop
        try:
            decided_at = wire["decidedAt"]
            fields = {
                "required": wire["required"],
                "decision": wire["decision"],
                "decided_by": wire["decidedBy"],
                "decided_at": None if decided_at is None else _EPOCH + timedelta(0, 0, 0, decided_at),
                "note": wire["note"],
                "meta": wire["meta"],
            }
        except KeyError:
            pass
        else:
            return construct(ToolCallApproval, fields, {})
    parts = _split(wire, _APPROVAL_NAMES)
    if parts is None:
        return None
    fields, extra = parts
    decided_at = fields["decided_at"]
    if decided_at is not None:
        fields["decided_at"] = _EPOCH + timedelta(0, 0, 0, decided_at)
    return construct(ToolCallApproval, fields, extra)


def _audit_entry(wire: Any) -> ToolCallAuditEntry | None:
    if type(wire) is not dict:
        return None
    if len(wire) == 3 and "note" in wire:  # the shape this library writes: no loop
        try:
            fields = {
                "state": _enum(ToolCallState, wire["state"]),
                "timestamp": wire["timestamp"],
                "note": wire["note"],
            }
        except KeyError:
            return None
        return construct(ToolCallAuditEntry, fields, {})
    fields, extra = _partition(wire, _AUDIT_NAMES, {"note": None})
    if "state" not in fields or "timestamp" not in fields:
        return None
    fields["state"] = _enum(ToolCallState, fields["state"])
    return construct(ToolCallAuditEntry, fields, extra)


def _record_fields(wire: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A record's fields by name (models, enums and datetimes built) and its
    extras; None for a shape this library does not write (validate that)."""
    parts = _split(wire, _RECORD_NAMES)
    if parts is None:
        return None
    fields, extra = parts
    approval = _approval(fields["approval"])
    trail = fields["audit_trail"]
    if approval is None or type(trail) is not list:
        return None
    entries = []
    for item in trail:
        entry = _audit_entry(item)
        if entry is None:
            return None
        entries.append(entry)
    fields["state"] = _enum(ToolCallState, fields["state"])
    fields["approval"] = approval
    fields["audit_trail"] = entries
    for name in _RECORD_TIMES:
        value = fields[name]
        if value is not None:
            fields[name] = _EPOCH + timedelta(0, 0, 0, value)
    duration = fields["duration_ms"]
    if duration is not None and type(duration) is not float:
        fields["duration_ms"] = float(duration)
    return fields, extra


def tool_call_record_from_wire(wire: dict[str, Any]) -> ToolCallRecord:
    """Rebuild a :class:`ToolCallRecord` from the wire dict a store wrote
    (no re-validation; equal to ``ToolCallRecord.model_validate(wire)``)."""
    parts = _record_fields(wire)
    if parts is None:
        return ToolCallRecord.model_validate(wire)  # an older or partial shape: validation fills it in
    return construct(ToolCallRecord, *parts)


#: The wire keys of a tool-call record as this library writes it; checked
#: against the model so a new field cannot be missed.
_RECORD_WIRE = frozenset(_RECORD_NAMES)
assert len(_RECORD_WIRE) == 14, "results.py: ToolCallRecord's fields changed; update stored_tool_call"


def stored_tool_call(agent_id: str, wire: dict[str, Any]) -> StoredToolCall:
    """A :class:`StoredToolCall` from the record's wire dict.

    The shape this library writes (every field, no extras) is read by key,
    with no pass over the dict and no :class:`ToolCallRecord` in between:
    W3's tool-call query builds ten of these per call.
    """
    if len(wire) == len(_RECORD_WIRE):
        try:
            approval = _approval(wire["approval"])
            trail = wire["auditTrail"]
            entries = [_audit_entry(item) for item in trail] if type(trail) is list else None
            if approval is not None and entries is not None and None not in entries:
                duration = wire["durationMs"]
                return construct(
                    StoredToolCall,
                    {
                        "agent_id": agent_id,
                        "tool_call_id": wire["id"],
                        "tool_name": wire["name"],
                        "input": wire["input"],
                        "output": wire["result"],
                        "is_error": wire["isError"],
                        "approval": approval,
                        "state": _enum(ToolCallState, wire["state"]),
                        "error": wire["error"],
                        "duration_ms": duration if duration is None or type(duration) is float else float(duration),
                        "created_at": _EPOCH + timedelta(0, 0, 0, wire["createdAt"]),
                        "updated_at": _EPOCH + timedelta(0, 0, 0, wire["updatedAt"]),
                        "audit_trail": entries,
                    },
                )
        except KeyError:
            pass  # another shape: the general path below
    parts = _record_fields(wire)
    record = ToolCallRecord.model_validate(wire).__dict__ if parts is None else parts[0]
    return construct(
        StoredToolCall,
        {
            "agent_id": agent_id,
            "tool_call_id": record["id"],
            "tool_name": record["name"],
            "input": record["input"],
            "output": record["result"],
            "is_error": record["is_error"],
            "approval": record["approval"],
            "state": record["state"],
            "error": record["error"],
            "duration_ms": record["duration_ms"],
            "created_at": record["created_at"],
            "updated_at": record["updated_at"],
            "audit_trail": record["audit_trail"],
        },
    )
