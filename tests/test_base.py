"""The pieces every backend shares (kode_sdk.store.base)."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kode_sdk import jsoncodec
from kode_sdk.errors import InvalidAgentIdError, RecordValidationError, StoreClosedError
from kode_sdk.store.base import (
    MAX_AGENT_ID_LENGTH,
    AgentLock,
    BaseStore,
    EventCommitter,
    Metrics,
    SavedListCache,
    changed_positions,
    check_channel,
    check_page,
    check_sort,
    coerce_list,
    event_row,
    fork_agent_ids,
    message_from_wire,
    message_keys,
    message_snapshot,
    message_snapshot_from_wire,
    message_to_wire,
    operation,
    operation_iter,
    prefix_upper_bound,
    share_copy,
    since_seq,
    stats_from_counts,
    time_bound,
    timeline_from_wire,
    tool_call_keys,
    tool_call_snapshot,
    updated_snapshots,
    user_id_of,
    validate_agent_id,
    wait_with_backoff,
)
from kode_sdk.types import Bookmark, Message, StorageMetrics, Timeline, ToolCallRecord, ToolCallState

# --------------------------------------------------------------------------- agent ids

VALID_IDS = ["a", "A.b_c:d-e", "agt-1", "x" * 128, "...", "a..b", ".hidden", "..x", "1", "_", "-", ":"]
INVALID_IDS: list[tuple[Any, str]] = [
    ("", "empty"),
    (".", "reserved"),
    ("..", "reserved"),
    ("../x", "'/'"),
    ("a/b", "'/'"),
    ("a\\b", "'\\\\'"),
    ("x" * 129, "129 characters"),
    ("x" * 200, "200 characters"),
    ("a\x00b", "'\\x00'"),
    ("a b", "' '"),
    ("é", "'é'"),
    ("a\nb", "'\\n'"),
    ("%", "'%'"),
    (42, "int"),
    (None, "NoneType"),
    (b"abc", "bytes"),
]


@pytest.mark.parametrize("agent_id", VALID_IDS)
def test_valid_agent_ids(agent_id: str) -> None:
    assert validate_agent_id(agent_id) == agent_id


@pytest.mark.parametrize(("agent_id", "words"), INVALID_IDS, ids=repr)
def test_invalid_agent_ids_say_why(agent_id: Any, words: str) -> None:
    with pytest.raises(InvalidAgentIdError) as info:
        validate_agent_id(agent_id)
    assert words in str(info.value)
    assert len(str(info.value)) < 200  # long ids are shortened in the message


def test_str_subclass_is_not_an_agent_id() -> None:
    class Sneaky(str):
        pass

    with pytest.raises(InvalidAgentIdError):
        validate_agent_id(Sneaky("abc"))


@given(st.text(max_size=140))
def test_valid_ids_never_escape_a_directory(agent_id: str) -> None:
    try:
        validate_agent_id(agent_id)
    except InvalidAgentIdError:
        return
    assert "/" not in agent_id
    assert "\\" not in agent_id
    assert "\x00" not in agent_id
    assert agent_id not in (".", "..")
    assert 1 <= len(agent_id) <= MAX_AGENT_ID_LENGTH
    assert agent_id.isascii()


# --------------------------------------------------------------------------- snapshots, diffs and the saved-list cache


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ([], [], []),
        ([], [1, 2], [0, 1]),
        ([1, 2, 3], [1, 2, 3], []),
        ([1, 2, 3], [1, 2, 3, 4], [3]),
        ([1, 2, 3], [1, 2], []),
        ([1, 2, 3], [], []),
        ([1, 2, 3], [1, 9, 3], [1]),
        ([1, 2, 3], [9, 2], [0]),
        ([1, 2], [2, 1, 3], [0, 1, 2]),
        # Longer than the tail compared one by one: a change in the head, in the tail, in both.
        (list(range(10)), list(range(10)), []),
        (list(range(10)), [0, 1, 99, *range(3, 10)], [2]),
        (list(range(10)), [*range(8), 99, 9, 10], [8, 10]),
        (list(range(10)), [99, *range(1, 9), 99], [0, 9]),
        (list(range(10)), [*range(7), 99, 99, 99], [7, 8, 9]),
    ],
)
def test_changed_positions(old: list[int], new: list[int], changed: list[int]) -> None:
    assert changed_positions(new, old) == changed


@given(st.lists(st.integers(0, 3), max_size=14), st.lists(st.integers(0, 3), max_size=14))
def test_changed_positions_applied_give_the_new_list(old: list[int], new: list[int]) -> None:
    changed = changed_positions(new, old)
    assert changed == sorted(set(changed))
    assert updated_snapshots(old, new, changed, lambda item: item) == new
    assert all(old[i] == new[i] for i in range(min(len(old), len(new))) if i not in changed)


def test_updated_snapshots_leaves_the_old_list_alone() -> None:
    old = [1, 2, 3]
    assert updated_snapshots(old, [1, 5], [1], lambda item: item * 10) == [1, 50]
    assert old == [1, 2, 3]


def test_share_copy_copies_containers_and_shares_leaves() -> None:
    text = "x" * 1000
    when = datetime(2026, 1, 2, tzinfo=UTC)
    value = {"a": [text, {"b": (1, when)}], "n": None, "f": 1.5, "s": ToolCallState.COMPLETED}
    copy = share_copy(value)
    assert copy == value
    assert copy is not value and copy["a"] is not value["a"] and copy["a"][1] is not value["a"][1]
    assert copy["a"][0] is text and copy["a"][1]["b"][1] is when
    value["a"][1]["b"] = (2, when)
    value["a"].append("more")
    assert copy == {"a": [text, {"b": (1, when)}], "n": None, "f": 1.5, "s": ToolCallState.COMPLETED}


def test_share_copy_of_an_unknown_object_equals_nothing() -> None:
    class Box:
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = None  # type: ignore[assignment]

    box = Box()
    assert share_copy({"x": box}) != {"x": box}
    # A message built without validation may hold anything: its position is always rewritten.
    message = Message.model_construct(role="user", content=[{"type": "custom", "value": box}])
    assert changed_positions(message_keys([message]), [message_snapshot(message)]) == [0]


def _message(text: str = "hello", meta: dict[str, Any] | None = None, **extra: Any) -> Message:
    return Message.coerce(
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": text},
                {"type": "tool_use", "id": "toolu_1", "name": "fs_read", "input": {"path": "a.txt", "lines": [1, 2]}},
            ],
            "metadata": meta,
            **extra,
        }
    )


def _saved(messages: list[Message]) -> list[Any]:
    return [message_snapshot(m) for m in messages]


def test_unchanged_messages_have_no_changed_positions() -> None:
    messages = [_message(str(i), meta={"i": i}, custom={"k": [i]}) for i in range(12)]
    saved = _saved(messages)
    assert changed_positions(message_keys(messages), saved) == []
    # Equal values in other objects are unchanged too.
    again = [_message(str(i), meta={"i": i}, custom={"k": [i]}) for i in range(12)]
    assert changed_positions(message_keys(again), saved) == []


def _mutate_text(m: Message) -> None:
    m.content[0]["text"] = "edited"


def _mutate_nested_dict(m: Message) -> None:
    m.content[1]["input"]["path"] = "b.txt"


def _mutate_nested_list(m: Message) -> None:
    m.content[1]["input"]["lines"].append(3)


def _append_block(m: Message) -> None:
    m.content.append({"type": "text", "text": "more"})


def _mutate_metadata(m: Message) -> None:
    assert m.metadata is not None
    m.metadata["i"] = -1


def _mutate_extra(m: Message) -> None:
    assert m.__pydantic_extra__ is not None
    m.__pydantic_extra__["custom"]["k"].append("x")


def _add_extra(m: Message) -> None:
    assert m.__pydantic_extra__ is not None
    m.__pydantic_extra__["new_key"] = 1


@pytest.mark.parametrize(
    "mutate",
    [
        _mutate_text,
        _mutate_nested_dict,
        _mutate_nested_list,
        _append_block,
        _mutate_metadata,
        _mutate_extra,
        _add_extra,
    ],
)
@pytest.mark.parametrize("position", [0, 5, 11])
def test_in_place_mutation_of_a_saved_message_is_detected(mutate: Callable[[Message], None], position: int) -> None:
    messages = [_message(str(i), meta={"i": i}, custom={"k": [i]}) for i in range(12)]
    saved = _saved(messages)
    mutate(messages[position])
    assert changed_positions(message_keys(messages), saved) == [position]
    # Once snapshotted afresh, the mutated message is unchanged again.
    saved = updated_snapshots(saved, messages, [position], message_snapshot)
    assert changed_positions(message_keys(messages), saved) == []


@pytest.mark.parametrize(
    "message",
    [
        _message(),
        _message(meta={"a": {"b": [1, None, True]}}),
        _message(custom={"x": 1}, other="y"),
        Message.coerce({"role": "user", "content": "plain"}),
    ],
)
def test_message_snapshot_from_wire_equals_the_message(message: Message) -> None:
    wire = jsoncodec.decode(jsoncodec.dumps(message_to_wire(message), "m"))
    assert message_snapshot_from_wire(wire) == message_snapshot(message)
    assert changed_positions(message_keys([message]), [message_snapshot_from_wire(wire)]) == []
    message.content[0]["text"] = "edited"
    assert changed_positions(message_keys([message]), [message_snapshot_from_wire(wire)]) == [0]


def _record(i: int) -> ToolCallRecord:
    return ToolCallRecord.coerce(
        {
            "id": f"toolu_{i}",
            "name": "bash",
            "input": {"cmd": "ls", "args": ["-l"]},
            "state": "completed",
            "approval": {"required": True, "decision": "allow", "meta": {"by": ["policy"]}},
            "result": {"output": "x" * 100, "lines": [1, 2]},
            "createdAt": 1_700_000_000_000 + i,
            "updatedAt": 1_700_000_000_500 + i,
            "auditTrail": [
                {"state": "pending", "timestamp": 1_700_000_000_000 + i},
                {"state": "completed", "timestamp": 1_700_000_000_500 + i, "note": "done"},
            ],
            "custom": {"k": [i]},
        }
    )


def test_unchanged_tool_calls_have_no_changed_positions() -> None:
    records = [_record(i) for i in range(12)]
    saved = [tool_call_snapshot(r) for r in records]
    assert changed_positions(tool_call_keys(records), saved) == []
    assert changed_positions(tool_call_keys([_record(i) for i in range(12)]), saved) == []
    # As read back from storage (other objects, the same values).
    loaded = [tool_call_snapshot(ToolCallRecord.model_validate(r.to_wire())) for r in records]
    assert changed_positions(tool_call_keys(records), loaded) == []
    assert [s[0]["id"] for s in saved] == [r.id for r in records]


def _set_decision(r: ToolCallRecord) -> None:
    r.approval.decision = "deny"


def _mutate_approval_meta(r: ToolCallRecord) -> None:
    assert r.approval.meta is not None
    r.approval.meta["by"].append("user")


def _add_approval_extra(r: ToolCallRecord) -> None:
    assert r.approval.__pydantic_extra__ is not None
    r.approval.__pydantic_extra__["why"] = "x"


def _replace_approval(r: ToolCallRecord) -> None:
    r.approval = r.approval.model_copy(update={"note": "new"})


def _mutate_audit_entry(r: ToolCallRecord) -> None:
    r.audit_trail[0].note = "edited"


def _append_audit_entry(r: ToolCallRecord) -> None:
    r.audit_trail.append(r.audit_trail[-1].model_copy())


def _mutate_input(r: ToolCallRecord) -> None:
    assert isinstance(r.input, dict)
    r.input["args"].append("-a")


def _mutate_result(r: ToolCallRecord) -> None:
    assert isinstance(r.result, dict)
    r.result["lines"][0] = 9


def _set_state(r: ToolCallRecord) -> None:
    r.state = ToolCallState.FAILED


def _mutate_record_extra(r: ToolCallRecord) -> None:
    assert r.__pydantic_extra__ is not None
    r.__pydantic_extra__["custom"]["k"].append(1)


@pytest.mark.parametrize(
    "mutate",
    [
        _set_decision,
        _mutate_approval_meta,
        _add_approval_extra,
        _replace_approval,
        _mutate_audit_entry,
        _append_audit_entry,
        _mutate_input,
        _mutate_result,
        _set_state,
        _mutate_record_extra,
    ],
)
@pytest.mark.parametrize("position", [0, 5, 11])
def test_in_place_mutation_of_a_saved_tool_call_is_detected(
    mutate: Callable[[ToolCallRecord], None], position: int
) -> None:
    records = [_record(i) for i in range(12)]
    saved = [tool_call_snapshot(r) for r in records]
    mutate(records[position])
    assert changed_positions(tool_call_keys(records), saved) == [position]
    saved = updated_snapshots(saved, records, [position], tool_call_snapshot)
    assert changed_positions(tool_call_keys(records), saved) == []


def test_tool_call_keys_accept_a_record_built_without_validation() -> None:
    # model_construct leaves plain dicts where models belong.
    record = ToolCallRecord.model_construct(
        id="t1", name="bash", approval={"required": False}, audit_trail=[{"state": "pending", "timestamp": 1}]
    )
    saved = [tool_call_snapshot(record)]
    assert changed_positions(tool_call_keys([record]), saved) == []
    record.audit_trail[0]["state"] = "executing"  # type: ignore[index]
    assert changed_positions(tool_call_keys([record]), saved) == [0]


def test_saved_list_cache_checks_the_version() -> None:
    cache = SavedListCache(max_agents=4)
    cache.put("a", 3, [1, 2])
    assert cache.get("a", 3) == [1, 2]
    assert cache.get("a", 4) is None  # another writer moved the version on
    assert cache.get("b", 3) is None
    cache.put("a", 4, [1])
    assert cache.get("a", 3) is None
    assert cache.get("a", 4) == [1]
    cache.drop("a")
    assert cache.get("a", 4) is None
    cache.drop("never-there")


def test_saved_list_cache_evicts_least_recently_used() -> None:
    cache = SavedListCache(max_agents=2)
    cache.put("a", 1, ["a"])
    cache.put("b", 1, ["b"])
    assert cache.get("a", 1) == ["a"]  # a is now the most recent
    cache.put("c", 1, ["c"])
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) == ["a"]
    assert cache.get("c", 1) == ["c"]
    cache.clear()
    assert cache.get("a", 1) is None


# --------------------------------------------------------------------------- metrics


def test_metrics_counters_and_summary() -> None:
    metrics = Metrics()
    assert metrics.performance().p50_latency_ms == 0.0
    for kind, method, ms in [("saves", "save_messages", 2.0), ("loads", "load_messages", 1.0), ("queries", "q", 8.0)]:
        metrics.record(kind, method, ms)
    metrics.record("deletes", "delete", 4.0, ok=False)
    ops = metrics.operations()
    assert (ops.saves, ops.loads, ops.queries, ops.deletes) == (1, 1, 1, 1)
    assert metrics.errors == 1
    perf = metrics.performance()
    assert perf.min_latency_ms == 1.0
    assert perf.max_latency_ms == 8.0
    assert perf.avg_latency_ms == pytest.approx(3.75)
    snapshot = metrics.snapshot(StorageMetrics(total_agents=2))
    assert snapshot.storage.total_agents == 2
    assert snapshot.collected_at.tzinfo is not None


latencies = st.lists(st.floats(min_value=0.01, max_value=50_000, allow_nan=False), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None)
@given(latencies)
def test_percentiles_are_ordered_and_close_to_the_truth(values: list[float]) -> None:
    metrics = Metrics()
    for value in values:
        metrics.record("saves", "save_messages", value)
    perf = metrics.performance()
    assert perf.min_latency_ms == min(values)
    assert perf.max_latency_ms == max(values)
    assert perf.min_latency_ms <= perf.p50_latency_ms <= perf.p95_latency_ms <= perf.p99_latency_ms
    assert perf.p99_latency_ms <= perf.max_latency_ms
    ordered = sorted(values)
    for q, estimate in ((0.5, perf.p50_latency_ms), (0.95, perf.p95_latency_ms), (0.99, perf.p99_latency_ms)):
        truth = ordered[max(0, math.ceil(q * len(values)) - 1)]
        # Within one histogram bucket (a factor of 10 ** 0.1).
        assert truth / 1.2590 <= estimate <= truth * 1.2590, (q, truth, estimate)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (\S+)$')


def parse_prometheus(text: str) -> tuple[dict[str, str], list[tuple[str, dict[str, str], float]]]:
    """A strict reader of the Prometheus text format 0.0.4: families with
    their TYPE, and samples ``(name, labels, value)``."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    samples = []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"TYPE given twice for {name}"
            types[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, _, labels, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"sample {name} comes before its TYPE line"
        parsed = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"', labels or ""))
        samples.append((name, parsed, float(value)))
    return types, samples


def test_prometheus_text_parses() -> None:
    metrics = Metrics()
    for ms in (0.05, 0.5, 5.0, 50.0, 500.0, 200_000.0):
        metrics.record("saves", "save_messages", ms)
    metrics.record("loads", "load_messages", 1.0, ok=False)
    text = metrics.prometheus(
        StorageMetrics(total_agents=3, total_messages=10, total_tool_calls=4, db_size_bytes=8192), backend="sqlite"
    )
    types, samples = parse_prometheus(text)
    assert types["kode_store_operations_total"] == "counter"
    assert types["kode_store_call_duration_seconds"] == "histogram"
    by_kind = {s[1]["kind"]: s[2] for s in samples if s[0] == "kode_store_operations_total"}
    assert by_kind["saves"] == 6
    assert by_kind["loads"] == 1
    assert all(s[1]["backend"] == "sqlite" for s in samples)
    assert next(s[2] for s in samples if s[0] == "kode_store_errors_total") == 1
    buckets = [(s[1]["le"], s[2]) for s in samples if s[0] == "kode_store_call_duration_seconds_bucket"]
    counts = [count for _, count in buckets]
    assert counts == sorted(counts), "histogram buckets are cumulative"
    assert buckets[-1] == ("+Inf", 7)
    bounds = [float(le) for le, _ in buckets[:-1]]
    assert bounds == sorted(bounds)
    assert next(s[2] for s in samples if s[0] == "kode_store_call_duration_seconds_count") == 7
    total_seconds = next(s[2] for s in samples if s[0] == "kode_store_call_duration_seconds_sum")
    assert total_seconds == pytest.approx(200_556.55 / 1000)
    assert next(s[2] for s in samples if s[0] == "kode_store_db_size_bytes") == 8192
    assert next(s[2] for s in samples if s[0] == "kode_store_agents") == 3
    # Without storage, the storage gauges are simply absent.
    types, _ = parse_prometheus(Metrics().prometheus())
    assert "kode_store_agents" not in types


# --------------------------------------------------------------------------- query rules


def test_prefix_upper_bound_examples() -> None:
    assert prefix_upper_bound("agent_") == "agent`"
    assert prefix_upper_bound("") is None
    assert prefix_upper_bound("\U0010ffff") is None
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\ud7ff") == "\ue000"  # surrogates are never stored


prefix_text = st.text(alphabet=st.sampled_from(["a", "b", "_", "%", "A", "`", "\x7f", "é", "\U0010ffff", "\ud7ff"]))


@settings(max_examples=300)
@given(prefix_text, st.lists(prefix_text, max_size=8))
def test_prefix_upper_bound_is_an_exact_range(prefix: str, candidates: list[str]) -> None:
    upper = prefix_upper_bound(prefix)
    for candidate in [*candidates, prefix, prefix + "x", prefix + "\U0010ffff"]:
        in_range = candidate >= prefix and (upper is None or candidate < upper)
        assert in_range == candidate.startswith(prefix), (prefix, candidate, upper)
        # Byte order of UTF-8 (SQLite BINARY, PostgreSQL "C") agrees with code-point order.
        in_bytes = candidate.encode() >= prefix.encode() and (upper is None or candidate.encode() < upper.encode())
        assert in_bytes == in_range


def test_check_sort() -> None:
    assert check_sort("created_at", "desc") == ("created_at", "desc")
    assert check_sort("message_count", "ASC") == ("message_count", "asc")
    assert check_sort("updated_at", "Desc") == ("updated_at", "desc")
    for sort_by in ("name", "created_at; DROP TABLE agents", "", "CREATED_AT"):
        with pytest.raises(ValueError, match="sort_by"):
            check_sort(sort_by, "desc")
    for order in ("up", "", "desc --"):
        with pytest.raises(ValueError, match="sort_order"):
            check_sort("created_at", order)


def test_check_page() -> None:
    assert check_page(1, 0) == (1, 0)
    assert check_page(10_000, 5) == (10_000, 5)
    for limit, offset in ((0, 0), (10_001, 0), (-1, 0), (True, 0), (1.5, 0), (10, -1), (10, False), (10, "1")):
        with pytest.raises(ValueError):
            check_page(limit, offset)  # type: ignore[arg-type]


def test_time_bound() -> None:
    assert time_bound(None, "created_after") is None
    assert time_bound(1_000, "created_after") == 1_000
    assert time_bound(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), "created_after") == 1_000
    assert time_bound(datetime(1970, 1, 1, 0, 0, 1), "created_after") == 1_000
    with pytest.raises(ValueError, match="created_before"):
        time_bound("yesterday", "created_before")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="created_before"):
        time_bound(True, "created_before")


def test_user_id_of() -> None:
    assert user_id_of(None) is None
    assert user_id_of({}) is None
    assert user_id_of({"userId": "u1"}) == "u1"
    assert user_id_of({"user_id": "u2"}) == "u2"
    assert user_id_of({"userId": "u1", "user_id": "u2"}) == "u1"
    assert user_id_of({"userId": 7}) == "7"
    assert user_id_of({"other": "x"}) is None


def test_stats_from_counts_drops_zeros_and_normalises_states() -> None:
    stats = stats_from_counts(
        total_messages=3,
        total_snapshots=1,
        messages_by_role={"user": 2, "assistant": 1, "system": 0},
        tool_calls_by_state={"COMPLETED": 2, "failed": 1, "pending": 0},
        tool_calls_by_name={"bash": 3, "fs_read": 0},
    )
    assert stats.model_dump() == {
        "total_messages": 3,
        "total_tool_calls": 3,
        "total_snapshots": 1,
        "tool_calls_by_state": {"completed": 2, "failed": 1},
        "tool_calls_by_name": {"bash": 3},
        "messages_by_role": {"user": 2, "assistant": 1},
    }


def test_fork_agent_ids_are_valid_and_unique() -> None:
    for source in ("a", "agt-1", "x" * 128, "a.fork-0123456789abcdef"):
        ids = fork_agent_ids(source, 50)
        assert len(set(ids)) == 50
        for new_id in ids:
            assert validate_agent_id(new_id) == new_id
            assert new_id != source
            assert new_id.startswith(source[:100])
    for count in (0, -1, True, 1.0):
        with pytest.raises(ValueError):
            fork_agent_ids("a", count)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- record input and events


def test_coerce_list() -> None:
    model = ToolCallRecord.coerce({"id": "a", "name": "n"})
    records = coerce_list(ToolCallRecord, [model, {"id": "b", "name": "n"}], "records")
    assert records[0] is model
    assert records[1].id == "b"
    assert coerce_list(ToolCallRecord, (r for r in [model]), "records") == [model]
    for bad in ("abc", b"abc", {"id": "a"}, 5, None):
        with pytest.raises(RecordValidationError) as info:
            coerce_list(ToolCallRecord, bad, "records")
        assert info.value.field == "records"
    with pytest.raises(RecordValidationError) as info:
        coerce_list(ToolCallRecord, [model, {"id": "c", "name": "n", "state": "nope"}], "records")
    assert info.value.field == "records[1].state"


def test_message_wire_round_trip() -> None:
    message = Message.coerce(
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
            "metadata": {"big": 2**70},
            "vendor": {"k": 1},
        }
    )
    wire = message_to_wire(message)
    assert wire == {
        "role": "assistant",
        "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"big": 2**70},
        "vendor": {"k": 1},
    }
    assert wire == message.to_wire()
    back = message_from_wire(jsoncodec.decode(jsoncodec.encode(wire)))
    assert back == message
    assert back.to_wire() == message.to_wire()
    plain = Message.coerce({"role": "user", "content": "hi"})
    assert message_to_wire(plain) == {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    assert message_from_wire(message_to_wire(plain)).metadata is None


def test_event_row_and_timeline_from_wire() -> None:
    timeline = Timeline.coerce(
        {
            "cursor": 7,
            "bookmark": {"seq": 7, "timestamp": 123},
            "event": {"channel": "monitor", "type": "tool_output", "out": "a\x00b", "n": 2**70},
            "extraKey": [1],
        }
    )
    row = event_row("agt", timeline)
    assert (row.agent_id, row.seq, row.channel, row.event_type, row.timestamp) == (
        "agt",
        7,
        "monitor",
        "tool_output",
        123,
    )
    back = timeline_from_wire(jsoncodec.decode(row.data))
    assert back.to_wire() == timeline.to_wire()
    assert back.bookmark == Bookmark(seq=7, timestamp=123)
    assert back.channel == "monitor"


def test_since_seq_and_check_channel() -> None:
    assert since_seq(None) is None
    assert since_seq(5) == 5
    assert since_seq(Bookmark(seq=6, timestamp=0)) == 6
    assert since_seq({"seq": 7, "timestamp": 0}) == 7
    timeline = Timeline.coerce(
        {"cursor": 8, "bookmark": {"seq": 8, "timestamp": 0}, "event": {"channel": "control", "type": "t"}}
    )
    assert since_seq(timeline) == 8
    for bad in (True, "5", {"seq": "5"}, {"timestamp": 1}, 5.0):
        with pytest.raises(RecordValidationError):
            since_seq(bad)
    for channel in (None, "progress", "control", "monitor"):
        assert check_channel(channel) == channel
    for channel in ("debug", "PROGRESS", ""):
        with pytest.raises(RecordValidationError, match="channel"):
            check_channel(channel)


def _row(agent: str, seq: int) -> Any:
    return event_row(
        agent,
        Timeline.coerce(
            {"cursor": seq, "bookmark": {"seq": seq, "timestamp": 0}, "event": {"channel": "progress", "type": "t"}}
        ),
    )


async def test_event_committer_shares_one_commit_and_isolates_a_bad_batch() -> None:
    commits: list[list[tuple[str, int]]] = []
    stored: set[tuple[str, int]] = set()

    async def commit(rows: list[Any]) -> None:
        await asyncio.sleep(0.01)  # a commit takes time: callers arriving meanwhile form a group
        keys = [(r.agent_id, r.seq) for r in rows]
        commits.append(keys)
        if len(set(keys)) != len(keys) or stored & set(keys):
            raise RecordValidationError("duplicate")
        stored.update(keys)

    committer = EventCommitter(commit)
    first = asyncio.ensure_future(committer.append([_row("a", 1)]))
    await asyncio.sleep(0)  # the first caller commits alone, at once
    followers = [committer.append([_row("a", seq)]) for seq in (2, 3, 4)]
    await asyncio.gather(first, *followers)
    assert commits == [[("a", 1)], [("a", 2), ("a", 3), ("a", 4)]]

    commits.clear()
    first = asyncio.ensure_future(committer.append([_row("a", 5)]))
    await asyncio.sleep(0)
    good = asyncio.ensure_future(committer.append([_row("b", 1), _row("b", 2)]))
    bad = asyncio.ensure_future(committer.append([_row("a", 2)]))  # already stored
    also_good = asyncio.ensure_future(committer.append([_row("a", 6)]))
    await first
    await good
    await also_good
    with pytest.raises(RecordValidationError):
        await bad
    assert {("b", 1), ("b", 2), ("a", 5), ("a", 6)} <= stored
    # The joint commit failed; each batch was then retried alone.
    assert commits[-3:] == [[("b", 1), ("b", 2)], [("a", 2)], [("a", 6)]]
    await committer.wait_idle()


# --------------------------------------------------------------------------- lifecycle, operations, locks


class CountingStore(BaseStore):
    backend_name = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.opened = 0
        self.closed_calls = 0

    async def _open(self) -> None:
        await asyncio.sleep(0)
        self.opened += 1

    async def _close(self) -> None:
        self.closed_calls += 1

    @operation("saves")
    async def save(self, agent_id: str, value: int) -> int:
        return value

    @operation("loads", agent=False)
    async def everything(self) -> str:
        return "all"

    @operation_iter("loads")
    async def stream(self, agent_id: str) -> AsyncIterator[int]:
        for i in range(3):
            yield i


async def test_base_store_lifecycle() -> None:
    store = CountingStore()
    assert store.opened == 0, "constructors do no I/O"
    await asyncio.gather(store.open(), store.open(), store.save("a", 1))
    assert store.opened == 1
    assert await store.save("a", 2) == 2
    assert await store.everything() == "all"
    assert [i async for i in store.stream("a")] == [0, 1, 2]
    assert store.metrics.operations().saves == 2
    assert store.metrics.operations().loads == 2
    await store.close()
    await store.close()
    assert store.closed
    assert store.closed_calls == 1
    for call in (store.save("a", 1), store.everything(), store.open()):
        with pytest.raises(StoreClosedError):
            await call
    with pytest.raises(StoreClosedError):
        [i async for i in store.stream("a")]


async def test_base_store_opens_lazily_and_async_with() -> None:
    store = CountingStore()
    assert await store.save("a", 3) == 3
    assert store.opened == 1
    await store.close()
    fresh = CountingStore()
    async with fresh as entered:
        assert entered is fresh
        assert fresh.opened == 1
    assert fresh.closed_calls == 1
    never_opened = CountingStore()
    await never_opened.close()
    assert never_opened.closed_calls == 0


async def test_operation_validates_agent_ids_and_counts_errors() -> None:
    store = CountingStore()
    with pytest.raises(InvalidAgentIdError):
        await store.save("../x", 1)
    with pytest.raises(InvalidAgentIdError):
        await store.save(agent_id="", value=1)
    with pytest.raises(InvalidAgentIdError):
        [i async for i in store.stream("a/b")]
    assert await store.save(agent_id="ok", value=5) == 5
    await store.close()


class CountingLock(AgentLock):
    def __init__(self, agent_id: str) -> None:
        super().__init__(agent_id)
        self.releases = 0

    async def _release(self) -> None:
        self.releases += 1


async def test_agent_lock_releases_once() -> None:
    lock = CountingLock("a")
    assert not lock.released
    assert "held" in repr(lock)
    await lock()
    await lock.release()
    assert lock.released
    assert lock.releases == 1
    assert "released" in repr(lock)
    other = CountingLock("b")
    async with other as entered:
        assert entered is other
    assert other.releases == 1


async def test_wait_with_backoff() -> None:
    tries = 0

    async def third_time_lucky() -> bool:
        nonlocal tries
        tries += 1
        return tries >= 3

    assert await wait_with_backoff(third_time_lucky, 5_000) is True
    assert tries == 3

    async def never() -> bool:
        return False

    assert await wait_with_backoff(never, 20) is False
    assert await wait_with_backoff(never, 0) is False
    with pytest.raises(ValueError):
        await wait_with_backoff(never, -1)
