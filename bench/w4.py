"""W4 — the same conversation through every peer (bench/WORKLOAD.md).

Every system persists the same interleaved conversation (``--sessions`` ×
``--turns`` turns of three messages, random text) each turn as it happens, in
its native way; then every session's whole history is read back and compared
with what was written. Prints one JSON line per system::

    python bench/w4.py [--backend sqlite|postgres|all] [--sessions 20] [--turns 40]
                       [--dsn DSN] [--repeat 3] [--out bench/results/w4.json]

Each system runs in its own Python process (``--in-process`` to skip that),
each repetition on a fresh database; figures are medians over repetitions.
Ratios are against this project's ``append_messages`` on the same backend
(``*_vs_ours`` > 1 means the system needs that many times our figure).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import REGISTRY, Conversation, Skip, SystemSpec, Workspace, make_conversation
from peers.common import (
    pg_create_schema,
    pg_drop_schema,
    pg_dsn,
    pg_reachable,
    pg_schema_bytes,
    sqlite_bytes,
    sqlite_journal_mode,
)

OURS = {"sqlite": "kode-sqlite-append", "postgres": "kode-postgres-append"}
GRAPH_ONLY = "langgraph-inmemorysaver"
#: Our adapters (kode_sdk.integrations) and the framework's own persistence on the same backend.
FRAMEWORK = {
    "kode-langgraph-sqlite": "langgraph-sqlitesaver",
    "kode-langgraph-postgres": "langgraph-postgressaver",
    "kode-openai-session-sqlite": "openai-sqlitesession",
    "kode-openai-session-postgres": "openai-sqlalchemy-psycopg",
    "kode-adk-sqlite": "adk-databasesessionservice-sqlite",
    "kode-adk-postgres": "adk-databasesessionservice-postgres",
}


def select(backend: str, systems: str | None) -> list[SystemSpec]:
    """The registry entries for ``--backend`` and ``--systems`` (comma list, or ``ours``/``peers``)."""
    backends = {
        "sqlite": {"sqlite", "memory"},
        "postgres": {"postgres", "memory"},
        "all": {"sqlite", "postgres", "memory"},
    }
    chosen = [s for s in REGISTRY if s.backend in backends[backend]]
    if systems in (None, "", "all"):
        return chosen
    names: set[str] = set()
    for name in systems.split(","):
        if name == "ours":
            names |= {s.name for s in REGISTRY if s.ours}
        elif name == "peers":
            names |= {s.name for s in REGISTRY if not s.ours}
        elif name in {s.name for s in REGISTRY}:
            names.add(name)
        else:
            known = ", ".join(s.name for s in REGISTRY)
            raise SystemExit(f"unknown system {name!r}; known: ours, peers, {known}")
    return [s for s in chosen if s.name in names]


def package_version(package: str | None) -> str | None:
    if package is None:
        return None
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


async def run_once(spec: SystemSpec, conversation: Conversation, dsn: str, repetition: int) -> dict[str, Any]:
    """One repetition of one system on a fresh database: timings, bytes, verified."""
    directory = Path(tempfile.mkdtemp(prefix=f"w4-{spec.name}-"))
    schema = re.sub(r"[^a-z0-9_]", "_", f"w4_{spec.name}_{os.getpid()}_{repetition}")
    workspace = Workspace(directory=directory, dsn=dsn, schema=schema)
    system = spec.factory(conversation, workspace)
    if spec.backend == "postgres":
        pg_create_schema(dsn, schema)
    closed = False
    try:
        await system.setup()
        sessions, turns = len(conversation.session_ids), conversation.turn_count
        gc.collect()
        cpu_started = time.process_time()
        started = time.perf_counter()
        for t in range(turns):
            for s in range(sessions):
                await system.write_turn(s, t)
        write_seconds = time.perf_counter() - started
        # CPU of this process (all its threads; not the PostgreSQL server's): less
        # sensitive than wall time to other work on a shared machine.
        write_cpu_seconds = time.process_time() - cpu_started

        started = time.perf_counter()
        natives = [await system.read(s) for s in range(sessions)]
        read_seconds = time.perf_counter() - started

        durability = await system.durability()
        bad = [conversation.session_ids[s] for s in range(sessions) if system.decode(natives[s]) != system.expected(s)]
        closed = True
        await system.close()
        result: dict[str, Any] = {
            "write_seconds": write_seconds,
            "write_cpu_seconds": write_cpu_seconds,
            "read_seconds": read_seconds,
            "bad_sessions": bad,
        }
        if spec.backend == "sqlite":
            result["bytes"] = sqlite_bytes(workspace.files)
            result["journal_mode"] = ",".join(sqlite_journal_mode(p) for p in workspace.files)
        elif spec.backend == "postgres":
            result["bytes"] = pg_schema_bytes(dsn, schema)
        else:
            result["bytes"] = None
        result["writes_per_turn"] = system.writes_per_turn
        result["durability"] = durability
        result["masked"] = list(system.masked)
        return result
    finally:
        if not closed:
            # Setup failed half-way: the error being raised is what matters, not this one.
            with contextlib.suppress(Exception):
                await system.close()
        shutil.rmtree(directory, ignore_errors=True)
        if spec.backend == "postgres":
            pg_drop_schema(dsn, schema)


async def run_system(spec: SystemSpec, conversation: Conversation, dsn: str, repeat: int) -> dict[str, Any]:
    """``repeat`` repetitions of one system, reduced to medians, as one result row."""
    row: dict[str, Any] = {
        "workload": "W4",
        "backend": spec.backend,
        "system": spec.name,
        "package": spec.package,
        "version": package_version(spec.package),
        "sessions": len(conversation.session_ids),
        "turns": conversation.turn_count,
        "messages": 3 * len(conversation.session_ids) * conversation.turn_count,
        "raw_text_bytes": conversation.raw_text_bytes,
    }
    if spec.backend == "postgres":
        problem = pg_reachable(dsn)
        if problem:
            return {**row, "skipped": problem}
    runs = []
    for repetition in range(repeat):
        try:
            runs.append(await run_once(spec, conversation, dsn, repetition))
        except Skip as exc:
            return {**row, "skipped": str(exc)}
        except Exception as exc:  # a peer that crashes is reported as such, never as numbers
            return {**row, "skipped": f"failed: {type(exc).__name__}: {str(exc).strip()[:300]}", "verified": False}
    sizes = [r["bytes"] for r in runs if r["bytes"] is not None]
    bad = sorted({sid for r in runs for sid in r["bad_sessions"]})
    row.update(
        repeats=repeat,
        write_seconds=statistics.median(r["write_seconds"] for r in runs),
        read_seconds=statistics.median(r["read_seconds"] for r in runs),
        write_cpu_seconds=statistics.median(r["write_cpu_seconds"] for r in runs),
        bytes=int(statistics.median(sizes)) if sizes else None,
        verified=not bad,
        write_seconds_runs=[round(r["write_seconds"], 4) for r in runs],
        read_seconds_runs=[round(r["read_seconds"], 4) for r in runs],
        writes_per_turn=runs[0]["writes_per_turn"],
        durability=runs[0]["durability"],
    )
    if bad:
        row["unverified_sessions"] = bad[:5]
    if runs[0]["masked"]:
        row["not_compared"] = runs[0]["masked"]
    if "journal_mode" in runs[0]:
        row["journal_mode"] = runs[0]["journal_mode"]
    if row["bytes"] is not None:
        row["bytes_per_raw_text"] = round(row["bytes"] / row["raw_text_bytes"], 3)
    row["turns_per_s"] = round(row["sessions"] * row["turns"] / row["write_seconds"], 1)
    return row


def combine(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from single-repetition rows of the same system: medians, all runs listed."""
    if len(rows) == 1 or "skipped" in rows[0]:
        return rows[0]
    failed = next((r for r in rows if "skipped" in r), None)
    if failed is not None:
        return failed
    row = dict(rows[0])
    for key in ("write_seconds", "read_seconds"):
        row[key] = statistics.median(r[key] for r in rows)
        row[f"{key}_runs"] = [run for r in rows for run in r[f"{key}_runs"]]
    row["write_cpu_seconds"] = statistics.median(r["write_cpu_seconds"] for r in rows)
    sizes = [r["bytes"] for r in rows if r.get("bytes") is not None]
    row["bytes"] = int(statistics.median(sizes)) if sizes else None
    row["verified"] = all(r["verified"] for r in rows)
    row["repeats"] = len(rows)
    unverified = sorted({s for r in rows for s in r.get("unverified_sessions", [])})
    if unverified:
        row["unverified_sessions"] = unverified[:5]
    if row["bytes"] is not None:
        row["bytes_per_raw_text"] = round(row["bytes"] / row["raw_text_bytes"], 3)
    row["turns_per_s"] = round(row["sessions"] * row["turns"] / row["write_seconds"], 1)
    return row


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Ratios to ours on the same backend, and the graph-only cost for LangGraph rows."""
    by_name = {r["system"]: r for r in rows if "write_seconds" in r}
    graph = by_name.get(GRAPH_ONLY)
    for row in rows:
        if "write_seconds" not in row:
            continue
        ours = by_name.get(OURS.get(row["backend"], ""))
        if ours is not None:
            row["write_vs_ours"] = round(row["write_seconds"] / ours["write_seconds"], 3)
            if row.get("write_cpu_seconds") and ours.get("write_cpu_seconds"):
                row["write_cpu_vs_ours"] = round(row["write_cpu_seconds"] / ours["write_cpu_seconds"], 3)
            row["read_vs_ours"] = round(row["read_seconds"] / ours["read_seconds"], 3)
            if row.get("bytes") and ours.get("bytes"):
                row["bytes_vs_ours"] = round(row["bytes"] / ours["bytes"], 3)
        own = by_name.get(FRAMEWORK.get(row["system"], ""))
        if own is not None:
            row["framework_system"] = own["system"]
            for key in ("write_seconds", "write_cpu_seconds", "read_seconds", "bytes"):
                if row.get(key) and own.get(key):
                    row[f"{key.removesuffix('_seconds')}_vs_framework"] = round(row[key] / own[key], 3)
        is_graph_row = row["system"].startswith(("langgraph-", "kode-langgraph-"))
        if graph is not None and is_graph_row and row is not graph:
            row["graph_only_write_seconds"] = graph["write_seconds"]
            net = row["write_seconds"] - graph["write_seconds"]
            row["write_seconds_minus_graph"] = round(net, 4)
            if ours is not None:
                row["write_minus_graph_vs_ours"] = round(net / ours["write_seconds"], 3)


def run_in_subprocess(spec: SystemSpec, args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    """Run one system in a fresh interpreter, so no system inherits another's threads or heap."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--backend", "all",
        "--systems", spec.name,
        "--sessions", str(args.sessions),
        "--turns", str(args.turns),
        "--repeat", "1",
        "--seed", str(args.seed),
        "--dsn", dsn,
        "--in-process",
        "--no-ratios",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"workload": "W4", "backend": spec.backend, "system": spec.name, "skipped": f"crashed: {tail[:300]}"}
    return dict(json.loads(lines[-1]))


async def run(
    *,
    backend: str = "all",
    sessions: int = 20,
    turns: int = 40,
    repeat: int = 3,
    dsn: str | None = None,
    systems: str | None = None,
    seed: int = 4,
    ratios: bool = True,
) -> list[dict[str, Any]]:
    """Run W4 in this process and return the result rows (what the smoke test calls)."""
    conversation = make_conversation(sessions, turns, seed)
    target = pg_dsn(dsn)
    rows = [await run_system(spec, conversation, target, repeat) for spec in select(backend, systems)]
    if ratios:
        add_ratios(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--dsn", default=None, help="PostgreSQL URL (default: $KODE_TEST_POSTGRES_URL, else local test db)"
    )
    parser.add_argument("--systems", default=None, help="comma list of system names, or 'ours' / 'peers'")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON lines to this file")
    parser.add_argument("--in-process", action="store_true", help="run every system in this process")
    parser.add_argument("--no-ratios", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    dsn = pg_dsn(args.dsn)
    specs = select(args.backend, args.systems)
    if any(s.backend == "postgres" for s in specs) and (problem := pg_reachable(dsn)):
        print(f"notice: {problem}; PostgreSQL systems are skipped", file=sys.stderr)
    if args.in_process:
        rows = asyncio.run(
            run(
                backend=args.backend,
                sessions=args.sessions,
                turns=args.turns,
                repeat=args.repeat,
                dsn=dsn,
                systems=args.systems,
                seed=args.seed,
                ratios=not args.no_ratios,
            )
        )
    else:
        # Repetitions go round the systems (all systems once, then again), so a
        # burst of load from elsewhere on the machine hits every system alike.
        runs: dict[str, list[dict[str, Any]]] = {spec.name: [] for spec in specs}
        for repetition in range(args.repeat):
            for spec in specs:
                done = runs[spec.name]
                if done and "skipped" in done[0]:
                    continue
                done.append(run_in_subprocess(spec, args, dsn))
                print(f"w4: {spec.name} repetition {repetition + 1}/{args.repeat} done", file=sys.stderr)
        rows = [combine(runs[spec.name]) for spec in specs]
        add_ratios(rows)
    lines = [json.dumps(row, sort_keys=False) for row in rows]
    print("\n".join(lines))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
