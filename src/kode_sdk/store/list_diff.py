"""The snapshots and list diff behind incremental ``save_messages`` /
``save_tool_call_records``: compare a list with the one saved last and write
only the changed positions."""

from __future__ import annotations

import itertools
import math
import operator
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from datetime import time as dt_time
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel

from ..types import (
    Message,
    ToolCallRecord,
)

#
# An incremental save compares the list being saved with *snapshots* of the
# list saved last and writes only the positions that differ.
#
# A key (message_keys, tool_call_keys) is an object's state as it holds it,
# read without copying: plain dicts, lists and tuples, so a comparison runs in
# C, with no pydantic ``__eq__`` and no Python call per position. A snapshot
# (message_snapshot, tool_call_snapshot) compares equal to the key of an
# unchanged object but is independent of it: containers are copied, immutable
# leaves shared (share_copy). A caller mutating a saved object in place
# therefore still differs from its snapshot, while an unchanged string compares
# by identity, without reading its bytes: comparing a 600-message history reads
# pointers, not its 800 KB of text.
#
# What cannot be avoided: the caller hands over the whole list, and any of its
# objects may have been mutated in place, so every save still reads every
# position once (O(history), in C). append_messages is the O(1) way to grow.
#
# In a backend (``cached`` from a SavedListCache, version-checked in the write
# transaction; on a miss, snapshots of the stored rows):
#
#     changed = changed_positions(message_keys(messages), cached)
#     ... write messages[i] for i in changed, delete positions >= len(messages) ...
#     cache.put(agent_id, version, updated_snapshots(cached, messages, changed, message_snapshot))

T = TypeVar("T")

_IMMUTABLE_LEAVES = (str, int, float, bool, bytes, date, dt_time, timedelta, Decimal, UUID, Enum)
# The last positions, those an agent loop edits (a tool call moving from
# executing to completed, the messages of the current turn), are compared one
# by one, so editing them keeps the one-comparison fast path for the rest.
_TAIL = 4
_MODEL_PARTS = operator.attrgetter("__dict__", "__pydantic_extra__")
_RECORD_PARTS = operator.attrgetter(
    "__dict__", "__pydantic_extra__", "approval.__dict__", "approval.__pydantic_extra__", "audit_trail"
)


class ExactNumber:
    """A number in a diff snapshot that equals only a number of the same JSON kind.

    Python says ``0 == False == 0.0`` and ``1 == True == 1.0``; JSON tells
    ``0``, ``false`` and ``0.0`` apart. An incremental save comparing the new
    list with a snapshot by plain ``==`` would take such a change for "unchanged"
    and never write it. Snapshots hold numbers wrapped in this class, so a
    comparison in C (``new == snapshot``) falls back to :meth:`__eq__` for them
    and stays exact; strings and ``None`` stay shared, compared as before.

    >>> [0, 1.0] == [ExactNumber(0), ExactNumber(1.0)], [False, 1] == [ExactNumber(0), ExactNumber(1.0)]
    (True, False)
    """

    __slots__ = ("value",)

    def __init__(self, value: bool | int | float) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if type(other) is ExactNumber:
            other = other.value
        value = self.value
        if type(other) is not type(value) or other != value:
            return False
        return type(value) is not float or math.copysign(1.0, value) == math.copysign(1.0, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ExactNumber({self.value!r})"


class _NeverEqual:
    """Stands in for a value that cannot be snapshotted (an object of unknown
    type, maybe mutable): compares unequal to everything, so its position is
    always rewritten."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]


def share_copy(value: Any) -> Any:
    """A copy of ``value`` that no later mutation of ``value`` can change,
    sharing what cannot change: dicts, lists and tuples are copied (a dict or
    list subclass becomes a plain one), immutable leaves (``str``, numbers,
    ``datetime``, enums, ...) are the same objects. A value of any other type
    becomes a placeholder equal to nothing.

    >>> content = [{"type": "text", "text": "hi"}]
    >>> copy = share_copy(content)
    >>> copy == content, copy[0] is content[0], copy[0]["text"] is content[0]["text"]
    (True, False, True)
    """
    kind = type(value)
    # Exact types first: JSON is nearly all str, dict and list.
    if kind is str or value is None:
        return value
    if kind is int or kind is bool or kind is float:
        return ExactNumber(value)  # so 0 / False / 0.0 stay different (see ExactNumber)
    if kind is dict:
        return {key: share_copy(item) for key, item in value.items()}
    if kind is list:
        return [share_copy(item) for item in value]
    if kind is tuple:
        return tuple(share_copy(item) for item in value)
    if isinstance(value, _IMMUTABLE_LEAVES):
        return value
    if isinstance(value, dict):
        return {key: share_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [share_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(share_copy(item) for item in value)
    return _NeverEqual()


def message_keys(messages: Sequence[Message]) -> list[Any]:
    """The comparison keys of ``messages`` (no copy; built in C), for
    :func:`changed_positions`. Compare them, never keep them: they alias the
    messages' own dicts."""
    return list(map(_MODEL_PARTS, messages))


def message_snapshot(message: Message) -> Any:
    """An independent snapshot of ``message``, equal to its key while the
    message is unchanged (and to nothing once it is mutated in place)."""
    return share_copy(message.__dict__), share_copy(message.__pydantic_extra__)


_MESSAGE_FIELDS = frozenset(Message.model_fields)


def message_snapshot_from_wire(wire: dict[str, Any]) -> Any:
    """The snapshot of the message :func:`message_to_wire` gave ``wire`` (as read
    back from storage, e.g. to rebuild a cache after a miss). ``wire`` becomes
    part of the snapshot: pass one nobody else holds (freshly decoded)."""
    fields = {"role": wire["role"], "content": wire["content"], "metadata": wire.get("metadata")}
    extra = {key: value for key, value in wire.items() if key not in _MESSAGE_FIELDS}
    # Numbers must become ExactNumber like in any snapshot; containers are fresh already.
    return share_copy(fields), share_copy(extra)


def _loose_parts(value: Any) -> tuple[Any, Any]:
    # A model built with model_construct may hold plain dicts where models belong.
    return getattr(value, "__dict__", value), getattr(value, "__pydantic_extra__", None)


def _tool_call_key(record: ToolCallRecord) -> tuple[Any, ...]:
    try:
        fields, extra, approval, approval_extra, trail = _RECORD_PARTS(record)
        return fields, extra, approval, approval_extra, list(map(_MODEL_PARTS, trail))
    except AttributeError:
        return (
            record.__dict__,
            record.__pydantic_extra__,
            *_loose_parts(record.approval),
            [_loose_parts(entry) for entry in record.audit_trail],
        )


def tool_call_keys(records: Sequence[ToolCallRecord]) -> list[Any]:
    """The comparison keys of ``records`` (no copy), for :func:`changed_positions`:
    the record's fields, its approval's and each audit entry's, so an in-place
    change to any of them shows."""
    return list(map(_tool_call_key, records))


def tool_call_snapshot(record: ToolCallRecord) -> Any:
    """An independent snapshot of ``record``, equal to its key while the record
    is unchanged. ``snapshot[0]`` is the record's field dict (``snapshot[0]["id"]``
    is its id)."""
    fields, extra, approval, approval_extra, trail = _tool_call_key(record)
    # The approval and the audit entries stay shared in the field dict (then
    # they compare by identity): their own state is snapshotted beside it.
    shared: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "approval" and isinstance(value, BaseModel):
            shared[name] = value
        elif name == "audit_trail" and type(value) is list:
            shared[name] = list(value)
        else:
            shared[name] = _field_copy(name, value, _RECORD_JSON_FIELDS)
    approval_copy = (
        {name: _field_copy(name, value, _APPROVAL_JSON_FIELDS) for name, value in approval.items()}
        if type(approval) is dict
        else share_copy(approval)
    )
    trail_copy = [
        ({n: _field_copy(n, v, frozenset()) for n, v in entry.items()}, share_copy(entry_extra))
        if type(entry) is dict
        else share_copy((entry, entry_extra))
        for entry, entry_extra in trail
    ]
    return shared, share_copy(extra), approval_copy, share_copy(approval_extra), trail_copy


# Fields holding free JSON, where a number may change kind (1 -> true -> 1.0)
# between saves; every other field of these models is typed, so pydantic fixed
# its kind and its scalar can be shared as it is, compared in C, not through
# ExactNumber (a third of a 200-record diff otherwise).
_RECORD_JSON_FIELDS = frozenset({"input", "result"})
_APPROVAL_JSON_FIELDS = frozenset({"meta"})


def _field_copy(name: str, value: Any, json_fields: frozenset[str]) -> Any:
    if name in json_fields:
        return share_copy(value)
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    return share_copy(value)


def changed_positions(keys: list[Any], snapshots: list[Any]) -> list[int]:
    """Ascending positions of ``keys`` to write: those that differ from
    ``snapshots`` (the list saved last) and those beyond its end. Positions of
    ``snapshots`` at or beyond ``len(keys)`` are the caller's to delete.

    The common case, an unchanged head, is one list comparison in C.

    >>> changed_positions([1, 2, 3, 4, 5, 6, 7], [1, 2, 9, 4, 5, 6])
    [2, 6]
    """
    shared = min(len(keys), len(snapshots))
    head = max(0, shared - _TAIL)
    # Snapshots on the left: their placeholders for unknown objects then decide
    # (equal to nothing), not the ``__eq__`` of what the caller holds.
    start = head if snapshots[:head] == keys[:head] else 0
    differs = map(operator.ne, snapshots[start:shared], keys[start:shared])
    changed = list(itertools.compress(range(start, shared), differs))
    changed.extend(range(shared, len(keys)))
    return changed


def updated_snapshots(
    snapshots: list[Any], items: Sequence[T], changed: Iterable[int], snapshot: Callable[[T], Any]
) -> list[Any]:
    """The snapshots after saving ``items``: a new list, ``snapshots`` cut to
    ``len(items)`` with each ``changed`` position (from :func:`changed_positions`)
    snapshotted afresh."""
    out = snapshots[: len(items)]
    for index in changed:
        fresh = snapshot(items[index])
        if index < len(out):
            out[index] = fresh
        else:
            out.append(fresh)
    return out


class SavedListCache:
    """Per-agent copies of the lists last saved, so a save can be diffed
    without reading the database. Bounded (LRU over agents).

    Entries carry the ``version`` the store had after the save; a backend
    compares it with the version in the database inside its write transaction,
    so a save by another process or store instance is never missed.
    """

    def __init__(self, max_agents: int = 512) -> None:
        self._max = max_agents
        self._entries: OrderedDict[str, tuple[int, list[Any]]] = OrderedDict()

    def get(self, agent_id: str, version: int) -> list[Any] | None:
        """The cached list for ``agent_id`` if it is at ``version``, else None."""
        entry = self._entries.get(agent_id)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(agent_id)
        return entry[1]

    def latest(self, agent_id: str) -> tuple[int, list[Any]] | None:
        """``(version, items)`` cached for ``agent_id``, whatever the version
        (for an optimistic write that checks the version in its own SQL)."""
        entry = self._entries.get(agent_id)
        if entry is not None:
            self._entries.move_to_end(agent_id)
        return entry

    def put(self, agent_id: str, version: int, items: list[Any]) -> None:
        """Remember ``items`` as the state of ``agent_id`` at ``version``."""
        self._entries[agent_id] = (version, items)
        self._entries.move_to_end(agent_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, agent_id: str) -> None:
        """Forget ``agent_id`` (after a delete, or a failed write)."""
        self._entries.pop(agent_id, None)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
