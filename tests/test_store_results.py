"""The read path's row → result conversion (store/results.py) builds exactly
what validation would, without validating again."""

from __future__ import annotations

import orjson

from kode_sdk import jsoncodec
from kode_sdk.store.results import session_info_from_wire, stored_tool_call, tool_call_record_from_wire
from kode_sdk.types import AgentInfo, BreakpointState, SessionInfo, StoredToolCall, ToolCallRecord, ms_to_datetime


def _rich_record() -> ToolCallRecord:
    return ToolCallRecord.model_validate(
        {
            "id": "toolu_1",
            "name": "bash_run",
            "input": {"cmd": "ls", "big": 2**70, "nested": [1, 2.5, None, {"a": "é"}]},
            "state": "COMPLETED",
            "approval": {"required": True, "decision": "allow", "decidedAt": 1_700_000_000_123, "kept": [1]},
            "result": [1, "two"],
            "isError": True,
            "startedAt": 1_700_000_000_000,
            "completedAt": 1_700_000_000_999,
            "durationMs": 999,
            "createdAt": 1_700_000_000_000,
            "updatedAt": 1_700_000_001_000,
            "auditTrail": [{"state": "pending", "timestamp": 1}, {"state": "completed", "timestamp": 2, "why": "x"}],
            "custom": {"extra": True},
        }
    )


def test_a_record_read_back_equals_the_validated_one() -> None:
    record = _rich_record()
    wire = jsoncodec.decode(jsoncodec.encode(record.to_wire()))
    rebuilt = tool_call_record_from_wire(wire)
    assert rebuilt == record
    assert rebuilt.to_wire() == record.to_wire()
    assert type(rebuilt.duration_ms) is float
    assert rebuilt.approval.__pydantic_extra__ == {"kept": [1]}
    assert rebuilt.audit_trail[1].__pydantic_extra__ == {"why": "x"}
    assert rebuilt.__pydantic_extra__ == {"custom": {"extra": True}}
    assert stored_tool_call("agt-1", wire) == StoredToolCall.from_record("agt-1", record)


def test_the_shape_this_library_writes_reads_back_equal_to_the_validated_one() -> None:
    # No extras: every key is read directly (the fast path of stored_tool_call).
    # Then the same length with one key swapped for an unknown one, in the
    # record and in the approval: the general path must take over.
    plain = ToolCallRecord.model_validate(
        {
            "id": "toolu_2",
            "name": "bash_run",
            "input": {"cmd": "ls"},
            "state": "FAILED",
            "approval": {"required": True, "decision": "deny", "decidedAt": 1_700_000_000_123, "note": "no"},
            "isError": True,
            "durationMs": 12,
            "createdAt": 1_700_000_000_000,
            "updatedAt": 1_700_000_001_000,
            "auditTrail": [{"state": "pending", "timestamp": 1, "note": None}, {"state": "failed", "timestamp": 2}],
        }
    )
    wire = jsoncodec.decode(jsoncodec.encode(plain.to_wire()))
    assert len(wire) == len(ToolCallRecord.model_fields)
    got = stored_tool_call("agt-1", wire)
    assert got == StoredToolCall.from_record("agt-1", plain)
    assert type(got.duration_ms) is float and got.state.value == "failed"
    swapped = {**wire, "other": 1}
    del swapped["error"]
    assert stored_tool_call("agt-1", swapped) == StoredToolCall.from_record(
        "agt-1", ToolCallRecord.model_validate(swapped)
    )
    approval = {**wire["approval"], "kept": 1}
    del approval["meta"]
    odd = {**wire, "approval": approval}
    assert stored_tool_call("agt-1", odd).approval == ToolCallRecord.model_validate(odd).approval


def test_a_partial_record_is_validated_and_gets_the_defaults() -> None:
    rebuilt = tool_call_record_from_wire({"id": "t", "name": "n", "approval": {"required": True}})
    assert rebuilt.state.value == "pending"
    assert rebuilt.approval.required is True
    assert rebuilt.audit_trail == []


def test_a_session_read_back_equals_one_built_with_validation() -> None:
    info = AgentInfo.model_validate(
        {"agentId": "agt-1", "templateId": "tpl", "breakpoint": "READY", "lastSfpIndex": 4, "metadata": {"k": 1}}
    )
    wire = orjson.loads(orjson.dumps(info.to_wire()))
    got = session_info_from_wire("agt-1", 5, 6, 7, wire)
    assert got == SessionInfo(
        agent_id="agt-1",
        template_id="tpl",
        created_at=ms_to_datetime(5),
        updated_at=ms_to_datetime(6),
        message_count=7,
        last_sfp_index=4,
        breakpoint=BreakpointState.READY,
        metadata={"k": 1},
    )


def test_ms_to_datetime_is_exact_on_both_sides_of_1970() -> None:
    assert ms_to_datetime(-1).isoformat() == "1969-12-31T23:59:59.999000+00:00"
    assert ms_to_datetime(1_700_000_000_123).isoformat() == "2023-11-14T22:13:20.123000+00:00"
