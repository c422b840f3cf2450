"""The records kode-sdk persists, and the results its queries return.

Every record is a pydantic v2 model with snake_case attributes. Inputs may be
models or plain dicts with snake_case *or* camelCase keys (``tool_call_id`` or
``toolCallId``); JSON written to disk or to a database uses the KODE wire shape
(camelCase keys, epoch-millisecond timestamps). Bad input raises
:class:`~kode_sdk.errors.RecordValidationError` naming the field::

    >>> Message(role="user", content="hi").content
    [{'type': 'text', 'text': 'hi'}]
    >>> Message.model_validate({"role": "robot", "content": []})
    Traceback (most recent call last):
    ...
    kode_sdk.errors.RecordValidationError: Message.role: Input should be 'user', 'assistant' or 'system'

Content blocks are plain dicts. The known ones (``text``, ``tool_use``,
``tool_result``) are checked for their required keys; any other block type
(images, thinking, provider extensions) and any extra key is kept exactly as
given.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self, TypeAlias, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .errors import RecordValidationError
from .jsoncodec import check_json

__all__ = [
    "AgentInfo",
    "AgentStats",
    "Bookmark",
    "BreakpointState",
    "CompressionConfig",
    "CompressionRecord",
    "ConsistencyCheckResult",
    "DatabaseHealth",
    "FileSystemHealth",
    "HistoryWindow",
    "HistoryWindowStats",
    "MediaCacheRecord",
    "Message",
    "MessageHit",
    "OperationCounts",
    "PerformanceMetrics",
    "RecoveredFile",
    "SessionInfo",
    "Snapshot",
    "StorageMetrics",
    "StoreHealthStatus",
    "StoreMetrics",
    "StoredMessage",
    "StoredToolCall",
    "Timeline",
    "TodoItem",
    "TodoSnapshot",
    "ToolCallApproval",
    "ToolCallAuditEntry",
    "ToolCallRecord",
    "ToolCallState",
    "ms_to_datetime",
    "now_utc",
    "to_datetime",
    "to_epoch_ms",
]


# --------------------------------------------------------------------------- time


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_utc() -> datetime:
    """The current time as an aware UTC datetime, truncated to milliseconds
    (the precision every backend stores)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def ms_to_datetime(ms: int) -> datetime:
    """Epoch milliseconds → aware UTC datetime."""
    # One addition: ~6x cheaper than fromtimestamp() plus replace(), and
    # exact for any millisecond count (no float on the way).
    return _EPOCH + timedelta(milliseconds=int(ms))


def to_datetime(value: Any) -> datetime:
    """Accept an aware or naive (read as UTC) datetime, epoch-ms int, or ISO string.

    A value no datetime can hold (beyond the years 1–9999 in UTC) is a
    :class:`ValueError`, like any other bad timestamp, so a record field
    refuses it with :class:`~kode_sdk.errors.RecordValidationError`.
    """
    try:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.replace(tzinfo=UTC)
            return value.astimezone(UTC)
        if isinstance(value, bool):
            raise ValueError("a timestamp must be a datetime or epoch milliseconds, not a bool")
        if isinstance(value, int):
            return ms_to_datetime(value)
        if isinstance(value, float) and value.is_integer():
            return ms_to_datetime(int(value))
    except OverflowError:
        raise ValueError(f"{value!r} is outside the range of a timestamp (years 1 to 9999 UTC)") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 timestamp") from None
        return to_datetime(parsed)
    raise ValueError(f"a timestamp must be a datetime or epoch milliseconds, not {type(value).__name__}")


def to_epoch_ms(value: datetime | int) -> int:
    """Aware/naive datetime or epoch-ms int → epoch milliseconds (naive read as UTC)."""
    if isinstance(value, bool):
        raise ValueError("a timestamp must be a datetime or epoch milliseconds, not a bool")
    if isinstance(value, int):
        return value
    # Integer arithmetic on the timedelta: exact, and floors sub-millisecond
    # parts for instants before 1970 too (float timestamps do neither).
    delta = to_datetime(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _datetime_to_ms(value: datetime) -> int:
    return to_epoch_ms(value)


Timestamp: TypeAlias = Annotated[
    datetime,
    BeforeValidator(to_datetime),
    PlainSerializer(_datetime_to_ms, return_type=int, when_used="json"),
]
"""An aware UTC datetime; JSON form is epoch milliseconds."""


def _strict_int(value: Any) -> Any:
    # One coercion policy for every integer field: a bool or a numeric string
    # is refused (as limit/offset refuse them), never silently converted.
    if type(value) is int:
        return value  # nearly every call: one type check, not three
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a bool")
    if isinstance(value, str | bytes):
        raise ValueError(f"must be an integer, not a string ({value!r})")
    return value


def _within(low: int, high: int, what: str) -> Any:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"{value} is outside the {what} range (every backend must be able to store it)")
        return value

    return check


#: An integer a 64-bit column holds (seqs, epoch-ms timestamps, versions). The
#: bound lives here, in the records, so every backend refuses the same values
#: before anything is queued or sent.
Int64: TypeAlias = Annotated[int, BeforeValidator(_strict_int), AfterValidator(_within(-(2**63), 2**63 - 1, "64-bit"))]
#: A count PostgreSQL keeps in a 32-bit ``integer`` column (``AgentInfo.message_count``).
Int32: TypeAlias = Annotated[int, BeforeValidator(_strict_int), AfterValidator(_within(-(2**31), 2**31 - 1, "32-bit"))]
EpochMs: TypeAlias = Int64


# --------------------------------------------------------------------------- base


def _format_loc(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validation_error(exc: ValidationError, prefix: str) -> RecordValidationError:
    """Turn a pydantic ``ValidationError`` into a :class:`RecordValidationError`
    whose message names every bad field, ``prefix`` first."""
    problems = []
    first_field: str | None = None
    for err in exc.errors(include_url=False):
        where = _format_loc(prefix, tuple(err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, RecordValidationError) and inner.field is not None:
            # A check below the field (a content block, a nested JSON value)
            # knows the exact path: extend the location with it.
            sub = inner.field
            where += sub if not sub or sub[0] in ".[" else f".{sub}"
            msg = str(inner).removeprefix(f"{sub}: ")
        first_field = first_field or where
        problems.append(f"{where}: {msg}")
    return RecordValidationError("; ".join(problems) or str(exc), field=first_field)


class Record(BaseModel):
    """Base of every record: camelCase aliases, both spellings accepted,
    unknown extra keys kept.

    ``model_validate`` and :meth:`coerce` (what every store method uses) raise
    :class:`RecordValidationError`. Calling the constructor directly raises
    pydantic's ``ValidationError`` (also a ``ValueError``): overriding
    ``__init__`` would make pydantic call Python code for every nested record
    it validates, which costs more than it gives.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        use_enum_values=False,
        ser_json_inf_nan="strings",
        # NaN and Infinity are not JSON: orjson would silently store them as null.
        allow_inf_nan=False,
    )

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        from_attributes: bool | None = None,
        context: Any | None = None,
        **kwargs: Any,
    ) -> Self:
        try:
            return super().model_validate(
                obj, strict=strict, from_attributes=from_attributes, context=context, **kwargs
            )
        except ValidationError as exc:
            raise validation_error(exc, cls.__name__) from None

    @classmethod
    def coerce(cls, value: Any, field: str | None = None) -> Self:
        """Return ``value`` if it already is a ``cls``, else validate it.

        ``field`` names the value in error messages (e.g. ``messages[3]``).
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, BaseModel):
            value = value.model_dump(by_alias=True)
        if not isinstance(value, Mapping):
            where = field or cls.__name__
            raise RecordValidationError(
                f"{where}: expected a {cls.__name__} or a dict, got {type(value).__name__}", field=where
            )
        try:
            return super().model_validate(value)
        except ValidationError as exc:
            raise validation_error(exc, field or cls.__name__) from None

    @model_validator(mode="after")
    def _check_text_and_extras(self) -> Self:
        # Typed fields are JSON by construction, with two gaps pydantic leaves
        # open: a `str` may hold an unpaired surrogate, and extra keys (kept on
        # every record) are not validated at all — NaN would be stored as null.
        for name, value in self.__dict__.items():
            if type(value) is str and not value.isascii():
                check_json(value, to_camel(name))
        extra = self.__pydantic_extra__
        if extra:
            check_json(extra, "")
        return self

    def to_wire(self) -> dict[str, Any]:
        """The KODE wire shape: camelCase keys, epoch-ms timestamps, plain JSON."""
        return self.model_dump(mode="json", by_alias=True)


class Result(BaseModel):
    """Base of query results (read-only views; snake_case attributes)."""

    model_config = ConfigDict(populate_by_name=True, alias_generator=to_camel)


# --------------------------------------------------------------------------- messages

_CAMEL_BLOCK_KEYS = {"toolUseId": "tool_use_id", "isError": "is_error"}
Role: TypeAlias = Literal["user", "assistant", "system"]


def _normalize_block(block: Any, where: str) -> dict[str, Any]:
    if isinstance(block, BaseModel):
        block = block.model_dump()
    if not isinstance(block, dict):
        raise RecordValidationError(f"a content block must be a dict, got {type(block).__name__}", field=where)
    kind = block.get("type")
    if not isinstance(kind, str) or not kind:
        raise RecordValidationError("every content block needs a string 'type'", field=f"{where}.type")
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise RecordValidationError("a text block needs a string 'text'", field=f"{where}.text")
    elif kind == "tool_use":
        if not isinstance(block.get("id"), str) or not block["id"]:
            raise RecordValidationError("a tool_use block needs a non-empty string 'id'", field=f"{where}.id")
        if not isinstance(block.get("name"), str) or not block["name"]:
            raise RecordValidationError("a tool_use block needs a non-empty string 'name'", field=f"{where}.name")
        if "input" in block and not isinstance(block["input"], dict):
            raise RecordValidationError("a tool_use block's 'input' must be an object", field=f"{where}.input")
    elif kind == "tool_result":
        if "toolUseId" in block or "isError" in block:
            block = {_CAMEL_BLOCK_KEYS.get(k, k): v for k, v in block.items()}
        if not isinstance(block.get("tool_use_id"), str) or not block["tool_use_id"]:
            raise RecordValidationError(
                "a tool_result block needs a non-empty string 'tool_use_id'", field=f"{where}.tool_use_id"
            )
        if "is_error" in block and not isinstance(block["is_error"], bool):
            raise RecordValidationError("must be a bool", field=f"{where}.is_error")
    check_json(block, where)
    return cast(dict[str, Any], block)


class Message(Record):
    """One conversation message.

    >>> m = Message(role="assistant", content=[
    ...     {"type": "text", "text": "Let me look."},
    ...     {"type": "tool_use", "id": "toolu_1", "name": "fs_read", "input": {"path": "a.txt"}},
    ... ])
    >>> m.content[1]["name"]
    'fs_read'

    ``content`` may be given as a string (one text block).
    """

    role: Role
    content: list[dict[str, Any]]
    metadata: dict[str, Any] | None = None

    @field_validator("content", mode="plain")
    @classmethod
    def _check_content(cls, value: Any) -> list[dict[str, Any]]:
        if isinstance(value, str):
            return [_normalize_block({"type": "text", "text": value}, "[0]")]
        if not isinstance(value, list | tuple):
            raise ValueError(f"must be a list of content blocks or a string, got {type(value).__name__}")
        return [_normalize_block(block, f"[{i}]") for i, block in enumerate(value)]

    @field_validator("metadata", mode="plain")
    @classmethod
    def _check_metadata(cls, value: Any) -> dict[str, Any] | None:
        return _json_object_or_none(value)

    def block_types(self) -> list[str]:
        """The distinct content-block types of this message, in first-seen order."""
        seen: dict[str, None] = {}
        for block in self.content:
            seen[block["type"]] = None
        return list(seen)


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"must be an object (dict), got {type(value).__name__}")
    check_json(value, "")
    return value


def _json_object_or_none(value: Any) -> dict[str, Any] | None:
    return None if value is None else _json_object(value)


def _json_value(value: Any) -> Any:
    check_json(value, "")
    return value


JsonObject: TypeAlias = Annotated[dict[str, Any], BeforeValidator(_json_object)]
JsonValue: TypeAlias = Annotated[Any, BeforeValidator(_json_value)]


# --------------------------------------------------------------------------- events

Channel: TypeAlias = Literal["progress", "control", "monitor"]
CHANNELS: tuple[str, ...] = ("progress", "control", "monitor")


class Bookmark(Record):
    """A position in an agent's event timeline: ``seq`` rises by one per event."""

    seq: EpochMs
    timestamp: EpochMs


def _check_event(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"must be an object (dict), got {type(value).__name__}")
    channel = value.get("channel")
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} is not one of 'progress', 'control', 'monitor'")
    if not isinstance(value.get("type"), str) or not value["type"]:
        raise ValueError("every event needs a non-empty string 'type'")
    check_json(value, "")
    return value


class Timeline(Record):
    """One event of the timeline, as stored and read back.

    >>> Timeline(cursor=1, bookmark={"seq": 1, "timestamp": 0},
    ...          event={"channel": "progress", "type": "text_chunk", "delta": "Hi"}).event["type"]
    'text_chunk'
    """

    cursor: EpochMs
    bookmark: Bookmark
    event: Annotated[dict[str, Any], BeforeValidator(_check_event)]

    @property
    def channel(self) -> str:
        """The event's channel: ``progress``, ``control`` or ``monitor``."""
        return str(self.event["channel"])


# --------------------------------------------------------------------------- tool calls


class _CaseInsensitiveEnum(StrEnum):
    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            lowered = value.lower()
            for member in cls:
                if member.value == lowered:
                    return member
        return None


class ToolCallState(_CaseInsensitiveEnum):
    """Where a tool call is in its life; input in any case."""

    PENDING = "pending"
    APPROVAL_REQUIRED = "approval_required"
    APPROVED = "approved"
    EXECUTING = "executing"
    COMPLETED = "completed"
    FAILED = "failed"
    DENIED = "denied"
    SEALED = "sealed"


class BreakpointState(_CaseInsensitiveEnum):
    """Where an agent's loop stood when its info was last saved."""

    READY = "ready"
    PRE_MODEL = "pre_model"
    STREAMING_MODEL = "streaming_model"
    TOOL_PENDING = "tool_pending"
    AWAITING_APPROVAL = "awaiting_approval"
    PRE_TOOL = "pre_tool"
    TOOL_EXECUTING = "tool_executing"
    POST_TOOL = "post_tool"


def _enum_before(enum: type[_CaseInsensitiveEnum]) -> Any:
    def convert(value: Any) -> Any:
        if isinstance(value, str) and not isinstance(value, enum):
            try:
                return enum(value)
            except ValueError:
                allowed = ", ".join(m.value for m in enum)
                raise ValueError(f"{value!r} is not one of: {allowed}") from None
        return value

    return BeforeValidator(convert)


State: TypeAlias = Annotated[ToolCallState, _enum_before(ToolCallState)]
Breakpoint: TypeAlias = Annotated[BreakpointState, _enum_before(BreakpointState)]


class ToolCallApproval(Record):
    """Whether a call needed approval, and the decision taken."""

    required: bool = False
    decision: Literal["allow", "deny"] | None = None
    decided_by: str | None = None
    decided_at: Timestamp | None = None
    note: str | None = None
    meta: JsonObject | None = None


class ToolCallAuditEntry(Record):
    """One move of a tool call: the state it entered, when (epoch ms), and why."""

    state: State
    timestamp: EpochMs
    note: str | None = None


class ToolCallRecord(Record):
    """A tool call with its approval, result and audit trail.

    >>> r = ToolCallRecord(id="toolu_1", name="bash_run", input={"cmd": "ls"}, state="COMPLETED")
    >>> r.state
    <ToolCallState.COMPLETED: 'completed'>
    """

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: JsonValue = Field(default_factory=dict)
    state: State = ToolCallState.PENDING
    approval: ToolCallApproval = Field(default_factory=ToolCallApproval)
    result: JsonValue = None
    error: str | None = None
    is_error: bool = False
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    duration_ms: Annotated[float, BeforeValidator(_strict_int)] | None = None
    created_at: Timestamp = Field(default_factory=now_utc)
    updated_at: Timestamp = Field(default_factory=now_utc)
    audit_trail: list[ToolCallAuditEntry] = Field(default_factory=list)


# --------------------------------------------------------------------------- agent


class AgentInfo(Record):
    """An agent's identity and progress: template, lineage, counts, breakpoint, metadata."""

    agent_id: str
    template_id: str
    created_at: Timestamp = Field(default_factory=now_utc)
    lineage: list[str] = Field(default_factory=list)
    config_version: str = "v1"
    message_count: Int32 = 0
    last_sfp_index: Int32 = -1
    last_bookmark: Bookmark | None = None
    breakpoint: Breakpoint | None = None
    metadata: JsonObject = Field(default_factory=dict)


class Snapshot(Record):
    """A saved point of an agent's conversation, to fork or roll back to."""

    id: str = Field(min_length=1)
    messages: list[Message]
    last_sfp_index: Annotated[int, BeforeValidator(_strict_int)] = -1
    last_bookmark: Bookmark | None = None
    created_at: Timestamp = Field(default_factory=now_utc)
    metadata: JsonObject | None = None


class TodoItem(Record):
    """One todo of an agent's list."""

    id: str = Field(min_length=1)
    title: str
    status: Literal["pending", "in_progress", "completed"] = "pending"
    assignee: str | None = None
    notes: str | None = None
    created_at: Timestamp = Field(default_factory=now_utc)
    updated_at: Timestamp = Field(default_factory=now_utc)


class TodoSnapshot(Record):
    """An agent's whole todo list at one version."""

    todos: list[TodoItem] = Field(default_factory=list)
    version: Int64 = 1
    updated_at: Timestamp = Field(default_factory=now_utc)


class HistoryWindowStats(Record):
    """Counts describing a history window."""

    message_count: Annotated[int, BeforeValidator(_strict_int)] = 0
    token_count: Annotated[int, BeforeValidator(_strict_int)] = 0
    event_count: Annotated[int, BeforeValidator(_strict_int)] = 0


class HistoryWindow(Record):
    """A window of conversation set aside by context compression."""

    id: str = Field(min_length=1)
    messages: list[Message] = Field(default_factory=list)
    events: list[Timeline] = Field(default_factory=list)
    stats: HistoryWindowStats = Field(default_factory=HistoryWindowStats)
    timestamp: EpochMs


class CompressionConfig(Record):
    """How a compression was configured."""

    model: str = ""
    prompt: str = ""
    threshold: float = 0


class CompressionRecord(Record):
    """One context compression: which window, the summary, the ratio achieved."""

    id: str = Field(min_length=1)
    window_id: str
    config: CompressionConfig = Field(default_factory=CompressionConfig)
    summary: str
    ratio: float
    recovered_files: list[str] = Field(default_factory=list)
    timestamp: EpochMs


class RecoveredFile(Record):
    """A file's content recovered into context after compression."""

    path: str = Field(min_length=1)
    content: str
    mtime: EpochMs
    timestamp: EpochMs


class MediaCacheRecord(Record):
    """A media upload cached with a provider (so it is not uploaded twice)."""

    key: str = Field(min_length=1)
    provider: str
    mime_type: str
    size_bytes: Annotated[int, BeforeValidator(_strict_int)]
    file_id: str | None = None
    file_uri: str | None = None
    created_at: Timestamp = Field(default_factory=now_utc)


# --------------------------------------------------------------------------- query results


class SessionInfo(Result):
    """One agent session as :meth:`query_sessions` finds it."""

    agent_id: str
    template_id: str
    created_at: datetime
    updated_at: datetime
    message_count: int
    last_sfp_index: int
    breakpoint: BreakpointState | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class StoredMessage(Result):
    """A message with its place in the conversation (``seq``, 0-based) and first-save time."""

    agent_id: str
    seq: int
    role: Role
    content: list[dict[str, Any]]
    created_at: datetime
    metadata: dict[str, Any] | None = None


class MessageHit(Result):
    """One message found by ``search_messages``.

    ``snippet`` is a short extract of the message's searchable text (its text
    blocks, tool-use names and inputs, tool results); ``highlights`` are the
    ``(start, end)`` Python string indices of the matches inside ``snippet``
    (end exclusive, sorted, non-overlapping). ``score`` ranks the hits of one
    search, higher first; its scale is the backend's own.
    """

    agent_id: str
    seq: int
    role: Role
    created_at: datetime
    snippet: str
    highlights: list[tuple[int, int]]
    score: float


class StoredToolCall(Result):
    """A tool-call record as :meth:`query_tool_calls` finds it (``output`` is its ``result``)."""

    agent_id: str
    tool_call_id: str
    tool_name: str
    input: Any
    output: Any = None
    is_error: bool
    approval: ToolCallApproval
    state: ToolCallState
    error: str | None = None
    duration_ms: float | None = None
    created_at: datetime
    updated_at: datetime
    audit_trail: list[ToolCallAuditEntry] = Field(default_factory=list)

    @classmethod
    def from_record(cls, agent_id: str, record: ToolCallRecord) -> StoredToolCall:
        """Build the query view of ``record``."""
        return cls(
            agent_id=agent_id,
            tool_call_id=record.id,
            tool_name=record.name,
            input=record.input,
            output=record.result,
            is_error=record.is_error,
            approval=record.approval,
            state=record.state,
            error=record.error,
            duration_ms=record.duration_ms,
            created_at=record.created_at,
            updated_at=record.updated_at,
            audit_trail=record.audit_trail,
        )


class AgentStats(Result):
    """Totals for one agent; states and names with no calls are absent."""

    total_messages: int = 0
    total_tool_calls: int = 0
    total_snapshots: int = 0
    tool_calls_by_state: dict[str, int] = Field(default_factory=dict)
    tool_calls_by_name: dict[str, int] = Field(default_factory=dict)
    messages_by_role: dict[str, int] = Field(default_factory=dict)


class DatabaseHealth(Result):
    """Whether the database answered, and how fast."""

    connected: bool
    latency_ms: float | None = None
    error: str | None = None


class FileSystemHealth(Result):
    """Whether the store's directory accepts writes."""

    writable: bool
    error: str | None = None


class StoreHealthStatus(Result):
    """The answer of :meth:`health_check`."""

    healthy: bool
    database: DatabaseHealth
    file_system: FileSystemHealth
    checked_at: datetime


class ConsistencyCheckResult(Result):
    """The answer of :meth:`check_consistency`: every issue found, in words."""

    consistent: bool
    issues: list[str] = Field(default_factory=list)
    checked_at: datetime


class OperationCounts(Result):
    """How many store calls of each kind ran since the store was opened."""

    saves: int = 0
    loads: int = 0
    queries: int = 0
    deletes: int = 0


class PerformanceMetrics(Result):
    """Latency of store calls in milliseconds (percentiles from a bounded histogram)."""

    avg_latency_ms: float = 0.0
    min_latency_ms: float = 0.0
    max_latency_ms: float = 0.0
    p50_latency_ms: float = 0.0
    p95_latency_ms: float = 0.0
    p99_latency_ms: float = 0.0


class StorageMetrics(Result):
    """What the store holds."""

    total_agents: int = 0
    total_messages: int = 0
    total_tool_calls: int = 0
    db_size_bytes: int | None = None


class StoreMetrics(Result):
    """The answer of :meth:`get_metrics`."""

    operations: OperationCounts
    performance: PerformanceMetrics
    storage: StorageMetrics
    collected_at: datetime
