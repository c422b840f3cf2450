"""Contention: several processes (and workers within them) on one store.

SQLite: 4 processes x 2 workers on one file (JSONStore: its locks are in test_locked_append.py);
PostgreSQL: 4 processes x 2 workers = 8 workers on one database, directly and
through PgBouncer in transaction mode (lease locks). Each worker
has its own store object; the second one of a process opens while the first
is in use. For a bounded time (5 s, 30 s under KODE_TORTURE=1) they mix saves,
appends, events, queries and locked read-modify-writes on shared and private
agents, while a fifth process opens, reads and closes a store in a loop.
Afterwards: no error reached a caller, no locked increment was lost, every
agent's event seqs run 1..N with no gap or repeat, and every append landed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._common import open_store, sized
from .conftest import child

PROCESSES = 4
TASKS = 2
SECONDS = sized(5, 30)
SHARED = ("shared-0", "shared-1")
LOG = "shared-log"
FIGURES = Path(__file__).parent / "figures"


# JSONStore: see test_locked_append.py; "pgbouncer": PostgreSQL through PgBouncer in transaction mode.
@pytest.mark.parametrize("spec", ["sqlite", "postgres", "pgbouncer"], indirect=True)
async def test_contention_no_error_no_lost_update_no_gap(spec: str) -> None:
    store = open_store(spec)
    async with store:
        for agent in (*SHARED, LOG):
            await store.save_info(agent, {"agent_id": agent, "template_id": "contention"})  # type: ignore[attr-defined]
    procs = [child("contention_worker.py", spec, str(p), str(TASKS), str(SECONDS)) for p in range(PROCESSES)]
    churn = child("contention_churn.py", spec, str(SECONDS))
    workers: list[dict[str, object]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=SECONDS + 240)
        assert proc.returncode == 0, f"worker process failed: {err[-3000:]}"
        workers.extend(json.loads(out.strip().splitlines()[-1]))
    out, err = churn.communicate(timeout=SECONDS + 240)
    assert churn.returncode == 0, f"churn process failed: {err[-3000:]}"
    churned = json.loads(out.strip().splitlines()[-1])
    errors = [e for w in workers for e in w["errors"]] + churned["errors"]  # type: ignore[attr-defined]
    tracebacks = [w.get("traceback") for w in workers if w.get("traceback")]
    assert errors == [], f"{len(errors)} errors reached callers, first: {errors[:5]}\n{tracebacks[:1]}"

    increments: dict[str, int] = {}
    for w in workers:
        for agent, n in w["increments"].items():  # type: ignore[attr-defined]
            increments[agent] = increments.get(agent, 0) + n
    store = open_store(spec)
    async with store:
        for w in workers:
            private = str(w["private"])
            messages = await store.load_messages(private)  # type: ignore[attr-defined]
            assert len(messages) == w["private_messages"]
            increments.setdefault(private, 0)
        events_total = 0
        for agent, expected in increments.items():
            info = await store.load_info(agent)  # type: ignore[attr-defined]
            assert info is not None
            assert info.metadata.get("counter", 0) == expected, f"{agent}: lost update under the agent lock"
            seqs = [t.bookmark.seq async for t in store.read_events(agent)]  # type: ignore[attr-defined]
            assert seqs == list(range(1, len(seqs) + 1)), f"{agent}: event seqs with a gap or out of order"
            assert len(seqs) == info.metadata.get("seq", 0)
            events_total += len(seqs)
        appends = sum(int(w["appends"]) for w in workers)  # type: ignore[call-overload]
        assert len(await store.load_messages(LOG)) == appends, "an append_messages was lost"  # type: ignore[attr-defined]
    assert sum(increments[a] for a in SHARED) > 0
    assert churned["cycles"] > 0
    ops = sum(int(w["ops"]) for w in workers)  # type: ignore[call-overload]
    FIGURES.mkdir(exist_ok=True)
    backend = spec.partition(":")[0]
    (FIGURES / f"contention-{backend}.json").write_text(
        json.dumps(
            {
                "backend": backend,
                "workers": PROCESSES * TASKS,
                "seconds": SECONDS,
                "operations": ops,
                "locked_increments": sum(increments.values()),
                "events": events_total,
                "appends": appends,
                "open_close_cycles": churned["cycles"],
                "errors": 0,
            }
        )
    )
