"""Model providers: the scripted one (offline), and Anthropic and OpenAI on
their official SDKs (optional extras, imported only when used)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import ModelRequest, Provider, StreamEvent, TextDelta, ToolSpec, TurnComplete, Usage
from .scripted import ScriptedProvider, ScriptTurn, text, tool_use

if TYPE_CHECKING:
    from .anthropic import AnthropicProvider
    from .openai import OpenAIProvider

__all__ = [
    "AnthropicProvider",
    "ModelRequest",
    "OpenAIProvider",
    "Provider",
    "ScriptTurn",
    "ScriptedProvider",
    "StreamEvent",
    "TextDelta",
    "ToolSpec",
    "TurnComplete",
    "Usage",
    "text",
    "tool_use",
]


def __getattr__(name: str) -> Any:
    # The SDK-backed providers load on first use, so importing kode_sdk never
    # needs the optional `anthropic` / `openai` packages.
    if name == "AnthropicProvider":
        from .anthropic import AnthropicProvider

        return AnthropicProvider
    if name == "OpenAIProvider":
        from .openai import OpenAIProvider

        return OpenAIProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
