"""Record builders and strict comparisons for the conformance suite.

The builders return plain dicts, mixing snake_case and camelCase keys on
purpose (every store must accept both). Timestamps are whole milliseconds, the
precision every backend keeps. The comparisons are stricter than ``==``:
``1 == 1.0 == True`` in Python, but a store that turns an int into a float or
a bool into an int has not returned what was saved.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from ..types import Record, ms_to_datetime

__all__ = [
    "BASE_MS",
    "BIG_INT",
    "NEGATIVE_BIG_INT",
    "assert_json_identical",
    "assert_records_equal",
    "assert_utc",
    "at",
    "compression_record",
    "conversation",
    "history_window",
    "info",
    "media_cache",
    "recovered_file",
    "snapshot",
    "timeline",
    "todos",
    "tool_call",
    "unique_prefix",
]

#: A fixed instant (2024-03-01T12:00:00Z) the builders count from.
BASE_MS = 1_709_294_400_000

#: Beyond 64 bits: orjson refuses these, many JSON layers turn them into floats.
BIG_INT = 2**70 + 7
NEGATIVE_BIG_INT = -(2**80) - 3


def at(offset_ms: int = 0) -> datetime:
    """``BASE_MS + offset_ms`` as an aware UTC datetime."""
    return ms_to_datetime(BASE_MS + offset_ms)


def unique_prefix(label: str = "c") -> str:
    """A fresh agent-id prefix (``label`` + 8 hex digits + ``-``), so tests on a
    shared database never see each other's agents."""
    return f"{label}{secrets.token_hex(4)}-"


# --------------------------------------------------------------------------- builders


def conversation(tag: str = "") -> list[dict[str, Any]]:
    """Four messages covering every block kind: text (with ``cache_control``),
    ``tool_use``, ``tool_result`` (camelCase keys), an unknown ``thinking``
    block, message metadata, and an extra message-level key."""
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": f"List the files{tag}", "cache_control": {"type": "ephemeral"}}],
            "metadata": {"source": "cli", "n": 1},
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": f"toolu_1{tag}", "name": "fs_glob", "input": {"pattern": "*.py", "n": 3}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "toolUseId": f"toolu_1{tag}", "content": "a.py\nb.py", "isError": False}
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "two files", "signature": "sig=="},
                {"type": "text", "text": "Two files: a.py and b.py."},
            ],
            "metadata": {"model": "m-1", "usage": {"input": 12, "output": 7, "ratio": 0.5, "cached": True}},
            "providerExtra": {"keep": ["me", None]},
        },
    ]


def tool_call(
    call_id: str,
    *,
    name: str = "bash_run",
    state: str = "completed",
    created_ms: int = 0,
    approval_required: bool = False,
    is_error: bool = False,
    result: Any = None,
) -> dict[str, Any]:
    """A full tool-call record (camelCase keys) created ``created_ms`` after
    :data:`BASE_MS`, with approval, timings and a three-entry audit trail."""
    created = BASE_MS + created_ms
    return {
        "id": call_id,
        "name": name,
        "input": {"cmd": f"echo {call_id}", "args": [1, 2.5, True, None]},
        "state": state,
        "approval": {
            "required": approval_required,
            "decision": "allow" if approval_required else None,
            "decidedBy": "reviewer" if approval_required else None,
            "decidedAt": created + 5 if approval_required else None,
            "note": "looks fine" if approval_required else None,
            "meta": {"ticket": 7} if approval_required else None,
        },
        "result": {"stdout": f"{call_id}\n", "code": 1 if is_error else 0} if result is None else result,
        "error": "exit status 1" if is_error else None,
        "isError": is_error,
        "startedAt": created + 10,
        "completedAt": created + 40,
        "durationMs": 30,
        "createdAt": created,
        "updatedAt": created + 40,
        "auditTrail": [
            {"state": "pending", "timestamp": created},
            {"state": "executing", "timestamp": created + 10, "note": "started"},
            {"state": state, "timestamp": created + 40},
        ],
    }


def info(
    agent_id: str,
    *,
    template_id: str = "assistant",
    created_ms: int = 0,
    metadata: Mapping[str, Any] | None = None,
    lineage: list[str] | None = None,
    message_count: int = 0,
) -> dict[str, Any]:
    """An :class:`~kode_sdk.types.AgentInfo` dict created ``created_ms`` after :data:`BASE_MS`."""
    return {
        "agentId": agent_id,
        "templateId": template_id,
        "createdAt": BASE_MS + created_ms,
        "lineage": list(lineage or []),
        "configVersion": "v2",
        "messageCount": message_count,
        "lastSfpIndex": 1,
        "lastBookmark": {"seq": 3, "timestamp": BASE_MS + created_ms + 3},
        "breakpoint": "READY",
        "metadata": dict(metadata or {"team": "core"}),
    }


def timeline(seq: int, channel: str = "progress", event_type: str = "text_chunk", **fields: Any) -> dict[str, Any]:
    """An event at ``seq`` on ``channel``; extra keyword arguments go into the event."""
    return {
        "cursor": seq,
        "bookmark": {"seq": seq, "timestamp": BASE_MS + seq},
        "event": {"channel": channel, "type": event_type, "step": seq, **fields},
    }


def todos(version: int = 1) -> dict[str, Any]:
    """A todo snapshot at ``version`` with items in each status."""
    return {
        "todos": [
            {"id": "t1", "title": "read the code", "status": "completed", "createdAt": BASE_MS, "updatedAt": BASE_MS},
            {
                "id": "t2",
                "title": f"write tests v{version}",
                "status": "in_progress",
                "assignee": "agent",
                "notes": "café ☕",
                "created_at": BASE_MS + 1,
                "updated_at": BASE_MS + 2,
            },
            {"id": "t3", "title": "ship", "status": "pending", "createdAt": BASE_MS + 3, "updatedAt": BASE_MS + 3},
        ],
        "version": version,
        "updatedAt": BASE_MS + version,
    }


def snapshot(snapshot_id: str, *, created_ms: int = 0, tag: str = "") -> dict[str, Any]:
    """A snapshot of :func:`conversation` created ``created_ms`` after :data:`BASE_MS`."""
    return {
        "id": snapshot_id,
        "messages": conversation(tag),
        "lastSfpIndex": 2,
        "lastBookmark": {"seq": 9, "timestamp": BASE_MS + 9},
        "createdAt": BASE_MS + created_ms,
        "metadata": {"label": f"before {snapshot_id}"},
    }


def history_window(window_id: str, *, offset_ms: int = 0) -> dict[str, Any]:
    """A history window holding two messages and one event."""
    return {
        "id": window_id,
        "messages": conversation(window_id)[:2],
        "events": [timeline(1, "monitor", "token_usage", tokens=42)],
        "stats": {"messageCount": 2, "tokenCount": 420, "eventCount": 1},
        "timestamp": BASE_MS + offset_ms,
    }


def compression_record(record_id: str, window_id: str = "w1", *, offset_ms: int = 0) -> dict[str, Any]:
    """A compression record of ``window_id``."""
    return {
        "id": record_id,
        "windowId": window_id,
        "config": {"model": "m-small", "prompt": "Summarise.", "threshold": 0.75},
        "summary": f"summary of {window_id}",
        "ratio": 0.25,
        "recoveredFiles": ["src/a.py", "src/b.py"],
        "timestamp": BASE_MS + offset_ms,
    }


def recovered_file(path: str, *, offset_ms: int = 0) -> dict[str, Any]:
    """A recovered file at ``path``."""
    return {
        "path": path,
        "content": f"# {path}\nprint('hi')\n",
        "mtime": BASE_MS - 1000 + offset_ms,
        "timestamp": BASE_MS + offset_ms,
    }


def media_cache(key: str, *, size: int = 1024) -> dict[str, Any]:
    """A media-cache record for ``key``."""
    return {
        "key": key,
        "provider": "anthropic",
        "mimeType": "image/png",
        "sizeBytes": size,
        "fileId": f"file_{key}",
        "fileUri": None,
        "createdAt": BASE_MS,
    }


# --------------------------------------------------------------------------- comparisons


def assert_json_identical(actual: Any, expected: Any, path: str = "$") -> None:
    """Assert ``actual`` equals ``expected`` *and* every value has the same
    JSON type (``True`` is not ``1``, ``1`` is not ``1.0``), dict keys and list
    order included. The failure names the first differing path."""
    if isinstance(expected, bool) or expected is None:
        assert actual is expected, f"{path}: expected {expected!r}, got {actual!r}"
    elif isinstance(expected, int | float | str):
        assert type(actual) is type(expected), (
            f"{path}: expected {type(expected).__name__} {expected!r}, got {type(actual).__name__} {actual!r}"
        )
        assert actual == expected, f"{path}: expected {expected!r}, got {actual!r}"
    elif isinstance(expected, Mapping):
        assert isinstance(actual, Mapping), f"{path}: expected an object, got {type(actual).__name__}"
        assert set(actual) == set(expected), (
            f"{path}: keys differ: missing {sorted(set(expected) - set(actual))}, "
            f"unexpected {sorted(set(actual) - set(expected))}"
        )
        for key, value in expected.items():
            assert_json_identical(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list | tuple):
        assert isinstance(actual, list | tuple), f"{path}: expected a list, got {type(actual).__name__}"
        assert len(actual) == len(expected), f"{path}: expected {len(expected)} items, got {len(actual)}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_json_identical(a, e, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: expected {expected!r}, got {actual!r}"


def assert_utc(value: Any, what: str = "timestamp") -> None:
    """Assert ``value`` is an aware UTC ``datetime``."""
    assert isinstance(value, datetime), f"{what}: expected a datetime, got {type(value).__name__} {value!r}"
    assert value.tzinfo is not None, f"{what}: {value!r} is naive, expected aware UTC"
    assert value.utcoffset() == timedelta(0), f"{what}: {value!r} is not UTC"


def _assert_datetimes_utc(value: Any, path: str) -> None:
    if isinstance(value, datetime):
        assert_utc(value, path)
    elif isinstance(value, Mapping):
        for key, sub in value.items():
            _assert_datetimes_utc(sub, f"{path}.{key}")
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            _assert_datetimes_utc(sub, f"{path}[{index}]")


def assert_records_equal(actual: Any, expected: Any, model: type[Record], what: str = "records") -> None:
    """Assert loaded record(s) equal the saved input(s) exactly.

    ``expected`` holds the inputs (dicts or models), ``actual`` what the store
    returned. Both are brought to the wire shape and compared with
    :func:`assert_json_identical`; every datetime in ``actual`` must be aware UTC
    and every item must be a ``model`` instance.
    """
    if isinstance(expected, list | tuple):
        assert isinstance(actual, list), f"{what}: expected a list, got {type(actual).__name__}"
        assert len(actual) == len(expected), f"{what}: expected {len(expected)} records, got {len(actual)}"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_records_equal(a, e, model, f"{what}[{index}]")
        return
    assert isinstance(actual, model), f"{what}: expected a {model.__name__}, got {type(actual).__name__}"
    _assert_datetimes_utc(actual.model_dump(), what)
    assert_json_identical(actual.to_wire(), model.coerce(expected).to_wire(), what)
