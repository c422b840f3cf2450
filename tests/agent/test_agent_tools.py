"""@tool, ToolRegistry, templates and permission policies (no store involved)."""

from __future__ import annotations

from typing import Literal

import pytest

from kode_sdk.agent import AgentTemplate, PermissionPolicy, TemplateRegistry, Tool, ToolContext, ToolRegistry, tool
from kode_sdk.agent.tools import ToolInputError, default_registry, parse_docstring


async def test_tool_schema_from_signature_and_docstring() -> None:
    @tool(registry=None)
    async def search(
        query: str, limit: int = 10, mode: Literal["fast", "exact"] = "fast", tags: list[str] | None = None
    ) -> list[str]:
        """Search the notes.

        Longer explanation that the model also sees.

        Args:
            query: Words to look for.
            limit: At most this many results,
                newest first.
            mode: How to match.
        """
        return [query] * limit

    assert search.name == "search"
    assert search.description == "Search the notes.\n\nLonger explanation that the model also sees."
    schema = search.input_schema
    assert schema["type"] == "object" and schema["required"] == ["query"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["query"] == {"type": "string", "description": "Words to look for."}
    assert props["limit"] == {
        "type": "integer",
        "default": 10,
        "description": "At most this many results, newest first.",
    }
    assert props["mode"]["enum"] == ["fast", "exact"]
    assert "title" not in props["tags"] and "description" not in props["tags"]
    assert await search.run({"query": "wal", "limit": 2}) == ["wal", "wal"]
    assert search.spec.input_schema is schema


async def test_tool_input_is_validated_with_a_readable_message() -> None:
    @tool(registry=None)
    async def add(a: int, b: int = 0) -> int:
        """Add."""
        return a + b

    with pytest.raises(ToolInputError, match=r"invalid input for tool 'add': a: Field required"):
        await add.run({})
    with pytest.raises(ToolInputError, match="b: Input should be a valid integer"):
        await add.run({"a": 1, "b": "two"})
    with pytest.raises(ToolInputError, match="c: Extra inputs are not permitted"):
        await add.run({"a": 1, "c": 3})
    with pytest.raises(ToolInputError, match="JSON object"):
        await add.run([1, 2])
    assert await add.run({"a": "4"}) == 4  # lax coercion, as JSON models send numbers as strings sometimes
    assert await add(2, 3) == 5  # still callable directly


async def test_sync_functions_and_context_parameter() -> None:
    seen: list[str] = []

    def shout(text: str, ctx: ToolContext) -> str:
        """Shout."""
        seen.append(ctx.call_id)
        return text.upper()

    made = Tool(shout)
    assert "ctx" not in made.input_schema["properties"]
    context = ToolContext(agent_id="a", call_id="c-1", agent=None)  # type: ignore[arg-type]
    assert await made.run({"text": "hi"}, context) == "HI"
    assert seen == ["c-1"]
    with pytest.raises(ToolInputError, match="needs a ToolContext"):
        await made.run({"text": "hi"})


def test_bad_tools_are_refused() -> None:
    async def splat(*args: int) -> None:
        """No."""

    with pytest.raises(TypeError, match=r"\*args"):
        Tool(splat)
    with pytest.raises(ValueError, match="tool name"):
        Tool(lambda: None, name="has space")


def test_registry_and_default_registry() -> None:
    registry = ToolRegistry()

    @registry.tool
    async def ping() -> str:
        """Pong."""
        return "pong"

    assert registry.names() == ["ping"] and "ping" in registry and len(registry) == 1
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Tool(ping.fn))
    with pytest.raises(KeyError, match=r"no tool named 'pong' \(registered: ping\)"):
        registry.get("pong")
    assert registry.resolve(["ping", ping]) == [ping, ping]

    @tool
    async def kode_test_default_tool() -> str:
        """Registered globally."""
        return "ok"

    assert default_registry.get("kode_test_default_tool") is kode_test_default_tool


def test_sphinx_docstrings() -> None:
    description, params = parse_docstring(
        """Fetch a page.

        :param url: The address,
            absolute.
        :param timeout: Seconds.
        :returns: the body
        """
    )
    assert description == "Fetch a page."
    assert params == {"url": "The address, absolute.", "timeout": "Seconds."}


def test_templates_and_policies() -> None:
    template = AgentTemplate.coerce(
        {"id": "ops", "systemPrompt": "Run ops.", "tools": ["deploy"], "requireApproval": ["deploy"], "maxSteps": 4}
    )
    assert template.system_prompt == "Run ops." and template.max_steps == 4
    assert template.permission.evaluate("deploy") == "ask"
    assert template.permission.evaluate("status") == "allow"
    assert PermissionPolicy(require_approval="*").evaluate("anything") == "ask"
    assert PermissionPolicy(require_approval="*", deny=["rm"]).evaluate("rm") == "deny"
    with pytest.raises(ValueError, match="unknown key 'sytem_prompt'"):
        AgentTemplate.coerce({"id": "x", "sytem_prompt": "typo"})
    with pytest.raises(ValueError, match="'id' is required"):
        AgentTemplate.coerce({"system_prompt": "x"})
    with pytest.raises(ValueError, match="max_steps"):
        AgentTemplate.coerce({"id": "x", "max_steps": 0})
    with pytest.raises(ValueError, match="unknown key"):
        PermissionPolicy.coerce({"ask": ["x"]})

    registry = TemplateRegistry.coerce({"ops": template})
    assert registry.get("ops") is template
    assert TemplateRegistry.coerce({"id": "solo"}).get("solo").id == "solo"
    with pytest.raises(KeyError, match=r"no template 'nope' \(registered: ops\)"):
        registry.get("nope")
    with pytest.raises(ValueError, match="key must be the template id"):
        TemplateRegistry.coerce({"other": template})
