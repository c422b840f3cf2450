"""A worker process of the contention test.

Usage: python contention_worker.py SPEC PROC TASKS SECONDS

Runs TASKS asyncio workers, each with a store object of its own, for SECONDS,
mixing saves, appends, events, queries and locked read-modify-writes on the
shared agents (``shared-0``, ``shared-1``, ``shared-log``) and on a private
agent per worker. Every error is caught and reported, never raised: the last
stdout line is one JSON object with the worker's counts and errors.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import traceback
from typing import Any

from _common import open_store

SHARED = ("shared-0", "shared-1")
LOG = "shared-log"


def message(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def event(seq: int) -> dict[str, Any]:
    return {
        "cursor": seq,
        "bookmark": {"seq": seq, "timestamp": 1_700_000_000_000 + seq},
        "event": {"channel": "progress", "type": "x"},
    }


async def locked_increment(store: Any, agent: str, stats: dict[str, Any]) -> None:
    """Counter += 1 and one event with the next seq, both under the agent lock."""
    async with store.agent_lock(agent, timeout_ms=120_000):
        info = await store.load_info(agent)
        info.metadata["counter"] = int(info.metadata.get("counter", 0)) + 1
        seq = int(info.metadata.get("seq", 0)) + 1
        await store.append_event(agent, event(seq))
        info.metadata["seq"] = seq
        await store.save_info(agent, info)
    stats["increments"][agent] = stats["increments"].get(agent, 0) + 1


async def worker(spec: str, name: str, deadline: float, rng: random.Random, open_delay: float) -> dict[str, Any]:
    store = open_store(spec)
    stats: dict[str, Any] = {"ops": 0, "errors": [], "increments": {}, "appends": 0, "private": name, "last_ops": []}
    private: list[dict[str, Any]] = []
    private_seq = 0
    # Later workers open while the first one's store is in use: a store opened
    # beside another in the same process must not disturb it.
    await asyncio.sleep(open_delay)
    await store.open()
    try:
        await store.save_info(name, {"agent_id": name, "template_id": "contention", "metadata": {"counter": 0}})
        while time.monotonic() < deadline:
            op = rng.choice(("incr", "incr", "incr-private", "save", "append", "event", "query", "read"))
            try:
                if op == "incr":
                    await locked_increment(store, rng.choice(SHARED), stats)
                elif op == "incr-private":
                    await locked_increment(store, name, stats)
                    private_seq += 1
                elif op == "save":
                    private = private[: rng.randrange(len(private) + 1)] if rng.random() < 0.2 else private
                    private = [*private, message(f"{name} {stats['ops']}")]
                    await store.save_messages(name, private)
                elif op == "append":
                    await store.append_messages(LOG, [message(f"{name} {stats['ops']}")])
                    stats["appends"] += 1
                elif op == "event":
                    # Private events come from this worker only: its own next seq, no lock needed.
                    async with store.agent_lock(name, timeout_ms=120_000):
                        info = await store.load_info(name)
                        seq = int(info.metadata.get("seq", 0)) + 1
                        await store.append_event(name, event(seq))
                        info.metadata["seq"] = seq
                        await store.save_info(name, info)
                        private_seq += 1
                elif op == "query":
                    await store.query_sessions(template_id="contention", limit=20)
                    await store.query_messages(agent_id=LOG, limit=20)
                    await store.query_tool_calls(tool_name="bash", limit=5)
                    await store.aggregate_stats(rng.choice(SHARED))
                else:
                    loaded = [m.content[0]["text"] for m in await store.load_messages(name)]
                    expected = [m["content"][0]["text"] for m in private]
                    if loaded != expected:
                        at = next((i for i, (a, b) in enumerate(zip(loaded, expected, strict=False)) if a != b), None)
                        stats["errors"].append(
                            f"read: {name} does not hold its last saved list: {len(loaded)} loaded,"
                            f" {len(expected)} saved, first difference at {at}:"
                            f" {loaded[at : at + 2] if at is not None else ''}"
                            f" vs {expected[at : at + 2] if at is not None else ''}; last ops {stats['last_ops']}"
                        )
                    await store.load_info(rng.choice(SHARED))
                    count = 0
                    async for _ in store.read_events(rng.choice(SHARED)):
                        count += 1
                stats["ops"] += 1
                stats["last_ops"] = [*stats["last_ops"][-5:], op]
            except Exception as exc:  # every error is a finding: report it, keep going
                stats["errors"].append(f"{op}: {type(exc).__name__}: {exc}")
                if len(stats["errors"]) == 1:
                    stats["traceback"] = traceback.format_exc()
        stats["private_events"] = private_seq
        stats["private_messages"] = len(private)
    finally:
        await store.close()
    return stats


async def main(spec: str, proc: int, tasks: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    results = await asyncio.gather(
        *(worker(spec, f"private-{proc}-{t}", deadline, random.Random(), 0.2 * t) for t in range(tasks)),
        return_exceptions=True,
    )
    out = [r if isinstance(r, dict) else {"ops": 0, "errors": [f"worker: {r!r}"], "increments": {}} for r in results]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
