"""The query primitives of :class:`~kode_sdk.store.json_store.JSONStore`
(the public methods are :class:`~kode_sdk.store.queries.QueryFront`'s), by
scanning every agent's files under its shared lock: cheap byte tests on the
stored lines rule most rows out before anything is decoded.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .. import jsoncodec
from ..errors import StoreCorruptionError
from ..types import (
    AgentInfo,
    SessionInfo,
    StoredMessage,
    StoredToolCall,
    ToolCallRecord,
    ms_to_datetime,
)
from .json_layout import MESSAGES, META, ROLE_PREFIX, SNAPSHOTS, TOOL_CALLS, decode, read_list, read_meta, stored_record
from .queries import AgentCounts, MessageQuery, QueryFront, SessionQuery, ToolCallQuery
from .query_rules import user_id_of
from .search import SearchCandidate, SearchRequest, SearchRow, SearchScan

T = TypeVar("T")


class JSONQueries(QueryFront):
    """The scan-based query primitives; :class:`~kode_sdk.store.json_store.JSONStore`
    provides the directory (``_root``), :meth:`_scan` and :meth:`_read`."""

    _root: Path

    def _scan(self, agent_id: str | None, fn: Callable[[str, Path], None]) -> None:
        """Call ``fn(agent_id, agent_dir)`` for one agent or every agent, each
        under its shared file lock."""
        raise NotImplementedError

    async def _read(self, agent_id: str, fn: Callable[[Path], T], absent: T) -> T:
        """``fn(agent_dir)`` under the agent's shared lock (``absent`` for an unknown agent)."""
        raise NotImplementedError

    async def _session_rows(self, q: SessionQuery) -> list[SessionInfo]:
        """``query_sessions``: every agent's ``meta.json``, filtered and sorted."""
        template_id, user_id = q.template_id, q.user_id
        after, before = q.created_after, q.created_before
        key_name = {"created_at": "createdAt", "updated_at": "updatedAt", "message_count": "messageCount"}[q.sort_by]
        offset, limit = q.offset, q.limit

        def run() -> list[SessionInfo]:
            rows: list[tuple[Any, str, dict[str, Any], int]] = []

            def visit(name: str, agent_dir: Path) -> None:
                doc = read_meta(agent_dir)
                if doc is None:
                    return
                info = doc["info"]
                created = info.get("createdAt")
                if template_id is not None and info.get("templateId") != template_id:
                    return
                if user_id is not None and user_id_of(info.get("metadata")) != user_id:
                    return
                if (after is not None and created < after) or (before is not None and created > before):
                    return
                value = doc["updatedAt"] if key_name == "updatedAt" else info.get(key_name)
                rows.append((value, name, info, doc["updatedAt"]))

            self._scan(q.agent_id, visit)
            rows.sort(key=lambda row: (row[0], row[1]), reverse=q.sort_order == "desc")
            page = []
            for _, name, wire, updated in rows[offset : offset + limit]:
                info = stored_record(AgentInfo, wire, self._root / name / META)
                page.append(
                    SessionInfo(
                        agent_id=name,
                        template_id=info.template_id,
                        created_at=info.created_at,
                        updated_at=ms_to_datetime(updated),
                        message_count=info.message_count,
                        last_sfp_index=info.last_sfp_index,
                        breakpoint=info.breakpoint,
                        metadata=info.metadata,
                    )
                )
            return page

        return await asyncio.to_thread(run)

    async def _message_rows(self, q: MessageQuery) -> list[StoredMessage]:
        """``query_messages``: every agent's messages, filtered (cheap byte
        tests first), sorted newest first."""
        content_type, after, before = q.content_type, q.created_after, q.created_before
        offset, limit = q.offset, q.limit
        role_prefix = _role_prefix(q.role)
        type_needle = None if content_type is None else b'"type":' + jsoncodec.encode(content_type)

        def run() -> list[StoredMessage]:
            rows: list[tuple[int, int, str, bytes, Path]] = []

            def visit(name: str, agent_dir: Path) -> None:
                path = agent_dir / MESSAGES
                for seq, payload, created in _messages_in(agent_dir, after, before, role_prefix):
                    if type_needle is not None and (
                        type_needle not in payload
                        or all(block.get("type") != content_type for block in decode(payload, path)["content"])
                    ):
                        continue
                    rows.append((created, seq, name, payload, path))

            self._scan(q.agent_id, visit)
            rows.sort(key=lambda row: (row[0], row[1], row[2]), reverse=True)
            page = []
            for created, seq, name, payload, path in rows[offset : offset + limit]:
                wire = decode(payload, path)
                page.append(
                    StoredMessage(
                        agent_id=name,
                        seq=seq,
                        role=wire["role"],
                        content=wire["content"],
                        created_at=ms_to_datetime(created),
                        metadata=wire.get("metadata"),
                    )
                )
            return page

        return await asyncio.to_thread(run)

    async def _search_rows(self, request: SearchRequest) -> list[SearchRow]:
        """``search_messages`` by scanning every agent's messages (no index)."""
        role_prefix = _role_prefix(request.role)
        after, before = request.created_after, request.created_before

        def run() -> list[SearchRow]:
            scan = SearchScan(request)

            def visit(name: str, agent_dir: Path) -> None:
                if request.template_id is not None or request.user_id is not None:
                    doc = read_meta(agent_dir)
                    if doc is None:
                        return
                    info = doc["info"]
                    if request.template_id is not None and info.get("templateId") != request.template_id:
                        return
                    if request.user_id is not None and user_id_of(info.get("metadata")) != request.user_id:
                        return
                path = agent_dir / MESSAGES
                for seq, payload, created in _messages_in(agent_dir, after, before, role_prefix):
                    wire = decode(payload, path)
                    scan.offer(SearchCandidate(name, seq, wire["role"], created, wire))

            self._scan(request.agent_id, visit)
            return scan.rows()

        return await asyncio.to_thread(run)

    async def _tool_call_rows(self, q: ToolCallQuery) -> list[StoredToolCall]:
        """``query_tool_calls``: every agent's tool calls, filtered (cheap byte
        tests first), sorted newest first."""
        tool_name, is_error, has_approval = q.tool_name, q.is_error, q.has_approval
        wanted_state, after, before = q.state, q.created_after, q.created_before
        offset, limit = q.offset, q.limit
        # Byte needles each record must contain to match: cheap to test, so
        # only candidates are decoded (a needle found elsewhere is re-checked).
        needles = [b'"name":' + jsoncodec.encode(tool_name)] if tool_name is not None else []
        if is_error is True:
            needles.append(b'"isError":true')

        def run() -> list[StoredToolCall]:
            rows: list[tuple[int, str, str, dict[str, Any], Path]] = []

            def visit(name: str, agent_dir: Path) -> None:
                path = agent_dir / TOOL_CALLS
                for payload, _ in read_list(agent_dir, TOOL_CALLS):
                    if any(needle not in payload for needle in needles):
                        continue
                    wire = decode(payload, path)
                    created = wire.get("createdAt")
                    if not isinstance(created, int):
                        raise StoreCorruptionError(f"{path}: a tool call without createdAt")
                    if (
                        (tool_name is not None and wire.get("name") != tool_name)
                        or (is_error is not None and wire.get("isError") is not is_error)
                        or (has_approval is not None and _approval_required(wire) is not has_approval)
                        or (wanted_state is not None and wire.get("state") != wanted_state)
                        or (after is not None and created < after)
                        or (before is not None and created > before)
                    ):
                        continue
                    rows.append((created, str(wire.get("id")), name, wire, path))

            self._scan(q.agent_id, visit)
            rows.sort(key=lambda row: (row[0], row[1], row[2]), reverse=True)
            return [
                StoredToolCall.from_record(name, stored_record(ToolCallRecord, wire, path))
                for _, _, name, wire, path in rows[offset : offset + limit]
            ]

        return await asyncio.to_thread(run)

    async def _agent_counts(self, agent_id: str) -> AgentCounts:
        """``aggregate_stats``: the agent's messages, tool calls and snapshot files, counted."""

        def read(agent_dir: Path) -> AgentCounts:
            by_role: dict[str, int] = {}
            path = agent_dir / MESSAGES
            for payload, _ in read_list(agent_dir, MESSAGES):
                match = ROLE_PREFIX.match(payload)
                role = match[1].decode() if match else str(decode(payload, path).get("role"))
                by_role[role] = by_role.get(role, 0) + 1
            by_state: dict[str, int] = {}
            by_name: dict[str, int] = {}
            calls_path = agent_dir / TOOL_CALLS
            for payload, _ in read_list(agent_dir, TOOL_CALLS):
                wire = decode(payload, calls_path)
                by_state[wire["state"]] = by_state.get(wire["state"], 0) + 1
                by_name[wire["name"]] = by_name.get(wire["name"], 0) + 1
            try:
                snapshots = sum(1 for n in os.listdir(agent_dir / SNAPSHOTS) if n.endswith(".json"))
            except FileNotFoundError:
                snapshots = 0
            return AgentCounts(by_role, by_state, by_name, snapshots)

        return await self._read(agent_id, read, AgentCounts({}, {}, {}))


def _approval_required(wire: dict[str, Any]) -> bool:
    approval = wire.get("approval")
    return isinstance(approval, dict) and approval.get("required") is True


def _role_prefix(role: str | None) -> bytes | None:
    """What a stored message of ``role`` starts with (its wire form starts with
    the role, so no decoding is needed to filter on it); ``None``: any role."""
    return None if role is None else b'{"role":' + jsoncodec.encode(role)


def _messages_in(
    agent_dir: Path, after: int | None, before: int | None, role_prefix: bytes | None
) -> Iterator[tuple[int, bytes, int]]:
    """The agent's stored messages as ``(seq, payload, created ms)``, only those
    created within ``[after, before]`` and starting with ``role_prefix``."""
    for seq, (payload, created) in enumerate(read_list(agent_dir, MESSAGES)):
        if (after is not None and created < after) or (before is not None and created > before):
            continue
        if role_prefix is not None and not payload.startswith(role_prefix):
            continue
        yield seq, payload, created
