"""Agent templates: the system prompt, the tools and the permission policy an
agent is made from, looked up by id when an agent is resumed.

>>> template = AgentTemplate.coerce({
...     "id": "ops", "system_prompt": "You run deployments.",
...     "tools": ["deploy", "status"], "require_approval": ["deploy"],
... })
>>> template.permission.evaluate("deploy")
'ask'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .permissions import PermissionPolicy
from .registry import Registry
from .tools import Tool

__all__ = ["AgentTemplate", "TemplateRegistry"]

_KEYS = {
    "id": "id",
    "system_prompt": "system_prompt",
    "systemPrompt": "system_prompt",
    "tools": "tools",
    "permission": "permission",
    "require_approval": "require_approval",
    "requireApproval": "require_approval",
    "max_steps": "max_steps",
    "maxSteps": "max_steps",
    "max_tokens": "max_tokens",
    "maxTokens": "max_tokens",
    "metadata": "metadata",
}


@dataclass(frozen=True, slots=True)
class AgentTemplate:
    """What an agent is made from.

    ``tools`` holds tool names (looked up in the agent's tool registry), :class:`Tool`
    objects or plain functions. ``max_steps`` bounds the model calls of one
    ``chat``, so a model that never stops asking for tools cannot loop forever.
    """

    id: str
    system_prompt: str = ""
    tools: tuple[str | Tool | Callable[..., Any], ...] = ()
    permission: PermissionPolicy = field(default_factory=PermissionPolicy)
    max_steps: int = 32
    max_tokens: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("template id must be a non-empty string")
        if not isinstance(self.system_prompt, str):
            raise ValueError(f"template {self.id!r}: system_prompt must be a string")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"template {self.id!r}: max_steps must be a positive int; got {self.max_steps!r}")

    @classmethod
    def coerce(cls, value: AgentTemplate | Mapping[str, Any]) -> AgentTemplate:
        """Accept a template or a dict (snake_case or camelCase keys).

        ``require_approval`` at the top level is a shorthand for
        ``permission={"require_approval": [...]}``.
        """
        if isinstance(value, AgentTemplate):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"a template must be a dict or an AgentTemplate, got {type(value).__name__}")
        unknown = [k for k in value if k not in _KEYS]
        if unknown:
            raise ValueError(f"template: unknown key {unknown[0]!r} (known: {', '.join(sorted(set(_KEYS.values())))})")
        data = {_KEYS[k]: v for k, v in value.items()}
        if "id" not in data:
            raise ValueError("template: 'id' is required")
        permission = PermissionPolicy.coerce(data.pop("permission", None))
        shorthand = data.pop("require_approval", None)
        if shorthand is not None:
            permission = PermissionPolicy(permission.require_approval | set(shorthand), permission.deny)
        tools = data.pop("tools", None) or ()
        if isinstance(tools, str | bytes) or not isinstance(tools, Sequence):
            raise ValueError(f"template {data['id']!r}: tools must be a list")
        return cls(permission=permission, tools=tuple(tools), **data)


class TemplateRegistry(Registry[AgentTemplate]):
    """Templates by id, for :meth:`Agent.resume_from_store` to rebuild agents with.

    >>> registry = TemplateRegistry([{"id": "assistant", "system_prompt": "Be brief."}])
    >>> registry.get("assistant").system_prompt
    'Be brief.'
    """

    _noun = "template"

    def __init__(self, templates: Sequence[AgentTemplate | Mapping[str, Any]] = ()) -> None:
        super().__init__()
        for template in templates:
            self.register(template)

    def register(self, template: AgentTemplate | Mapping[str, Any]) -> AgentTemplate:
        """Add (or replace) a template; returns it as an :class:`AgentTemplate`."""
        made = AgentTemplate.coerce(template)
        self._items[made.id] = made
        return made

    def get(self, template_id: str) -> AgentTemplate:
        """The template ``template_id``; ``KeyError`` naming the known ids otherwise."""
        return self._lookup(template_id)

    @classmethod
    def coerce(
        cls,
        value: TemplateRegistry | AgentTemplate | Mapping[str, Any] | Sequence[AgentTemplate | Mapping[str, Any]],
    ) -> TemplateRegistry:
        """Accept a registry, one template, a list of them, or a dict of id → template."""
        if isinstance(value, TemplateRegistry):
            return value
        if isinstance(value, AgentTemplate):
            return cls([value])
        if isinstance(value, Mapping):
            if "id" in value and not isinstance(value["id"], AgentTemplate | Mapping):
                return cls([value])  # a single template given as a dict
            registry = cls()
            for key, template in value.items():
                made = AgentTemplate.coerce(template)
                if made.id != key:
                    raise ValueError(f"templates[{key!r}] has id {made.id!r}; the key must be the template id")
                registry.register(made)
            return registry
        return cls(value)
