"""Cost of the agent loop on a real store: one turn = a model call asking for a
tool, the tool, and a final answer (2 model calls, 1 tool call, 4 messages).

    python bench/agent_loop.py --backend sqlite --turns 200

Prints JSON: turns per second, store calls per turn, and the latency of early
and late turns (a growing history must not make a turn slower).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kode_sdk.agent import Agent, ScriptedProvider, ToolRegistry
from kode_sdk.agent.providers import text, tool_use
from kode_sdk.store.base import Store

POSTGRES_URL = os.environ.get("KODE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
POSTGRES_SCHEMA = f"bench_agent_{os.getpid()}"
registry = ToolRegistry()


@registry.tool
async def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


def make_store(backend: str, workdir: Path) -> Store:
    if backend == "sqlite":
        from kode_sdk.store.sqlite import SqliteStore

        return SqliteStore(workdir / "agents.db")
    if backend == "json":
        from kode_sdk.store.json_store import JSONStore

        return JSONStore(workdir / "store")
    if backend == "postgres":
        from kode_sdk.store.postgres import PostgresStore

        return PostgresStore(POSTGRES_URL, schema=POSTGRES_SCHEMA)
    raise SystemExit(f"unknown backend {backend!r}")


async def run(backend: str, turns: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        store = make_store(backend, Path(workdir))
        await store.open()
        try:
            provider = ScriptedProvider([[text("Looking."), tool_use("lookup", {"key": "k"})], "Found it."], loop=True)
            agent = await Agent.create(
                provider=provider, store=store, template={"id": "bench", "tools": ["lookup"]}, tools=registry
            )
            metrics = getattr(store, "metrics", None)
            before = sum(metrics.by_method.values()) if metrics else 0
            latencies: list[float] = []
            started = time.perf_counter()
            for i in range(turns):
                t0 = time.perf_counter()
                await agent.send(f"question {i}")
                latencies.append((time.perf_counter() - t0) * 1000)
            elapsed = time.perf_counter() - started
            calls = (sum(metrics.by_method.values()) - before) if metrics else None
            by_method = dict(sorted(metrics.by_method.items())) if metrics else {}
            tenth = max(1, turns // 10)
            return {
                "benchmark": "agent_loop",
                "backend": backend,
                "turns": turns,
                "messages": len(agent.messages),
                "turns_per_s": round(turns / elapsed, 1),
                "ms_per_turn_first_10pct": round(statistics.median(latencies[:tenth]), 3),
                "ms_per_turn_last_10pct": round(statistics.median(latencies[-tenth:]), 3),
                "store_calls_per_turn": round(calls / turns, 1) if calls is not None else None,
                "store_calls_by_method": by_method,
            }
        finally:
            await store.close()
            if backend == "postgres":
                import psycopg

                with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{POSTGRES_SCHEMA}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "json", "postgres"])
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    json.dump(asyncio.run(run(args.backend, args.turns)), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
