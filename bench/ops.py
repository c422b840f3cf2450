"""Benchmark of the store operations behind the ``kode`` command: migrate,
export and prune. Prints one JSON document.

    python bench/ops.py [--agents 200] [--prune-agents 10000] [--postgres URL]

PostgreSQL runs are included when ``--postgres`` (or ``KODE_TEST_POSTGRES_URL``)
names a reachable server; they use a throwaway schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kode_sdk.ops.copy import migrate
from kode_sdk.ops.export import export_jsonl
from kode_sdk.store.base import Store
from kode_sdk.store.factory import create_store

BASE = datetime(2024, 1, 1, tzinfo=UTC)


async def fill(store: Store, count: int) -> None:
    """``count`` agents of 6 messages, 3 tool calls, 5 events and a snapshot each."""
    for i in range(count):
        agent_id = f"agt-{i:05d}"
        messages = [
            {"role": "user" if m % 2 == 0 else "assistant", "content": f"message {m} of {agent_id} " + "x" * 200}
            for m in range(6)
        ]
        await store.save_messages(agent_id, messages)
        await store.save_tool_call_records(
            agent_id, [{"id": f"t{t}", "name": "fs_read", "input": {"n": t}, "state": "completed"} for t in range(3)]
        )
        for seq in range(1, 6):
            await store.append_event(
                agent_id,
                {
                    "cursor": seq,
                    "bookmark": {"seq": seq, "timestamp": seq},
                    "event": {"channel": "progress", "type": "x"},
                },
            )
        await store.save_snapshot(agent_id, {"id": "s1", "messages": messages[:2]})
        await store.save_info(
            agent_id, {"agent_id": agent_id, "template_id": "bench", "created_at": BASE + timedelta(minutes=i)}
        )


async def timed(coro: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await coro
    return (time.perf_counter() - started) * 1000, result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="kode-bench-ops-"))
    configs: dict[str, dict[str, Any]] = {
        "sqlite": {"type": "sqlite", "db_path": str(tmp / "b.db")},
        "json": {"type": "json", "base_dir": str(tmp / "json")},
    }
    schema = f"kode_bench_{secrets.token_hex(4)}"
    if args.postgres:
        configs["postgres"] = {"type": "postgres", "dsn": args.postgres, "schema": schema}
    out: dict[str, Any] = {"agents": args.agents, "migrate_ms": {}, "migrate_rerun_ms": {}, "export_ms": {}}
    source = create_store({"type": "sqlite", "db_path": str(tmp / "a.db")})
    async with source:  # type: ignore[attr-defined]
        await fill(source, args.agents)
        for name, config in configs.items():
            target = create_store(config)
            async with target:  # type: ignore[attr-defined]
                ms, report = await timed(migrate(source, target))
                assert report.ok, report.to_json()
                out["migrate_ms"][f"sqlite->{name}"] = round(ms, 1)
                ms, report = await timed(migrate(source, target))
                assert report.identical == args.agents
                out["migrate_rerun_ms"][f"sqlite->{name}"] = round(ms, 1)
                ms, _ = await timed(export_jsonl(target, io.BytesIO()))
                out["export_ms"][name] = round(ms, 1)
    out["prune"] = {}
    for name in ("sqlite", "postgres"):
        if name not in configs:
            continue
        config = dict(configs[name])
        if name == "sqlite":
            config["db_path"] = str(tmp / "prune.db")
        else:
            config["schema"] = schema + "_prune"
        store: Any = create_store(config)
        async with store:
            for i in range(args.prune_agents):
                await store.save_info(
                    f"old-{i:05d}",
                    {"agent_id": f"old-{i:05d}", "template_id": "t", "created_at": BASE + timedelta(minutes=i)},
                )
            ms, pruned = await timed(store.prune(created_before=BASE + timedelta(minutes=args.prune_agents // 2)))
            out["prune"][name] = {"agents": args.prune_agents, "deleted": len(pruned), "ms": round(ms, 1)}
    if args.postgres:
        import psycopg

        with psycopg.connect(args.postgres, autocommit=True) as conn:
            for name in (schema, schema + "_prune"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--prune-agents", type=int, default=10_000)
    parser.add_argument("--postgres", default=os.environ.get("KODE_TEST_POSTGRES_URL"))
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
