"""Child process for the SIGKILL test: saves growing and changing message
lists for a few agents in a loop, printing ``ack <agent> <n>`` after each
save returned. The parent kills it at a random moment.

Usage: python sqlite_kill_writer.py DB_PATH
"""

from __future__ import annotations

import asyncio
import sys

AGENTS = ("kill-a", "kill-b", "kill-c")
PAD = "x" * 400


def conversation(agent: str, n: int) -> list[dict[str, object]]:
    """The list saved for ``agent`` at step ``n``: its length grows and
    shrinks, and earlier positions change at different rates, so saves insert,
    rewrite and truncate."""
    length = 40 + (n * 37) % 90
    out: list[dict[str, object]] = []
    for i in range(length):
        version = n // (1 + i % 5)
        role = "assistant" if i % 2 else "user"
        out.append({"role": role, "content": [{"type": "text", "text": f"{agent} #{i} v{version} {PAD}"}]})
    return out


async def main(db_path: str) -> None:
    from kode_sdk.store.sqlite import SqliteStore

    async with SqliteStore(db_path) as store:
        n = 0
        while True:
            n += 1
            for agent in AGENTS:
                await store.save_messages(agent, conversation(agent, n))
                print(f"ack {agent} {n}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
