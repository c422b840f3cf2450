"""bench/report.py: repetitions reduce to medians, ratios are against ours on the
same backend and against the raw floor, and every output file is written."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"kode_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


report = _load("report")


def _w4(system: str, backend: str, write: float, nbytes: int | None, **extra: Any) -> dict[str, Any]:
    return {
        "workload": "W4",
        "backend": backend,
        "system": system,
        "sessions": 2,
        "turns": 3,
        "raw_text_bytes": 5580,
        "write_seconds": write,
        "read_seconds": write / 10,
        "bytes": nbytes,
        "verified": True,
        **extra,
    }


def _w1(backend: str, p50: float, series: list[float]) -> dict[str, Any]:
    return {
        "workload": "W1",
        "backend": backend,
        "agents": 2,
        "turns": len(series),
        "seconds": p50 * 10,
        "turn_p50_ms": p50,
        "turns_per_s": 1000 / p50,
        report.SERIES_KEY: series,
    }


def test_medians_over_repetitions_and_sizes_kept_apart() -> None:
    rows = [_w1("sqlite", v, [v, v + 1]) for v in (3.0, 1.0, 2.0)] + [_w1("sqlite", 9.0, [9.0, 9.0, 9.0])]
    reduced = report.reduce_rows(rows)
    assert len(reduced) == 2  # the 3-turn run is not a repetition of the 2-turn runs
    two_turns = next(r for r in reduced if r["turns"] == 2)
    assert two_turns["turn_p50_ms"] == 2.0
    assert two_turns[report.SERIES_KEY] == [2.0, 3.0]
    assert two_turns["repetitions"] == 3


def test_floor_ratios_read_as_ours_over_floor() -> None:
    ratios = report.floor_ratios([_w1("sqlite", 4.0, [4.0]), _w1("sqlite-raw", 2.0, [2.0])])
    by_metric = {r["metric"]: r["ours_vs_floor"] for r in ratios}
    assert by_metric["turn_p50_ms"] == 2.0
    assert by_metric["seconds"] == 2.0


def test_w1_turn_and_calls_modes_share_one_floor() -> None:
    rows = [
        {**_w1("sqlite", 4.0, [4.0]), "mode": "calls"},
        {**_w1("sqlite", 1.0, [1.0]), "mode": "turn"},
        _w1("sqlite-raw", 0.5, [0.5]),
    ]
    ratios = {(r["size"], r["metric"]): r["ours_vs_floor"] for r in report.floor_ratios(report.reduce_rows(rows))}
    assert ratios[("2×1, calls", "seconds")] == 8.0
    assert ratios[("2×1, turn", "seconds")] == 2.0


def test_build_writes_json_table_pictures_and_docs_block(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the pictures need the .[bench] extra")
    rows = [
        _w4("kode-sqlite-append", "sqlite", 0.5, 1000),
        _w4("openai-sqlitesession", "sqlite", 1.0, 1500, not_compared=["is_error"]),
        _w4("adk-databasesessionservice-sqlite", "sqlite", 5.0, 4000),
        _w4("langgraph-inmemorysaver", "memory", 0.2, None),
        _w4("langgraph-sqlitesaver", "sqlite", 2.2, 90000),
        {
            "workload": "W4",
            "backend": "postgres",
            "system": "kode-postgres-append",
            "skipped": "PostgreSQL unreachable",
        },
        _w1("sqlite", 4.0, [3.0, 4.0, 5.0]),
        _w1("sqlite-raw", 2.0, [2.0, 2.0, 2.0]),
    ]
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nmethod\n\n<!-- results:begin -->\nold\n<!-- results:end -->\n\nafter\n")
    out = tmp_path / "results"
    report.build(rows, out, docs, None)

    latest = json.loads((out / "latest.json").read_text())
    by_system = {r.get("system"): r for r in latest["results"]}
    assert by_system["openai-sqlitesession"]["write_vs_ours"] == 2.0
    assert by_system["adk-databasesessionservice-sqlite"]["bytes_vs_ours"] == 4.0
    assert by_system["langgraph-sqlitesaver"]["write_seconds_minus_graph"] == 2.0
    assert by_system["kode-postgres-append"]["skipped"] == "PostgreSQL unreachable"
    assert latest["floor_ratios"]

    table = (out / "latest.md").read_text()
    assert "| openai-sqlitesession | 1.000 |" in table
    assert "skipped: PostgreSQL unreachable" in table
    for picture in ("w1_growth.png", "w4.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    text = docs.read_text()
    assert "old" not in text and text.startswith("# Benchmarks\n\nmethod") and text.rstrip().endswith("after")
    assert "](results/w4.png)" in text
