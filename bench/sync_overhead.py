"""What the blocking API (kode_sdk.sync) costs on top of the async store.

One store call (``exists``) and one long read (``read_events``), each through
the async store on its own loop and through ``kode_sdk.sync``, alternating so
both see the same machine load. Prints one JSON line per backend::

    python bench/sync_overhead.py [--backend sqlite|postgres|all] [--calls 2000]
                                  [--events 5000] [--repeat 5] [--dsn DSN]

Figures are medians over repetitions: microseconds per call, milliseconds per
full read of ``--events`` events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kode_sdk import create_store, sync
from kode_sdk.testing import data


async def _async_figures(make: Callable[[], Any], calls: int) -> tuple[float, float]:
    async with make() as store:
        started = time.perf_counter()
        for _ in range(calls):
            await store.exists("agt-bench")
        per_call_us = (time.perf_counter() - started) / calls * 1e6
        started = time.perf_counter()
        _ = [event async for event in store.read_events("agt-bench")]
        read_ms = (time.perf_counter() - started) * 1000
    return per_call_us, read_ms


def _sync_figures(config: dict[str, Any], calls: int) -> tuple[float, float]:
    with sync.create_store(config) as store:
        started = time.perf_counter()
        for _ in range(calls):
            store.exists("agt-bench")
        per_call_us = (time.perf_counter() - started) / calls * 1e6
        started = time.perf_counter()
        _ = list(store.read_events("agt-bench"))
        read_ms = (time.perf_counter() - started) * 1000
    return per_call_us, read_ms


def run(backend: str, config: dict[str, Any], options: argparse.Namespace) -> dict[str, Any]:
    """Measure one backend; returns its JSON line."""

    async def fill() -> None:
        async with create_store(config) as store:
            await store.save_info("agt-bench", data.info("agt-bench"))
            for seq in range(1, options.events + 1):
                await store.append_event("agt-bench", data.timeline(seq))

    asyncio.run(fill())
    figures: dict[str, list[float]] = {"async_call_us": [], "sync_call_us": [], "async_read_ms": [], "sync_read_ms": []}
    for _ in range(options.repeat):
        call_us, read_ms = asyncio.run(_async_figures(lambda: create_store(config), options.calls))
        figures["async_call_us"].append(call_us)
        figures["async_read_ms"].append(read_ms)
        call_us, read_ms = _sync_figures(config, options.calls)
        figures["sync_call_us"].append(call_us)
        figures["sync_read_ms"].append(read_ms)
    line: dict[str, Any] = {"workload": "sync_overhead", "backend": backend, "calls": options.calls}
    line["events"] = options.events
    line["repeat"] = options.repeat
    line.update({name: round(statistics.median(values), 1) for name, values in figures.items()})
    return line


def main() -> int:
    """Command line (see the module docs)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres", "all"])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dsn", default=os.environ.get("KODE_TEST_POSTGRES_URL"))
    options = parser.parse_args()
    backends = ["sqlite", "postgres"] if options.backend == "all" else [options.backend]
    with tempfile.TemporaryDirectory() as scratch:
        for backend in backends:
            if backend == "sqlite":
                config: dict[str, Any] = {"type": "sqlite", "db_path": str(Path(scratch) / "bench.db")}
            elif options.dsn:
                config = {"type": "postgres", "dsn": options.dsn, "schema": f"bench_sync_{secrets.token_hex(4)}"}
            else:
                print(f"skipping {backend}: no --dsn / KODE_TEST_POSTGRES_URL", file=sys.stderr)
                continue
            print(json.dumps(run(backend, config, options)), flush=True)
            if backend == "postgres":
                import psycopg

                with psycopg.connect(options.dsn, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {config['schema']} CASCADE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
