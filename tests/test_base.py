"""The pieces every backend shares (kode_sdk.store.base)."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator
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
    EventBuffer,
    Metrics,
    SavedListCache,
    check_channel,
    check_page,
    check_sort,
    coerce_list,
    diff_lists,
    event_row,
    fork_agent_ids,
    message_from_wire,
    message_to_wire,
    operation,
    operation_iter,
    prefix_upper_bound,
    since_seq,
    stats_from_counts,
    time_bound,
    timeline_from_wire,
    user_id_of,
    validate_agent_id,
    wait_with_backoff,
)
from kode_sdk.types import Bookmark, Message, StorageMetrics, Timeline, ToolCallRecord

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


# --------------------------------------------------------------------------- diffs and the saved-list cache


@pytest.mark.parametrize(
    ("old", "new", "changed", "truncate_to"),
    [
        ([], [], [], 0),
        ([], [1, 2], [0, 1], 2),
        ([1, 2, 3], [1, 2, 3], [], 3),
        ([1, 2, 3], [1, 2, 3, 4], [3], 4),
        ([1, 2, 3], [1, 2], [], 2),
        ([1, 2, 3], [], [], 0),
        ([1, 2, 3], [1, 9, 3], [1], 3),
        ([1, 2, 3], [9, 2], [0], 2),
        ([1, 2], [2, 1, 3], [0, 1, 2], 3),
    ],
)
def test_diff_lists(old: list[int], new: list[int], changed: list[int], truncate_to: int) -> None:
    diff = diff_lists(old, new)
    assert diff.changed == changed
    assert diff.truncate_to == truncate_to
    assert diff.old_length == len(old)
    assert diff.unchanged == (old == new)


@given(st.lists(st.integers(0, 3), max_size=12), st.lists(st.integers(0, 3), max_size=12))
def test_diff_lists_applied_gives_the_new_list(old: list[int], new: list[int]) -> None:
    diff = diff_lists(old, new)
    result = old[: diff.truncate_to] + [None] * max(0, diff.truncate_to - len(old))
    for index in diff.changed:
        result[index] = new[index]
    assert result == new
    assert all(old[i] == new[i] for i in range(min(len(old), len(new))) if i not in diff.changed)


def test_diff_lists_compares_messages_by_value() -> None:
    first = [Message.coerce({"role": "user", "content": "a"}), Message.coerce({"role": "user", "content": "b"})]
    same = [Message.coerce({"role": "user", "content": "a"}), Message.coerce({"role": "user", "content": "b"})]
    assert diff_lists(first, same).unchanged
    same[1].content[0]["text"] = "changed"
    assert diff_lists(first, same).changed == [1]


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


async def test_event_buffer_queue_take_put_back() -> None:
    flushes = 0

    async def flush() -> None:
        nonlocal flushes
        flushes += 1

    buffer = EventBuffer(flush, delay_s=60, max_pending=3)
    assert not buffer.can_queue("a", 1), "an agent whose stored seqs are unknown must be written at once"
    buffer.note_max_seq("a", None)
    assert buffer.can_queue("a", -5)
    buffer.note_max_seq("a", 4)
    assert not buffer.can_queue("a", 4)
    assert not buffer.can_queue("a", 3)
    assert buffer.can_queue("a", 5)
    assert buffer.queue(_row("a", 5)) is False
    assert not buffer.can_queue("a", 5), "a queued seq counts as stored"
    assert buffer.queue(_row("a", 6)) is False
    assert buffer.queue(_row("b", 1)) is True  # full: flush now
    assert len(buffer) == 3
    rows = buffer.take()
    assert [(r.agent_id, r.seq) for r in rows] == [("a", 5), ("a", 6), ("b", 1)]
    assert len(buffer) == 0
    buffer.queue(_row("a", 7))
    buffer.put_back(rows)
    assert [(r.agent_id, r.seq) for r in buffer.take()] == [("a", 5), ("a", 6), ("b", 1), ("a", 7)]
    buffer.queue(_row("a", 8))
    buffer.queue(_row("b", 2))
    buffer.forget("a")
    assert not buffer.can_queue("a", 100)
    assert [(r.agent_id, r.seq) for r in buffer.take()] == [("b", 2)]
    buffer.cancel()
    assert flushes == 0


async def test_event_buffer_timer_flushes() -> None:
    flushed = asyncio.Event()
    buffer: EventBuffer

    async def flush() -> None:
        buffer.take()
        flushed.set()

    buffer = EventBuffer(flush, delay_s=0.001)
    buffer.note_max_seq("a", None)
    buffer.queue(_row("a", 1))
    await asyncio.wait_for(flushed.wait(), timeout=5)
    assert len(buffer) == 0


async def test_event_buffer_bounds_known_agents() -> None:
    async def flush() -> None:
        pass

    buffer = EventBuffer(flush, max_agents=2)
    for agent in ("a", "b", "c"):
        buffer.note_max_seq(agent, 1)
    assert not buffer.can_queue("a", 2), "the oldest agent was forgotten"
    assert buffer.can_queue("c", 2)


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
