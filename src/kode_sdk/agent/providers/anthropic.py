"""Claude through the official ``anthropic`` SDK (``pip install 'kode-sdk[anthropic]'``).

Streams the Messages API: text deltas are passed on as they arrive, tool-use
input is assembled from its JSON deltas, and usage comes from the
``message_start`` / ``message_delta`` events.

>>> provider = AnthropicProvider(model="claude-sonnet-5-5")   # doctest: +SKIP
... # reads ANTHROPIC_API_KEY; base_url= points it at a proxy or a test server
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ...errors import ProviderError
from .base import ModelRequest, StreamEvent, TextDelta, TurnComplete, Usage, merge_turns, parse_tool_input

__all__ = ["AnthropicProvider"]

DEFAULT_MODEL = "claude-sonnet-5-5"


class AnthropicProvider:
    """A :class:`~kode_sdk.agent.providers.base.Provider` for Anthropic's Messages API.

    ``api_key`` and ``base_url`` default to the SDK's own (``ANTHROPIC_API_KEY``,
    ``ANTHROPIC_BASE_URL``); ``client`` takes a ready ``anthropic.AsyncAnthropic``.
    Extra keyword arguments go to the client (``timeout``, ``max_retries``, ...).
    """

    name = "anthropic"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 4096,
        client: Any = None,
        **client_options: Any,
    ) -> None:
        try:
            import anthropic
        except ImportError:
            raise ProviderError(
                "AnthropicProvider needs the 'anthropic' package: pip install 'kode-sdk[anthropic]'"
            ) from None
        self._sdk: Any = anthropic
        self.model = model
        self.max_tokens = max_tokens
        self.client: Any = client or anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, **client_options)

    def build_params(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for ``request``."""
        system_parts, turns = merge_turns(request.messages)
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens or self.max_tokens,
            "messages": [{"role": role, "content": blocks} for role, blocks in turns],
        }
        system = "\n\n".join(part for part in (request.system, *system_parts) if part)
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in request.tools
            ]
        return params

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream one assistant turn."""
        blocks: dict[int, dict[str, Any]] = {}
        partial_json: dict[int, list[str]] = {}
        stop_reason = "end_turn"
        input_tokens = output_tokens = 0
        model: str | None = self.model
        try:
            stream = await self.client.messages.create(**self.build_params(request), stream=True)
            async for event in stream:
                kind = event.type
                if kind == "message_start":
                    model = event.message.model or model
                    input_tokens = event.message.usage.input_tokens or 0
                    output_tokens = event.message.usage.output_tokens or 0
                elif kind == "content_block_start":
                    block = event.content_block.model_dump(exclude_none=True)
                    if block.get("type") == "tool_use":
                        block["input"] = {}
                        partial_json[event.index] = []
                    blocks[event.index] = block
                elif kind == "content_block_delta":
                    delta = event.delta
                    block = blocks.setdefault(event.index, {"type": "text", "text": ""})
                    if delta.type == "text_delta":
                        block["text"] = block.get("text", "") + delta.text
                        yield TextDelta(delta.text)
                    elif delta.type == "input_json_delta":
                        partial_json.setdefault(event.index, []).append(delta.partial_json)
                    elif delta.type == "thinking_delta":
                        block["thinking"] = block.get("thinking", "") + delta.thinking
                    elif delta.type == "signature_delta":
                        block["signature"] = delta.signature
                elif kind == "content_block_stop":
                    if event.index in partial_json:
                        blocks[event.index]["input"] = parse_tool_input("".join(partial_json.pop(event.index)))
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    output_tokens = event.usage.output_tokens or output_tokens
                    if getattr(event.usage, "input_tokens", None):
                        input_tokens = event.usage.input_tokens
        except self._sdk.AnthropicError as exc:
            raise ProviderError(f"Anthropic API call failed: {type(exc).__name__}: {exc}") from exc
        for index, raw in partial_json.items():  # a stream cut before content_block_stop
            blocks[index]["input"] = parse_tool_input("".join(raw))
        yield TurnComplete(
            content=[blocks[i] for i in sorted(blocks)],
            stop_reason=stop_reason,
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            model=model,
        )
