"""Correctness smoke test of bench/run.py: tiny sizes, every available backend.

Not a timed test: it checks that each workload runs end to end, prints one
JSON line with every key bench/WORKLOAD.md names, and read back exactly what
it wrote (``verified``). Store backends whose module is not importable yet are
skipped; PostgreSQL backends are skipped without a server unless
KODE_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"
DSN = os.environ.get("KODE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

KEYS = {
    "W1": {
        "workload",
        "backend",
        "agents",
        "turns",
        "seconds",
        "turns_per_s",
        "turn_p50_ms",
        "turn_p99_ms",
        "early_p50_ms",
        "late_p50_ms",
        "verified",
    },
    "W2": {
        "workload",
        "backend",
        "mode",
        "batch",
        "events",
        "appends_per_s",
        "read_all_seconds",
        "read_since_seconds",
        "read_channel_seconds",
        "verified",
    },
    "W3": {"workload", "backend", "messages", "populate_seconds", "db_size_bytes", "verified"}
    | {f"{q}_{p}_ms" for q in ("sessions", "messages", "tool_calls", "stats", "list") for p in ("p50", "p95")},
}
STORE_MODULES = {
    "json": "kode_sdk.store.json_store",
    "sqlite": "kode_sdk.store.sqlite",
    "postgres": "kode_sdk.store.postgres",
}


def postgres_available() -> bool:
    import psycopg

    try:
        with psycopg.connect(DSN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def require_backend(backend: str) -> None:
    module = STORE_MODULES.get(backend)
    if module is not None and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not in this checkout yet")
    if backend.startswith("postgres") and not postgres_available():
        if os.environ.get("KODE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"KODE_REQUIRE_POSTGRES=1 but no PostgreSQL server answers at {DSN}")
        pytest.skip(f"no PostgreSQL server at {DSN}")


def run_bench(*args: str, tmp_path: Path) -> tuple[int, list[dict[str, Any]], str]:
    out = tmp_path / f"results-{len(list(tmp_path.glob('results-*')))}.jsonl"
    proc = subprocess.run(
        [sys.executable, str(RUN), *args, "--dsn", DSN, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if out.exists():
        # --out appends exactly what stdout printed.
        assert [json.loads(line) for line in out.read_text().splitlines()] == lines
    return proc.returncode, lines, proc.stderr


@pytest.mark.parametrize("backend", ["json", "sqlite", "sqlite-raw", "postgres", "postgres-raw"])
def test_every_workload_runs_and_verifies(backend: str, tmp_path: Path) -> None:
    require_backend(backend)
    code, results, stderr = run_bench(
        "--workload", "W1,W2", "--backend", backend, "--agents", "2", "--turns", "3", "--events", "200",
        "--mode", "both", tmp_path=tmp_path,
    )  # fmt: skip
    code3, results3, stderr3 = run_bench(
        "--workload", "W3", "--backend", backend, "--agents", "10", "--queries", "5", tmp_path=tmp_path
    )
    assert code == 0, stderr
    assert code3 == 0, stderr3
    results += results3
    w1_modes = [None] if backend.endswith("-raw") else ["calls", "turn"]  # the floor runs once
    assert [(r["workload"], r["backend"], r.get("mode")) for r in results] == [
        *[("W1", backend, mode) for mode in w1_modes],
        ("W2", backend, "single"),
        ("W2", backend, "batch"),
        ("W3", backend, None),
    ]
    for result in results:
        missing = KEYS[result["workload"]] - set(result)
        assert not missing, f"{result['workload']} lacks {sorted(missing)}"
        assert result["verified"] is True, stderr + stderr3
    *w1s, w2, w2_batch, w3 = results
    for w1 in w1s:
        assert (w1["agents"], w1["turns"]) == (2, 3)
        assert w1["turns_per_s"] > 0 and 0 < w1["turn_p50_ms"] <= w1["turn_p99_ms"]
    for row, batch in ((w2, 1), (w2_batch, 50)):
        assert row["events"] == 200 and row["since_events"] == 20 and row["channel_events"] == 40
        assert row["batch"] == batch
    assert w3["messages"] == 1000 and w3["tool_calls"] == 300
    assert w3["db_size_bytes"] > 0
    search_keys = {f"{q}_{p}_ms" for q in ("search", "search_agent") for p in ("p50", "p95")}
    if backend.endswith("-raw"):
        assert not search_keys & set(w3)  # the floors have no search
    else:
        assert search_keys <= set(w3)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_w1_runs_with_and_without_the_search_index(backend: str, tmp_path: Path) -> None:
    require_backend(backend)
    code, results, stderr = run_bench(
        "--workload", "W1", "--backend", backend, "--agents", "2", "--turns", "3", "--search-index", "both",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert code == 0, stderr
    assert [(r["backend"], r["search_index"], r["verified"]) for r in results] == [
        (backend, True, True),
        (backend, False, True),
    ]


def test_w5_many_workers_through_pgbouncer(tmp_path: Path) -> None:
    """W5 at a tiny size: 2 worker processes for 1 s through a real PgBouncer;
    every acknowledged turn is read back (``lost``) and no call failed."""
    from kode_sdk.testing.pgbouncer import REQUIRE_ENV, find_pgbouncer

    require_backend("postgres")
    if find_pgbouncer() is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but pgbouncer is not installed")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    code, results, stderr = run_bench(
        "--workload", "W5", "--backend", "postgres", "--workers", "2", "--seconds", "1", "--server-connections", "2",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert code == 0, stderr
    (row,) = results
    assert (row["workload"], row["workers"], row["agents"], row["server_connections"]) == ("W5", 2, 8, 2)
    assert row["turns"] > 0 and 0 < row["turn_p50_ms"] <= row["turn_p99_ms"]
    assert (row["errors"], row["lost"]) == (0, 0), stderr


def test_unknown_backend_is_refused_by_name(tmp_path: Path) -> None:
    code, results, stderr = run_bench("--backend", "mongodb", tmp_path=tmp_path)
    assert code != 0 and results == []
    assert "unknown backend 'mongodb'" in stderr


def test_bad_size_is_refused(tmp_path: Path) -> None:
    code, results, stderr = run_bench("--backend", "sqlite-raw", "--turns", "0", tmp_path=tmp_path)
    assert code != 0 and results == []
    assert "--turns must be at least 1" in stderr


def test_verification_notices_a_changed_message() -> None:
    """``verified`` is only worth something if a difference makes it false."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import data
        import workloads
    finally:
        # bench/ is a directory of scripts, not a package: leave no top-level "data" behind.
        sys.path.remove(str(ROOT / "bench"))
        sys.modules.pop("data", None)
        sys.modules.pop("workloads", None)
    saved = data.w1_turns(1, 2)
    messages = [m for row in saved for m in row[0].messages]
    assert workloads.compare_lists("m", list(messages), messages) == []
    changed = list(messages)
    changed[4] = changed[4].model_copy(update={"content": [{"type": "text", "text": "edited"}]})
    problems = workloads.compare_lists("m", changed, messages)
    assert len(problems) == 1 and "m[4] differs in ['content']" in problems[0]
    assert workloads.compare_lists("m", messages[:-1], messages) == ["m: loaded 5, saved 6"]
