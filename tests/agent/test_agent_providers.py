"""The Anthropic and OpenAI providers, on their official SDKs, against a fake
server on 127.0.0.1: a tool-use round trip through the agent and the store."""

from __future__ import annotations

import importlib.util

import pytest
from agent_scripts import TEMPLATE, make_registry
from fake_llm import FakeLLMServer

from kode_sdk.agent import Agent
from kode_sdk.errors import ProviderError
from kode_sdk.store.base import Store
from kode_sdk.types import ToolCallState

needs_anthropic = pytest.mark.skipif(
    importlib.util.find_spec("anthropic") is None, reason="the 'anthropic' extra is not installed"
)
needs_openai = pytest.mark.skipif(
    importlib.util.find_spec("openai") is None, reason="the 'openai' extra is not installed"
)

ROUND_TRIP = [
    [("text", "Let me add them."), ("tool", "toolu_01", "add", {"a": 20, "b": 22})],
    [("text", "The sum is 42.")],
]


async def _round_trip(store: Store, provider: object) -> Agent:
    agent = await Agent.create(provider=provider, store=store, template=TEMPLATE, tools=make_registry())  # type: ignore[arg-type]
    assert await agent.send("What is 20 + 22?") == "The sum is 42."
    (record,) = await store.load_tool_call_records(agent.agent_id)
    assert (record.id, record.name, record.input, record.result) == ("toolu_01", "add", {"a": 20, "b": 22}, 42)
    assert record.state is ToolCallState.COMPLETED
    messages = await store.load_messages(agent.agent_id)
    assert messages[1].content == [
        {"type": "text", "text": "Let me add them."},
        {"type": "tool_use", "id": "toolu_01", "name": "add", "input": {"a": 20, "b": 22}},
    ]
    timeline = [t.event async for t in store.read_events(agent.agent_id)]
    chunks = [e["delta"] for e in timeline if e["type"] == "text_chunk"]
    assert len(chunks) > 2 and "".join(chunks) == "Let me add them.The sum is 42."
    usage = [e for e in timeline if e["type"] == "token_usage"]
    assert [(u["input_tokens"], u["output_tokens"]) for u in usage] == [(42, 17), (42, 17)]
    return agent


@needs_anthropic
async def test_anthropic_tool_use_round_trip(store: Store) -> None:
    from kode_sdk.agent.providers.anthropic import AnthropicProvider

    with FakeLLMServer(ROUND_TRIP) as server:
        provider = AnthropicProvider(model="claude-test", api_key="sk-test", base_url=server.url, max_retries=0)
        await _round_trip(store, provider)
    first, second = (r["body"] for r in server.requests)
    assert [r["path"] for r in server.requests] == ["/v1/messages", "/v1/messages"]
    headers = server.requests[0]["headers"]
    assert headers.get("x-api-key") == "sk-test" or headers.get("authorization") == "Bearer sk-test"
    assert "anthropic-version" in headers
    assert first["stream"] is True and first["model"] == "claude-test"
    assert first["system"] == "You are a test agent."
    assert first["messages"] == [{"role": "user", "content": [{"type": "text", "text": "What is 20 + 22?"}]}]
    tools = {t["name"]: t for t in first["tools"]}
    assert tools["add"]["input_schema"]["required"] == ["a"]
    assert tools["add"]["description"] == "Add two integers."
    assert second["messages"][1]["role"] == "assistant"
    assert second["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "42", "is_error": False}],
    }


@needs_openai
async def test_openai_tool_use_round_trip(store: Store) -> None:
    from kode_sdk.agent.providers.openai import OpenAIProvider

    with FakeLLMServer(ROUND_TRIP) as server:
        provider = OpenAIProvider(model="gpt-test", api_key="sk-test", base_url=server.url + "/v1", max_retries=0)
        await _round_trip(store, provider)
    first, second = (r["body"] for r in server.requests)
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions"] * 2
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-test"
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    assert first["messages"] == [
        {"role": "system", "content": "You are a test agent."},
        {"role": "user", "content": "What is 20 + 22?"},
    ]
    tools = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert tools["add"]["parameters"]["properties"]["a"]["type"] == "integer"
    assert second["messages"][2] == {
        "role": "assistant",
        "content": "Let me add them.",
        "tool_calls": [
            {"id": "toolu_01", "type": "function", "function": {"name": "add", "arguments": '{"a":20,"b":22}'}}
        ],
    }
    assert second["messages"][3] == {"role": "tool", "tool_call_id": "toolu_01", "content": "42"}


@needs_anthropic
async def test_anthropic_api_error_becomes_provider_error(store: Store) -> None:
    from kode_sdk.agent.providers.anthropic import AnthropicProvider

    with FakeLLMServer([]) as server:
        provider = AnthropicProvider(api_key="sk-test", base_url=server.url, max_retries=0)
        agent = await Agent.create(provider=provider, store=store, template=TEMPLATE, tools=make_registry())
        with pytest.raises(ProviderError, match="Anthropic API call failed"):
            await agent.send("hello")
    errors = [t.event async for t in store.read_events(agent.agent_id, channel="monitor")]
    assert [e["phase"] for e in errors if e["type"] == "error"] == ["model"]


@needs_openai
async def test_openai_api_error_becomes_provider_error(store: Store) -> None:
    from kode_sdk.agent.providers.openai import OpenAIProvider

    with FakeLLMServer([]) as server:
        provider = OpenAIProvider(api_key="sk-test", base_url=server.url + "/v1", max_retries=0)
        agent = await Agent.create(provider=provider, store=store, template=TEMPLATE, tools=make_registry())
        with pytest.raises(ProviderError, match="OpenAI API call failed"):
            await agent.send("hello")


@pytest.mark.parametrize(("module", "cls"), [("anthropic", "AnthropicProvider"), ("openai", "OpenAIProvider")])
def test_missing_sdk_is_a_clear_provider_error(module: str, cls: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, module, None)  # what `import anthropic` sees without the extra
    provider_cls = getattr(importlib.import_module(f"kode_sdk.agent.providers.{module}"), cls)
    with pytest.raises(ProviderError, match=rf"pip install 'kode-sdk\[{module}\]'"):
        provider_cls(api_key="sk-test")
