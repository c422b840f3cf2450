"""The conformance tests of the :class:`~kode_sdk.store.protocols.Store` protocol."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import pytest
import pytest_asyncio

from ..errors import InvalidAgentIdError, LockTimeoutError, RecordValidationError, StoreClosedError
from ..store.capabilities import AgentLocking
from ..store.records import kind_named
from ..types import (
    AgentInfo,
    CompressionRecord,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    RecoveredFile,
    Snapshot,
    Timeline,
    TodoSnapshot,
    ToolCallRecord,
    ToolCallState,
)
from . import data
from .catalog_suite import CatalogConformance
from .data import BIG_INT, NEGATIVE_BIG_INT, assert_records_equal, assert_utc, unique_prefix
from .transaction_suite import TransactionConformance

__all__ = ["StoreConformance"]

F = TypeVar("F", bound=Callable[..., Any])
_HAS_LOOP_SCOPE = "loop_scope" in inspect.signature(pytest_asyncio.fixture).parameters


def async_fixture(fn: F) -> F:
    """``pytest_asyncio.fixture`` pinned to the test's own (function-scoped)
    event loop, whatever the host project's ``asyncio_default_fixture_loop_scope``
    says (pytest-asyncio before 0.24 has no ``loop_scope`` and always did that)."""
    if _HAS_LOOP_SCOPE:
        return cast(F, pytest_asyncio.fixture(loop_scope="function")(fn))
    return cast(F, pytest_asyncio.fixture(fn))


StoreFactory = Callable[[], Any]
OpenStore = Callable[[], Awaitable[Any]]


async def _enter_lock(store: Any, agent_id: str, timeout_ms: int) -> None:
    """Enter and leave ``store.agent_lock(agent_id)``."""
    async with store.agent_lock(agent_id, timeout_ms=timeout_ms):
        pass


def _has_locks(store: Any) -> bool:
    # A bool, not a narrowing isinstance: the test goes on using the whole store.
    return isinstance(store, AgentLocking)


async def drain(events: AsyncIterator[Timeline]) -> list[Timeline]:
    """Collect everything an async iterator (``read_events``) yields."""
    return [event async for event in events]


TEXT = {"role": "user", "content": [{"type": "text", "text": "hi"}]}


def _calls() -> dict[str, Callable[[Any, Any], Awaitable[Any]]]:
    """One valid call of every agent-id method of Store, given a store and an id."""
    return {
        "save_messages": lambda s, a: s.save_messages(a, [TEXT]),
        "load_messages": lambda s, a: s.load_messages(a),
        "append_messages": lambda s, a: s.append_messages(a, [TEXT]),
        "save_tool_call_records": lambda s, a: s.save_tool_call_records(a, [data.tool_call("c1")]),
        "load_tool_call_records": lambda s, a: s.load_tool_call_records(a),
        "save_todos": lambda s, a: s.save_todos(a, data.todos()),
        "load_todos": lambda s, a: s.load_todos(a),
        "append_event": lambda s, a: s.append_event(a, data.timeline(1)),
        "append_events": lambda s, a: s.append_events(a, [data.timeline(1)]),
        "read_events": lambda s, a: drain(s.read_events(a)),
        "save_history_window": lambda s, a: s.save_history_window(a, data.history_window("w1")),
        "load_history_windows": lambda s, a: s.load_history_windows(a),
        "save_compression_record": lambda s, a: s.save_compression_record(a, data.compression_record("r1")),
        "load_compression_records": lambda s, a: s.load_compression_records(a),
        "save_recovered_file": lambda s, a: s.save_recovered_file(a, data.recovered_file("a.py")),
        "load_recovered_files": lambda s, a: s.load_recovered_files(a),
        "save_media_cache": lambda s, a: s.save_media_cache(a, [data.media_cache("k1")]),
        "load_media_cache": lambda s, a: s.load_media_cache(a),
        "save_snapshot": lambda s, a: s.save_snapshot(a, data.snapshot("s1")),
        "load_snapshot": lambda s, a: s.load_snapshot(a, "s1"),
        "list_snapshots": lambda s, a: s.list_snapshots(a),
        "save_info": lambda s, a: s.save_info(a, data.info(a if isinstance(a, str) else "x")),
        "load_info": lambda s, a: s.load_info(a),
        "exists": lambda s, a: s.exists(a),
        "delete": lambda s, a: s.delete(a),
    }


STORE_CALLS = _calls()
BAD_AGENT_IDS: list[Any] = ["", "../x", "a/b", "..", ".", "x" * 200, "a\x00b", "a b", "é", 42, None, b"abc"]


async def assert_rejects_bad_agent_ids(call: Callable[[Any, Any], Awaitable[Any]], store: Any) -> None:
    """``call(store, agent_id)`` raises :class:`InvalidAgentIdError` for every id of :data:`BAD_AGENT_IDS`."""
    for bad in BAD_AGENT_IDS:
        with pytest.raises(InvalidAgentIdError):
            await call(store, bad)


class StoreConformance(TransactionConformance, CatalogConformance):
    """Conformance tests every :class:`~kode_sdk.store.protocols.Store` passes.

    Subclass it in a test module and provide one fixture, ``store_factory``: a
    zero-argument callable returning a NEW, unopened store over the SAME
    storage on every call (the suite closes and reopens stores to check
    persistence)::

        class TestMyStore(StoreConformance):
            @pytest.fixture
            def store_factory(self, tmp_path):
                return lambda: MyStore(tmp_path / "data")

    Every test uses agent ids under a fresh random prefix, so a factory may
    point at a shared database.
    """

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Override me: return a zero-arg callable making a new, unopened store
        over the same storage each call."""
        raise NotImplementedError(
            f"{type(self).__name__} must define a `store_factory` fixture returning a zero-argument callable "
            "that makes a new, unopened store over the same storage each time"
        )

    @async_fixture
    async def open_store(self, store_factory: StoreFactory) -> AsyncIterator[OpenStore]:
        """An async callable opening one more store over the same storage;
        every store it made is closed after the test."""
        made: list[Any] = []

        async def make() -> Any:
            store = store_factory()
            made.append(store)
            await store.open()
            return store

        yield make
        for store in reversed(made):
            await store.close()

    @async_fixture
    async def store(self, open_store: OpenStore) -> Any:
        """An opened store, closed after the test."""
        return await open_store()

    @pytest.fixture
    def ns(self) -> str:
        """A fresh agent-id prefix for this test."""
        return unique_prefix()

    async def reopen(self, store: Any, open_store: OpenStore) -> Any:
        """Close ``store`` and open a new one over the same storage."""
        await store.close()
        return await open_store()

    # ------------------------------------------------------------------ lifecycle

    @pytest.mark.asyncio
    async def test_constructor_does_no_io_and_store_opens_on_first_use(
        self, store_factory: StoreFactory, ns: str
    ) -> None:
        store = store_factory()
        try:
            await store.save_messages(ns + "a", [TEXT])
            assert_records_equal(await store.load_messages(ns + "a"), [TEXT], Message)
        finally:
            await store.close()

    @pytest.mark.asyncio
    async def test_open_is_idempotent_and_keeps_data(self, store: Any, ns: str) -> None:
        await store.save_messages(ns + "a", [TEXT])
        await store.open()
        await store.open()
        assert_records_equal(await store.load_messages(ns + "a"), [TEXT], Message)

    @pytest.mark.asyncio
    async def test_async_with_opens_and_closes(self, store_factory: StoreFactory, ns: str) -> None:
        store = store_factory()
        async with store as entered:
            assert entered is store
            await store.save_info(ns + "a", data.info(ns + "a"))
            assert await store.exists(ns + "a") is True
        with pytest.raises(StoreClosedError):
            await store.exists(ns + "a")

    @pytest.mark.asyncio
    async def test_close_twice_is_harmless(self, store: Any) -> None:
        await store.close()
        await store.close()
        with pytest.raises(StoreClosedError):
            await store.list()

    @pytest.mark.asyncio
    async def test_close_without_open_is_harmless(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        await store.close()
        with pytest.raises(StoreClosedError):
            await store.list()

    @pytest.mark.asyncio
    @pytest.mark.parametrize("method", [*STORE_CALLS, "list", "open"])
    async def test_closed_store_raises_on_every_method(self, store: Any, ns: str, method: str) -> None:
        await store.save_info(ns + "a", data.info(ns + "a"))
        await store.close()
        with pytest.raises(StoreClosedError):
            if method == "list":
                await store.list()
            elif method == "open":
                await store.open()
            else:
                await STORE_CALLS[method](store, ns + "a")

    @pytest.mark.asyncio
    @pytest.mark.parametrize("method", list(STORE_CALLS))
    async def test_invalid_agent_id_raises_on_every_method(self, store: Any, method: str) -> None:
        await assert_rejects_bad_agent_ids(STORE_CALLS[method], store)
        assert [a for a in await store.list() if not isinstance(a, str) or "/" in a or "\x00" in a] == []

    @pytest.mark.asyncio
    async def test_valid_agent_id_edge_cases(self, store: Any, ns: str) -> None:
        longest = (ns + "x" * 128)[:128]
        for agent_id in (longest, ns + "A.b_c:d-e", ns + "..x", ns + "."):
            await store.save_info(agent_id, data.info(agent_id))
            await store.save_messages(agent_id, [TEXT])
            assert await store.exists(agent_id) is True, agent_id
            assert_records_equal(await store.load_messages(agent_id), [TEXT], Message, agent_id)

    # ------------------------------------------------------------------ messages

    @pytest.mark.asyncio
    async def test_messages_round_trip_exactly(self, store: Any, ns: str) -> None:
        messages = data.conversation()
        await store.save_messages(ns + "a", messages)
        loaded = await store.load_messages(ns + "a")
        assert_records_equal(loaded, messages, Message)
        # Extra keys and unknown blocks survive untouched.
        assert loaded[0].content[0]["cache_control"] == {"type": "ephemeral"}
        assert loaded[3].content[0] == {"type": "thinking", "thinking": "two files", "signature": "sig=="}
        assert loaded[2].content[0]["tool_use_id"] == "toolu_1"

    @pytest.mark.asyncio
    async def test_message_models_and_dicts_are_equivalent(self, store: Any, ns: str) -> None:
        messages = [Message.model_validate(m) for m in data.conversation()]
        await store.save_messages(ns + "a", messages)
        assert_records_equal(await store.load_messages(ns + "a"), data.conversation(), Message)

    @pytest.mark.asyncio
    async def test_unknown_agent_loads_empty(self, store: Any, ns: str) -> None:
        await self._assert_empty(store, ns + "nobody")

    @pytest.mark.asyncio
    async def test_save_messages_replaces_and_truncates(self, store: Any, ns: str) -> None:
        messages = data.conversation()
        await store.save_messages(ns + "a", messages)
        await store.save_messages(ns + "a", messages[:2])
        assert_records_equal(await store.load_messages(ns + "a"), messages[:2], Message)
        await store.save_messages(ns + "a", [])
        assert await store.load_messages(ns + "a") == []
        await store.save_messages(ns + "a", messages[1:])
        assert_records_equal(await store.load_messages(ns + "a"), messages[1:], Message)

    @pytest.mark.asyncio
    async def test_growing_list_saved_turn_by_turn(self, store: Any, ns: str) -> None:
        messages: list[dict[str, Any]] = []
        for turn in range(6):
            messages += data.conversation(f"-{turn}")
            await store.save_messages(ns + "a", messages)
        assert_records_equal(await store.load_messages(ns + "a"), messages, Message)

    @pytest.mark.asyncio
    async def test_in_place_change_of_earlier_message_is_persisted(
        self, store: Any, open_store: OpenStore, ns: str
    ) -> None:
        # A store that diffs against the list it saw last must keep a copy, not
        # a reference: the caller may change an earlier message in place.
        models = [Message.model_validate(m) for m in data.conversation()]
        await store.save_messages(ns + "a", models)
        models[0].content[0]["text"] = "edited in place"
        models[1].content[1]["input"]["n"] = 4
        await store.save_messages(ns + "a", models)
        expected = data.conversation()
        expected[0]["content"][0]["text"] = "edited in place"
        expected[1]["content"][1]["input"]["n"] = 4
        assert_records_equal(await store.load_messages(ns + "a"), expected, Message)
        dicts = data.conversation()
        await store.save_messages(ns + "b", dicts)
        dicts[2]["content"][0]["content"] = "changed"
        await store.save_messages(ns + "b", dicts)
        reopened = await self.reopen(store, open_store)
        assert_records_equal(await reopened.load_messages(ns + "a"), expected, Message)
        assert_records_equal(await reopened.load_messages(ns + "b"), dicts, Message)

    @pytest.mark.asyncio
    async def test_callers_cannot_mutate_stored_messages(self, store: Any, ns: str) -> None:
        messages = data.conversation()
        await store.save_messages(ns + "a", messages)
        messages[0]["content"][0]["text"] = "mutated input"
        loaded = await store.load_messages(ns + "a")
        loaded[1].content[1]["input"]["pattern"] = "mutated output"
        loaded[0].content.append({"type": "text", "text": "appended"})
        assert_records_equal(await store.load_messages(ns + "a"), data.conversation(), Message)

    @pytest.mark.asyncio
    async def test_append_messages(self, store: Any, ns: str) -> None:
        messages = data.conversation()
        await store.append_messages(ns + "a", messages[:1])
        await store.append_messages(ns + "a", messages[1:3])
        await store.append_messages(ns + "a", [])
        await store.append_messages(ns + "a", messages[3:])
        assert_records_equal(await store.load_messages(ns + "a"), messages, Message)
        await store.save_messages(ns + "b", messages[:2])
        await store.append_messages(ns + "b", messages[2:])
        assert_records_equal(await store.load_messages(ns + "b"), messages, Message)
        await store.save_messages(ns + "b", messages[:1])
        assert_records_equal(await store.load_messages(ns + "b"), messages[:1], Message)

    @pytest.mark.asyncio
    async def test_save_messages_updates_message_count(self, store: Any, ns: str) -> None:
        await store.save_info(ns + "a", data.info(ns + "a"))
        await store.save_messages(ns + "a", data.conversation())
        loaded = await store.load_info(ns + "a")
        assert loaded is not None
        assert loaded.message_count == 4
        await store.save_messages(ns + "a", data.conversation()[:1])
        loaded = await store.load_info(ns + "a")
        assert loaded is not None
        assert loaded.message_count == 1

    @pytest.mark.asyncio
    async def test_agents_are_independent(self, store: Any, ns: str) -> None:
        await store.save_messages(ns + "a", data.conversation("-a"))
        await store.save_messages(ns + "b", data.conversation("-b")[:2])
        await store.save_messages(ns + "a", data.conversation("-a")[:3])
        assert_records_equal(await store.load_messages(ns + "a"), data.conversation("-a")[:3], Message)
        assert_records_equal(await store.load_messages(ns + "b"), data.conversation("-b")[:2], Message)

    # ------------------------------------------------------------------ JSON exactness

    @pytest.mark.asyncio
    async def test_json_edge_values_round_trip(self, store: Any, open_store: OpenStore, ns: str) -> None:
        tricky = {
            "nul": "a\x00b\x00",
            "astral": "𝄞 😀 \U0010ffff",
            "big": BIG_INT,
            "negative_big": NEGATIVE_BIG_INT,
            "max64": 2**63 - 1,
            "min64": -(2**63),
            "float": 0.1,
            "tiny": 5e-324,
            "bool": True,
            "null": None,
            "empty": {"": [], "x": {}},
            "escapes": 'quote" backslash\\ tab\t newline\n \u2028 \x7f',
            "nested": [[[[{"deep": [1, [2, [3]]]}]]]],
        }
        messages = [
            {"role": "user", "content": [{"type": "text", "text": "nul \x00 inside, astral 🎉"}], "metadata": tricky},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t\x001", "name": "run", "input": tricky}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t\x001", "content": tricky}]},
        ]
        call = data.tool_call("c1", result=tricky)
        call["input"] = tricky
        event = data.timeline(1, "monitor", "tool_output", output=tricky)
        await store.save_messages(ns + "a", messages)
        await store.save_tool_call_records(ns + "a", [call])
        await store.append_event(ns + "a", event)
        await store.save_info(ns + "a", data.info(ns + "a", metadata=tricky))
        current = store
        for _ in range(2):
            assert_records_equal(await current.load_messages(ns + "a"), messages, Message)
            assert_records_equal(await current.load_tool_call_records(ns + "a"), [call], ToolCallRecord)
            assert_records_equal(await drain(current.read_events(ns + "a")), [event], Timeline)
            assert_records_equal(await current.load_info(ns + "a"), data.info(ns + "a", metadata=tricky), AgentInfo)
            current = await self.reopen(current, open_store)

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        "bad", [float("nan"), float("inf"), float("-inf"), "lone \ud800 surrogate", "\udfff"], ids=repr
    )
    async def test_non_json_values_raise_and_change_nothing(self, store: Any, ns: str, bad: Any) -> None:
        agent = ns + "a"
        messages = data.conversation()
        calls = [data.tool_call("c1")]
        await store.save_info(agent, data.info(agent))
        await store.save_messages(agent, messages)
        await store.save_tool_call_records(agent, calls)
        await store.append_event(agent, data.timeline(1))
        await store.save_todos(agent, data.todos())
        await store.save_snapshot(agent, data.snapshot("s1"))

        bad_message: dict[str, Any] = {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "x", "name": "n", "input": {"v": [bad]}}],
        }
        bad_text = {"role": "user", "content": [{"type": "text", "text": bad}]} if isinstance(bad, str) else None
        bad_call = data.tool_call("c2", result={"v": bad})
        bad_todos = data.todos(2)
        bad_todos["todos"][0]["title"] = bad if isinstance(bad, str) else "ok"
        bad_todos["todos"][0]["extra"] = bad
        attempts: list[Callable[[], Awaitable[Any]]] = [
            lambda: store.save_messages(agent, [*messages, bad_message]),
            lambda: store.append_messages(agent, [bad_message]),
            lambda: store.save_tool_call_records(agent, [*calls, bad_call]),
            lambda: store.append_event(agent, data.timeline(2, value=bad)),
            lambda: store.save_info(agent, data.info(agent, metadata={"v": bad})),
            lambda: store.save_todos(agent, bad_todos),
            lambda: store.save_snapshot(agent, {**data.snapshot("s2"), "metadata": {"v": bad}}),
            lambda: store.save_media_cache(agent, [{**data.media_cache("k"), "extra": bad}]),
        ]
        if bad_text is not None:
            attempts.append(lambda: store.save_messages(agent, [bad_text]))
        for index, attempt in enumerate(attempts):
            with pytest.raises(RecordValidationError):
                await attempt()
                pytest.fail(f"attempt {index} with {bad!r} was accepted")
        assert_records_equal(await store.load_messages(agent), messages, Message)
        assert_records_equal(await store.load_tool_call_records(agent), calls, ToolCallRecord)
        assert_records_equal(await drain(store.read_events(agent)), [data.timeline(1)], Timeline)
        assert_records_equal(await store.load_info(agent), data.info(agent, message_count=4), AgentInfo)
        assert_records_equal(await store.load_todos(agent), data.todos(), TodoSnapshot)
        assert_records_equal(await store.list_snapshots(agent), [data.snapshot("s1")], Snapshot)
        assert await store.load_media_cache(agent) == []

    @pytest.mark.asyncio
    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=repr)
    async def test_models_made_non_json_after_validation_are_refused(self, store: Any, ns: str, bad: float) -> None:
        # Validation refuses NaN and Infinity, but a model's JSON fields can
        # be changed in place afterwards: no save may then store them (as
        # null, or as the string "NaN"). A genuine string "NaN" is kept.
        agent = ns + "a"
        message = Message.model_validate({"role": "user", "content": [{"type": "text", "text": "NaN"}]})
        call = ToolCallRecord.model_validate(data.tool_call("c1", result={"v": "Infinity"}))
        await store.save_messages(agent, [message])
        await store.save_tool_call_records(agent, [call])
        await store.save_info(agent, data.info(agent))
        before = await store.load_info(agent)

        def spoiled(model: Any, edit: Callable[[Any], None]) -> Any:
            copy = model.model_copy(deep=True)
            edit(copy)
            return copy

        bad_call = spoiled(call, lambda c: c.result.update(v=bad))
        bad_info = spoiled(AgentInfo.model_validate(data.info(agent)), lambda i: i.metadata.update(v=bad))
        bad_todos = spoiled(TodoSnapshot.model_validate(data.todos(2)), lambda t: setattr(t.todos[0], "extra", bad))
        bad_snapshot = spoiled(Snapshot.model_validate(data.snapshot("s2")), lambda s: s.metadata.update(v=bad))
        bad_window = spoiled(
            HistoryWindow.model_validate(data.history_window("w1")), lambda w: setattr(w.stats, "extra", bad)
        )
        bad_message = spoiled(message, lambda m: m.content.append({"type": "extension", "v": bad}))
        attempts: list[Callable[[], Awaitable[Any]]] = [
            lambda: store.save_tool_call_records(agent, [call, bad_call]),
            lambda: store.upsert_tool_call_record(agent, bad_call),
            lambda: store.save_info(agent, bad_info),
            lambda: store.save_todos(agent, bad_todos),
            lambda: store.save_snapshot(agent, bad_snapshot),
            lambda: store.save_history_window(agent, bad_window),
            lambda: store.save_messages(agent, [message, bad_message]),
            lambda: store.append_messages(agent, [bad_message]),
        ]
        for index, attempt in enumerate(attempts):
            with pytest.raises(RecordValidationError):
                await attempt()
                pytest.fail(f"attempt {index} with {bad!r} was accepted")
        assert_records_equal(await store.load_messages(agent), [message], Message)
        assert_records_equal(await store.load_tool_call_records(agent), [call], ToolCallRecord)
        assert_records_equal(await store.load_info(agent), before, AgentInfo)
        assert await store.load_todos(agent) is None
        assert await store.list_snapshots(agent) == []
        assert await store.load_history_windows(agent) == []

    @pytest.mark.asyncio
    async def test_invalid_records_raise_record_validation_error(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        await store.save_messages(agent, [TEXT])
        bad_inputs: list[Callable[[], Awaitable[Any]]] = [
            lambda: store.save_messages(agent, [{"role": "robot", "content": []}]),
            lambda: store.save_messages(agent, [{"role": "user", "content": [{"type": "text"}]}]),
            lambda: store.save_messages(agent, [TEXT, "not a message"]),
            lambda: store.save_tool_call_records(agent, [{"id": "x", "name": "n", "state": "exploded"}]),
            lambda: store.save_info(agent, {"agentId": agent}),
            lambda: store.append_event(agent, {"cursor": 1, "bookmark": {"seq": 1}, "event": {"channel": "progress"}}),
        ]
        for attempt in bad_inputs:
            with pytest.raises(RecordValidationError):
                await attempt()
        assert_records_equal(await store.load_messages(agent), [TEXT], Message)
        assert await store.load_tool_call_records(agent) == []
        assert await store.exists(agent) is False

    # ------------------------------------------------------------------ tool calls

    @pytest.mark.asyncio
    async def test_tool_call_records_round_trip_every_state(self, store: Any, ns: str) -> None:
        records: list[Any] = [
            data.tool_call(f"call-{state.value}", state=state.value.upper(), created_ms=i, approval_required=i % 2 == 0)
            for i, state in enumerate(ToolCallState)
        ]
        records.append({"id": "minimal", "name": "noop", "createdAt": data.BASE_MS, "updatedAt": data.BASE_MS})
        records.append(ToolCallRecord.model_validate(data.tool_call("model", state="Sealed", is_error=True)))
        await store.save_tool_call_records(ns + "a", records)
        loaded = await store.load_tool_call_records(ns + "a")
        assert_records_equal(loaded, records, ToolCallRecord)
        assert [r.state for r in loaded[: len(ToolCallState)]] == list(ToolCallState)
        assert all(isinstance(r.state, ToolCallState) for r in loaded)
        first = loaded[0]
        assert first.approval.required is True
        assert first.approval.decision == "allow"
        assert first.approval.decided_at == data.at(5)
        assert_utc(first.approval.decided_at, "approval.decided_at")
        for name in ("created_at", "updated_at", "started_at", "completed_at"):
            assert_utc(getattr(first, name), name)
        assert first.created_at == data.at(0)
        assert [e.timestamp for e in first.audit_trail] == [data.BASE_MS, data.BASE_MS + 10, data.BASE_MS + 40]
        assert first.audit_trail[1].note == "started"

    @pytest.mark.asyncio
    async def test_tool_call_records_replace_whole_list(self, store: Any, ns: str) -> None:
        first = [data.tool_call("c1"), data.tool_call("c2", state="failed", is_error=True)]
        updated = [data.tool_call("c2", state="sealed"), data.tool_call("c3", state="pending")]
        await self._assert_saves_replace(store, ns + "a", "tool_call", first, updated)

    async def _assert_saves_replace(self, store: Any, agent: str, name: str, *lists: list[Any]) -> None:
        """Each save of the list kind ``name`` (``lists``, then an empty list)
        replaces the whole list: a load gives back exactly what was saved."""
        kind = kind_named(name)
        for records in (*lists, []):
            await getattr(store, kind.save)(agent, records)
            assert_records_equal(await getattr(store, kind.load)(agent), records, kind.model)

    @pytest.mark.asyncio
    async def test_tool_call_record_changed_in_place_is_persisted(self, store: Any, ns: str) -> None:
        records = [ToolCallRecord.model_validate(data.tool_call("c1", state="executing"))]
        await store.save_tool_call_records(ns + "a", records)
        records[0].state = ToolCallState.COMPLETED
        records[0].result = {"stdout": "done"}
        await store.save_tool_call_records(ns + "a", records)
        loaded = await store.load_tool_call_records(ns + "a")
        assert loaded[0].state is ToolCallState.COMPLETED
        assert loaded[0].result == {"stdout": "done"}

    # ------------------------------------------------------------------ todos

    @pytest.mark.asyncio
    async def test_todos_round_trip_and_replace(self, store: Any, ns: str) -> None:
        await store.save_todos(ns + "a", data.todos(1))
        assert_records_equal(await store.load_todos(ns + "a"), data.todos(1), TodoSnapshot)
        await store.save_todos(ns + "a", TodoSnapshot.model_validate(data.todos(2)))
        loaded = await store.load_todos(ns + "a")
        assert_records_equal(loaded, data.todos(2), TodoSnapshot)
        assert loaded.version == 2
        assert_utc(loaded.todos[1].created_at, "todos[1].created_at")
        await store.save_todos(ns + "a", {"todos": [], "version": 3, "updatedAt": data.BASE_MS})
        assert_records_equal(
            await store.load_todos(ns + "a"), {"todos": [], "version": 3, "updatedAt": data.BASE_MS}, TodoSnapshot
        )

    # ------------------------------------------------------------------ events

    @pytest.mark.asyncio
    async def test_events_read_in_seq_order_across_channels(self, store: Any, ns: str) -> None:
        channels = ["progress", "monitor", "control", "progress", "progress", "monitor", "control", "progress"]
        events = [data.timeline(seq, channel) for seq, channel in enumerate(channels, start=1)]
        for event in events:
            await store.append_event(ns + "a", event)
        # Read-your-writes: visible at once, in global seq order.
        assert_records_equal(await drain(store.read_events(ns + "a")), events, Timeline)
        by_channel = {c: [e for e in events if e["event"]["channel"] == c] for c in set(channels)}
        for channel, expected in by_channel.items():
            assert_records_equal(await drain(store.read_events(ns + "a", channel=channel)), expected, Timeline)

    @pytest.mark.asyncio
    async def test_events_read_in_seq_order_when_appended_out_of_order(self, store: Any, ns: str) -> None:
        seqs = [10, 2, 7, 1, 30]
        for seq in seqs:
            await store.append_event(ns + "a", data.timeline(seq, "control" if seq % 2 else "progress"))
        loaded = await drain(store.read_events(ns + "a"))
        assert [e.bookmark.seq for e in loaded] == sorted(seqs)

    @pytest.mark.asyncio
    async def test_read_events_since(self, store: Any, ns: str) -> None:
        events = [data.timeline(seq, ("progress", "monitor", "control")[seq % 3]) for seq in range(1, 11)]
        for event in events:
            await store.append_event(ns + "a", event)
        bookmark = Timeline.model_validate(events[5]).bookmark  # seq 6
        assert_records_equal(await drain(store.read_events(ns + "a", since=bookmark)), events[6:], Timeline)
        assert_records_equal(
            await drain(store.read_events(ns + "a", since={"seq": 6, "timestamp": 0})), events[6:], Timeline
        )
        assert_records_equal(
            await drain(store.read_events(ns + "a", since=bookmark, channel="progress")),
            [e for e in events[6:] if e["event"]["channel"] == "progress"],
            Timeline,
        )
        assert await drain(store.read_events(ns + "a", since={"seq": 10, "timestamp": 0})) == []
        assert_records_equal(
            await drain(store.read_events(ns + "a", since={"seq": 0, "timestamp": 0})), events, Timeline
        )

    @pytest.mark.asyncio
    async def test_read_events_is_an_async_generator_with_read_your_writes(self, store: Any, ns: str) -> None:
        await store.append_event(ns + "a", data.timeline(1))
        iterator = store.read_events(ns + "a")
        assert hasattr(iterator, "__anext__")
        first = await iterator.__anext__()
        assert first.bookmark.seq == 1
        with pytest.raises(StopAsyncIteration):
            await iterator.__anext__()
        await store.append_event(ns + "a", data.timeline(2, "monitor"))
        assert [e.bookmark.seq for e in await drain(store.read_events(ns + "a"))] == [1, 2]
        assert [e.bookmark.seq for e in await drain(store.read_events(ns + "a", channel="monitor"))] == [2]

    @pytest.mark.asyncio
    async def test_duplicate_event_seq_raises(self, store: Any, open_store: OpenStore, ns: str) -> None:
        await store.append_event(ns + "a", data.timeline(1))
        await store.append_event(ns + "a", data.timeline(2, "monitor"))
        with pytest.raises(RecordValidationError):
            await store.append_event(ns + "a", data.timeline(2, "progress", "other"))
        with pytest.raises(RecordValidationError):
            await store.append_event(ns + "a", data.timeline(1, "control", "again"))
        # The same seq under another agent is fine.
        await store.append_event(ns + "b", data.timeline(1))
        reopened = await self.reopen(store, open_store)
        with pytest.raises(RecordValidationError):
            await reopened.append_event(ns + "a", data.timeline(2))
        assert_records_equal(
            await drain(reopened.read_events(ns + "a")), [data.timeline(1), data.timeline(2, "monitor")], Timeline
        )

    @pytest.mark.asyncio
    async def test_duplicate_seq_seen_by_a_second_store_instance(
        self, store: Any, open_store: OpenStore, ns: str
    ) -> None:
        other = await open_store()
        await store.append_event(ns + "a", data.timeline(1))
        await store.append_event(ns + "a", data.timeline(2))
        await store.close()
        with pytest.raises(RecordValidationError):
            await other.append_event(ns + "a", data.timeline(2))
        assert [e.bookmark.seq for e in await drain(other.read_events(ns + "a"))] == [1, 2]

    @pytest.mark.asyncio
    async def test_an_acknowledged_event_is_stored_for_every_other_store(
        self, store: Any, open_store: OpenStore, ns: str
    ) -> None:
        # Acknowledged means committed: once append_event returns, another
        # store object (another worker) sees the event and cannot take its seq.
        other = await open_store()
        for seq in range(1, 6):
            await store.append_event(ns + "a", data.timeline(seq))
            assert [e.bookmark.seq for e in await drain(other.read_events(ns + "a"))] == list(range(1, seq + 1))
            with pytest.raises(RecordValidationError):
                await other.append_event(ns + "a", data.timeline(seq, "monitor"))
        await store.append_events(ns + "a", [data.timeline(6), data.timeline(7, "control")])
        assert [e.bookmark.seq for e in await drain(other.read_events(ns + "a"))] == list(range(1, 8))

    @pytest.mark.asyncio
    async def test_append_events_round_trip(self, store: Any, open_store: OpenStore, ns: str) -> None:
        events = [data.timeline(seq, ("progress", "monitor", "control")[seq % 3]) for seq in range(1, 121)]
        for start in range(0, len(events), 50):
            await store.append_events(ns + "a", events[start : start + 50])
        await store.append_events(ns + "a", [])  # nothing to do
        await store.append_event(ns + "a", data.timeline(121))
        reopened = await self.reopen(store, open_store)
        assert_records_equal(await drain(reopened.read_events(ns + "a")), [*events, data.timeline(121)], Timeline)
        await reopened.append_events(ns + "b", iter([data.timeline(1), Timeline.model_validate(data.timeline(2))]))
        assert [e.bookmark.seq for e in await drain(reopened.read_events(ns + "b"))] == [1, 2]

    @pytest.mark.asyncio
    async def test_append_events_is_all_or_nothing(self, store: Any, ns: str) -> None:
        await store.append_events(ns + "a", [data.timeline(1), data.timeline(2)])
        bad_batches: list[Any] = [
            [data.timeline(3), data.timeline(2, "monitor"), data.timeline(4)],  # 2 is stored
            [data.timeline(3), data.timeline(3, "monitor")],  # 3 twice in the batch
            [data.timeline(3), data.timeline(4, "debug")],  # unknown channel
            [data.timeline(3), {"cursor": 4, "bookmark": {"seq": 4}, "event": {"channel": "progress"}}],
            [data.timeline(3), data.timeline(2**70)],  # beyond 64 bits
            data.timeline(3),  # one timeline, not a list
            "abc",
        ]
        for batch in bad_batches:
            with pytest.raises(RecordValidationError):
                await store.append_events(ns + "a", batch)
        assert [e.bookmark.seq for e in await drain(store.read_events(ns + "a"))] == [1, 2]
        await store.append_events(ns + "a", [data.timeline(3), data.timeline(4)])
        assert [e.bookmark.seq for e in await drain(store.read_events(ns + "a"))] == [1, 2, 3, 4]

    @pytest.mark.asyncio
    async def test_a_duplicate_fails_only_its_own_call(self, store: Any, open_store: OpenStore, ns: str) -> None:
        other = await open_store()
        await store.append_event(ns + "a", data.timeline(3))
        # Many callers at once (they may share a commit): only the call that
        # repeats a stored seq fails; every other call is stored.
        outcomes = await asyncio.gather(
            store.append_events(ns + "a", [data.timeline(seq) for seq in range(10, 15)]),
            store.append_events(ns + "a", [data.timeline(20), data.timeline(3, "monitor")]),
            store.append_event(ns + "a", data.timeline(30)),
            store.append_events(ns + "b", [data.timeline(1), data.timeline(2)]),
            other.append_event(ns + "a", data.timeline(40)),
            store.append_event(ns + "a", data.timeline(3, "control")),
            store.append_event(ns + "a", data.timeline(41)),
            return_exceptions=True,
        )
        failed = [i for i, outcome in enumerate(outcomes) if outcome is not None]
        assert failed == [1, 5], outcomes
        assert all(isinstance(outcomes[i], RecordValidationError) for i in failed)
        assert [e.bookmark.seq for e in await drain(other.read_events(ns + "a"))] == [3, 10, 11, 12, 13, 14, 30, 40, 41]
        assert [e.bookmark.seq for e in await drain(other.read_events(ns + "b"))] == [1, 2]

    @pytest.mark.asyncio
    async def test_out_of_range_events_are_refused_and_break_nothing(
        self, store: Any, open_store: OpenStore, ns: str
    ) -> None:
        # Every backend refuses what a 64-bit column cannot hold, before
        # anything is sent; the store keeps working and other writes stand.
        await store.append_event(ns + "a", data.timeline(1))
        big = [
            data.timeline(2**70),
            data.timeline(-(2**63) - 1),
            {**data.timeline(2), "bookmark": {"seq": 2, "timestamp": 2**64}},
        ]
        outcomes = await asyncio.gather(
            *(store.append_event(ns + "a", event) for event in big),
            store.append_event(ns + "a", data.timeline(2)),
            return_exceptions=True,
        )
        assert [type(o).__name__ for o in outcomes] == ["RecordValidationError"] * 3 + ["NoneType"], outcomes
        assert "seq" in str(outcomes[0]) and "timestamp" in str(outcomes[2])
        for edge in (2**63 - 1, -(2**63)):  # the bounds themselves are fine
            await store.append_event(ns + "a", {**data.timeline(edge), "bookmark": {"seq": edge, "timestamp": edge}})
        await store.close()  # closes cleanly: nothing bad is left behind
        other = await open_store()
        assert [e.bookmark.seq for e in await drain(other.read_events(ns + "a"))] == [-(2**63), 1, 2, 2**63 - 1]

    @pytest.mark.asyncio
    async def test_out_of_range_numbers_in_other_records_are_refused(
        self, store: Any, open_store: OpenStore, ns: str
    ) -> None:
        # The bounds of the narrowest backend column, the same on every backend:
        # AgentInfo counts are 32-bit, versions and timestamps 64-bit.
        agent = ns + "a"
        good = data.info(agent)
        await store.save_info(agent, good)
        refused = [
            store.save_info(agent, {**good, "messageCount": 2**31}),
            store.save_info(agent, {**good, "lastSfpIndex": -(2**31) - 1}),
            store.save_todos(agent, {**data.todos(), "version": 2**63}),
            store.save_history_window(agent, {**data.history_window("w1"), "timestamp": 2**64}),
            store.save_compression_record(agent, {**data.compression_record("r1"), "timestamp": -(2**63) - 1}),
        ]
        for call in refused:
            with pytest.raises(RecordValidationError, match="range"):
                await call
        await store.save_info(agent, {**good, "messageCount": 2**31 - 1})
        await store.close()
        other = await open_store()
        info = await other.load_info(agent)
        assert info is not None and info.message_count == 2**31 - 1
        assert await other.load_todos(agent) is None
        assert await other.load_history_windows(agent) == []

    @pytest.mark.asyncio
    async def test_agent_lock_blocks_nest_within_a_task(self, store: Any, open_store: OpenStore, ns: str) -> None:
        if not _has_locks(store):
            pytest.skip("this store has no agent locks")
        other = await open_store()
        async with store.agent_lock(ns + "a", timeout_ms=200) as outer:
            # The same task enters again at once (e.g. agent.chat() inside a caller's lock).
            async with store.agent_lock(ns + "a", timeout_ms=200) as inner:
                assert inner is outer
            assert not outer.released, "the inner block must not free the outer block's lock"
            # Other tasks, and other store objects, still wait.
            with pytest.raises(LockTimeoutError):
                await asyncio.create_task(_enter_lock(store, ns + "a", 100))
            with pytest.raises(LockTimeoutError):
                await _enter_lock(other, ns + "a", 100)
            # acquire_agent_lock stays non-re-entrant, even from the same task.
            with pytest.raises(LockTimeoutError):
                await store.acquire_agent_lock(ns + "a", timeout_ms=100)
        await _enter_lock(other, ns + "a", 200)  # freed when the outermost block ended

    @pytest.mark.asyncio
    async def test_locked_read_next_seq_append_loses_nothing(self, open_store: OpenStore, ns: str) -> None:
        # Two workers take turns on one agent under its lock: read the
        # events, append the next seq. Every acknowledged append is stored.
        first, second = await open_store(), await open_store()
        if not _has_locks(first):
            pytest.skip("this store has no agent locks")
        acknowledged: list[int] = []

        async def worker(store: Any, rounds: int) -> None:
            for _ in range(rounds):
                async with store.agent_lock(ns + "a", timeout_ms=10_000):
                    seqs = [e.bookmark.seq for e in await drain(store.read_events(ns + "a"))]
                    seq = (seqs[-1] if seqs else 0) + 1
                    await store.append_event(ns + "a", data.timeline(seq))
                    acknowledged.append(seq)
                await asyncio.sleep(0)

        await asyncio.gather(worker(first, 10), worker(second, 10))
        assert sorted(acknowledged) == list(range(1, 21))
        assert [e.bookmark.seq for e in await drain(first.read_events(ns + "a"))] == list(range(1, 21))

    @pytest.mark.asyncio
    async def test_unknown_channel_raises(self, store: Any, ns: str) -> None:
        with pytest.raises(RecordValidationError):
            await store.append_event(ns + "a", data.timeline(1, "debug"))
        with pytest.raises(RecordValidationError):
            await drain(store.read_events(ns + "a", channel="debug"))
        assert await drain(store.read_events(ns + "a")) == []

    @pytest.mark.asyncio
    async def test_events_persist_across_reopen(self, store: Any, open_store: OpenStore, ns: str) -> None:
        events = [data.timeline(seq, "progress" if seq % 2 else "monitor") for seq in range(1, 51)]
        for event in events:
            await store.append_event(ns + "a", event)
        reopened = await self.reopen(store, open_store)
        assert_records_equal(await drain(reopened.read_events(ns + "a")), events, Timeline)
        await reopened.append_event(ns + "a", data.timeline(51))
        assert len(await drain(reopened.read_events(ns + "a"))) == 51

    # ------------------------------------------------------------------ other records

    @pytest.mark.asyncio
    async def test_history_compression_recovered_files_round_trip(self, store: Any, ns: str) -> None:
        windows = [data.history_window("w1"), data.history_window("w2", offset_ms=10)]
        compressions = [data.compression_record("r1", "w1"), data.compression_record("r2", "w2", offset_ms=10)]
        files = [data.recovered_file("src/a.py"), data.recovered_file("src/b.py", offset_ms=10)]
        for window, compression, file in zip(windows, compressions, files, strict=True):
            await store.save_history_window(ns + "a", window)
            await store.save_compression_record(ns + "a", compression)
            await store.save_recovered_file(ns + "a", file)
        assert_records_equal(await store.load_history_windows(ns + "a"), windows, HistoryWindow)
        assert_records_equal(await store.load_compression_records(ns + "a"), compressions, CompressionRecord)
        assert_records_equal(await store.load_recovered_files(ns + "a"), files, RecoveredFile)
        assert await store.load_history_windows(ns + "b") == []

    @pytest.mark.asyncio
    async def test_append_only_kinds_keep_save_order_and_every_save(self, store: Any, ns: str) -> None:
        # Each save adds one record at the end: an older timestamp saved later
        # loads later, and the same id (or path and timestamp) saved twice is
        # kept twice, in place, on every backend.
        agent = ns + "a"
        w1, w2 = data.history_window("w1", offset_ms=10), data.history_window("w2", offset_ms=5)
        w1_again = {**data.history_window("w1", offset_ms=20), "stats": {"messageCount": 3}}
        r1, r2 = data.compression_record("r1", offset_ms=10), data.compression_record("r2", offset_ms=5)
        f1, f2 = data.recovered_file("src/a.py", offset_ms=10), data.recovered_file("src/b.py", offset_ms=5)
        f1_again = {**f1, "content": "changed"}
        for window in (w1, w2, w1_again):
            await store.save_history_window(agent, window)
        for record in (r1, r2, r1):
            await store.save_compression_record(agent, record)
        for file in (f1, f2, f1_again):
            await store.save_recovered_file(agent, file)
        assert_records_equal(await store.load_history_windows(agent), [w1, w2, w1_again], HistoryWindow)
        assert_records_equal(await store.load_compression_records(agent), [r1, r2, r1], CompressionRecord)
        assert_records_equal(await store.load_recovered_files(agent), [f1, f2, f1_again], RecoveredFile)
        async with store.transaction(agent) as tx:
            await tx.save_history_window(agent, w2)
            await tx.save_history_window(agent, w1)
        assert_records_equal(await store.load_history_windows(agent), [w1, w2, w1_again, w2, w1], HistoryWindow)

    @pytest.mark.asyncio
    async def test_media_cache_replaces_list(self, store: Any, ns: str) -> None:
        first = [data.media_cache("k1"), data.media_cache("k2", size=2**40)]
        await self._assert_saves_replace(store, ns + "a", "media_cache", first, [data.media_cache("k3")])

    # ------------------------------------------------------------------ snapshots

    @pytest.mark.asyncio
    async def test_snapshots(self, store: Any, ns: str) -> None:
        older = data.snapshot("s-old", created_ms=0, tag="-old")
        newer = data.snapshot("s-new", created_ms=5000, tag="-new")
        middle = Snapshot.model_validate(data.snapshot("s-mid", created_ms=2000))
        for snap in (older, newer, middle):
            await store.save_snapshot(ns + "a", snap)
        loaded = await store.load_snapshot(ns + "a", "s-old")
        assert_records_equal(loaded, older, Snapshot)
        assert_utc(loaded.created_at, "created_at")
        assert await store.load_snapshot(ns + "a", "s-unknown") is None
        assert await store.load_snapshot(ns + "b", "s-old") is None
        assert_records_equal(await store.list_snapshots(ns + "a"), [newer, middle, older], Snapshot)

    # ------------------------------------------------------------------ info, exists, list

    @pytest.mark.asyncio
    async def test_info_round_trip_and_exists(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        assert await store.exists(agent) is False
        await store.save_messages(agent, [TEXT])
        assert await store.exists(agent) is False, "exists is true only once save_info ran"
        record = data.info(
            agent, lineage=["root", "parent"], metadata={"userId": "u1", "big": BIG_INT}, message_count=1
        )
        await store.save_info(agent, record)
        assert await store.exists(agent) is True
        loaded = await store.load_info(agent)
        assert_records_equal(loaded, record, AgentInfo)
        assert loaded.breakpoint == "ready"
        assert_utc(loaded.created_at, "created_at")
        changed = {**record, "breakpoint": "awaiting_approval", "lastSfpIndex": 7, "metadata": {"v": 2}}
        await store.save_info(agent, AgentInfo.model_validate(changed))
        assert_records_equal(await store.load_info(agent), changed, AgentInfo)

    @pytest.mark.asyncio
    async def test_save_info_with_mismatched_agent_id_raises(self, store: Any, ns: str) -> None:
        with pytest.raises(RecordValidationError):
            await store.save_info(ns + "a", data.info(ns + "b"))
        assert await store.exists(ns + "a") is False
        assert await store.exists(ns + "b") is False
        assert await store.list(ns) == []

    @pytest.mark.asyncio
    async def test_list_prefix_is_literal_and_case_sensitive(self, store: Any, ns: str) -> None:
        names = ["agent_1", "agent_2", "agentX2", "AGENT_3", "agent-4", "agent_", "b.agent_5", "agent"]
        for name in names:
            await store.save_info(ns + name, data.info(ns + name))
        await store.save_messages(ns + "agent_no_info", [TEXT])
        assert sorted(await store.list(ns + "agent_")) == sorted(ns + n for n in ["agent_1", "agent_2", "agent_"])
        assert sorted(await store.list(ns + "agent")) == sorted(ns + n for n in names if n.startswith("agent"))
        assert sorted(await store.list(ns + "AGENT")) == [ns + "AGENT_3"]
        assert await store.list(ns + "%") == []
        assert await store.list(ns + "agent%") == []
        assert await store.list(ns + "_gent") == []
        assert await store.list(ns + "agent_1") == [ns + "agent_1"]
        assert await store.list(ns + "agent_1x") == []
        everything = await store.list()
        assert set(ns + n for n in names) <= set(everything)
        assert ns + "agent_no_info" not in everything
        assert set(await store.list(None)) == set(everything)
        assert sorted(await store.list(ns)) == sorted(ns + n for n in names)

    # ------------------------------------------------------------------ delete

    async def _populate(self, store: Any, agent: str) -> None:
        await store.save_info(agent, data.info(agent))
        await store.save_messages(agent, data.conversation())
        await store.save_tool_call_records(agent, [data.tool_call("c1"), data.tool_call("c2")])
        await store.save_todos(agent, data.todos())
        for seq in range(1, 4):
            await store.append_event(agent, data.timeline(seq))
        await store.save_history_window(agent, data.history_window("w1"))
        await store.save_compression_record(agent, data.compression_record("r1"))
        await store.save_recovered_file(agent, data.recovered_file("a.py"))
        await store.save_media_cache(agent, [data.media_cache("k1")])
        await store.save_snapshot(agent, data.snapshot("s1"))

    async def _assert_empty(self, store: Any, agent: str) -> None:
        assert await store.load_messages(agent) == []
        assert await store.load_tool_call_records(agent) == []
        assert await store.load_todos(agent) is None
        assert await drain(store.read_events(agent)) == []
        assert await store.load_history_windows(agent) == []
        assert await store.load_compression_records(agent) == []
        assert await store.load_recovered_files(agent) == []
        assert await store.load_media_cache(agent) == []
        assert await store.load_snapshot(agent, "s1") is None
        assert await store.list_snapshots(agent) == []
        assert await store.load_info(agent) is None
        assert await store.exists(agent) is False
        assert agent not in await store.list()

    @pytest.mark.asyncio
    async def test_delete_removes_everything(self, store: Any, open_store: OpenStore, ns: str) -> None:
        await self._populate(store, ns + "a")
        await self._populate(store, ns + "b")
        await store.delete(ns + "a")
        await self._assert_empty(store, ns + "a")
        assert await store.exists(ns + "b") is True
        assert_records_equal(await store.load_messages(ns + "b"), data.conversation(), Message)
        reopened = await self.reopen(store, open_store)
        await self._assert_empty(reopened, ns + "a")
        assert len(await drain(reopened.read_events(ns + "b"))) == 3
        # A deleted agent can start over, event seqs included.
        await reopened.append_event(ns + "a", data.timeline(1))
        await reopened.save_messages(ns + "a", [TEXT])
        assert len(await drain(reopened.read_events(ns + "a"))) == 1
        assert_records_equal(await reopened.load_messages(ns + "a"), [TEXT], Message)

    @pytest.mark.asyncio
    async def test_delete_right_after_buffered_writes(self, store: Any, ns: str) -> None:
        await self._populate(store, ns + "a")
        await store.append_event(ns + "a", data.timeline(4))
        await store.delete(ns + "a")
        await self._assert_empty(store, ns + "a")

    @pytest.mark.asyncio
    async def test_delete_unknown_agent_does_nothing(self, store: Any, ns: str) -> None:
        await store.save_info(ns + "a", data.info(ns + "a"))
        await store.delete(ns + "nobody")
        await store.delete(ns + "nobody")
        assert await store.exists(ns + "a") is True
        assert await store.exists(ns + "nobody") is False

    @pytest.mark.asyncio
    async def test_delete_agent_without_info(self, store: Any, ns: str) -> None:
        await store.save_messages(ns + "a", [TEXT])
        await store.append_event(ns + "a", data.timeline(1))
        await store.delete(ns + "a")
        assert await store.load_messages(ns + "a") == []
        assert await drain(store.read_events(ns + "a")) == []

    # ------------------------------------------------------------------ persistence, concurrency

    @pytest.mark.asyncio
    async def test_everything_persists_across_reopen(self, store: Any, open_store: OpenStore, ns: str) -> None:
        agent = ns + "a"
        await self._populate(store, agent)
        reopened = await self.reopen(store, open_store)
        assert await reopened.exists(agent) is True
        assert agent in await reopened.list(ns)
        loaded_info = await reopened.load_info(agent)
        assert loaded_info is not None
        assert loaded_info.template_id == "assistant"
        assert loaded_info.metadata == {"team": "core"}
        assert_records_equal(await reopened.load_messages(agent), data.conversation(), Message)
        assert_records_equal(
            await reopened.load_tool_call_records(agent), [data.tool_call("c1"), data.tool_call("c2")], ToolCallRecord
        )
        assert_records_equal(await reopened.load_todos(agent), data.todos(), TodoSnapshot)
        assert_records_equal(
            await drain(reopened.read_events(agent)), [data.timeline(s) for s in range(1, 4)], Timeline
        )
        assert_records_equal(await reopened.load_history_windows(agent), [data.history_window("w1")], HistoryWindow)
        assert_records_equal(
            await reopened.load_compression_records(agent), [data.compression_record("r1")], CompressionRecord
        )
        assert_records_equal(await reopened.load_recovered_files(agent), [data.recovered_file("a.py")], RecoveredFile)
        assert_records_equal(await reopened.load_media_cache(agent), [data.media_cache("k1")], MediaCacheRecord)
        assert_records_equal(await reopened.load_snapshot(agent, "s1"), data.snapshot("s1"), Snapshot)
        # Saves after a reopen diff against what is stored, not against nothing.
        await reopened.save_messages(agent, data.conversation()[:2])
        reopened_again = await self.reopen(reopened, open_store)
        assert_records_equal(await reopened_again.load_messages(agent), data.conversation()[:2], Message)

    @pytest.mark.asyncio
    async def test_two_instances_see_each_others_saves(self, store: Any, open_store: OpenStore, ns: str) -> None:
        other = await open_store()
        conversation = data.conversation()
        await store.save_messages(ns + "a", conversation[:2])
        await other.save_messages(ns + "a", conversation)
        await store.save_messages(ns + "a", conversation[:3])
        assert_records_equal(await other.load_messages(ns + "a"), conversation[:3], Message)
        assert_records_equal(await store.load_messages(ns + "a"), conversation[:3], Message)

    @pytest.mark.asyncio
    async def test_concurrent_saves_of_different_agents_all_land(self, store: Any, ns: str) -> None:
        agents = [f"{ns}{i}" for i in range(24)]

        async def work(agent: str) -> None:
            await store.save_info(agent, data.info(agent))
            await store.save_messages(agent, data.conversation(agent))
            await store.save_tool_call_records(agent, [data.tool_call(agent)])
            await store.append_event(agent, data.timeline(1))
            await store.append_event(agent, data.timeline(2))

        await asyncio.gather(*(work(agent) for agent in agents))
        assert sorted(await store.list(ns)) == sorted(agents)
        results = await asyncio.gather(*(store.load_messages(agent) for agent in agents))
        for agent, loaded in zip(agents, results, strict=True):
            assert_records_equal(loaded, data.conversation(agent), Message, agent)
            assert len(await drain(store.read_events(agent))) == 2
            assert_records_equal(await store.load_tool_call_records(agent), [data.tool_call(agent)], ToolCallRecord)

    @pytest.mark.asyncio
    async def test_saves_for_agent_without_info(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        await store.save_messages(agent, data.conversation())
        await store.save_tool_call_records(agent, [data.tool_call("c1")])
        await store.save_todos(agent, data.todos())
        await store.save_snapshot(agent, data.snapshot("s1"))
        await store.append_event(agent, data.timeline(1))
        assert await store.exists(agent) is False
        assert_records_equal(await store.load_messages(agent), data.conversation(), Message)
        assert_records_equal(await store.load_tool_call_records(agent), [data.tool_call("c1")], ToolCallRecord)
        await store.save_info(agent, data.info(agent))
        assert await store.exists(agent) is True
        assert_records_equal(await store.load_messages(agent), data.conversation(), Message)
        assert_records_equal(await store.load_snapshot(agent, "s1"), data.snapshot("s1"), Snapshot)
