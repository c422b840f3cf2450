"""Model providers: the scripted one (offline), and Anthropic and OpenAI on
their official SDKs — optional extras, imported only when such a provider is
constructed, so importing this package never needs them."""

from __future__ import annotations

from .anthropic import AnthropicProvider
from .base import ModelRequest, Provider, StreamEvent, TextDelta, ToolSpec, TurnComplete, Usage
from .openai import OpenAIProvider
from .scripted import ScriptedProvider, ScriptTurn, text, tool_use

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
