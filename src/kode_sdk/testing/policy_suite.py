"""Conformance tests of the policy every backend shares (:mod:`kode_sdk.store.policy`):
metrics kinds, filter types and ranges, integer coercion, duplicate ids and
error classes. Each test states an exact outcome, so a backend that re-decides
any of it fails here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ..errors import KodeError, RecordValidationError
from ..store.capabilities import Prunable
from ..store.lifecycle import BaseStore
from . import data
from .data import BASE_MS

__all__ = ["ExtendedPolicyConformance", "PolicyConformance"]

#: (method, keyword, bad value): each call must raise one ValueError naming the keyword.
BAD_FILTERS: list[tuple[str, str, Any]] = [
    ("query_sessions", "template_id", 123),
    ("query_sessions", "user_id", 123),
    ("query_sessions", "template_id", "a\x00b"),
    ("query_sessions", "user_id", "\x00"),
    ("query_sessions", "sort_by", "agent_id; --"),
    ("query_sessions", "created_after", True),
    ("query_sessions", "created_after", 1.5),
    ("query_sessions", "created_before", "not a time"),
    ("query_messages", "role", "tool"),
    ("query_messages", "role", 123),
    ("query_messages", "content_type", 7),
    ("query_messages", "content_type", "te\x00xt"),
    ("query_messages", "created_after", [1]),
    ("query_tool_calls", "tool_name", 123),
    ("query_tool_calls", "tool_name", "x\x00"),
    ("query_tool_calls", "is_error", 1),
    ("query_tool_calls", "has_approval", "yes"),
    ("query_tool_calls", "state", "bogus"),
]

#: (keyword, bad value) for limit/offset, tried on every query method.
BAD_PAGES: list[tuple[str, Any]] = [
    ("offset", 2**70),
    ("offset", -1),
    ("offset", "1"),
    ("offset", True),
    ("limit", 2**70),
    ("limit", 0),
    ("limit", "5"),
    ("limit", False),
]

QUERY_METHODS = ("query_sessions", "query_messages", "query_tool_calls")


def _operations(store: Any) -> dict[str, int]:
    """The store's own counters (every store built on BaseStore keeps them)."""
    if not isinstance(store, BaseStore):
        pytest.skip("counters are kept by BaseStore")
    return dict(store.metrics.counts)


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {kind: after[kind] - before[kind] for kind in ("saves", "loads", "queries", "deletes")}


class PolicyConformance:
    """Mixed into :class:`~kode_sdk.testing.QueryableStoreConformance`: the
    ``store`` and ``ns`` fixtures come from there."""

    # ------------------------------------------------------------------ metrics

    @pytest.mark.asyncio
    async def test_metrics_count_each_call_by_its_policy_kind(self, store: Any, ns: str) -> None:
        await store.save_info(ns + "a", data.info(ns + "a"))
        before = _operations(store)
        await store.list()
        await store.list(ns)
        await store.exists(ns + "a")
        await store.load_info(ns + "a")
        await store.query_sessions(agent_id=ns + "a")
        await store.query_messages(agent_id=ns + "a")
        await store.aggregate_stats(ns + "a")
        await store.save_messages(ns + "a", data.conversation())
        await store.delete(ns + "b")
        assert _delta(before, _operations(store)) == {"saves": 1, "loads": 4, "queries": 3, "deletes": 1}

    @pytest.mark.asyncio
    async def test_refused_calls_are_counted_once_as_their_kind(self, store: Any, ns: str) -> None:
        before = _operations(store)
        with pytest.raises(ValueError):
            await store.query_sessions(template_id=123)
        assert _delta(before, _operations(store)) == {"saves": 0, "loads": 0, "queries": 1, "deletes": 0}

    # ------------------------------------------------------------------ filters

    @pytest.mark.asyncio
    @pytest.mark.parametrize(("method", "keyword", "value"), BAD_FILTERS)
    async def test_bad_filter_is_one_value_error_naming_it(
        self, store: Any, ns: str, method: str, keyword: str, value: Any
    ) -> None:
        with pytest.raises(ValueError, match=keyword) as caught:
            await getattr(store, method)(**{keyword: value})
        assert isinstance(caught.value, ValueError)
        assert type(caught.value).__module__.split(".")[0] in ("builtins", "kode_sdk"), type(caught.value)

    @pytest.mark.asyncio
    @pytest.mark.parametrize("method", QUERY_METHODS)
    @pytest.mark.parametrize(("keyword", "value"), BAD_PAGES)
    async def test_page_bounds_are_one_value_error(self, store: Any, method: str, keyword: str, value: Any) -> None:
        with pytest.raises(ValueError, match=keyword) as caught:
            await getattr(store, method)(**{keyword: value})
        assert type(caught.value).__module__.split(".")[0] in ("builtins", "kode_sdk"), type(caught.value)

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("keywords", "named"),
        [
            ({"created_before": BASE_MS, "template_id": 123}, "template_id"),
            ({"created_before": BASE_MS, "template_id": "a\x00"}, "template_id"),
            ({"created_before": BASE_MS, "dry_run": "no"}, "dry_run"),
            ({"created_before": None}, "created_before"),
            ({"created_before": "yesterday"}, "created_before"),
        ],
        ids=["template_id-int", "template_id-nul", "dry_run-str", "created_before-none", "created_before-text"],
    )
    async def test_bad_prune_arguments_are_one_value_error_deleting_nothing(
        self, store: Any, ns: str, keywords: dict[str, Any], named: str
    ) -> None:
        prunable = isinstance(store, Prunable)  # (a name, so `store` keeps its whole type)
        if not prunable:
            pytest.skip(f"{type(store).__name__} has no prune")
        await store.save_info(ns + "a", data.info(ns + "a", created_ms=-10_000))
        with pytest.raises(ValueError, match=named) as caught:
            await store.prune(**keywords)
        assert type(caught.value).__module__.split(".")[0] in ("builtins", "kode_sdk"), type(caught.value)
        assert await store.exists(ns + "a")

    @pytest.mark.asyncio
    async def test_largest_offset_is_an_empty_page(self, store: Any, ns: str) -> None:
        await store.save_info(ns + "a", data.info(ns + "a"))
        for method in QUERY_METHODS:
            assert await getattr(store, method)(agent_id=ns + "a", offset=2**63 - 1) == []

    @pytest.mark.asyncio
    async def test_created_after_takes_every_documented_form(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        await store.save_info(agent, data.info(agent, created_ms=1000))
        await store.save_messages(agent, data.conversation())
        cut = BASE_MS - 60_000  # before anything this test stored
        forms: list[Any] = [
            cut,
            str(cut),
            datetime.fromtimestamp(cut / 1000, UTC),
            datetime.fromtimestamp(cut / 1000, UTC).isoformat(),
            datetime.fromtimestamp(cut / 1000, UTC).isoformat().replace("+00:00", "Z"),
        ]
        for form in forms:
            sessions = await store.query_sessions(agent_id=agent, created_after=form)
            assert [s.agent_id for s in sessions] == [agent], form
            messages = await store.query_messages(agent_id=agent, created_after=form)
            assert len(messages) == len(data.conversation()), form
        future = 2**62
        for form in (future, str(future)):
            assert await store.query_sessions(agent_id=agent, created_after=form) == []
            assert await store.query_messages(agent_id=agent, created_after=form) == []

    @pytest.mark.asyncio
    async def test_role_filter_takes_each_stored_role(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        await store.save_messages(agent, data.conversation())
        found = {role: len(await store.query_messages(agent_id=agent, role=role)) for role in ("user", "assistant")}
        assert found["user"] >= 1 and found["assistant"] >= 1
        assert await store.query_messages(agent_id=agent, role="system") == []

    # ------------------------------------------------------------------ integers

    @pytest.mark.asyncio
    @pytest.mark.parametrize("bad", ["1", True, b"1"])
    async def test_integer_fields_take_integers_only(self, store: Any, ns: str, bad: Any) -> None:
        agent = ns + "a"
        record = data.tool_call("c1")
        record["durationMs"] = bad
        with pytest.raises(RecordValidationError, match=r"durationMs|duration_ms"):
            await store.save_tool_call_records(agent, [record])
        todos = data.todos()
        todos["version"] = bad
        with pytest.raises(RecordValidationError, match="version"):
            await store.save_todos(agent, todos)
        event = data.timeline(1)
        event["bookmark"]["seq"] = bad
        with pytest.raises(RecordValidationError, match="seq"):
            await store.append_event(agent, event)
        info = data.info(agent)
        info["messageCount"] = bad
        with pytest.raises(RecordValidationError, match=r"messageCount|message_count"):
            await store.save_info(agent, info)
        assert await store.load_tool_call_records(agent) == []
        assert await store.load_todos(agent) is None
        assert await store.load_info(agent) is None

    @pytest.mark.asyncio
    @pytest.mark.parametrize("huge", [2**62, 2**70, -(2**62)])
    async def test_timestamps_no_datetime_holds_are_refused_as_records(self, store: Any, ns: str, huge: int) -> None:
        """Epoch ms beyond the years 1-9999 in a record's time field: one
        RecordValidationError naming the field, never an OverflowError."""
        agent = ns + "a"
        record = data.tool_call("c1")
        record["createdAt"] = huge
        with pytest.raises(RecordValidationError, match="createdAt"):
            await store.save_tool_call_records(agent, [record])
        todos = data.todos()
        todos["updatedAt"] = huge
        with pytest.raises(RecordValidationError, match="updatedAt"):
            await store.save_todos(agent, todos)
        info = data.info(agent)
        info["createdAt"] = huge
        with pytest.raises(RecordValidationError, match="createdAt"):
            await store.save_info(agent, info)
        assert await store.load_tool_call_records(agent) == []
        assert await store.load_todos(agent) is None
        assert await store.load_info(agent) is None

    # ------------------------------------------------------------------ duplicates

    @pytest.mark.asyncio
    async def test_tool_call_ids_are_unique_within_a_save(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        await store.save_tool_call_records(agent, [data.tool_call("c0")])
        with pytest.raises(RecordValidationError, match="c1") as caught:
            await store.save_tool_call_records(agent, [data.tool_call(i) for i in ("c1", "c2", "c1")])
        assert caught.value.field == "records[2].id"
        assert [r.id for r in await store.load_tool_call_records(agent)] == ["c0"]

    # ------------------------------------------------------------------ errors

    @pytest.mark.asyncio
    async def test_errors_are_of_the_hierarchy_or_value_errors(self, store: Any, ns: str) -> None:
        """Every refusal above is a ValueError; none is a driver's class."""
        for method, keyword, value in BAD_FILTERS:
            try:
                await getattr(store, method)(**{keyword: value})
            except ValueError as exc:
                assert isinstance(exc, KodeError) or type(exc) is ValueError, (method, keyword, type(exc))
            else:
                pytest.fail(f"{method}({keyword}={value!r}) was accepted")


class ExtendedPolicyConformance:
    """Mixed into :class:`~kode_sdk.testing.ExtendedStoreConformance`: metrics
    as ``get_metrics`` reports them."""

    @pytest.mark.asyncio
    async def test_get_metrics_counts_lists_as_loads_and_itself_as_neither(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        await store.save_info(agent, data.info(agent))
        before = (await store.get_metrics()).operations
        await store.list()
        await store.list(ns)
        await store.check_consistency(agent)
        await store.get_metrics()
        after = (await store.get_metrics()).operations
        delta = {k: getattr(after, k) - getattr(before, k) for k in ("saves", "loads", "queries", "deletes")}
        assert delta == {"saves": 0, "loads": 2, "queries": 0, "deletes": 0}
