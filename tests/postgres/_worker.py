"""A worker process for the multi-process PostgresStore tests.

python _worker.py counter URL SCHEMA AGENT N      # N locked increments of metadata["counter"]
python _worker.py hold URL SCHEMA AGENT [LEASE_MS]  # take the lock, print HELD, wait to be killed
python _worker.py tail URL SCHEMA AGENT COUNT     # print each tailed event: {"seq", "at"} per line
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time

from kode_sdk.store.postgres import PostgresStore


async def counter(store: PostgresStore, agent: str, times: int) -> None:
    for _ in range(times):
        async with store.agent_lock(agent, timeout_ms=120_000):
            info = await store.load_info(agent)
            assert info is not None
            info.metadata["counter"] = int(info.metadata.get("counter", 0)) + 1
            await store.save_info(agent, info)


async def hold(store: PostgresStore, agent: str) -> None:
    await store.acquire_agent_lock(agent, timeout_ms=10_000)
    print("HELD", flush=True)
    await asyncio.sleep(3600)


async def tail(store: PostgresStore, agent: str, count: int) -> None:
    print("READY", flush=True)
    seen = 0
    async with contextlib.aclosing(store.tail_events(agent)) as events:
        async for item in events:
            print(json.dumps({"seq": item.bookmark.seq, "at": time.time()}), flush=True)
            seen += 1
            if seen == count:
                return


async def main(argv: list[str]) -> None:
    mode, url, schema, agent = argv[:4]
    # A lease length (behind a pooler, where locks are leases) for "hold".
    connection: str | dict[str, object] = (
        url if mode != "hold" or len(argv) < 5 else {"dsn": url, "lock_lease_ms": argv[4]}
    )
    async with PostgresStore(connection, schema=schema) as store:
        if mode == "counter":
            await counter(store, agent, int(argv[4]))
        elif mode == "hold":
            await hold(store, agent)
        elif mode == "tail":
            await tail(store, agent, int(argv[4]))
        else:
            raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
