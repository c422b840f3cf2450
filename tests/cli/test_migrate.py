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
from datetime import timedelta
from pathlib import Path

import pytest
from clidata import agent_records, export_bytes, fill, kode

from kode_sdk.store.sqlite import SqliteStore
from kode_sdk.types import ToolCallState

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
    assert not dst_db.exists()  # a dry run creates nothing, not even an empty destination
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


# --------------------------------------------------------------------------- re-runs never destroy destination data


def _destination_moved_on(db: Path) -> None:
    """What a worker on the destination does after the first copy: appends a
    message, approves and completes the pending tool call of agt-00002."""

    async def go() -> None:
        async with SqliteStore(db) as store:
            await store.append_messages("agt-00003", [{"role": "user", "content": "only in the destination"}])
            records = await store.load_tool_call_records("agt-00002")
            pending = next(r for r in records if r.state == "approval_required")
            done = pending.model_copy(
                update={
                    "state": ToolCallState.COMPLETED,
                    "approval": pending.approval.model_copy(update={"decision": "allow"}),
                    "updated_at": pending.updated_at + timedelta(minutes=5),
                }
            )
            await store.save_tool_call_records("agt-00002", [done if r.id == pending.id else r for r in records])

    asyncio.run(go())


def _destination_state(db: Path) -> tuple[list[str], list[str]]:
    async def go() -> tuple[list[str], list[str]]:
        async with SqliteStore(db) as store:
            messages = await store.load_messages("agt-00003")
            records = await store.load_tool_call_records("agt-00002")
        return [str(m.content[0]["text"]) for m in messages], [str(r.state) for r in records]

    return asyncio.run(go())


@pytest.mark.parametrize("how", ["migrate", "import"])
def test_rerun_keeps_what_only_the_destination_holds(tmp_path: Path, how: str) -> None:
    src, dst_db = f"sqlite:{tmp_path / 'src.db'}", tmp_path / "dst.db"
    dst = f"sqlite:{dst_db}"
    fill(src, 5)
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(export_bytes(src))

    def run(*extra: str) -> tuple[int, dict[str, object]]:
        if how == "migrate":
            result = kode("migrate", src, dst, "--json", *extra)
        else:
            result = kode("-s", dst, "import", str(dump), "--json", *extra)
        return result.exit_code, json.loads(result.stdout)

    assert run()[0] == 0
    _destination_moved_on(dst_db)
    moved_on = _destination_state(dst_db)
    assert moved_on[0][-1] == "only in the destination" and "completed" in moved_on[1]

    code, report = run()
    assert code == 1
    conflicts = report["conflicts"]
    assert isinstance(conflicts, list)
    assert sorted(c["agentId"] for c in conflicts) == ["agt-00002", "agt-00003"]
    problems = " ".join(p for c in conflicts for p in c["problems"])
    assert "1 message(s) the source does not" in problems and "destination completed" in problems
    assert _destination_state(dst_db) == moved_on  # untouched
    # --overwrite replaces them with the source's content.
    code, _ = run("--overwrite")
    assert code == 0
    assert export_bytes(dst) == export_bytes(src)


def test_rerun_updates_an_older_destination_state(tmp_path: Path) -> None:
    src_db = tmp_path / "src.db"
    src, dst = f"sqlite:{src_db}", f"sqlite:{tmp_path / 'dst.db'}"
    fill(src, 5)
    migrate_json(src, dst)
    # The source moves on: the destination now holds an older state of agt-00002.
    _destination_moved_on(src_db)

    async def progress_info() -> None:
        async with SqliteStore(src_db) as store:
            info = await store.load_info("agt-00003")
            assert info is not None
            await store.save_info("agt-00003", info.model_copy(update={"message_count": info.message_count + 1}))

    asyncio.run(progress_info())
    report = migrate_json(src, dst)
    assert report["updated"] == 2 and report["identical"] == 3 and report["conflicts"] == []
    assert export_bytes(dst) == export_bytes(src)
