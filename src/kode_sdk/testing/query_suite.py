"""The conformance tests of the :class:`~kode_sdk.store.protocols.QueryableStore` protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ..errors import StoreClosedError
from ..types import (
    AgentStats,
    BreakpointState,
    SessionInfo,
    StoredMessage,
    StoredToolCall,
    ToolCallApproval,
    ToolCallAuditEntry,
    ToolCallRecord,
    ToolCallState,
    to_epoch_ms,
)
from . import data
from .data import BASE_MS, assert_json_identical, assert_utc
from .policy_suite import PolicyConformance
from .search_suite import SearchConformance
from .store_suite import StoreConformance, assert_rejects_bad_agent_ids

__all__ = ["QueryableStoreConformance"]

QUERY_CALLS: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
    "query_sessions": lambda s, a: s.query_sessions(agent_id=a),
    "query_messages": lambda s, a: s.query_messages(agent_id=a),
    "query_tool_calls": lambda s, a: s.query_tool_calls(agent_id=a),
    "aggregate_stats": lambda s, a: s.aggregate_stats(a),
    "search_messages": lambda s, a: s.search_messages("x", agent_id=a),
}

#: Filter values that break a store pasting them into SQL or LIKE patterns.
HOSTILE_VALUES = ["a%b", "a_b", "it's", 'say "hi"', "x' OR '1'='1", "x; DROP TABLE agents; --", "back\\slash", "%", "_"]


def _ms(value: Any) -> int:
    return to_epoch_ms(value)


class QueryableStoreConformance(PolicyConformance, SearchConformance, StoreConformance):
    """Everything in :class:`StoreConformance`, plus the query API:
    ``query_sessions``, ``query_messages``, ``query_tool_calls``,
    ``aggregate_stats`` and ``search_messages`` (:mod:`.search_suite`), and
    the shared policy: metrics kinds, filter types and ranges, integer
    coercion, duplicate ids (:mod:`.policy_suite`).

    Every test scopes its queries to its own agents, template ids or tool
    names, so a shared database does not disturb it.
    """

    @pytest.mark.asyncio
    @pytest.mark.parametrize("method", list(QUERY_CALLS))
    async def test_closed_store_raises_on_every_query(self, store: Any, ns: str, method: str) -> None:
        await store.close()
        with pytest.raises(StoreClosedError):
            await QUERY_CALLS[method](store, ns + "a")

    @pytest.mark.asyncio
    async def test_aggregate_stats_rejects_invalid_agent_ids(self, store: Any) -> None:
        await assert_rejects_bad_agent_ids(lambda s, agent_id: s.aggregate_stats(agent_id), store)

    # ------------------------------------------------------------------ sessions

    async def _sessions(self, store: Any, ns: str) -> tuple[str, list[str]]:
        """Three agents of one template: created 0/1/2 s after BASE_MS, with
        3/1/2 messages; a1 has metadata userId, a2 user_id, a3 another user."""
        template = ns + "tpl"
        agents = [ns + "a1", ns + "a2", ns + "a3"]
        metadata: list[dict[str, Any]] = [
            {"userId": ns + "u"},
            {"user_id": ns + "u", "k": [1]},
            {"userId": ns + "other"},
        ]
        counts = [3, 1, 2]
        for index, agent in enumerate(agents):
            await store.save_info(
                agent, data.info(agent, template_id=template, created_ms=index * 1000, metadata=metadata[index])
            )
            await store.save_messages(agent, data.conversation()[: counts[index]])
        await store.save_info(ns + "z", data.info(ns + "z", template_id=ns + "other-tpl", created_ms=500))
        return template, agents

    @pytest.mark.asyncio
    async def test_query_sessions_filters(self, store: Any, ns: str) -> None:
        template, (a1, a2, a3) = await self._sessions(store, ns)

        async def ids(**filters: Any) -> list[str]:
            return [s.agent_id for s in await store.query_sessions(**filters)]

        assert await ids(template_id=template) == [a3, a2, a1]
        assert await ids(agent_id=a2) == [a2]
        assert await ids(agent_id=ns + "missing") == []
        assert await ids(template_id=ns + "missing") == []
        assert await ids(template_id=template, user_id=ns + "u") == [a2, a1]
        assert await ids(user_id=ns + "u") == [a2, a1]
        assert await ids(user_id=ns + "other") == [a3]
        assert await ids(template_id=template, created_after=data.at(1000)) == [a3, a2]
        assert await ids(template_id=template, created_after=BASE_MS + 1001) == [a3]
        assert await ids(template_id=template, created_before=BASE_MS + 1000) == [a2, a1]
        assert await ids(template_id=template, created_before=data.at(999)) == [a1]
        assert await ids(template_id=template, created_after=BASE_MS + 1000, created_before=data.at(1000)) == [a2]
        assert await ids(template_id=template, created_after=data.at(1000).replace(tzinfo=None)) == [a3, a2]
        assert await ids(agent_id=a1, template_id=ns + "other-tpl") == []

    @pytest.mark.asyncio
    async def test_query_sessions_result_fields(self, store: Any, ns: str) -> None:
        template, (a1, _a2, _a3) = await self._sessions(store, ns)
        [session] = await store.query_sessions(agent_id=a1)
        assert isinstance(session, SessionInfo)
        assert session.template_id == template
        assert session.created_at == data.at(0)
        assert_utc(session.created_at, "created_at")
        assert_utc(session.updated_at, "updated_at")
        assert session.message_count == 3
        assert session.last_sfp_index == 1
        assert session.breakpoint == BreakpointState.READY
        assert_json_identical(session.metadata, {"userId": ns + "u"})

    @pytest.mark.asyncio
    async def test_query_sessions_sorting(self, store: Any, ns: str) -> None:
        template, (a1, a2, a3) = await self._sessions(store, ns)

        async def ids(**kwargs: Any) -> list[str]:
            return [s.agent_id for s in await store.query_sessions(template_id=template, **kwargs)]

        assert await ids(sort_by="created_at", sort_order="asc") == [a1, a2, a3]
        assert await ids(sort_by="created_at", sort_order="desc") == [a3, a2, a1]
        assert await ids(sort_by="message_count", sort_order="desc") == [a1, a3, a2]
        assert await ids(sort_by="message_count", sort_order="asc") == [a2, a3, a1]
        for order in ("asc", "desc"):
            sessions = await store.query_sessions(template_id=template, sort_by="updated_at", sort_order=order)
            assert sorted(s.agent_id for s in sessions) == sorted([a1, a2, a3])
            stamps = [s.updated_at for s in sessions]
            assert stamps == sorted(stamps, reverse=order == "desc")
        # updated_at moves when the agent is saved again.
        await asyncio.sleep(0.01)
        await store.save_info(a1, data.info(a1, template_id=template, metadata={"userId": ns + "u"}))
        await store.save_messages(a1, data.conversation()[:3])
        sessions = await store.query_sessions(template_id=template, sort_by="updated_at", sort_order="desc")
        assert sessions[0].agent_id == a1

    @pytest.mark.asyncio
    async def test_query_sessions_rejects_bad_sort(self, store: Any) -> None:
        for sort_by in ("name", "agent_id; DROP TABLE agents", "", "created_at "):
            with pytest.raises(ValueError):
                await store.query_sessions(sort_by=sort_by)
        for sort_order in ("up", "", "desc; --"):
            with pytest.raises(ValueError):
                await store.query_sessions(sort_order=sort_order)

    @pytest.mark.asyncio
    async def test_query_sessions_paging_with_ties_visits_every_row_once(self, store: Any, ns: str) -> None:
        template = ns + "tie"
        agents = [f"{ns}t{i}" for i in range(7)]
        for agent in agents:
            await store.save_info(agent, data.info(agent, template_id=template))
            await store.save_messages(agent, [data.conversation()[0]])
        for sort_by in ("created_at", "updated_at", "message_count"):
            for order in ("asc", "desc"):
                seen: list[str] = []
                for offset in range(0, 9, 3):
                    page = await store.query_sessions(
                        template_id=template, limit=3, offset=offset, sort_by=sort_by, sort_order=order
                    )
                    assert len(page) == min(3, max(0, 7 - offset)), (sort_by, order, offset)
                    seen += [s.agent_id for s in page]
                assert sorted(seen) == sorted(agents), (sort_by, order)

    @pytest.mark.asyncio
    async def test_query_sessions_counts_only_agents_with_info(self, store: Any, ns: str) -> None:
        await store.save_messages(ns + "x", [data.conversation()[0]])
        assert await store.query_sessions(agent_id=ns + "x") == []

    # ------------------------------------------------------------------ messages

    async def _two_batches(self, store: Any, agent: str) -> tuple[int, int]:
        """Save messages 0-1, wait, then 0-3: returns each batch's created_at (ms)."""
        conversation = data.conversation()
        await store.save_messages(agent, conversation[:2])
        first = await store.query_messages(agent_id=agent)
        await asyncio.sleep(0.02)
        await store.save_messages(agent, conversation)
        rows = await store.query_messages(agent_id=agent)
        assert [r.seq for r in rows] == [3, 2, 1, 0]
        assert {_ms(r.created_at) for r in first} == {_ms(rows[2].created_at)}
        return _ms(rows[3].created_at), _ms(rows[0].created_at)

    @pytest.mark.asyncio
    async def test_query_messages_content_and_first_save_time(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        first, second = await self._two_batches(store, agent)
        assert second > first, "a message's created_at is the time of its first save"
        rows = await store.query_messages(agent_id=agent)
        conversation = data.conversation()
        for row in rows:
            assert isinstance(row, StoredMessage)
            assert row.agent_id == agent
            assert_utc(row.created_at, "created_at")
            loaded = (await store.load_messages(agent))[row.seq]
            assert row.role == loaded.role == conversation[row.seq]["role"]
            assert_json_identical(row.content, loaded.content)
            assert row.metadata == conversation[row.seq].get("metadata")
        assert [_ms(r.created_at) for r in rows] == [second, second, first, first]
        # Saving the same list again changes no created_at.
        await asyncio.sleep(0.01)
        await store.save_messages(agent, conversation)
        assert [_ms(r.created_at) for r in await store.query_messages(agent_id=agent)] == [
            second,
            second,
            first,
            first,
        ]

    @pytest.mark.asyncio
    async def test_query_messages_filters(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        first, second = await self._two_batches(store, agent)
        custom = {"role": "user", "content": [{"type": ns + "block", "data": 1}]}
        await store.save_messages(ns + "b", [custom, *data.conversation()])

        async def seqs(**filters: Any) -> list[int]:
            return [m.seq for m in await store.query_messages(agent_id=agent, **filters)]

        assert await seqs(role="assistant") == [3, 1]
        assert await seqs(role="user") == [2, 0]
        assert await seqs(role="system") == []
        assert await seqs(content_type="tool_use") == [1]
        assert await seqs(content_type="tool_result") == [2]
        assert await seqs(content_type="thinking") == [3]
        assert await seqs(content_type="text") == [3, 1, 0]
        assert await seqs(content_type="image") == []
        assert await seqs(role="assistant", content_type="text") == [3, 1]
        assert await seqs(created_after=second) == [3, 2]
        assert await seqs(created_after=second + 1) == []
        assert await seqs(created_before=first) == [1, 0]
        assert await seqs(created_before=first - 1) == []
        assert await seqs(created_after=data.at(first - BASE_MS), created_before=data.at(second - BASE_MS)) == [
            3,
            2,
            1,
            0,
        ]
        assert await seqs(created_after=first, created_before=second - 1) == [1, 0]
        await store.append_messages(agent, [custom])
        both = await store.query_messages(content_type=ns + "block")
        assert sorted((m.agent_id, m.seq) for m in both) == [(agent, 4), (ns + "b", 0)]
        assert [m.seq for m in await store.query_messages(agent_id=ns + "b", content_type="tool_use")] == [2]

    @pytest.mark.asyncio
    async def test_query_messages_paging(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        messages: list[dict[str, Any]] = []
        for turn in range(5):
            messages += data.conversation(f"-{turn}")
        await store.save_messages(agent, messages)  # one save: every created_at ties
        seen: list[int] = []
        for offset in range(0, 24, 7):
            page = await store.query_messages(agent_id=agent, limit=7, offset=offset)
            seen += [m.seq for m in page]
        assert seen == list(range(19, -1, -1)), "ties are broken by seq, descending"
        assert await store.query_messages(agent_id=agent, limit=5, offset=20) == []
        assert [m.seq for m in await store.query_messages(agent_id=agent, limit=2)] == [19, 18]

    @pytest.mark.asyncio
    async def test_query_messages_after_truncation(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        await store.save_messages(agent, data.conversation())
        await store.save_messages(agent, data.conversation()[:2])
        assert [m.seq for m in await store.query_messages(agent_id=agent)] == [1, 0]
        await store.append_messages(agent, data.conversation()[2:3])
        rows = await store.query_messages(agent_id=agent)
        assert [m.seq for m in rows] == [2, 1, 0]
        assert rows[0].content[0]["type"] == "tool_result"

    # ------------------------------------------------------------------ tool calls

    async def _calls(self, store: Any, ns: str) -> tuple[str, list[dict[str, Any]]]:
        agent = ns + "a"
        bash, read = ns + "bash", ns + "fs_read"
        records = [
            data.tool_call("c1", name=bash, state="completed", created_ms=0),
            data.tool_call("c2", name=read, state="failed", created_ms=1000, approval_required=True, is_error=True),
            data.tool_call("c3", name=bash, state="denied", created_ms=2000, approval_required=True),
            data.tool_call("c4", name=bash, state="pending", created_ms=3000, result={"partial": [1, None]}),
        ]
        await store.save_tool_call_records(agent, records)
        await store.save_tool_call_records(
            ns + "b", [data.tool_call("c9", name=bash, state="failed", created_ms=1500, is_error=True)]
        )
        return agent, records

    @pytest.mark.asyncio
    async def test_query_tool_calls_filters(self, store: Any, ns: str) -> None:
        agent, _ = await self._calls(store, ns)
        bash = ns + "bash"

        async def ids(**filters: Any) -> list[str]:
            return [c.tool_call_id for c in await store.query_tool_calls(**filters)]

        assert await ids(agent_id=agent) == ["c4", "c3", "c2", "c1"]
        assert await ids(tool_name=bash) == ["c4", "c3", "c9", "c1"]
        assert await ids(tool_name=ns + "fs_read") == ["c2"]
        assert await ids(tool_name=ns + "bash", agent_id=ns + "b") == ["c9"]
        assert await ids(agent_id=agent, is_error=True) == ["c2"]
        assert await ids(agent_id=agent, is_error=False) == ["c4", "c3", "c1"]
        assert await ids(tool_name=bash, is_error=True) == ["c9"]
        assert await ids(agent_id=agent, has_approval=True) == ["c3", "c2"]
        assert await ids(agent_id=agent, has_approval=False) == ["c4", "c1"]
        assert await ids(agent_id=agent, state="completed") == ["c1"]
        assert await ids(agent_id=agent, state="DENIED") == ["c3"]
        assert await ids(agent_id=agent, state="Failed") == ["c2"]
        assert await ids(agent_id=agent, state=ToolCallState.PENDING) == ["c4"]
        assert await ids(agent_id=agent, state="sealed") == []
        assert await ids(agent_id=agent, created_after=BASE_MS + 1000) == ["c4", "c3", "c2"]
        assert await ids(agent_id=agent, created_before=data.at(1000)) == ["c2", "c1"]
        assert await ids(agent_id=agent, created_after=data.at(1000), created_before=BASE_MS + 2000) == ["c3", "c2"]
        assert await ids(agent_id=agent, created_after=BASE_MS + 3001) == []
        assert await ids(tool_name=bash, state="failed", is_error=True, has_approval=False) == ["c9"]

    @pytest.mark.asyncio
    async def test_query_tool_calls_result_fields(self, store: Any, ns: str) -> None:
        agent, records = await self._calls(store, ns)
        [row] = await store.query_tool_calls(agent_id=agent, state="failed")
        record = records[1]
        assert isinstance(row, StoredToolCall)
        assert row.agent_id == agent
        assert row.tool_call_id == "c2"
        assert row.tool_name == ns + "fs_read"
        assert_json_identical(row.input, record["input"])
        assert_json_identical(row.output, record["result"])
        assert row.is_error is True
        assert row.state is ToolCallState.FAILED
        assert row.error == "exit status 1"
        assert row.duration_ms == 30
        assert row.approval == ToolCallApproval.model_validate(record["approval"])
        assert row.approval.required is True
        assert row.created_at == data.at(1000)
        assert row.updated_at == data.at(1040)
        assert_utc(row.created_at, "created_at")
        assert_utc(row.updated_at, "updated_at")
        assert row.audit_trail == [ToolCallAuditEntry.model_validate(e) for e in record["auditTrail"]]
        [pending] = await store.query_tool_calls(agent_id=agent, state="pending")
        assert_json_identical(pending.output, {"partial": [1, None]})

    @pytest.mark.asyncio
    async def test_query_results_read_back_exactly_what_was_saved(self, store: Any, ns: str) -> None:
        # Rows become results without validation: every value must still come
        # back exact — integers beyond 64 bits, unknown keys, floats, nesting.
        agent = ns + "exact"
        big = 2**70
        await store.save_info(
            agent,
            {"agentId": agent, "templateId": ns + "tpl", "metadata": {"big": big, "f": 1.5, "n": [None, {"x": "é"}]}},
        )
        record = ToolCallRecord.model_validate(
            {
                "id": "c1",
                "name": ns + "tool",
                "input": {"big": big, "list": [1, 2.25]},
                "state": "completed",
                "approval": {"required": True, "decision": "allow", "decidedAt": BASE_MS, "kept": {"k": 1}},
                "result": [big, "x"],
                "durationMs": 7,
                "createdAt": BASE_MS,
                "updatedAt": BASE_MS + 1,
                "auditTrail": [{"state": "pending", "timestamp": BASE_MS, "why": "queued"}],
                "custom": {"deep": [big]},
            }
        )
        await store.save_tool_call_records(agent, [record])
        await store.append_messages(agent, [{"role": "assistant", "content": "hi", "metadata": {"big": big}}])
        [session] = await store.query_sessions(agent_id=agent)
        assert_json_identical(session.metadata, {"big": big, "f": 1.5, "n": [None, {"x": "é"}]})
        [row] = await store.query_tool_calls(agent_id=agent)
        assert row == StoredToolCall.from_record(agent, record)
        assert_json_identical(row.input, {"big": big, "list": [1, 2.25]})
        assert row.approval.__pydantic_extra__ == {"kept": {"k": 1}}
        assert row.audit_trail[0].__pydantic_extra__ == {"why": "queued"}
        [loaded] = await store.load_tool_call_records(agent)
        assert loaded == record
        assert loaded.to_wire() == record.to_wire()
        [message] = await store.query_messages(agent_id=agent)
        assert_json_identical(message.metadata, {"big": big})

    @pytest.mark.asyncio
    async def test_query_tool_calls_paging_with_ties(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        records = [data.tool_call(f"c{i:02d}", name=ns + "t", created_ms=0) for i in range(11)]
        await store.save_tool_call_records(agent, records)
        seen: list[str] = []
        for offset in range(0, 12, 4):
            seen += [c.tool_call_id for c in await store.query_tool_calls(tool_name=ns + "t", limit=4, offset=offset)]
        assert sorted(seen) == sorted(r["id"] for r in records)
        assert len(seen) == len(records)

    # ------------------------------------------------------------------ stats

    @pytest.mark.asyncio
    async def test_aggregate_stats_exact(self, store: Any, ns: str) -> None:
        agent, _ = await self._calls(store, ns)
        await store.save_messages(agent, data.conversation())
        await store.save_snapshot(agent, data.snapshot("s1"))
        await store.save_snapshot(agent, data.snapshot("s2", created_ms=10))
        stats = await store.aggregate_stats(agent)
        assert isinstance(stats, AgentStats)
        assert stats.model_dump() == {
            "total_messages": 4,
            "total_tool_calls": 4,
            "total_snapshots": 2,
            "tool_calls_by_state": {"completed": 1, "failed": 1, "denied": 1, "pending": 1},
            "tool_calls_by_name": {ns + "bash": 3, ns + "fs_read": 1},
            "messages_by_role": {"user": 2, "assistant": 2},
        }
        await store.save_messages(agent, data.conversation()[:1])
        await store.save_tool_call_records(agent, [data.tool_call("x", name="only", state="SEALED")])
        stats = await store.aggregate_stats(agent)
        assert stats.model_dump() == {
            "total_messages": 1,
            "total_tool_calls": 1,
            "total_snapshots": 2,
            "tool_calls_by_state": {"sealed": 1},
            "tool_calls_by_name": {"only": 1},
            "messages_by_role": {"user": 1},
        }

    @pytest.mark.asyncio
    async def test_aggregate_stats_of_unknown_agent_is_zero(self, store: Any, ns: str) -> None:
        stats = await store.aggregate_stats(ns + "nobody")
        assert stats.model_dump() == {
            "total_messages": 0,
            "total_tool_calls": 0,
            "total_snapshots": 0,
            "tool_calls_by_state": {},
            "tool_calls_by_name": {},
            "messages_by_role": {},
        }

    # ------------------------------------------------------------------ deletes and hostile values

    @pytest.mark.asyncio
    async def test_queries_forget_deleted_agents(self, store: Any, ns: str) -> None:
        agent, _ = await self._calls(store, ns)
        await store.save_info(agent, data.info(agent, template_id=ns + "tpl"))
        await store.save_messages(agent, data.conversation())
        await store.delete(agent)
        assert await store.query_sessions(template_id=ns + "tpl") == []
        assert await store.query_messages(agent_id=agent) == []
        assert await store.query_tool_calls(agent_id=agent) == []
        assert [c.tool_call_id for c in await store.query_tool_calls(tool_name=ns + "bash")] == ["c9"]
        assert (await store.aggregate_stats(agent)).total_messages == 0

    @pytest.mark.asyncio
    async def test_filter_values_are_taken_literally(self, store: Any, ns: str) -> None:
        # Each hostile value is stored under its own agent next to a decoy that
        # a LIKE pattern or pasted SQL would also match.
        for index, value in enumerate(HOSTILE_VALUES):
            agent, decoy = f"{ns}h{index}", f"{ns}d{index}"
            await store.save_info(agent, data.info(agent, template_id=ns + value, metadata={"userId": ns + value}))
            await store.save_info(decoy, data.info(decoy, template_id=ns + "axb", metadata={"userId": ns + "axb"}))
            await store.save_tool_call_records(agent, [data.tool_call("c", name=ns + value)])
            await store.save_tool_call_records(decoy, [data.tool_call("c", name=ns + "axb")])
        for index, value in enumerate(HOSTILE_VALUES):
            agent = f"{ns}h{index}"
            assert [s.agent_id for s in await store.query_sessions(template_id=ns + value)] == [agent], value
            assert [s.agent_id for s in await store.query_sessions(user_id=ns + value)] == [agent], value
            assert [c.agent_id for c in await store.query_tool_calls(tool_name=ns + value)] == [agent], value
            if value in ("%", "_"):  # as LIKE patterns these would match other tests' templates
                assert await store.query_sessions(template_id=value) == [], value
            assert await store.query_messages(agent_id=agent, content_type=value) == [], value
