"""An OpenAI Agents SDK session on any kode store: :class:`KodeSession`.

Install with ``pip install 'kode-sdk[openai-agents]'``::

    from agents import Agent, Runner
    from kode_sdk import create_store
    from kode_sdk.integrations.openai_agents import KodeSession

    store = create_store({"type": "sqlite", "db_path": "agents.db"})
    session = KodeSession("user-42", store)
    result = await Runner.run(agent, "Hello", session=session)

A session is one kode agent (its id is the session id when that is a valid
agent id, else ``oa-x.<hash>``; ``AgentInfo.template_id`` is
``"openai-agents"``), and each item is one kode message, so ``kode
messages``, ``query_messages``, search and stats see the conversation:

- a message item (``user``, ``assistant``, ``system``; ``developer`` is kept
  as ``system``) has ``text`` blocks for its text parts;
- a ``function_call`` is an assistant ``tool_use`` block (``input`` is the
  parsed ``arguments``), a ``function_call_output`` a user ``tool_result``;
- what the blocks do not carry (item type, ids, status, annotations, the exact
  ``arguments`` text when it is not plain ``json.dumps`` output) is in
  ``metadata["oa"]``. An item is stored this way only when it converts back
  to an equal item; any other item (reasoning, web search, ...) is kept whole
  in one ``openai_item`` block. ``get_items`` returns exactly what was added.

``add_items`` is one ``append_messages`` call (one transaction); ``pop_item``
reads the list and saves it without its last item; ``clear_session`` deletes
the agent.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

try:
    from agents.memory.session_settings import SessionSettings
except ImportError as exc:  # pragma: no cover - the hint is the point
    raise ImportError(
        "kode_sdk.integrations.openai_agents needs the OpenAI Agents SDK: pip install 'kode-sdk[openai-agents]'"
    ) from exc

from ..errors import InvalidAgentIdError
from ..store.agent_ids import validate_agent_id
from ..store.protocols import Store
from ..types import AgentInfo, Message
from ._loop import LoopHome

__all__ = ["TEMPLATE_ID", "KodeSession", "item_from_message", "item_to_message"]

#: ``AgentInfo.template_id`` of every agent that holds an OpenAI Agents session.
TEMPLATE_ID = "openai-agents"
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = {"input_text", "output_text"}
# json.dumps(x) and json.dumps(x, separators=(",", ":")): the same encoders, built once (dumps with
# options builds a new encoder per call).
_dumps = json.JSONEncoder().encode
_dumps_compact = json.JSONEncoder(separators=(",", ":")).encode


def _args_form(arguments: Any) -> tuple[dict[str, Any], str] | None:
    """``(parsed arguments, how to write them back)`` when the text is a JSON object, else None."""
    if not isinstance(arguments, str):
        return None
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    if _dumps(parsed) == arguments:
        return parsed, "d"
    if _dumps_compact(parsed) == arguments:
        return parsed, "c"
    return parsed, "raw"


def _convert(item: dict[str, Any]) -> dict[str, Any] | None:
    kind = item.get("type")
    rest = {k: v for k, v in item.items()}
    if kind in (None, "message") and item.get("role") in _ROLES:
        content = rest.pop("content", None)
        if isinstance(content, str):
            blocks: list[Any] = [{"type": "text", "text": content}]
            rest["_str"] = True
        elif isinstance(content, list):
            blocks = []
            for part in content:
                if isinstance(part, dict) and part.get("type") in _TEXT_PARTS and isinstance(part.get("text"), str):
                    blocks.append(
                        {"type": "text", "text": part["text"], "oa": {k: v for k, v in part.items() if k != "text"}}
                    )
                else:
                    blocks.append(part)
        else:
            return None
        return {"role": _ROLES[item["role"]], "content": blocks, "metadata": {"oa": rest}}
    if kind == "function_call" and isinstance(item.get("call_id"), str) and isinstance(item.get("name"), str):
        form = _args_form(item.get("arguments"))
        if form is None or not item["call_id"] or not item["name"]:
            return None
        parsed, how = form
        for key in ("call_id", "name", "arguments"):
            rest.pop(key)
        rest["_args"] = item["arguments"] if how == "raw" else how
        block = {"type": "tool_use", "id": item["call_id"], "name": item["name"], "input": parsed}
        return {"role": "assistant", "content": [block], "metadata": {"oa": rest}}
    if kind == "function_call_output" and isinstance(item.get("call_id"), str) and item["call_id"]:
        block = {
            "type": "tool_result",
            "tool_use_id": item["call_id"],
            "content": item.get("output"),
            "is_error": False,
        }
        rest.pop("call_id")
        if "output" in rest:
            rest.pop("output")
        else:
            rest["_no_output"] = True
        return {"role": "user", "content": [block], "metadata": {"oa": rest}}
    return None


def item_to_message(item: dict[str, Any]) -> dict[str, Any]:
    """The kode wire message an item is stored as (its blocks queryable wherever the item allows)."""
    wire = _convert(item)
    if wire is not None and item_from_message(wire) == item:
        return wire
    role = _ROLES.get(str(item.get("role")), "assistant" if item.get("type") != "function_call_output" else "user")
    return {"role": role, "content": [{"type": "openai_item", "item": item}], "metadata": None}


def item_from_message(message: dict[str, Any] | Message) -> dict[str, Any]:
    """The item a message written by :func:`item_to_message` stands for."""
    if isinstance(message, Message):
        blocks, metadata = message.content, message.metadata
    else:
        blocks, metadata = message["content"], message.get("metadata")
    first = blocks[0] if blocks else {}
    kind = first.get("type")
    single = len(blocks) == 1
    if single and kind == "openai_item":
        return dict(first["item"])
    oa = (metadata or {})["oa"]
    if kind == "tool_use" and "_args" in oa:
        rest = dict(oa)
        how = rest.pop("_args")
        parsed = first["input"]
        arguments = _dumps(parsed) if how == "d" else _dumps_compact(parsed) if how == "c" else how
        return {**rest, "call_id": first["id"], "name": first["name"], "arguments": arguments}
    if kind == "tool_result" and single and oa.get("type") == "function_call_output":
        item = {**oa, "call_id": first["tool_use_id"]}
        if not item.pop("_no_output", False):
            item["output"] = first["content"]
        return item
    base = oa
    if "_str" in oa:
        base = dict(oa)
        if base.pop("_str"):
            return {**base, "content": first["text"]}
    parts = [{**b["oa"], "text": b["text"]} if b.get("type") == "text" and "oa" in b else b for b in blocks]
    return {**base, "content": parts}


class KodeSession:
    """The OpenAI Agents SDK ``Session`` protocol on a kode store (module docstring: how).

    ``store`` is any kode store, opened or not; ``agent_prefix`` is put before
    the agent id. Several sessions may share one store.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        store: Store,
        *,
        agent_prefix: str = "",
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.session_id = session_id
        self.store = store
        self.session_settings = session_settings
        self.agent_id = _agent_id(agent_prefix, session_id)
        self._home = LoopHome("openai-agents", store)
        self._has_info = False

    async def _items(self, limit: int | None) -> list[dict[str, Any]]:
        messages = await self.store.load_messages(self.agent_id)
        if limit is not None:
            messages = messages[-limit:] if limit > 0 else []
        return [item_from_message(m) for m in messages]

    async def _add(self, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        if not self._has_info:
            # The session shows in `kode sessions` from its first item on; once known, no more reads.
            if await self.store.load_info(self.agent_id) is None:
                info = AgentInfo(
                    agent_id=self.agent_id, template_id=TEMPLATE_ID, metadata={"session_id": self.session_id}
                )
                await self.store.save_info(self.agent_id, info)
            self._has_info = True
        await self.store.append_messages(self.agent_id, [item_to_message(dict(i)) for i in items])

    async def _pop(self) -> dict[str, Any] | None:
        messages = await self.store.load_messages(self.agent_id)
        if not messages:
            return None
        await self.store.save_messages(self.agent_id, messages[:-1])
        return item_from_message(messages[-1])

    async def _clear(self) -> None:
        self._has_info = False
        await self.store.delete(self.agent_id)

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The session's items, oldest first; the last ``limit`` when given."""
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        return await self._home.arun(self._items(limit))

    async def add_items(self, items: list[Any]) -> None:
        """Append ``items`` (one transaction)."""
        await self._home.arun(self._add(list(items)))

    async def pop_item(self) -> Any | None:
        """Remove and return the newest item, or None when the session is empty."""
        return await self._home.arun(self._pop())

    async def clear_session(self) -> None:
        """Remove every item (and the session's agent)."""
        await self._home.arun(self._clear())


def _agent_id(prefix: str, session_id: str) -> str:
    candidate = prefix + str(session_id)
    if not str(session_id).startswith("oa-x."):
        try:
            return validate_agent_id(candidate)
        except InvalidAgentIdError:
            pass
    return validate_agent_id(f"{prefix}oa-x.{hashlib.sha256(str(session_id).encode()).hexdigest()[:40]}")
