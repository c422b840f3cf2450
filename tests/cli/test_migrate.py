"""``kode migrate`` between real stores: round trips, idempotent re-runs, a
migration killed halfway, dry runs and conflicts."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clidata import agent_records, export_bytes, fill, kode

from kode_sdk.store.sqlite import SqliteStore

TABLES = ("agents", "messages", "tool_calls", "events", "todos", "history_windows", "compression_records",
          "recovered_files", "media_cache", "snapshots")  # fmt: skip


def table_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def migrate_json(*args: str) -> dict[str, object]:
    result = kode("migrate", *args, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["verified"] is True and report["mismatches"] == []
    return report


def round_trip(tmp_path: Path, pg_spec: str, count: int) -> None:
    start = f"json:{tmp_path / 'start'}"
    first, last = f"sqlite:{tmp_path / 'first.db'}", f"sqlite:{tmp_path / 'last.db'}"
    fill(start, count)
    original = export_bytes(start)
    for src, dst in ((start, first), (first, pg_spec), (pg_spec, last)):
        report = migrate_json(src, dst)
        assert report["copied"] == count and report["identical"] == 0
    assert export_bytes(last) == original
    assert export_bytes(pg_spec) == original
    # Running again finds every agent identical and writes nothing.
    again = migrate_json(pg_spec, last)
    assert again["identical"] == count and again["writes"] == 0


@pytest.mark.postgres
def test_json_sqlite_postgres_sqlite_round_trip(tmp_path: Path, pg_spec: str) -> None:
    round_trip(tmp_path, pg_spec, 200)


@pytest.mark.slow
@pytest.mark.postgres
def test_round_trip_1000_agents(tmp_path: Path, pg_spec: str) -> None:
    round_trip(tmp_path, pg_spec, 1000)


def test_json_sqlite_json_round_trip(tmp_path: Path) -> None:
    start, middle, end = f"json:{tmp_path / 'a'}", f"sqlite:{tmp_path / 'b.db'}", f"json:{tmp_path / 'c'}"
    fill(start, 20)
    migrate_json(start, middle)
    migrate_json(middle, end)
    assert export_bytes(end) == export_bytes(start)


def test_killed_migration_completes_on_rerun_without_duplicates(tmp_path: Path) -> None:
    src_db, dst_db = tmp_path / "src.db", tmp_path / "dst.db"
    src, dst = f"sqlite:{src_db}", f"sqlite:{dst_db}"
    fill(src, 300)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kode_sdk.cli", "migrate", src, dst, "--batch-size", "2", "--no-verify"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    listed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if dst_db.exists():
            try:
                with sqlite3.connect(dst_db, timeout=5) as conn:
                    listed = conn.execute("SELECT count(*) FROM agents WHERE info IS NOT NULL").fetchone()[0]
            except sqlite3.OperationalError:
                listed = 0
        if listed >= 60:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the migration finished before it could be killed"
    with sqlite3.connect(dst_db) as conn:
        copied = conn.execute("SELECT count(*) FROM agents WHERE info IS NOT NULL").fetchone()[0]
    assert 60 <= copied < 300

    report = migrate_json(src, dst)
    assert report["identical"] >= 60
    assert report["identical"] + report["copied"] + report["updated"] == 300
    assert export_bytes(dst) == export_bytes(src)
    assert table_counts(dst_db) == table_counts(src_db)


def test_half_copied_agent_is_completed_not_duplicated(tmp_path: Path) -> None:
    src_db, dst_db = tmp_path / "src.db", tmp_path / "dst.db"
    src, dst = f"sqlite:{src_db}", f"sqlite:{dst_db}"
    fill(src, 12)
    records = agent_records(11)  # 4 events, 2 history windows, 2 snapshots, 2 recovered files

    async def half() -> None:
        async with SqliteStore(dst_db) as store:
            await store.save_messages("agt-00011", records["messages"][:2])
            for event in records["events"][:2]:
                await store.append_event("agt-00011", event)
            await store.save_history_window("agt-00011", records["windows"][0])
            await store.save_snapshot("agt-00011", records["snapshots"][0])
            await store.save_recovered_file("agt-00011", records["recovered"][0])

    asyncio.run(half())
    report = migrate_json(src, dst)
    assert report["updated"] == 1 and report["copied"] == 11
    assert export_bytes(dst) == export_bytes(src)
    assert table_counts(dst_db) == table_counts(src_db)


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    src, dst_db = f"sqlite:{tmp_path / 'src.db'}", tmp_path / "dst.db"
    fill(src, 10)
    result = kode("migrate", src, f"sqlite:{dst_db}", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dryRun"] is True and report["copied"] == 10 and report["writes"] == 0
    assert table_counts(dst_db)["agents"] == 0
    table = kode("migrate", src, f"sqlite:{dst_db}", "--dry-run")
    assert table.exit_code == 0 and "would copy" in table.stdout


def test_conflict_exits_1_until_overwrite(tmp_path: Path) -> None:
    src, dst = f"sqlite:{tmp_path / 'src.db'}", f"sqlite:{tmp_path / 'dst.db'}"
    fill(src, 5)
    migrate_json(src, dst)

    async def diverge() -> None:
        async with SqliteStore(tmp_path / "dst.db") as store:
            await store.append_event(
                "agt-00002",
                {"cursor": 99, "bookmark": {"seq": 99, "timestamp": 1}, "event": {"channel": "monitor", "type": "x"}},
            )

    asyncio.run(diverge())
    result = kode("migrate", src, dst, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [c["agentId"] for c in report["conflicts"]] == ["agt-00002"]
    assert "seq 99" in report["conflicts"][0]["problems"][0]
    assert kode("migrate", src, dst).exit_code == 1
    fixed = migrate_json(src, dst, "--overwrite")
    assert fixed["copied"] == 1 and fixed["identical"] == 4
    assert export_bytes(dst) == export_bytes(src)


def test_migrate_bad_input_exits_2(tmp_path: Path) -> None:
    assert kode("migrate", f"sqlite:{tmp_path / 'a.db'}", "oracle:x").exit_code == 2
    assert kode("migrate", f"sqlite:{tmp_path / 'a.db'}").exit_code == 2
    bad_agent = kode("migrate", f"sqlite:{tmp_path / 'a.db'}", f"sqlite:{tmp_path / 'b.db'}", "--agent", "../x")
    assert bad_agent.exit_code == 2 and "invalid agent id" in bad_agent.stderr
    assert kode("migrate", "sqlite:a.db", "sqlite:b.db", "--batch-size", "0").exit_code == 2
