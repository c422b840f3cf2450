"""OpenAI chat models through the official ``openai`` SDK (``pip install 'kode-sdk[openai]'``).

Streams the Chat Completions API and translates between its shapes and the
KODE content blocks the store keeps: ``tool_use`` blocks become ``tool_calls``
(arguments as JSON text), ``tool_result`` blocks become ``role: "tool"``
messages, and streamed tool-call fragments are put back together by index.

>>> provider = OpenAIProvider(model="gpt-5.4-mini")   # doctest: +SKIP
... # reads OPENAI_API_KEY; base_url= points it at a compatible server
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ... import jsoncodec
from ...errors import ProviderError
from .base import (
    ModelRequest,
    StreamEvent,
    TextDelta,
    TurnComplete,
    Usage,
    merge_turns,
    parse_tool_input,
    tool_result_text,
)

__all__ = ["OpenAIProvider"]

DEFAULT_MODEL = "gpt-5.4-mini"

_STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use", "length": "max_tokens"}


def _to_openai_messages(request: ModelRequest) -> list[dict[str, Any]]:
    system_parts, turns = merge_turns(request.messages)
    out: list[dict[str, Any]] = []
    system = "\n\n".join(part for part in (request.system, *system_parts) if part)
    if system:
        out.append({"role": "system", "content": system})
    for role, blocks in turns:
        texts = [b["text"] for b in blocks if b.get("type") == "text"]
        if role == "assistant":
            message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
            calls = [
                {
                    "id": b["id"],
                    "type": "function",
                    "function": {"name": b["name"], "arguments": jsoncodec.dumps(b.get("input", {}), "input")},
                }
                for b in blocks
                if b.get("type") == "tool_use"
            ]
            if calls:
                message["tool_calls"] = calls
            out.append(message)
            continue
        # Tool results answer the assistant's tool_calls and must follow them directly.
        for block in blocks:
            if block.get("type") == "tool_result":
                out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": tool_result_text(block)})
        if texts:
            out.append({"role": "user", "content": "\n\n".join(texts)})
    return out


class OpenAIProvider:
    """A :class:`~kode_sdk.agent.providers.base.Provider` for OpenAI's Chat Completions API.

    ``api_key`` and ``base_url`` default to the SDK's own (``OPENAI_API_KEY``,
    ``OPENAI_BASE_URL``); ``client`` takes a ready ``openai.AsyncOpenAI``.
    Content blocks with no Chat Completions equivalent (images, thinking) are
    not sent.
    """

    name = "openai"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int | None = None,
        client: Any = None,
        **client_options: Any,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise ProviderError("OpenAIProvider needs the 'openai' package: pip install 'kode-sdk[openai]'") from None
        self._sdk: Any = openai
        self.model = model
        self.max_tokens = max_tokens
        self.client: Any = client or openai.AsyncOpenAI(api_key=api_key, base_url=base_url, **client_options)

    def build_params(self, request: ModelRequest) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for ``request``."""
        params: dict[str, Any] = {"model": self.model, "messages": _to_openai_messages(request)}
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
                }
                for t in request.tools
            ]
        max_tokens = request.max_tokens or self.max_tokens
        if max_tokens:
            params["max_completion_tokens"] = max_tokens
        return params

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream one assistant turn."""
        text_parts: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage = Usage()
        model: str | None = self.model
        try:
            stream = await self.client.chat.completions.create(
                **self.build_params(request), stream=True, stream_options={"include_usage": True}
            )
            async for chunk in stream:
                model = getattr(chunk, "model", None) or model
                if getattr(chunk, "usage", None) is not None:
                    usage = Usage(
                        input_tokens=chunk.usage.prompt_tokens or 0, output_tokens=chunk.usage.completion_tokens or 0
                    )
                for choice in chunk.choices or ():
                    delta = choice.delta
                    if delta is not None and delta.content:
                        text_parts.append(delta.content)
                        yield TextDelta(delta.content)
                    for fragment in (delta.tool_calls if delta is not None else None) or ():
                        call = calls.setdefault(fragment.index, {"id": None, "name": "", "arguments": []})
                        if fragment.id:
                            call["id"] = fragment.id
                        if fragment.function is not None:
                            if fragment.function.name:
                                call["name"] += fragment.function.name
                            if fragment.function.arguments:
                                call["arguments"].append(fragment.function.arguments)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except self._sdk.OpenAIError as exc:
            raise ProviderError(f"OpenAI API call failed: {type(exc).__name__}: {exc}") from exc
        content: list[dict[str, Any]] = []
        if text_parts:
            content.append({"type": "text", "text": "".join(text_parts)})
        for index in sorted(calls):
            call = calls[index]
            content.append(
                {
                    "type": "tool_use",
                    "id": call["id"] or f"call_{index}",
                    "name": call["name"],
                    "input": parse_tool_input("".join(call["arguments"])),
                }
            )
        yield TurnComplete(
            content=content,
            stop_reason=_STOP_REASONS.get(finish or "stop", finish or "end_turn"),
            usage=usage,
            model=model,
        )
