"""The agent loop that drives a store: :class:`Agent`, templates, tools,
permissions, the event bus and model providers."""

from __future__ import annotations

from .agent import Agent, CompleteResult, ResumeStrategy
from .events import EventBus
from .permissions import PermissionPolicy
from .providers.anthropic import AnthropicProvider
from .providers.base import ModelRequest, Provider, TextDelta, ToolSpec, TurnComplete, Usage
from .providers.openai import OpenAIProvider
from .providers.scripted import ScriptedProvider
from .templates import AgentTemplate, TemplateRegistry
from .todos import todo_write
from .tools import Tool, ToolContext, ToolRegistry, default_registry, tool

__all__ = [
    "Agent",
    "AgentTemplate",
    "AnthropicProvider",
    "CompleteResult",
    "EventBus",
    "ModelRequest",
    "OpenAIProvider",
    "PermissionPolicy",
    "Provider",
    "ResumeStrategy",
    "ScriptedProvider",
    "TemplateRegistry",
    "TextDelta",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolSpec",
    "TurnComplete",
    "Usage",
    "default_registry",
    "todo_write",
    "tool",
]
