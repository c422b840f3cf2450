"""What export, import, migrate and prune cover: agents saved without
``save_info``, and the times a store keeps outside the records (each
message's ``createdAt``, the session's ``updatedAt``), in every backend."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clidata import export_bytes, fill, kode

from kode_sdk.cli.app import parse_store_spec
from kode_sdk.ops.copy import verify
from kode_sdk.store.catalog import RecordTimes
from kode_sdk.store.factory import create_store
from kode_sdk.types import to_epoch_ms

OLD_MS = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)


def open_spec(spec: str) -> Any:
    return create_store(parse_store_spec(spec))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def event(seq: int, timestamp: int) -> dict[str, Any]:
    return {
        "cursor": seq,
        "bookmark": {"seq": seq, "timestamp": timestamp},
        "event": {"channel": "monitor", "type": "x"},
    }


async def add_bare_agents(spec: str) -> None:
    """Two agents that never had ``save_info``: one with messages, a tool call
    and events, one with events only (tool call and events from 2020)."""
    async with open_spec(spec) as store:
        await store.save_messages("bare-1", [{"role": "user", "content": "no info"}, {"role": "user", "content": "x"}])
        await store.save_tool_call_records(
            "bare-1", [{"id": "c1", "name": "t", "state": "completed", "created_at": OLD_MS, "updated_at": OLD_MS}]
        )
        await store.append_event("bare-1", event(1, OLD_MS))
        await store.append_event("bare-2", event(1, OLD_MS))
        await store.append_event("bare-2", event(2, OLD_MS + 5))


def exported_agents(data: bytes) -> list[str]:
    return sorted({json.loads(line)["agentId"] for line in data.splitlines()[1:]})


@pytest.mark.postgres
def test_agents_without_info_are_exported_migrated_imported_and_counted(tmp_path: Path, pg_spec: str) -> None:
    src = f"sqlite:{tmp_path / 'src.db'}"
    fill(src, 3)
    run(add_bare_agents(src))
    original = export_bytes(src)
    assert exported_agents(original) == ["agt-00000", "agt-00001", "agt-00002", "bare-1", "bare-2"]

    for dst in (f"json:{tmp_path / 'js'}", pg_spec, f"sqlite:{tmp_path / 'dst.db'}"):
        result = kode("migrate", src, dst, "--json")
        assert result.exit_code == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert report["total"] == 5 and report["copied"] == 5 and report["verified"] is True
        assert export_bytes(dst) == original
        metrics = kode("-s", dst, "metrics", "--json")
        assert json.loads(metrics.stdout)["storage"]["totalAgents"] == 5, metrics.stdout

    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(original)
    target = f"sqlite:{tmp_path / 'imported.db'}"
    imported = kode("-s", target, "import", str(dump), "--json")
    assert json.loads(imported.stdout)["statuses"] == {"copied": 5}
    assert export_bytes(target) == original


def test_events_of_an_agent_without_info(tmp_path: Path) -> None:
    # An agent is known by its records: its events show without info.
    spec = f"sqlite:{tmp_path / 'a.db'}"
    run(add_bare_agents(spec))
    events = kode("-s", spec, "events", "bare-2", "--json")
    assert events.exit_code == 0, events.stderr
    assert [json.loads(line)["bookmark"]["seq"] for line in events.stdout.splitlines()] == [1, 2]
    missing = kode("-s", spec, "events", "nobody")
    assert missing.exit_code == 1 and "not found" in missing.stderr


def test_prune_by_age_covers_agents_without_info(tmp_path: Path) -> None:
    spec = f"sqlite:{tmp_path / 'a.db'}"
    run(add_bare_agents(spec))

    async def fresh() -> None:
        async with open_spec(spec) as store:
            # bare-1's messages were saved in 2020 too; bare-new's just now.
            await store.restore_record_times("bare-1", RecordTimes([OLD_MS, OLD_MS + 1], None))
            await store.save_messages("bare-new", [{"role": "user", "content": "just now"}])

    run(fresh())
    dry = kode("-s", spec, "prune", "--older-than", "30d", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout)["agentIds"] == ["bare-1", "bare-2"]
    # A template filter never selects an agent without info (it has no template).
    only = kode("-s", spec, "prune", "--older-than", "30d", "--template", "coder", "--json")
    assert json.loads(only.stdout)["agentIds"] == []
    done = kode("-s", spec, "prune", "--older-than", "30d", "--json")
    assert json.loads(done.stdout)["agentIds"] == ["bare-1", "bare-2"]
    assert exported_agents(export_bytes(spec)) == ["bare-new"]


async def _times(spec: str, agent_id: str) -> tuple[list[int], int]:
    async with open_spec(spec) as store:
        messages = await store.query_messages(agent_id=agent_id, limit=100)
        (session,) = await store.query_sessions(agent_id=agent_id)
    return sorted(to_epoch_ms(m.created_at) for m in messages), to_epoch_ms(session.updated_at)


@pytest.mark.postgres
def test_migrate_export_import_keep_message_and_session_times(tmp_path: Path, pg_spec: str) -> None:
    src = f"sqlite:{tmp_path / 'src.db'}"
    fill(src, 4)  # messages of 2025, sessions updated in 2025
    expected = {a: run(_times(src, a)) for a in ("agt-00001", "agt-00003")}
    assert expected["agt-00001"][1] < to_epoch_ms(datetime(2026, 1, 1, tzinfo=UTC))

    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(export_bytes(src))
    imported = f"json:{tmp_path / 'imported'}"
    assert kode("-s", imported, "import", str(dump)).exit_code == 0
    for dst in (f"json:{tmp_path / 'js'}", f"sqlite:{tmp_path / 'dst.db'}", pg_spec, imported):
        if dst != imported:
            assert kode("migrate", src, dst).exit_code == 0
        for agent_id, times in expected.items():
            assert run(_times(dst, agent_id)) == times, dst


def test_verify_compares_times_and_rerun_restores_them(tmp_path: Path) -> None:
    src, dst = f"sqlite:{tmp_path / 'src.db'}", f"sqlite:{tmp_path / 'dst.db'}"
    fill(src, 3)
    assert kode("migrate", src, dst).exit_code == 0

    async def shift_and_verify() -> list[dict[str, Any]]:
        async with open_spec(dst) as store:
            times = await store.load_record_times("agt-00002")
            later = [t + 1 for t in times.message_created_at]
            await store.restore_record_times("agt-00002", RecordTimes(later, times.updated_at))
        async with open_spec(src) as a, open_spec(dst) as b:
            mismatches, _ = await verify(a, b)
        return mismatches

    assert [m["agentId"] for m in run(shift_and_verify())] == ["agt-00002"]
    again = json.loads(kode("migrate", src, dst, "--json").stdout)
    assert again["updated"] == 1 and again["identical"] == 2 and again["ok"] is True
    assert export_bytes(dst) == export_bytes(src)


def _as_version_1(data: bytes) -> bytes:
    lines = [b'{"format":"kode-sdk-export","version":1}']
    for raw in data.splitlines()[1:]:
        item = json.loads(raw)
        item.pop("createdAt", None)
        item.pop("updatedAt", None)
        lines.append(json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    return b"\n".join(lines) + b"\n"


def test_version_1_exports_still_import(tmp_path: Path) -> None:
    src = f"sqlite:{tmp_path / 'src.db'}"
    fill(src, 4)
    old = tmp_path / "v1.jsonl"
    old.write_bytes(_as_version_1(export_bytes(src)))
    target = f"sqlite:{tmp_path / 'target.db'}"
    first = kode("-s", target, "import", str(old), "--json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["statuses"] == {"copied": 4}
    # Same records; the times are the import's (version 1 has none).
    assert _as_version_1(export_bytes(target)) == old.read_bytes()
    again = kode("-s", target, "import", str(old), "--json")
    assert json.loads(again.stdout)["statuses"] == {"identical": 4}


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda item, i: item.pop("createdAt") if i == 1 else None, "some messages of agent"),
        (lambda item, i: item.update(createdAt=1) if i == 1 else None, "earlier than the message before it"),
        (lambda item, i: item.update(createdAt="soon") if i == 0 else None, "createdAt must be epoch milliseconds"),
    ],
)
def test_bad_message_times_are_refused(tmp_path: Path, sqlite_spec: str, edit: Any, needle: str) -> None:
    lines = export_bytes(sqlite_spec).splitlines()
    out, position = [lines[0]], 0
    for raw in lines[1:]:
        item = json.loads(raw)
        if item["agentId"] == "agt-00001" and item["kind"] == "message":
            edit(item, position)
            position += 1
        out.append(json.dumps(item).encode())
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(out) + b"\n")
    result = kode("-s", f"sqlite:{tmp_path / 'new.db'}", "import", str(bad))
    assert result.exit_code == 2 and needle in result.stderr, result.stderr


def test_import_of_a_bad_file_creates_no_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"format":"kode-sdk-export","version":1}\n{not json\n')
    db = tmp_path / "new.db"
    result = kode("-s", f"sqlite:{db}", "import", str(bad))
    assert result.exit_code == 2 and "line 2: not valid JSON" in result.stderr
    assert not db.exists()
    folder = tmp_path / "store"
    assert kode("-s", f"json:{folder}", "import", str(bad)).exit_code == 2
    assert not folder.exists()


def test_export_of_an_unknown_agent_is_a_usage_error(tmp_path: Path, sqlite_spec: str) -> None:
    out = tmp_path / "out.jsonl"
    result = kode("-s", sqlite_spec, "export", str(out), "-a", "agt-00001", "-a", "no-such-agent")
    assert result.exit_code == 2
    assert "no-such-agent" in result.stderr and "exported" not in result.stdout
    assert list(tmp_path.iterdir()) == []
    to_stdout = kode("-s", sqlite_spec, "export", "-a", "no-such-agent")
    assert to_stdout.exit_code == 2 and to_stdout.stdout == ""
