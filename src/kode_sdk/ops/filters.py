"""Query filters given as text (command-line options, URL query parameters),
turned into the keyword arguments of the query API.

Times are ISO-8601 dates or datetimes (``2025-01-31``, ``2025-01-31T12:00:00Z``;
naive means UTC), epoch milliseconds, or a duration back from now
(``90d``, ``12h``, ``30m``, ``45s``, ``2w``, combinable: ``1d12h``).

>>> parse_duration("1d12h").total_seconds()
129600.0
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..store.policy import check_role
from ..types import ToolCallState, to_datetime

__all__ = [
    "LIBRARY_NAMES",
    "SEARCH_PARAMS",
    "message_filters",
    "parse_bool",
    "parse_duration",
    "parse_int",
    "parse_when",
    "pick_params",
    "search_filters",
    "session_filters",
    "time_ago",
    "tool_call_filters",
]

#: The query API's keyword names, each with the short (``kode`` option) name it
#: stands for: text filters accept either, so HTTP reads like Python.
LIBRARY_NAMES: dict[str, str] = {
    "agent_id": "agent",
    "template_id": "template",
    "user_id": "user",
    "tool_name": "tool",
    "is_error": "errors",
    "has_approval": "approval",
    "created_after": "after",
    "created_before": "before",
    "sort_by": "sort",
    "sort_order": "order",
    "query": "q",
}

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+)([wdhms]))+")
_PART = re.compile(r"(\d+)([wdhms])")


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``1d12h``, … as a :class:`timedelta`; ``ValueError`` otherwise."""
    value = text.strip().lower()
    if not value or not _DURATION.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration (use e.g. 90d, 12h, 30m, 45s, 2w, 1d12h)")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration (at most {timedelta.max.days} days)") from None


def time_ago(duration: timedelta, text: str, *, now: datetime | None = None) -> datetime:
    """``now`` minus ``duration``; ``ValueError`` naming ``text`` when that is before year 1."""
    try:
        return (now or datetime.now(UTC)) - duration
    except OverflowError:
        raise ValueError(f"{text!r} reaches back before the year 1") from None


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO date/datetime, epoch ms, or a duration back from ``now``, as an aware UTC datetime."""
    value = text.strip()
    if not value:
        raise ValueError("an empty time is not valid")
    if value.isdigit() and len(value) > 8:
        try:
            return to_datetime(int(value))
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{text!r} is out of range as epoch milliseconds (a time from year 1 to 9999)") from None
    if _DURATION.fullmatch(value.lower()):
        return time_ago(parse_duration(value), text, now=now)
    try:
        return to_datetime(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use an ISO date (2025-01-31), a datetime (2025-01-31T12:00:00Z), "
            "epoch milliseconds, or a duration back from now (90d, 12h)"
        ) from None


def parse_bool(text: str) -> bool:
    """``true/false``, ``yes/no``, ``1/0`` (any case)."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "y", "on"):
        return True
    if value in ("0", "false", "no", "n", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


def parse_int(text: str, name: str) -> int:
    """An integer parameter, or ``ValueError`` naming it."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer; got {text!r}") from None


def pick_params(params: Mapping[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    """The ``allowed`` short-named filters found in ``params`` (URL query
    parameters), each given by its short name or by its :data:`LIBRARY_NAMES`
    name. An unknown name, or one filter given under both names, is a
    ``ValueError``.

    >>> pick_params({"agent_id": "a-1", "limit": "5"}, ("agent", "limit"))
    {'agent': 'a-1', 'limit': '5'}
    """
    accepted = {name: name for name in allowed}
    accepted.update({long: short for long, short in LIBRARY_NAMES.items() if short in allowed})
    out: dict[str, str] = {}
    given: dict[str, str] = {}
    for key in params:
        short = accepted.get(key)
        if short is None:
            names = ", ".join(sorted(accepted))
            raise ValueError(f"unknown query parameter {key!r} (allowed: {names})")
        if short in given and given[short] != key:
            raise ValueError(f"{given[short]!r} and {key!r} are the same filter: give one of them")
        given[short] = key
        out[short] = params[key]
    return out


def _time_range(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in (("after", "created_after"), ("before", "created_before")):
        value = params.get(key)
        if value is not None:
            out[name] = value if isinstance(value, datetime) else parse_when(str(value))
    return out


def _page(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("limit", "offset"):
        value = params.get(key)
        if value is not None:
            out[key] = value if isinstance(value, int) else parse_int(str(value), key)
    return out


def session_filters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``query_sessions`` from ``agent, template, user, after,
    before, limit, offset, sort, order`` (``None`` values are left out)."""
    out: dict[str, Any] = {}
    for key, name in (("agent", "agent_id"), ("template", "template_id"), ("user", "user_id")):
        if params.get(key) is not None:
            out[name] = params[key]
    if params.get("sort") is not None:
        out["sort_by"] = params["sort"]
    if params.get("order") is not None:
        out["sort_order"] = params["order"]
    return {**out, **_time_range(params), **_page(params)}


def message_filters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``query_messages`` from ``agent, role, content_type, after,
    before, limit, offset``."""
    out: dict[str, Any] = {}
    if params.get("agent") is not None:
        out["agent_id"] = params["agent"]
    if params.get("role") is not None:
        out["role"] = check_role(params["role"])
    if params.get("content_type") is not None:
        out["content_type"] = params["content_type"]
    return {**out, **_time_range(params), **_page(params)}


#: The text filters of ``search_messages`` (short names; :func:`pick_params` adds the long ones).
SEARCH_PARAMS: tuple[str, ...] = ("q", "agent", "template", "user", "role", "after", "before", "limit", "offset")


def search_filters(params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The query text and keyword arguments of ``search_messages`` from ``q,
    agent, template, user, role, after, before, limit, offset`` (a missing
    ``q`` is an empty query, which ``search_messages`` refuses)."""
    out: dict[str, Any] = {}
    for key, name in (("agent", "agent_id"), ("template", "template_id"), ("user", "user_id")):
        if params.get(key) is not None:
            out[name] = params[key]
    if params.get("role") is not None:
        out["role"] = check_role(params["role"])
    return str(params.get("q") or ""), {**out, **_time_range(params), **_page(params)}


def tool_call_filters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``query_tool_calls`` from ``agent, tool, errors, approval,
    state, after, before, limit, offset``."""
    out: dict[str, Any] = {}
    if params.get("agent") is not None:
        out["agent_id"] = params["agent"]
    if params.get("tool") is not None:
        out["tool_name"] = params["tool"]
    for key, name in (("errors", "is_error"), ("approval", "has_approval")):
        value = params.get(key)
        if value is not None:
            out[name] = value if isinstance(value, bool) else parse_bool(str(value))
    state = params.get("state")
    if state is not None:
        try:
            out["state"] = ToolCallState(state)
        except ValueError:
            allowed = ", ".join(s.value for s in ToolCallState)
            raise ValueError(f"state must be one of {allowed}; got {state!r}") from None
    return {**out, **_time_range(params), **_page(params)}
