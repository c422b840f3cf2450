"""What a model provider is to the agent loop: one streaming call per step.

A provider receives a :class:`ModelRequest` (system prompt, the conversation,
the tools on offer) and yields :class:`TextDelta` chunks as text arrives, then
exactly one :class:`TurnComplete` holding the whole assistant turn in KODE
content blocks (``text`` and ``tool_use``), why it stopped, and the tokens used.

>>> async def run(provider: Provider, request: ModelRequest) -> TurnComplete:   # doctest: +SKIP
...     async for event in provider.stream(request):
...         if isinstance(event, TextDelta):
...             print(event.text, end="")
...         else:
...             return event
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, runtime_checkable

from ... import jsoncodec
from ...types import Message

__all__ = [
    "ModelRequest",
    "Provider",
    "StreamEvent",
    "TextDelta",
    "ToolSpec",
    "TurnComplete",
    "Usage",
    "merge_turns",
    "parse_tool_input",
    "tool_result_text",
]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the model sees it: name, description and JSON schema of its input."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything one model call needs."""

    system: str
    messages: Sequence[Message]
    tools: Sequence[ToolSpec] = ()
    max_tokens: int | None = None
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A chunk of assistant text, as it streams in."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one model call consumed."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """The end of a model call: the assistant's content blocks, the stop reason
    (``end_turn``, ``tool_use``, ``max_tokens``, ...) and the usage."""

    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    usage: Usage = field(default_factory=Usage)
    model: str | None = None


StreamEvent: TypeAlias = TextDelta | TurnComplete


@runtime_checkable
class Provider(Protocol):
    """A model behind one streaming call. ``name`` labels events and metrics."""

    name: str

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Yield :class:`TextDelta` chunks, then one :class:`TurnComplete`."""
        ...


def merge_turns(messages: Sequence[Message]) -> tuple[list[str], list[tuple[str, list[dict[str, Any]]]]]:
    """Split ``messages`` into system texts and alternating user/assistant turns.

    The store keeps messages exactly as they happened, which can put two user
    messages side by side (a sealed tool result followed by the next question,
    or a retry after a failed model call). The provider APIs want strict
    alternation, so neighbours of the same role are merged here, at the edge.
    """
    system: list[str] = []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in messages:
        if message.role == "system":
            system.extend(block["text"] for block in message.content if block.get("type") == "text")
            continue
        if turns and turns[-1][0] == message.role:
            turns[-1][1].extend(message.content)
        else:
            turns.append((message.role, list(message.content)))
    return system, turns


def tool_result_text(block: dict[str, Any]) -> str:
    """The text of a ``tool_result`` block's content (a string, a list of text blocks, or any JSON)."""
    content = block.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in content):
        return "".join(str(b.get("text", "")) for b in content)
    return jsoncodec.dumps(content, "tool_result.content")


def parse_tool_input(raw: str) -> dict[str, Any]:
    """Tool-use input streamed as JSON text → a dict. Text that is not a JSON
    object is kept under ``_invalid_json`` / ``_value``, so the tool's input
    validation reports it to the model instead of the agent failing."""
    if not raw.strip():
        return {}
    try:
        value = jsoncodec.decode(raw)
    except ValueError:
        return {"_invalid_json": raw}
    return value if isinstance(value, dict) else {"_value": value}
