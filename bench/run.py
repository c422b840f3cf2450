"""Run the reference workloads (shared/bench/WORKLOAD.md) and print one JSON line each.

    python bench/run.py --workload W1 --backend sqlite
    python bench/run.py --workload W1,W2 --backend sqlite,sqlite-raw --out results.jsonl
    python bench/run.py --workload W1 --backend sqlite --agents 3 --turns 200      # growth run
    python bench/run.py --workload W3 --backend sqlite --agents 100                # 10,000 messages
    python bench/run.py --workload W1 --backend sqlite --profile w1.prof           # cProfile, threads merged
    python bench/run.py --workload W1 --backend sqlite,postgres --search-index both  # what the search index costs
    python bench/run.py --workload W5 --backend postgres --workers 1,16 --seconds 30  # many workers, PgBouncer

Backends: json, sqlite, postgres (the kode-sdk stores) and sqlite-raw,
postgres-raw (the floors: the same rows through the bare driver). stdout
carries only the JSON lines; progress goes to stderr. A backend that cannot
run here (module missing, no server) is reported on stderr and the others
still run; the exit status is then 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import raw
import w5
import workloads
from workloads import BackendUnavailable, StoreTarget, Target, log

WORKLOADS = ("W1", "W2", "W3", "W5")
W2_MODES = ("single", "batch")
BACKENDS = ("json", "sqlite", "sqlite-raw", "postgres", "postgres-raw")


def split_choices(values: list[str] | None, allowed: tuple[str, ...], default: str, what: str) -> list[str]:
    """``--backend a,b --backend c`` → [a, b, c]; ``all`` expands; unknown names are an error."""
    names: list[str] = []
    for value in values or [default]:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name == "all":
                names.extend(allowed)
            elif name.upper() in allowed and what == "workload":
                names.append(name.upper())
            elif name in allowed:
                names.append(name)
            else:
                raise SystemExit(f"unknown {what} {name!r}; choose from {', '.join(allowed)} or all")
    return list(dict.fromkeys(names))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="kode-sdk store benchmarks: one JSON line per workload and backend on stdout.",
    )
    parser.add_argument("--workload", action="append", help="W1, W2, W3, W5 (comma-separated or repeated; all)")
    parser.add_argument("--backend", action="append", help=f"{', '.join(BACKENDS)} (comma-separated or repeated; all)")
    parser.add_argument("--agents", type=int, help="W1: agents (default 20); W3: agents to populate (default 1000)")
    parser.add_argument("--turns", type=int, default=40, help="W1: turns per agent (default 40)")
    parser.add_argument(
        "--mode",
        choices=("calls", "turn", "both"),
        default="calls",
        help="W1 on a store: 'calls' (default: the Store-contract calls), 'turn' (each turn one"
        " store.transaction with the step paths, as the agent loop does), or both; the raw floor runs once",
    )
    parser.add_argument("--events", type=int, default=20_000, help="W2: events to append (default 20000)")
    parser.add_argument("--messages-per-agent", type=int, default=100, help="W3: messages per agent (default 100)")
    parser.add_argument("--tool-calls-per-agent", type=int, default=30, help="W3: tool calls per agent (default 30)")
    parser.add_argument("--queries", type=int, default=200, help="W3: runs of each query (default 200)")
    parser.add_argument("--concurrency", type=int, default=8, help="W3: concurrent populating coroutines (default 8)")
    parser.add_argument(
        "--w2-mode",
        action="append",
        help="W2: single (sequential append_event), batch (append_events); comma-separated or repeated; both",
    )
    parser.add_argument("--workers", default="1,16", help="W5: worker processes, comma-separated (default 1,16)")
    parser.add_argument("--seconds", type=float, default=30.0, help="W5: fixed run time per worker count (default 30)")
    parser.add_argument(
        "--server-connections", type=int, default=8, help="W5: PgBouncer server connections (default 8)"
    )
    parser.add_argument("--w2-batch", type=int, default=50, help="W2 batch mode: events per call (default 50)")
    parser.add_argument("--dsn", help="PostgreSQL DSN (default $KODE_TEST_POSTGRES_URL or the local test server)")
    parser.add_argument("--dir", help="data directory (default: a fresh temporary directory, removed after)")
    parser.add_argument("--out", help="also append each JSON line to this file")
    parser.add_argument("--profile", help="write a cProfile of the timed phase here (one file per run: suffixed)")
    parser.add_argument(
        "--search-index",
        default="on",
        choices=("on", "off", "both"),
        help="sqlite/postgres: keep the full-text search index (on, the default), drop it after opening (off:"
        " measures what it costs; W3 then skips its search queries), or run W1 both ways, on then off",
    )
    args = parser.parse_args(argv)
    args.workloads = split_choices(args.workload, WORKLOADS, "W1", "workload")
    args.backends = split_choices(args.backend, BACKENDS, "sqlite", "backend")
    args.w2_modes = split_choices(args.w2_mode, W2_MODES, "all", "W2 mode")
    for name in ("turns", "events", "messages_per_agent", "queries", "concurrency", "w2_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.tool_calls_per_agent < 0 or (args.agents is not None and args.agents < 1):
        parser.error("--agents must be at least 1 and --tool-calls-per-agent at least 0")
    return args


def make_target(
    backend: str, workdir: Path, args: argparse.Namespace, search_index: bool = True, mode: str | None = None
) -> Target:
    if backend == "sqlite-raw":
        return raw.SqliteRaw(workdir)
    if backend == "postgres-raw":
        return raw.PostgresRaw(args.dsn)
    workloads.store_class(backend)  # fail before building any data when the module is missing
    return StoreTarget(backend, workdir, args.dsn, search_index=search_index, mode=mode or "calls")


def w1_modes(backend: str, args: argparse.Namespace) -> list[str | None]:
    """The ``--mode`` values to run W1 with on ``backend`` (the raw floor: once)."""
    if backend.endswith("-raw"):
        return [None]
    return ["calls", "turn"] if args.mode == "both" else [args.mode]


def index_modes(workload: str, backend: str, args: argparse.Namespace) -> list[bool]:
    """The ``--search-index`` settings to run ``workload`` on ``backend`` with."""
    if backend not in ("sqlite", "postgres"):
        return [True]
    if args.search_index == "both":
        return [True, False] if workload == "W1" else [True]  # the cost of keeping it is measured on W1
    return [args.search_index == "on"]


async def run_one(
    workload: str,
    backend: str,
    workdir: Path,
    args: argparse.Namespace,
    search_index: bool = True,
    w2_mode: str | None = None,
) -> dict[str, Any]:
    target = make_target(backend, workdir, args, search_index, w2_mode if workload == "W1" else None)
    profile = f"{args.profile}.{workload}.{backend}" if args.profile else None
    if workload == "W1":
        return await workloads.run_w1(target, args.agents or 20, args.turns, profile)
    if workload == "W2":
        batch = 1 if w2_mode == "single" else args.w2_batch
        return await workloads.run_w2(target, args.events, batch, f"{profile}.{w2_mode}" if profile else None)
    return await workloads.run_w3(
        target,
        args.agents or 1000,
        args.messages_per_agent,
        args.tool_calls_per_agent,
        args.queries,
        args.concurrency,
        profile,
    )


def emit(result: dict[str, Any], out: str | None) -> None:
    line = json.dumps(result, separators=(", ", ": "))
    print(line, flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def run_w5(args: argparse.Namespace) -> int:
    """W5 (PostgreSQL through PgBouncer only): one JSON line per worker count; the number of failures."""
    if "postgres" not in args.backends:
        log("SKIPPED W5: it runs on the postgres backend only (through PgBouncer)")
        return 1
    failed = 0
    for count in [int(c) for c in str(args.workers).split(",") if c.strip()]:
        try:
            result = w5.run_w5(args.dsn, count, args.seconds, args.server_connections)
        except BackendUnavailable as exc:
            log(f"SKIPPED W5 postgres: {exc}")
            return failed + 1
        result["cpus"] = os.cpu_count()
        result["load_avg_1m"] = round(os.getloadavg()[0], 2)
        emit(result, args.out)
        if result["errors"] or result["lost"]:
            log(f"FAILED W5: {result['errors']} errors, {result['lost']} agents with lost writes")
            failed += 1
    return failed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    failed = 0
    for workload in args.workloads:
        if workload == "W5":
            failed += run_w5(args)
            continue
        runs = [
            (backend, search_index, mode)
            for backend in args.backends
            for search_index in index_modes(workload, backend, args)
            for mode in (args.w2_modes if workload == "W2" else w1_modes(backend, args) if workload == "W1" else [None])
        ]
        for backend, search_index, mode in runs:
            if args.dir:
                workdir = Path(args.dir) / f"{workload}-{backend}-{os.getpid()}-{int(time.time())}"
                workdir.mkdir(parents=True, exist_ok=True)
            else:
                workdir = Path(tempfile.mkdtemp(prefix=f"kode-bench-{workload}-{backend}-"))
            try:
                result = asyncio.run(run_one(workload, backend, workdir, args, search_index, mode))
            except BackendUnavailable as exc:
                log(f"SKIPPED {workload} {backend}: {exc}")
                failed += 1
                continue
            finally:
                if not args.dir:
                    workloads.remove_tree(workdir)
            result["cpus"] = os.cpu_count()
            result["load_avg_1m"] = round(os.getloadavg()[0], 2)
            emit(result, args.out)
            if result.get("verified") is False:
                log(f"FAILED {workload} {backend}: what was read back differs from what was written")
                failed += 1
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
