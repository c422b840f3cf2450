"""Child of the kill-loop test: W1-like turns until it is SIGKILLed.

Usage: python kill_child.py SPEC TAG

For n = 1, 2, ...: for each agent, save its message list, print
``ack <agent> messages <n> <hash>``, save its tool-call records, print
``ack <agent> tools <n> <hash>``. A line is printed only after the call returned.
"""

from __future__ import annotations

import asyncio
import sys

from _common import AGENTS, conversation, digest, open_store, tool_calls

from kode_sdk.store.base import coerce_list
from kode_sdk.types import Message, ToolCallRecord


async def main(spec: str, tag: int) -> None:
    store = open_store(spec)
    await store.open()
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        for agent in AGENTS:
            messages = conversation(agent, tag, n)
            await store.save_messages(agent, messages)  # type: ignore[attr-defined]
            print(f"ack {agent} messages {n} {digest(coerce_list(Message, messages, 'm'))}", flush=True)
            records = tool_calls(agent, tag, n)
            await store.save_tool_call_records(agent, records)  # type: ignore[attr-defined]
            print(f"ack {agent} tools {n} {digest(coerce_list(ToolCallRecord, records, 't'))}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
