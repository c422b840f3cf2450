"""Run by test_agent_crash.py in a child process: an agent that answers once,
then starts a tool call that blocks until the parent kills the process.

    python crash_child.py '<store spec json>' <marker path>
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from agent_scripts import CRASH_SCRIPT, TEMPLATE, make_registry
from agent_stores import open_store

from kode_sdk.agent import Agent, ScriptedProvider


async def main(spec: dict[str, object], marker: Path) -> None:
    store = open_store(spec)
    agent = await Agent.create(
        provider=ScriptedProvider(CRASH_SCRIPT),
        store=store,
        template=TEMPLATE,
        agent_id="crash-1",
        tools=make_registry(block_marker=marker),
    )
    await agent.send("First question.")
    await agent.send("Now block.")  # never returns: the parent kills us inside the tool


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]), Path(sys.argv[2])))
