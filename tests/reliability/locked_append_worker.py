"""A worker process of the locked-append test.

Usage: python locked_append_worker.py SPEC WORKER ROUNDS START

From the epoch time START on (so workers begin together), ROUNDS times: take
the agent's lock, read the events after the last seq this worker knows,
append the next seq, release; then give the others a turn (wait up to 100 ms
for someone else's append), so the lock changes hands between processes all
the time (a flock is not fair: without this one process would keep it).
Prints one JSON object: the seqs whose append_event returned (acknowledged),
and any error.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from typing import Any

from _common import open_store

AGENT = "locked-log"


async def main(spec: str, worker: int, rounds: int, start: float) -> dict[str, Any]:
    acknowledged: list[int] = []
    store: Any = open_store(spec)
    try:
        async with store:
            await asyncio.sleep(max(0.0, start - time.time()))
            last = 0
            for i in range(rounds):
                async with store.agent_lock(AGENT, timeout_ms=120_000):
                    async for timeline in store.read_events(AGENT, since=last):
                        last = max(last, timeline.bookmark.seq)
                    seq = last + 1
                    await store.append_event(
                        AGENT,
                        {
                            "cursor": seq,
                            "bookmark": {"seq": seq, "timestamp": int(time.time() * 1000)},
                            "event": {"channel": "progress", "type": "locked_append", "worker": worker, "i": i},
                        },
                    )
                    acknowledged.append(seq)
                    last = seq
                if i + 1 < rounds:
                    await others_turn(store, last)
    except Exception:
        return {"worker": worker, "acknowledged": acknowledged, "error": traceback.format_exc()}
    return {"worker": worker, "acknowledged": acknowledged, "error": None}


async def others_turn(store: Any, last: int) -> None:
    deadline = time.monotonic() + 0.1
    while time.monotonic() < deadline:
        async for _ in store.read_events(AGENT, since=last):
            return
        await asyncio.sleep(0.002)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))))
