"""``kode backup`` / ``kode restore``: SQLite through the online backup API
(while another process writes), PostgreSQL through pg_dump/pg_restore."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clidata import HERE, agent_records, export_bytes, fill, kode, kode_process

from kode_sdk.ops.dump import read_agent
from kode_sdk.store.sqlite import SqliteStore


def listed(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM agents WHERE info IS NOT NULL").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


async def check_backup(path: Path) -> int:
    """Every agent listed in the backup is complete; they are agt-00000… in order."""
    async with SqliteStore(path) as store:
        ids = await store.list()
        assert ids == [f"agt-{i:05d}" for i in range(len(ids))]
        for i, agent_id in enumerate(ids):
            counts = (await read_agent(store, agent_id)).digest().counts
            want = agent_records(i)
            assert counts["message"] == len(want["messages"])
            assert counts["tool_call"] == len(want["tool_calls"])
            assert counts["event"] == len(want["events"])
            assert counts["history_window"] == len(want["windows"])
            assert counts["snapshot"] == len(want["snapshots"])
            assert (await store.check_consistency(agent_id)).consistent
        return len(ids)


def test_backup_while_another_process_writes(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    spec = f"sqlite:{db}"
    fill(spec, 1)
    writer = subprocess.Popen([sys.executable, str(HERE / "clidata.py"), spec, "100000", "1"])
    try:
        deadline = time.monotonic() + 60
        while listed(db) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        backups: list[Path] = []
        (tmp_path / "backups").mkdir()
        for n in range(3):
            dest = tmp_path / "backups" / f"b{n}.db"
            result = kode_process("--store", spec, "backup", str(dest), "--json")
            assert result.returncode == 0, result.stderr
            info = json.loads(result.stdout)
            assert info["backend"] == "sqlite" and info["integrity"] == "ok" and info["sizeBytes"] > 0
            backups.append(dest)
            time.sleep(0.3)
        assert writer.poll() is None, "the writer stopped before the backups were taken"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    sizes = []
    for path in backups:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0
        sizes.append(asyncio.run(check_backup(path)))
    assert sizes == sorted(sizes) and sizes[0] >= 20


def test_restore(tmp_path: Path, sqlite_spec: str) -> None:
    backup = tmp_path / "agents.bak"
    made = kode("-s", sqlite_spec, "backup", str(backup))
    assert made.exit_code == 0 and "integrity ok" in made.stdout
    original = export_bytes(sqlite_spec)
    fresh = f"sqlite:{tmp_path / 'fresh.db'}"
    restored = kode("-s", fresh, "restore", str(backup), "--json")
    assert restored.exit_code == 0, restored.stderr
    assert export_bytes(fresh) == original
    other = f"sqlite:{tmp_path / 'other.db'}"
    fill(other, 3)
    refused = kode("-s", other, "restore", str(backup))
    assert refused.exit_code == 2 and "--force" in refused.stderr
    assert len(json.loads(kode("-s", other, "sessions", "--json").stdout)) == 3
    forced = kode("-s", other, "restore", str(backup), "--force")
    assert forced.exit_code == 0, forced.stderr
    assert export_bytes(other) == original


def test_backup_errors(tmp_path: Path) -> None:
    json_store = kode("-s", f"json:{tmp_path / 'js'}", "backup", str(tmp_path / "x.bak"))
    assert json_store.exit_code == 1 and "kode export" in json_store.stderr
    missing = kode("-s", f"sqlite:{tmp_path / 'none.db'}", "backup", str(tmp_path / "x.bak"))
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    no_file = kode("-s", f"sqlite:{tmp_path / 'y.db'}", "restore", str(tmp_path / "nope.bak"))
    assert no_file.exit_code == 1 and "does not exist" in no_file.stderr
    garbage = tmp_path / "garbage.bak"
    garbage.write_bytes(b"not a database at all" * 100)
    bad = kode("-s", f"sqlite:{tmp_path / 'z.db'}", "restore", str(garbage))
    assert bad.exit_code == 1 and "restore failed" in bad.stderr
    assert kode("-s", f"sqlite:{tmp_path / 'y.db'}", "backup").exit_code == 2


@pytest.mark.postgres
def test_postgres_backup_and_restore(tmp_path: Path, pg_spec: str) -> None:
    fill(pg_spec, 12)
    original = export_bytes(pg_spec)
    dump = tmp_path / "pg.dump"
    made = kode("-s", pg_spec, "backup", str(dump), "--json")
    assert made.exit_code == 0, made.stderr
    assert json.loads(made.stdout)["backend"] == "postgres" and dump.stat().st_size > 0
    pruned = kode("-s", pg_spec, "prune", "--older-than", "1s")
    assert pruned.exit_code == 0 and export_bytes(pg_spec) != original
    restored = kode("-s", pg_spec, "restore", str(dump), "--force")
    assert restored.exit_code == 0, restored.stderr
    assert export_bytes(pg_spec) == original


@pytest.mark.postgres
def test_postgres_restore_refuses_a_database_with_tables_without_force(tmp_path: Path, pg_spec: str) -> None:
    fill(pg_spec, 3)
    dump = tmp_path / "pg.dump"
    assert kode("-s", pg_spec, "backup", str(dump)).exit_code == 0
    fill(pg_spec, 2, start=3)
    before = export_bytes(pg_spec)
    refused = kode("-s", pg_spec, "restore", str(dump))
    assert refused.exit_code == 2 and "--force" in refused.stderr and "tables" in refused.stderr
    assert export_bytes(pg_spec) == before
    forced = kode("-s", pg_spec, "restore", str(dump), "--force")
    assert forced.exit_code == 0, forced.stderr
    assert len(json.loads(kode("-s", pg_spec, "sessions", "--json").stdout)) == 3


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_backups_and_restored_databases_are_owner_only(tmp_path: Path, sqlite_spec: str, umask_022: None) -> None:
    backup = tmp_path / "agents.bak"
    assert kode("-s", sqlite_spec, "backup", str(backup)).exit_code == 0
    assert _mode(backup) == 0o600
    fresh = tmp_path / "fresh.db"
    assert kode("-s", f"sqlite:{fresh}", "restore", str(backup)).exit_code == 0
    assert _mode(fresh) == 0o600


@pytest.mark.postgres
def test_pg_dump_output_is_owner_only(tmp_path: Path, pg_spec: str, umask_022: None) -> None:
    fill(pg_spec, 1)
    dump = tmp_path / "pg.dump"
    dump.write_bytes(b"an older dump")
    dump.chmod(0o644)
    assert kode("-s", pg_spec, "backup", str(dump)).exit_code == 0
    assert _mode(dump) == 0o600


def test_backup_and_restore_never_create_parent_folders(tmp_path: Path, sqlite_spec: str) -> None:
    missing = tmp_path / "nonexistent"
    result = kode("-s", sqlite_spec, "backup", str(missing / "x.bak"))
    assert result.exit_code == 1 and "does not exist" in result.stderr
    backup = tmp_path / "agents.bak"
    assert kode("-s", sqlite_spec, "backup", str(backup)).exit_code == 0
    result = kode("-s", f"sqlite:{missing / 'agents.db'}", "restore", str(backup))
    assert result.exit_code == 1 and "does not exist" in result.stderr
    assert not missing.exists()


def test_postgres_backup_without_pg_dump_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kode_sdk.cli", "-s", "postgresql://u:pw-hidden@127.0.0.1:1/db", "backup",
         str(tmp_path / "x.dump")],
        capture_output=True, text=True, env={"PATH": str(tmp_path)}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "pg_dump is not installed" in result.stderr and "pw-hidden" not in result.stderr


def _connection_parts(pg_spec: str) -> tuple[str, dict[str, Any]]:
    """The base URL of ``pg_spec`` and the store config's ``connection`` dict
    for it, schema included (the dict form a library user writes)."""
    from psycopg.conninfo import conninfo_to_dict

    base_url, _, query = pg_spec.partition("?")
    schema = query.split("schema=", 1)[1].split("&", 1)[0]
    parts = conninfo_to_dict(base_url)
    connection: dict[str, Any] = {
        "host": parts.get("host", "127.0.0.1"),
        "port": int(str(parts.get("port", 5432))),
        "user": parts.get("user", "postgres"),
        "database": parts.get("dbname"),
        "schema": schema,
    }
    return base_url, connection


@pytest.mark.postgres
def test_postgres_backup_holds_the_store_schema_only(tmp_path: Path, pg_spec: str) -> None:
    import psycopg

    from kode_sdk.ops.backup import backup

    fill(pg_spec, 2)
    base_url, connection = _connection_parts(pg_spec)
    other = f"kode_other_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{other}"')
        conn.execute(f'CREATE TABLE "{other}".unrelated (x int)')
    try:
        dump = tmp_path / "pg.dump"
        backup({"type": "postgres", "connection": connection}, dump)
        listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True).stdout
        assert f" {connection['schema']} " in listing and " agents " in listing
        assert other not in listing and "unrelated" not in listing
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{other}" CASCADE')


@pytest.mark.postgres
def test_postgres_backup_keeps_the_ssl_options(tmp_path: Path, pg_spec: str) -> None:
    """The test server has no TLS: a backup told ``ssl: require`` must fail for
    that reason, not quietly connect without it."""
    from kode_sdk.ops.backup import BackupError, backup

    _, connection = _connection_parts(pg_spec)
    with pytest.raises(BackupError, match="SSL"):
        backup({"type": "postgres", "connection": {**connection, "ssl": "require"}}, tmp_path / "pg.dump")
    assert not (tmp_path / "pg.dump").exists()
