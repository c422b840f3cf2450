"""Child process holding an agent lock: prints ``locked`` once it holds it;
on the line ``release`` from stdin prints ``releasing``, releases, prints
``released``. The parent may instead kill it while it holds the lock.

Usage: python sqlite_lock_holder.py DB_PATH AGENT_ID
"""

from __future__ import annotations

import asyncio
import sys


async def main(db_path: str, agent: str) -> None:
    from kode_sdk.store.sqlite import SqliteStore

    async with SqliteStore(db_path) as store:
        lock = await store.acquire_agent_lock(agent, timeout_ms=10_000)
        print("locked", flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        if line.strip() == "release":
            print("releasing", flush=True)
            await lock.release()
            print("released", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
