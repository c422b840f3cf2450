"""One process's part of the OpenAI Agents restart test: run turns on a session, print its items, exit.

``python openai_child.py '<store config JSON>' <session_id> <user text>...``:
starts a fake Chat Completions server on 127.0.0.1 (no internet: a scripted
model that calls ``add`` and then answers with the sum), runs one
``Runner.run_sync`` per user text with a KodeSession, prints the session's
items as JSON and exits without closing anything.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

from kode_sdk import create_store
from kode_sdk.integrations.openai_agents import KodeSession


def reply(body: dict[str, Any]) -> dict[str, Any]:
    """The scripted model: a tool call for a user turn, the tool's result as text after it."""
    messages = body["messages"]
    last = messages[-1]
    turn = sum(1 for m in messages if m["role"] == "user")
    if last["role"] == "tool":
        message: dict[str, Any] = {"role": "assistant", "content": f"turn {turn}: the sum is {last['content']}"}
        finish = "stop"
    else:
        n = int(str(last["content"]).split()[-1])
        arguments = json.dumps({"a": n, "b": turn})
        call = {"id": f"call_{turn}", "type": "function", "function": {"name": "add", "arguments": arguments}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    return {
        "id": f"chatcmpl-{turn}",
        "object": "chat.completion",
        "created": 1700000000,
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
        payload = json.dumps(reply(body)).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def main() -> None:
    config, session_id, texts = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="fake", max_retries=0)
    agent = Agent(name="adder", tools=[add], model=OpenAIChatCompletionsModel(model="fake", openai_client=client))
    session = KodeSession(session_id, create_store(config))
    for text in texts:
        result = Runner.run_sync(agent, text, session=session)
        print(json.dumps({"final": result.final_output}))
    # run_sync runs on this thread's default loop, where the session's store now lives.
    print(json.dumps(asyncio.get_event_loop().run_until_complete(session.get_items())))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
