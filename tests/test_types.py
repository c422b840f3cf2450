"""Records (kode_sdk.types) and the exact JSON codec (kode_sdk.jsoncodec)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kode_sdk import jsoncodec
from kode_sdk.errors import RecordValidationError
from kode_sdk.testing.data import assert_json_identical
from kode_sdk.types import (
    AgentInfo,
    Bookmark,
    BreakpointState,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    Snapshot,
    StoredToolCall,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
    ToolCallState,
    ms_to_datetime,
    now_utc,
    to_datetime,
    to_epoch_ms,
)

MS = 1_709_294_400_123  # 2024-03-01T12:00:00.123Z
INSTANT = datetime(2024, 3, 1, 12, 0, 0, 123_000, tzinfo=UTC)


def rejects(model: Any, value: Any, field: str | None = None) -> RecordValidationError:
    with pytest.raises(RecordValidationError) as info:
        model.coerce(value, field)
    return info.value


# --------------------------------------------------------------------------- input spellings


def test_snake_and_camel_keys_are_equivalent() -> None:
    snake = AgentInfo.coerce(
        {"agent_id": "a", "template_id": "t", "created_at": MS, "last_sfp_index": 3, "config_version": "v9"}
    )
    camel = AgentInfo.coerce(
        {"agentId": "a", "templateId": "t", "createdAt": MS, "lastSfpIndex": 3, "configVersion": "v9"}
    )
    assert snake == camel
    assert snake.last_sfp_index == 3
    assert snake.config_version == "v9"
    call = ToolCallRecord.coerce({"id": "c", "name": "n", "is_error": True, "durationMs": 5, "auditTrail": []})
    assert call.is_error is True
    assert call.duration_ms == 5


def test_tool_result_block_accepts_camel_case_and_normalises_it() -> None:
    message = Message.coerce(
        {"role": "user", "content": [{"type": "tool_result", "toolUseId": "t1", "content": "ok", "isError": True}]}
    )
    assert message.content == [{"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": True}]


def test_string_content_becomes_one_text_block() -> None:
    assert Message.coerce({"role": "system", "content": "be brief"}).content == [{"type": "text", "text": "be brief"}]


def test_unknown_blocks_and_extra_keys_are_kept() -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA="}},
        {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}, "citations": None},
        {"type": "tool_use", "id": "t", "name": "n", "input": {}, "x-vendor": [1, 2]},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
    message = Message.coerce({"role": "assistant", "content": content, "metadata": {"k": 1}, "providerId": "p-1"})
    assert message.content == content
    assert message.to_wire() == {"role": "assistant", "content": content, "metadata": {"k": 1}, "providerId": "p-1"}
    assert message.block_types() == ["image", "text", "tool_use", "redacted_thinking"]


def test_coerce_passes_models_through_and_converts_other_models() -> None:
    record = ToolCallRecord.coerce({"id": "c", "name": "n"})
    assert ToolCallRecord.coerce(record) is record
    stored = StoredToolCall.from_record("agent", record)
    assert stored.tool_call_id == "c"
    assert stored.output is None


# --------------------------------------------------------------------------- enums


@pytest.mark.parametrize("spelling", ["completed", "COMPLETED", "Completed", "cOmPlEtEd"])
def test_tool_call_state_is_case_insensitive(spelling: str) -> None:
    record = ToolCallRecord.coerce({"id": "c", "name": "n", "state": spelling})
    assert record.state is ToolCallState.COMPLETED
    assert record.to_wire()["state"] == "completed"
    assert ToolCallState(spelling) is ToolCallState.COMPLETED


def test_breakpoint_state_is_case_insensitive() -> None:
    info = AgentInfo.coerce({"agentId": "a", "templateId": "t", "breakpoint": "Awaiting_Approval"})
    assert info.breakpoint is BreakpointState.AWAITING_APPROVAL
    assert info.to_wire()["breakpoint"] == "awaiting_approval"


def test_unknown_state_names_field_and_allowed_values() -> None:
    error = rejects(ToolCallRecord, {"id": "c", "name": "n", "state": "exploded"}, "records[2]")
    assert error.field == "records[2].state"
    assert "'exploded'" in str(error)
    assert "approval_required" in str(error)


def test_audit_trail_state_is_case_insensitive() -> None:
    record = ToolCallRecord.coerce({"id": "c", "name": "n", "auditTrail": [{"state": "FAILED", "timestamp": 1}]})
    assert record.audit_trail[0].state is ToolCallState.FAILED


# --------------------------------------------------------------------------- time


@pytest.mark.parametrize(
    "value",
    [
        MS,
        float(MS),
        INSTANT,
        datetime(2024, 3, 1, 12, 0, 0, 123_000),  # naive: read as UTC
        datetime(2024, 3, 1, 14, 0, 0, 123_000, tzinfo=timezone(timedelta(hours=2))),
        "2024-03-01T12:00:00.123Z",
        "2024-03-01T12:00:00.123+00:00",
        "2024-03-01T07:00:00.123-05:00",
    ],
    ids=repr,
)
def test_timestamps_accept_every_input_form(value: Any) -> None:
    record = ToolCallRecord.coerce({"id": "c", "name": "n", "createdAt": value, "startedAt": value})
    for stamp in (record.created_at, record.started_at):
        assert stamp == INSTANT
        assert stamp is not None
        assert stamp.tzinfo is not None
        assert stamp.utcoffset() == timedelta(0)
    assert record.to_wire()["createdAt"] == MS


@pytest.mark.parametrize("value", [True, "yesterday", 1.5, [1], None])
def test_bad_timestamps_name_the_field(value: Any) -> None:
    error = rejects(ToolCallRecord, {"id": "c", "name": "n", "createdAt": value}, "records[0]")
    assert error.field == "records[0].createdAt"


def test_epoch_ms_helpers_are_exact() -> None:
    assert to_epoch_ms(INSTANT) == MS
    assert to_epoch_ms(MS) == MS
    assert ms_to_datetime(MS) == INSTANT
    assert to_epoch_ms(datetime(2024, 3, 1, 12, 0, 0, 123_999, tzinfo=UTC)) == MS  # floors sub-ms
    assert to_epoch_ms(datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)) == -500
    assert to_epoch_ms(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
    assert ms_to_datetime(-1) == datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
    assert to_datetime("2024-03-01T12:00:00.123Z") == INSTANT
    with pytest.raises(ValueError):
        to_epoch_ms(True)
    now = now_utc()
    assert now.microsecond % 1000 == 0
    assert now.tzinfo is UTC


@given(st.integers(min_value=-(2**42), max_value=2**42))
def test_epoch_ms_round_trip(ms: int) -> None:
    assert to_epoch_ms(ms_to_datetime(ms)) == ms


def test_epoch_ms_fields_stay_ints() -> None:
    timeline = Timeline.coerce(
        {"cursor": 3, "bookmark": {"seq": 3, "timestamp": MS}, "event": {"channel": "monitor", "type": "x"}}
    )
    assert timeline.bookmark.timestamp == MS
    assert type(timeline.bookmark.timestamp) is int
    error = rejects(Bookmark, {"seq": True, "timestamp": 1})
    assert error.field == "Bookmark.seq"


# --------------------------------------------------------------------------- wire shape


def test_tool_call_wire_shape() -> None:
    record = ToolCallRecord.coerce(
        {
            "id": "c",
            "name": "bash",
            "input": {"cmd": "ls"},
            "state": "Completed",
            "approval": {"required": True, "decision": "allow", "decidedBy": "me", "decidedAt": MS},
            "result": {"out": "x"},
            "createdAt": MS,
            "updatedAt": MS + 1,
            "auditTrail": [{"state": "pending", "timestamp": MS}],
        }
    )
    wire = record.to_wire()
    assert wire["approval"] == {
        "required": True,
        "decision": "allow",
        "decidedBy": "me",
        "decidedAt": MS,
        "note": None,
        "meta": None,
    }
    assert wire["createdAt"] == MS
    assert wire["updatedAt"] == MS + 1
    assert wire["isError"] is False
    assert wire["auditTrail"] == [{"state": "pending", "timestamp": MS, "note": None}]
    assert ToolCallRecord.coerce(wire) == record
    # The wire shape is plain JSON.
    assert json.loads(jsoncodec.dumps(wire)) == wire


@pytest.mark.parametrize(
    ("model", "value"),
    [
        (AgentInfo, {"agentId": "a", "templateId": "t", "createdAt": MS, "lastBookmark": {"seq": 1, "timestamp": 2}}),
        (Snapshot, {"id": "s", "messages": [{"role": "user", "content": "x"}], "createdAt": MS}),
        (TodoSnapshot, {"todos": [{"id": "1", "title": "t", "createdAt": MS, "updatedAt": MS}], "updatedAt": MS}),
        (HistoryWindow, {"id": "w", "timestamp": MS, "stats": {"messageCount": 1}}),
        (MediaCacheRecord, {"key": "k", "provider": "p", "mimeType": "m", "sizeBytes": 1, "createdAt": MS}),
    ],
)
def test_wire_round_trip(model: Any, value: dict[str, Any]) -> None:
    record = model.coerce(value)
    assert model.coerce(record.to_wire()) == record
    assert model.coerce(json.loads(jsoncodec.dumps(record.to_wire()))) == record


# --------------------------------------------------------------------------- validation messages


@pytest.mark.parametrize(
    ("model", "value", "field", "words"),
    [
        (Message, {"role": "robot", "content": []}, "messages[0].role", "'user'"),
        (Message, {"role": "user", "content": [{"type": "text"}]}, "messages[0].content[0].text", "string 'text'"),
        (Message, {"role": "user", "content": [{"text": "x"}]}, "messages[0].content[0].type", "'type'"),
        (
            Message,
            {"role": "user", "content": [{"type": "tool_use", "id": "x"}]},
            "messages[0].content[0].name",
            "name",
        ),
        (Message, {"role": "user", "content": [{"type": "tool_result"}]}, "messages[0].content[0].tool_use_id", "id"),
        (Message, {"role": "user", "content": 7}, "messages[0].content", "int"),
        (Message, {"role": "user"}, "messages[0].content", "required"),
        (ToolCallRecord, {"id": "", "name": "n"}, "messages[0].id", "at least 1"),
        (ToolCallRecord, {"id": "c", "name": "n", "isError": "maybe"}, "messages[0].isError", "bool"),
        (AgentInfo, {"agentId": "a"}, "messages[0].templateId", "required"),
        (AgentInfo, {"agentId": "a", "templateId": "t", "metadata": []}, "messages[0].metadata", "object"),
        (AgentInfo, {"agentId": "a", "templateId": "t", "messageCount": True}, "messages[0].messageCount", "bool"),
    ],
)
def test_validation_errors_name_the_field(model: Any, value: Any, field: str, words: str) -> None:
    error = rejects(model, value, "messages[0]")
    assert error.field == field
    assert str(error).startswith(field)
    assert words in str(error)


def test_non_dict_record_is_rejected_with_its_name() -> None:
    error = rejects(Message, "hello", "messages[4]")
    assert error.field == "messages[4]"
    assert "str" in str(error)


def test_model_validate_raises_record_validation_error() -> None:
    with pytest.raises(RecordValidationError, match=r"^Message\.role"):
        Message.model_validate({"role": "robot", "content": []})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=repr)
def test_nan_and_infinity_are_rejected_everywhere(bad: float) -> None:
    rejects(Message, {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {"x": bad}}]})
    rejects(Message, {"role": "user", "content": "x", "metadata": {"x": [bad]}})
    rejects(Message, {"role": "user", "content": "x", "vendorExtra": bad})
    rejects(ToolCallRecord, {"id": "c", "name": "n", "result": {"x": bad}})
    rejects(
        Timeline,
        {"cursor": 1, "bookmark": {"seq": 1, "timestamp": 1}, "event": {"channel": "control", "type": "t", "v": bad}},
    )
    rejects(TodoSnapshot, {"todos": [{"id": "1", "title": "t", "extra": bad}]})


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", "\ud83d"], ids=repr)
def test_lone_surrogates_are_rejected_everywhere(bad: str) -> None:
    rejects(Message, {"role": "user", "content": bad})
    rejects(Message, {"role": "user", "content": "x", "metadata": {bad: 1}})
    rejects(ToolCallRecord, {"id": "c", "name": bad})
    rejects(AgentInfo, {"agentId": "a", "templateId": bad})
    rejects(TodoSnapshot, {"todos": [{"id": "1", "title": bad}]})
    error = rejects(ToolCallRecord, {"id": "c", "name": "n", "error": bad}, "records[1]")
    assert error.field == "records[1].error"
    assert "surrogate" in str(error)
    error = rejects(
        Message,
        {"role": "user", "content": [{"type": "text", "text": "ok"}, {"type": "text", "text": bad}]},
        "messages[2]",
    )
    assert error.field == "messages[2].content[1].text"
    error = rejects(TodoSnapshot, {"todos": [{"id": "1", "title": "t", "extra": {"k": [bad]}}]}, "todos")
    assert error.field == "todos.todos[0].extra.k[0]"


# --------------------------------------------------------------------------- the JSON codec


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**200)
    | st.integers(min_value=-(2**200), max_value=-(2**63))
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]))
    | st.sampled_from(["\x00", "a\x00b", "😀", "\U0010ffff", "𝄞\x00𝄞", "\u2028", '"\\'])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_codec_round_trips_any_json(value: Any) -> None:
    jsoncodec.check_json(value, "value")
    encoded = jsoncodec.encode(value)
    assert isinstance(encoded, bytes)
    assert_json_identical(jsoncodec.decode(encoded), value)
    assert_json_identical(jsoncodec.decode(jsoncodec.dumps(value)), value)
    assert_json_identical(jsoncodec.decode(memoryview(encoded)), value)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_records_round_trip_any_json(value: Any) -> None:
    message = Message.coerce(
        {"role": "user", "content": [{"type": "custom", "payload": value}], "metadata": {"v": value}}
    )
    wire = jsoncodec.decode(jsoncodec.encode(message.to_wire()))
    assert_json_identical(Message.coerce(wire).to_wire(), message.to_wire())


def test_codec_edge_values() -> None:
    value = {"big": 2**70, "neg": -(2**90), "u64": 2**64 - 1, "nul": "\x00", "astral": "😀", "f": 1e308}
    assert_json_identical(jsoncodec.decode(jsoncodec.encode(value)), value)
    assert jsoncodec.encode({"a": [1, 2]}) == b'{"a":[1,2]}'
    # A 20-digit string is not a big number: it must stay a string.
    assert_json_identical(
        jsoncodec.decode(jsoncodec.encode({"s": "12345678901234567890"})), {"s": "12345678901234567890"}
    )


@pytest.mark.parametrize("depth", [1, 100, 255, 256])
def test_codec_deep_nesting(depth: int) -> None:
    value: Any = 2**70 if depth % 2 else "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    assert jsoncodec.decode(jsoncodec.encode(value)) == value


def test_codec_rejects_nesting_beyond_the_limit() -> None:
    value: Any = 1
    for _ in range(5000):
        value = [value]
    with pytest.raises(RecordValidationError, match="nested deeper"):
        jsoncodec.encode(value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"a": [1, math.nan]}, "a[1]"),
        ({"a": math.inf}, "NaN and Infinity"),
        ({"a": "x\ud800"}, "surrogate"),
        ({"a": {1, 2}}, "set"),
        ({1: "x"}, "not a string"),
        ({"a": b"bytes"}, "bytes"),
    ],
    ids=repr,
)
def test_codec_rejects_non_json(value: Any, words: str) -> None:
    with pytest.raises(RecordValidationError) as info:
        jsoncodec.encode(value, "payload")
    assert words in str(info.value)
    assert str(info.value).startswith("payload")


def test_codec_sorted_keys_give_equal_bytes_for_equal_values_big_integers_included() -> None:
    one = {"b": 1, "a": {"d": [2**70, None], "c": "é"}}
    other = {"a": {"c": "é", "d": [2**70, None]}, "b": 1}
    assert jsoncodec.encode(one, sort_keys=True) == jsoncodec.encode(other, sort_keys=True)
    assert jsoncodec.encode(one, sort_keys=True) == '{"a":{"c":"é","d":[1180591620717411303424,null]},"b":1}'.encode()
    assert jsoncodec.encode({"b": 1, "a": 2}) == b'{"b":1,"a":2}'  # unsorted by default
    with pytest.raises(RecordValidationError, match="value"):
        jsoncodec.encode({"x": float("nan")}, sort_keys=True)
    # Values already validated skip the NaN walk (orjson's own null).
    assert jsoncodec.encode({"x": float("nan")}, check_finite=False) == b'{"x":null}'
