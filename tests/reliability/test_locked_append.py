"""Locked read-next-seq-append loops across processes, on every backend.

Each worker process repeatedly takes the agent's lock, reads the events after
the last seq it knows, appends the next seq and releases the lock (the way
two workers would take turns on one agent); workers start together and let
the others go between their turns, so the lock changes hands constantly
(``handoffs`` in the figures). Afterwards every acknowledged
append is stored, with the worker that made it, and the seqs run 1..N with no
gap: nothing acknowledged was lost, nothing was stored twice. Sizes: 3
processes x 30 appends; under ``KODE_TORTURE=1`` 4 x 500. Figures go to
``figures/locked-append-<backend>.json`` (docs/reliability.md cites them).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ._common import TORTURE, open_store, sized
from .conftest import child

PROCESSES = sized(3, 4)
ROUNDS = sized(30, 500)
AGENT = "locked-log"
FIGURES = Path(__file__).parent / "figures"


async def test_locked_appends_across_processes_lose_nothing(spec: str) -> None:
    started = time.monotonic()
    start = str(time.time() + 2.0)  # every worker opened its store by then
    procs = [child("locked_append_worker.py", spec, str(p), str(ROUNDS), start) for p in range(PROCESSES)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"worker process failed: {err[-3000:]}"
        results.append(json.loads(out.strip().splitlines()[-1]))
    seconds = time.monotonic() - started
    errors = [r["error"] for r in results if r["error"]]
    assert errors == [], f"errors reached callers: {errors[0]}"

    acknowledged = {seq: r["worker"] for r in results for seq in r["acknowledged"]}
    total = PROCESSES * ROUNDS
    assert sum(len(r["acknowledged"]) for r in results) == total
    twice = total - len(acknowledged)
    assert twice == 0, f"{twice} seqs were acknowledged to two workers: one of each pair is not stored"
    store = open_store(spec)
    async with store:
        stored = [t async for t in store.read_events(AGENT)]  # type: ignore[attr-defined]
    seqs = [t.bookmark.seq for t in stored]
    lost = sorted(set(acknowledged) - set(seqs))
    assert lost == [], f"{len(lost)} of {total} acknowledged appends are not stored: {lost[:20]}"
    assert seqs == list(range(1, total + 1)), "stored seqs have a gap or a repeat"
    owners = {t.bookmark.seq: t.event["worker"] for t in stored}
    assert owners == acknowledged, "a stored event is not the one its worker was told was stored"
    handoffs = sum(owners[seq] != owners[seq + 1] for seq in range(1, total))
    assert handoffs >= total // 4, f"the lock changed hands only {handoffs} times: the test would prove little"

    if TORTURE:
        FIGURES.mkdir(exist_ok=True)
        backend = spec.partition(":")[0]
        (FIGURES / f"locked-append-{backend}.json").write_text(
            json.dumps(
                {
                    "backend": backend,
                    "processes": PROCESSES,
                    "appends_per_process": ROUNDS,
                    "acknowledged": len(acknowledged),
                    "stored": len(seqs),
                    "lost": len(lost),
                    # How often the lock changed hands between consecutive appends.
                    "handoffs": handoffs,
                    "seqs_without_gap": True,
                    "seconds": round(seconds, 1),
                }
            )
        )
