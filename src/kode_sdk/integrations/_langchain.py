"""LangChain messages as kode messages, and back, exactly.

A LangGraph thread's message channel holds LangChain ``BaseMessage`` objects;
the saver keeps them as kode messages so that ``kode messages``,
``query_messages`` and stats see the conversation. The kode form carries what
queries need in content blocks (``text``, ``tool_use`` for an AI message's
tool calls, ``tool_result`` for a ``ToolMessage``) and everything else the
LangChain object holds (its type, id, metadata fields that differ from their
defaults) in ``metadata["lc"]``. :func:`to_wire` checks that the kode form
converts back to an equal object; when it does not (a message shape this module
does not know), it returns ``None`` and the caller stores the value another way.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

__all__ = ["from_wire", "to_wire"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "user"}
_CLASSES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "ai": AIMessage,
    "system": SystemMessage,
    "tool": ToolMessage,
}
# Fields that the content blocks carry, per message type.
_IN_BLOCKS = {
    "human": {"content", "type"},
    "system": {"content", "type"},
    "ai": {"content", "type", "tool_calls"},
    "tool": {"content", "type", "tool_call_id", "status"},
}
_DEFAULTS: dict[str, dict[str, Any]] = {}


def _defaults(kind: str) -> dict[str, Any]:
    found = _DEFAULTS.get(kind)
    if found is None:
        found = {}
        for name, field in _CLASSES[kind].model_fields.items():
            if field.default_factory is not None:
                found[name] = field.default_factory()  # type: ignore[call-arg]
            elif not field.is_required():
                found[name] = field.default
        _DEFAULTS[kind] = found
    return found


def to_wire(message: Any) -> dict[str, Any] | None:
    """The kode wire form of a LangChain message, or ``None`` when it would not round-trip."""
    kind = getattr(message, "type", None)
    if kind not in _CLASSES or type(message) is not _CLASSES[kind]:
        return None
    fields = message.model_dump()
    content = fields["content"]
    lc: dict[str, Any] = {"type": kind}
    blocks: list[Any]
    if kind == "tool":
        if not isinstance(fields["tool_call_id"], str) or not fields["tool_call_id"]:
            return None
        blocks = [
            {
                "type": "tool_result",
                "tool_use_id": fields["tool_call_id"],
                "content": content,
                "is_error": fields["status"] == "error",
            }
        ]
    else:
        if isinstance(content, str):
            blocks = [{"type": "text", "text": content}] if content else []
        else:
            blocks = list(content)
            lc["list"] = True
        if kind == "ai" and fields["tool_calls"]:
            for call in fields["tool_calls"]:
                if not call.get("id") or not isinstance(call.get("args"), dict):
                    return None
                blocks.append({"type": "tool_use", "id": call["id"], "name": call["name"], "input": call["args"]})
            lc["calls"] = len(fields["tool_calls"])
    defaults = _defaults(kind)
    skip = _IN_BLOCKS[kind]
    for name, value in fields.items():
        if name not in skip and (name not in defaults or value != defaults[name]):
            lc[name] = value
    wire = {"role": _ROLES[kind], "content": blocks, "metadata": {"lc": lc}}
    try:
        if from_wire(wire) != message:
            return None
    except Exception:  # any shape this module does not know: the caller stores the value another way
        return None
    return wire


def from_wire(wire: dict[str, Any]) -> BaseMessage:
    """The LangChain message a :func:`to_wire` form (or a loaded kode message) stands for."""
    lc = dict(wire["metadata"]["lc"])
    kind = lc.pop("type")
    blocks = wire["content"]
    listed = lc.pop("list", False)
    calls = lc.pop("calls", 0)
    if kind == "tool":
        block = blocks[0]
        lc["content"] = block["content"]
        lc["tool_call_id"] = block["tool_use_id"]
        lc["status"] = "error" if block.get("is_error") else "success"
        return ToolMessage(**lc)
    body = blocks[: len(blocks) - calls] if calls else blocks
    if listed:
        lc["content"] = list(body)
    else:
        lc["content"] = body[0]["text"] if body else ""
    if calls:
        lc["tool_calls"] = [
            {"name": b["name"], "args": b["input"], "id": b["id"], "type": "tool_call"}
            for b in blocks[len(blocks) - calls :]
        ]
    return _CLASSES[kind](**lc)
