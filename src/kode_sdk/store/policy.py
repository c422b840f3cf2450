"""The store contract's policy, decided once above the backends.

Every public store method passes through :func:`kode_sdk.store.lifecycle.operation`,
which asks this module three things: which metrics kind the call counts as
(:data:`OPERATION_KINDS`), how its arguments are normalised before a backend
sees them (:data:`ARGUMENT_RULES`: filter types, enums, dates, integer bounds,
duplicate ids), and which error class a driver exception becomes
(:func:`driver_error`). A backend implements rows in, rows out and never
re-decides any of these, so the same call behaves, counts and fails the same
on SQLite, PostgreSQL and JSON files.

>>> OPERATION_KINDS["list"], OPERATION_KINDS["get_metrics"]
('loads', 'other')
>>> query_filters("query_messages", {"role": "user", "created_after": "1700000000000"})["created_after"]
1700000000000
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal, cast, get_args

from ..errors import KodeError, RecordValidationError, StoreConnectionError
from ..types import Role, ToolCallRecord, ToolCallState, to_epoch_ms
from .records import RECORD_KINDS

__all__ = [
    "ARGUMENT_RULES",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_LIMIT",
    "OPERATION_KINDS",
    "ROLES",
    "DriverErrorKind",
    "OpKind",
    "check_bool",
    "check_page",
    "check_role",
    "check_sort",
    "check_state",
    "check_text",
    "check_unique_ids",
    "driver_error",
    "kind_of",
    "query_filters",
    "time_bound",
]

OpKind = Literal["saves", "loads", "queries", "deletes", "other"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# --------------------------------------------------------------------------- metrics kinds

# Each record kind's save and load (see store/records.py), and the rest.
_LOADS = (
    *(kind.load for kind in RECORD_KINDS),
    "exists",
    "list",
    "list_stored_agents",
    "load_record_times",
    "load_snapshot",
)
_SAVES = (
    *(kind.save for kind in RECORD_KINDS),
    "append_event",
    "append_messages",
    "batch_fork",
    "restore_record_times",
    "upsert_tool_call_record",
)
_QUERIES = ("aggregate_stats", "query_messages", "query_sessions", "query_tool_calls", "search_messages")
_DELETES = ("delete", "prune")
# Introspection of the store itself: counted in ``by_method`` and latency, not
# as a load or query of agent data (a dashboard polling get_metrics must not
# move the load/query counters it is watching).
_OTHER = ("acquire_agent_lock", "check_consistency", "get_metrics", "health_check")

#: The metrics kind of every public store method. Reading stored agent data
#: without filters (``list``, ``exists``, ``load_*``) is a load; a filtered or
#: aggregated read across records is a query.
OPERATION_KINDS: dict[str, OpKind] = {
    **dict.fromkeys(_LOADS, "loads"),
    **dict.fromkeys(_SAVES, "saves"),
    **dict.fromkeys(_QUERIES, "queries"),
    **dict.fromkeys(_DELETES, "deletes"),
    **dict.fromkeys(_OTHER, "other"),
}


def kind_of(method: str, default: OpKind) -> OpKind:
    """The metrics kind ``method`` counts as: :data:`OPERATION_KINDS` wins, so a
    backend cannot count a contract method differently; ``default`` is for a
    backend's own extra methods."""
    return OPERATION_KINDS.get(method, default)


# --------------------------------------------------------------------------- scalar filters


def check_text(value: object, name: str) -> str:
    """A text filter: a ``str`` without NUL (no backend can store or compare one)."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str; got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{name} must not contain a NUL character (\\x00)")
    return value


def check_bool(value: object, name: str) -> bool:
    """A boolean filter: ``True`` or ``False`` only (not 0/1, not ``"true"``)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool; got {type(value).__name__}")
    return value


#: The roles a stored message can have (``query_messages(role=...)``).
ROLES: tuple[str, ...] = get_args(Role)


def check_role(value: object, name: str = "role") -> str:
    """A message role filter: one of :data:`ROLES`; anything else can match
    nothing, so it is refused rather than answered with ``[]``."""
    if value not in ROLES:
        raise ValueError(f"{name} must be one of {', '.join(ROLES)}; got {value!r}")
    return str(value)


def check_state(value: object) -> ToolCallState:
    """A tool-call state filter, as a :class:`ToolCallState`."""
    try:
        return ToolCallState(cast(str, value))
    except ValueError:
        allowed = ", ".join(s.value for s in ToolCallState)
        raise ValueError(f"state must be one of {allowed}; got {value!r}") from None


SORT_COLUMNS = ("created_at", "updated_at", "message_count")
SORT_ORDERS = ("asc", "desc")


def check_sort(sort_by: object, sort_order: object) -> tuple[str, str]:
    """Validate ``sort_by``/``sort_order`` against their whitelists.

    Raises ``ValueError`` naming the bad value and the allowed ones.
    """
    if sort_by not in SORT_COLUMNS:
        raise ValueError(f"sort_by must be one of {', '.join(SORT_COLUMNS)}; got {sort_by!r}")
    order = sort_order.lower() if isinstance(sort_order, str) else sort_order
    if order not in SORT_ORDERS:
        raise ValueError(f"sort_order must be 'asc' or 'desc'; got {sort_order!r}")
    return str(sort_by), str(order)


MAX_LIMIT = 10_000


def check_page(limit: object, offset: object) -> tuple[int, int]:
    """Validate ``limit`` (1–10,000) and ``offset`` (0 to 2**63 - 1, what SQL can bind).

    Integers only: a numeric string or a bool is refused, as everywhere an
    integer is meant.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an int from 1 to {MAX_LIMIT}; got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= INT64_MAX:
        raise ValueError(f"offset must be an int from 0 to {INT64_MAX}; got {offset!r}")
    return limit, offset


def time_bound(value: object, name: str) -> int | None:
    """A ``created_after``/``created_before`` filter as epoch ms (``None`` stays None).

    Accepts a datetime (naive is UTC), epoch milliseconds as an int, an
    integral float or a string of digits, or an ISO-8601 string. The result is clamped to the 64-bit range
    every stored timestamp is in: the answer is the same and every backend can
    bind it.
    """
    if value is None:
        return None
    try:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            ms = int(value.strip())
        elif isinstance(value, float) and value.is_integer():
            ms = int(value)  # what to_datetime accepts for a record field, accepted here too
        elif isinstance(value, datetime | int | str) and not isinstance(value, bool):
            ms = to_epoch_ms(value)  # type: ignore[arg-type]  # to_epoch_ms parses ISO strings too
        else:
            raise TypeError(type(value).__name__)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"{name} must be a datetime, an ISO-8601 string or epoch milliseconds (int or digits); got {value!r}"
        ) from None
    return max(min(ms, INT64_MAX), INT64_MIN)


# --------------------------------------------------------------------------- per-method rules

_TEXT_FILTERS = ("template_id", "user_id", "tool_name", "content_type")
_DEFAULT_PAGE = {"limit": 100, "offset": 0}


def query_filters(method: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of a ``query_*`` call, normalised: text filters are
    NUL-free strings, ``role``/``state`` are checked against their enums,
    booleans are bools, ``created_after``/``created_before`` are epoch ms,
    ``limit``/``offset`` are in range and ``sort_by``/``sort_order`` are
    whitelisted. Bad input is one ``ValueError`` naming the filter, on every
    backend. (``agent_id`` is checked by the caller, with the agent-id rules.)"""
    out = dict(kwargs)
    for name in _TEXT_FILTERS:
        if out.get(name) is not None:
            out[name] = check_text(out[name], name)
    if out.get("role") is not None:
        out["role"] = check_role(out["role"])
    if out.get("state") is not None:
        out["state"] = check_state(out["state"])
    for name in ("is_error", "has_approval"):
        if out.get(name) is not None:
            out[name] = check_bool(out[name], name)
    for name in ("created_after", "created_before"):
        if out.get(name) is not None:
            out[name] = time_bound(out[name], name)
    if "limit" in out or "offset" in out:
        out["limit"], out["offset"] = check_page(
            out.get("limit", _DEFAULT_PAGE["limit"]), out.get("offset", _DEFAULT_PAGE["offset"])
        )
    if method == "query_sessions" and ("sort_by" in out or "sort_order" in out):
        out["sort_by"], out["sort_order"] = check_sort(out.get("sort_by", "created_at"), out.get("sort_order", "desc"))
    return out


def check_unique_ids(ids: list[str], field_name: str) -> None:
    """Refuse a list of records in which two share one id: a tool call id names
    one call of an agent, and a store that kept both could not be copied to one
    that keys on it."""
    if len(set(ids)) == len(ids):
        return  # the common case, at C speed (save_tool_call_records is on every turn)
    seen: dict[str, int] = {}
    for index, record_id in enumerate(ids):
        if record_id in seen:
            raise RecordValidationError(
                f"{field_name}[{index}].id: {record_id!r} is the id of {field_name}[{seen[record_id]}] too; "
                "ids must be unique",
                field=f"{field_name}[{index}].id",
            )
        seen[record_id] = index


def _tool_call_records_rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    records = args[1] if len(args) > 1 else kwargs.get("records")
    if isinstance(records, list | tuple):
        if set(map(type, records)) <= {ToolCallRecord}:
            ids: list[Any] = [r.id for r in records]  # validated models: the hot path of every turn
        else:
            ids = [
                r.id if isinstance(r, ToolCallRecord) else r.get("id") if isinstance(r, Mapping) else None
                for r in records
            ]
        # Malformed items are left to record validation, which names them better.
        if all(isinstance(i, str) for i in ids):
            check_unique_ids(cast(list[str], ids), "records")
    return args, kwargs


def _prune_rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``prune``'s keywords, once for every backend: ``created_before`` is
    required and becomes epoch ms, ``template_id`` is a NUL-free str (or
    None), ``dry_run`` a real bool (a string such as ``"no"`` would count as
    true, and ``0`` as false: a deletion)."""
    out = dict(kwargs)
    cutoff = time_bound(out.get("created_before"), "created_before")
    if cutoff is None:
        raise ValueError("created_before is required")
    out["created_before"] = cutoff
    if out.get("template_id") is not None:
        out["template_id"] = check_text(out["template_id"], "template_id")
    out["dry_run"] = check_bool(out.get("dry_run", False), "dry_run")
    return args, out


def _query_rule(method: str) -> Callable[[tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]:
    def rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return args, query_filters(method, kwargs)

    return rule


#: Argument normalisation applied to a call before the backend runs it:
#: method name → ``(args, kwargs) -> (args, kwargs)``.
ARGUMENT_RULES: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]] = {
    "query_sessions": _query_rule("query_sessions"),
    "query_messages": _query_rule("query_messages"),
    "query_tool_calls": _query_rule("query_tool_calls"),
    "save_tool_call_records": _tool_call_records_rule,
    "prune": _prune_rule,
}


# --------------------------------------------------------------------------- errors

#: What a backend says a driver exception is (see ``BaseStore._driver_error_kind``).
DriverErrorKind = Literal["connection", "conflict", "input"]


def driver_error(kind: DriverErrorKind, exc: BaseException, backend: str) -> KodeError:
    """The error a caller sees for a driver exception the backend classified as
    ``kind``: a connection problem is a :class:`StoreConnectionError`, a
    conflict or bad input a :class:`RecordValidationError` (a ``ValueError``)."""
    detail = f"{backend}: {type(exc).__name__}: {exc}".strip()
    if kind == "connection":
        return StoreConnectionError(detail)
    return RecordValidationError(detail)
