"""One process's part of the ADK restart test: run turns on a session, print what it holds, exit.

``python adk_child.py '<store config JSON>' <session_id> <user text>...``: an
``LlmAgent`` on a scripted model (a ``BaseLlm`` subclass: it calls ``add``,
then answers with the tool's result; no network) run by ADK's own ``Runner``
with a KodeSessionService, one ``run_async`` per text; the ``add`` tool keeps a
session-scoped count and a user-scoped total in state. Prints the final texts,
then the session's events and state as JSON; exits without closing anything.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from kode_sdk import create_store
from kode_sdk.integrations.adk import KodeSessionService

APP = "adder-app"
USER = "u1"


class ScriptedLlm(BaseLlm):
    """Calls add(<n>, <turn>) for a user text, then reports the tool's result."""

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        contents = llm_request.contents
        turn = sum(1 for c in contents if c.role == "user" and any(p.text for p in c.parts or []))
        last = contents[-1].parts[-1]
        if last.function_response is not None:
            result = last.function_response.response["result"]
            part = types.Part(text=f"turn {turn}: the sum is {result}")
        else:
            n = int(str(last.text).split()[-1])
            part = types.Part(function_call=types.FunctionCall(name="add", args={"a": n, "b": turn}))
        yield LlmResponse(content=types.Content(role="model", parts=[part]))


def add(a: int, b: int, tool_context: ToolContext) -> dict[str, Any]:
    """Add two integers."""
    tool_context.state["adds"] = tool_context.state.get("adds", 0) + 1
    tool_context.state["user:total"] = tool_context.state.get("user:total", 0) + a + b
    return {"result": a + b}


async def main() -> None:
    config, session_id, texts = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
    service = KodeSessionService(create_store(config))
    agent = LlmAgent(name="adder", model=ScriptedLlm(model="scripted"), tools=[add], instruction="Add numbers.")
    runner = Runner(agent=agent, app_name=APP, session_service=service)
    if await service.get_session(app_name=APP, user_id=USER, session_id=session_id) is None:
        await service.create_session(app_name=APP, user_id=USER, session_id=session_id, state={"started": True})
    for text in texts:
        message = types.Content(role="user", parts=[types.Part(text=text)])
        final = None
        async for event in runner.run_async(user_id=USER, session_id=session_id, new_message=message):
            if event.is_final_response() and event.content and event.content.parts:
                final = event.content.parts[0].text
        print(json.dumps({"final": final}))
    session = await service.get_session(app_name=APP, user_id=USER, session_id=session_id)
    assert session is not None
    events = [e.model_dump(mode="json", exclude_none=True) for e in session.events]
    print(json.dumps({"events": events, "state": session.state}))
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
