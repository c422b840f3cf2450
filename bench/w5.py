"""W5 — many workers (shared/bench/WORKLOAD.md): N worker processes, each
driving its own agents through the agent loop's write path (``Agent.send``:
agent lock, messages appended one by one, tool-call records, events, info)
for a fixed time, against one PostgreSQL database through PgBouncer in
transaction mode with a fixed number of server connections.

    python bench/run.py --workload W5 --backend postgres --workers 16 --seconds 30
    python bench/w5.py --workers 1,16 --seconds 10            # both rows, directly

Each turn is one ``send``: a model call asking for a tool (scripted, no
network), the tool, the final answer — 4 messages, 1 tool-call record. After
the run every agent is read back from a fresh store (through PgBouncer too)
and compared with what its worker acknowledged: ``lost`` counts agents whose
stored messages or tool-call records differ from the acknowledged ones
(missing or extra), ``errors`` the calls that raised in the workers.

Prints one JSON line per worker count: ``workload, backend, workers, agents,
seconds, turns, turns_per_s, turn_p50_ms, turn_p99_ms, errors, lost,
server_connections``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import BackendUnavailable, default_dsn, drop_postgres_schema, log, ms, percentile, throwaway_schema

AGENTS_PER_WORKER = 4


def digest(items: list[Any]) -> str:
    """A digest of records' wire form (what was acknowledged vs what is stored)."""
    text = json.dumps([item.model_dump(mode="json", by_alias=True) for item in items], sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def connection(url: str) -> dict[str, Any]:
    return {"dsn": url, "pooler": "transaction", "max": 4}


# --------------------------------------------------------------------------- worker process


async def worker(url: str, schema: str, index: int, seconds: float) -> dict[str, Any]:
    from kode_sdk.agent import Agent, ScriptedProvider, ToolRegistry
    from kode_sdk.agent.providers import text, tool_use
    from kode_sdk.store.postgres import PostgresStore

    registry = ToolRegistry()

    @registry.tool
    async def lookup(key: str) -> str:
        """Look a key up."""
        return f"value of {key}"

    store = PostgresStore(connection(url), schema=schema)
    await store.open()
    agents = []
    for a in range(AGENTS_PER_WORKER):
        provider = ScriptedProvider([[text("Looking."), tool_use("lookup", {"key": f"k{a}"})], "Found it."], loop=True)
        agents.append(
            await Agent.create(
                provider=provider,
                store=store,
                template={"id": "w5", "tools": ["lookup"]},
                agent_id=f"w5-{index}-{a}",
                tools=registry,
            )
        )
    print("ready", flush=True)
    sys.stdin.readline()  # "go": every worker starts together
    latencies: list[float] = []
    errors: list[str] = []
    turns = 0
    deadline = time.perf_counter() + seconds
    clock = time.perf_counter
    while clock() < deadline:
        for agent in agents:
            begin = clock()
            try:
                await agent.send(f"question {turns}")
            except Exception as exc:  # counted and reported, never hidden
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            latencies.append(clock() - begin)
            turns += 1
    acknowledged = {agent.agent_id: [digest(agent.messages), digest(agent.tool_calls)] for agent in agents}
    await store.close()
    return {"turns": turns, "latencies": latencies, "errors": errors, "acknowledged": acknowledged}


# --------------------------------------------------------------------------- driver


async def verify(url: str, schema: str, acknowledged: dict[str, list[str]]) -> int:
    """Agents whose stored messages or tool-call records differ from what was acknowledged."""
    from kode_sdk.store.postgres import PostgresStore

    lost = 0
    async with PostgresStore(connection(url), schema=schema) as store:
        for agent_id, (messages, records) in acknowledged.items():
            stored = [digest(await store.load_messages(agent_id)), digest(await store.load_tool_call_records(agent_id))]
            if stored != [messages, records]:
                log(f"  LOST {agent_id}: stored state differs from the acknowledged one")
                lost += 1
    return lost


def run_workers(url: str, schema: str, workers: int, seconds: float) -> dict[str, Any]:
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, schema, str(i), str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            for other in procs:
                other.kill()
            raise BackendUnavailable(
                f"W5 worker did not start: {line!r} {proc.stderr.read()[-2000:] if proc.stderr else ''}"
            )
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 300)
        if proc.returncode != 0:
            raise RuntimeError(f"W5 worker failed ({proc.returncode}): {err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.perf_counter() - started
    return {"results": results, "elapsed": elapsed}


def run_w5(dsn: str | None, workers: int, seconds: float, server_connections: int) -> dict[str, Any]:
    """One W5 run: ``workers`` processes × 4 agents for ``seconds``, through
    PgBouncer with ``server_connections`` server connections."""
    from kode_sdk.testing.pgbouncer import PgBouncer

    server = default_dsn(dsn)
    try:
        bouncer = PgBouncer(server, pool_size=server_connections)
    except (RuntimeError, OSError) as exc:
        raise BackendUnavailable(f"W5 needs pgbouncer: {exc}") from None
    schema = throwaway_schema()
    try:
        log(f"W5: {workers} worker(s) x {AGENTS_PER_WORKER} agents, {seconds:g} s, {server_connections} server conns")
        run = run_workers(bouncer.url, schema, workers, seconds)
        acknowledged: dict[str, list[str]] = {}
        for result in run["results"]:
            acknowledged.update(result["acknowledged"])
        lost = asyncio.run(verify(bouncer.url, schema, acknowledged))
    finally:
        bouncer.stop()
        asyncio.run(drop_postgres_schema(server, schema))
    latencies = [x for r in run["results"] for x in r["latencies"]]
    errors = [e for r in run["results"] for e in r["errors"]]
    for error in errors[:5]:
        log(f"  ERROR {error}")
    turns = sum(r["turns"] for r in run["results"])
    return {
        "workload": "W5",
        "backend": "postgres-pgbouncer",
        "workers": workers,
        "agents": workers * AGENTS_PER_WORKER,
        "seconds": round(seconds, 3),
        "turns": turns,
        "turns_per_s": round(turns / seconds, 1),
        "turn_p50_ms": ms(percentile(latencies, 0.50)) if latencies else None,
        "turn_p99_ms": ms(percentile(latencies, 0.99)) if latencies else None,
        "errors": len(errors),
        "lost": lost,
        "server_connections": server_connections,
        "messages_per_turn": 4,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        url, schema, index, seconds = argv[1:5]
        print(json.dumps(asyncio.run(worker(url, schema, int(index), float(seconds)))), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="bench/w5.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,16", help="worker counts, comma-separated (default 1,16)")
    parser.add_argument("--seconds", type=float, default=30.0, help="fixed run time (default 30)")
    parser.add_argument("--server-connections", type=int, default=8, help="PgBouncer server connections (default 8)")
    parser.add_argument("--dsn", help="PostgreSQL DSN (default $KODE_TEST_POSTGRES_URL or the local test server)")
    parser.add_argument("--out", help="also append each JSON line to this file")
    args = parser.parse_args(argv)
    for count in [int(c) for c in args.workers.split(",") if c.strip()]:
        result = run_w5(args.dsn, count, args.seconds, args.server_connections)
        result["cpus"] = os.cpu_count()
        result["load_avg_1m"] = round(os.getloadavg()[0], 2)
        line = json.dumps(result, separators=(", ", ": "))
        print(line, flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
