"""A fake model server on 127.0.0.1 speaking the two APIs the real providers use:
Anthropic's Messages API (``POST /v1/messages``, streamed as SSE events) and
OpenAI's Chat Completions API (``POST /v1/chat/completions``, streamed as
``data:`` chunks ending in ``[DONE]``).

Each request is answered with the next scripted turn — a list of ``("text", str)``
and ``("tool", id, name, input)`` parts — and kept in ``requests`` (headers and
JSON body) for the test to inspect.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Turn = list[tuple[Any, ...]]


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_stream(turn: Turn, model: str) -> bytes:
    out = [
        _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 42, "output_tokens": 1},
                },
            },
        ),
        _sse("ping", {"type": "ping"}),
    ]
    has_tool = False
    for index, part in enumerate(turn):
        if part[0] == "text":
            out.append(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                )
            )
            words = part[1].split(" ")
            for i, word in enumerate(words):
                chunk = word if i == len(words) - 1 else word + " "
                out.append(
                    _sse(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": chunk}},
                    )
                )
        else:
            has_tool = True
            _, call_id, name, tool_input = part
            block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            out.append(
                _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
            )
            raw = json.dumps(tool_input)
            for piece in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use" if has_tool else "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 17},
            },
        )
    )
    out.append(_sse("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def openai_stream(turn: Turn, model: str) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body)}\n\n".encode()

    out = [chunk({"role": "assistant", "content": ""})]
    tool_index = 0
    for part in turn:
        if part[0] == "text":
            words = part[1].split(" ")
            for i, word in enumerate(words):
                out.append(chunk({"content": word if i == len(words) - 1 else word + " "}))
        else:
            _, call_id, name, tool_input = part
            raw = json.dumps(tool_input)
            head = {"index": tool_index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            out.append(chunk({"tool_calls": [head]}))
            for piece in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                out.append(chunk({"tool_calls": [{"index": tool_index, "function": {"arguments": piece}}]}))
            tool_index += 1
    out.append(chunk({}, "tool_calls" if tool_index else "stop"))
    usage = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59},
    }
    out.append(f"data: {json.dumps(usage)}\n\n".encode())
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


class FakeLLMServer:
    """``with FakeLLMServer(turns) as server: ...`` — ``server.url`` is its base URL."""

    def __init__(self, turns: list[Turn]) -> None:
        self.turns = list(turns)
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                if not owner.turns:
                    self._error(500, "the fake server ran out of scripted turns")
                    return
                turn = owner.turns.pop(0)
                if self.path.endswith("/v1/messages"):
                    payload = anthropic_stream(turn, body.get("model", "claude-fake"))
                elif self.path.endswith("/chat/completions"):
                    payload = openai_stream(turn, body.get("model", "gpt-fake"))
                else:
                    self._error(404, f"unknown path {self.path}")
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _error(self, status: int, message: str) -> None:
                payload = json.dumps({"type": "error", "error": {"type": "api_error", "message": message}}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
