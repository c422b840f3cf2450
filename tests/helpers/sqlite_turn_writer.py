"""Child process for the two-writers test: runs agent turns against one
SQLite file for a given time, then prints ``done <turns>``. Any exception
(``database is locked`` included) ends it with a traceback and exit code 1.

Usage: python sqlite_turn_writer.py DB_PATH AGENT_ID SECONDS
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any


def turn_messages(agent: str, turn: int) -> list[dict[str, Any]]:
    tid = f"toolu_{agent}_{turn}"
    return [
        {"role": "user", "content": [{"type": "text", "text": f"{agent} question {turn}"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": f"{agent} answer {turn}"},
                {"type": "tool_use", "id": tid, "name": "bash_run", "input": {"cmd": f"echo {turn}"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": "ok"}]},
    ]


def tool_record(agent: str, turn: int) -> dict[str, Any]:
    return {"id": f"toolu_{agent}_{turn}", "name": "bash_run", "state": "completed", "created_at": turn}


async def main(db_path: str, agent: str, seconds: float) -> None:
    from kode_sdk.store.sqlite import SqliteStore

    messages: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    turn = 0
    async with SqliteStore(db_path) as store:
        while time.monotonic() < deadline:
            messages += turn_messages(agent, turn)
            records.append(tool_record(agent, turn))
            await store.save_messages(agent, messages)
            await store.save_tool_call_records(agent, records)
            for k in range(3):
                seq = turn * 3 + k
                await store.append_event(
                    agent,
                    {
                        "cursor": seq,
                        "bookmark": {"seq": seq, "timestamp": seq},
                        "event": {"channel": "progress", "type": "t"},
                    },
                )
            await store.save_info(agent, {"agent_id": agent, "template_id": "t", "message_count": len(messages)})
            turn += 1
    print(f"done {turn}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
