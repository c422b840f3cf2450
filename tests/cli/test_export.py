"""``kode export`` / ``kode import``: the portable JSON Lines format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clidata import export_bytes, fill, kode


def test_export_is_byte_identical_across_backends(tmp_path: Path, pg_spec: str) -> None:
    specs = [f"json:{tmp_path / 'js'}", f"sqlite:{tmp_path / 'a.db'}", pg_spec]
    for spec in specs:
        fill(spec, 15)
    exports = [export_bytes(spec) for spec in specs]
    assert exports[0] == exports[1] == exports[2]


def test_export_format(sqlite_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "dump.jsonl"
    result = kode("-s", sqlite_spec, "export", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["agents"] == 30 and stats["records"]["info"] == 30
    lines = out.read_bytes().splitlines()
    assert json.loads(lines[0]) == {"format": "kode-sdk-export", "version": 2}
    records = [json.loads(line) for line in lines[1:]]
    assert len(records) == sum(stats["records"].values())
    assert {r["kind"] for r in records} == {
        "info", "message", "tool_call", "todos", "event", "history_window",
        "compression_record", "recovered_file", "media_cache", "snapshot",
    }  # fmt: skip
    agents = [r["agentId"] for r in records]
    assert agents == sorted(agents)
    assert records[0]["kind"] == "info" and records[0]["record"]["agentId"] == "agt-00000"
    # A big integer survives exactly.
    assert b"1180591620717411303424" in out.read_bytes()
    assert out.read_bytes() == export_bytes(sqlite_spec)
    only = kode("-s", sqlite_spec, "export", "--agent", "agt-00003")
    assert {json.loads(line).get("agentId") for line in only.stdout_bytes.splitlines()[1:]} == {"agt-00003"}


def test_import_round_trip_and_idempotence(sqlite_spec: str, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(export_bytes(sqlite_spec))
    target = f"sqlite:{tmp_path / 'copy.db'}"
    first = kode("-s", target, "import", str(dump), "--json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["statuses"] == {"copied": 30}
    assert export_bytes(target) == dump.read_bytes()
    again = kode("-s", target, "import", str(dump), "--json")
    assert json.loads(again.stdout)["statuses"] == {"identical": 30}
    assert export_bytes(target) == dump.read_bytes()
    via_stdin = kode("-s", f"json:{tmp_path / 'js'}", "import", "-", input=dump.read_bytes())
    assert via_stdin.exit_code == 0, via_stdin.stderr
    assert export_bytes(f"json:{tmp_path / 'js'}") == dump.read_bytes()


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda lines: [*lines[:3], b"{not json", *lines[3:]], "line 4: not valid JSON"),
        (lambda lines: lines[1:], "header line is missing"),
        (lambda lines: [*lines[:2], b'{"agentId":"agt-00000","kind":"gizmo","record":{}}'], "unknown kind 'gizmo'"),
        (lambda lines: [*lines[:2], b'{"agentId":"a/b","kind":"info","record":{}}'], "invalid agent id"),
        (
            lambda lines: [*lines[:2], b'{"agentId":"agt-9","kind":"message","record":{"role":"robot","content":[]}}'],
            "line 3.record.role",
        ),
        (lambda lines: [b'{"format":"kode-sdk-export","version":9}', *lines[1:]], "version 9"),
    ],
)
def test_bad_import_exits_2_and_writes_nothing(sqlite_spec: str, tmp_path: Path, mutate, needle: str) -> None:  # type: ignore[no-untyped-def]
    lines = export_bytes(sqlite_spec).splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(mutate(lines)) + b"\n")
    target = f"sqlite:{tmp_path / 'target.db'}"
    result = kode("-s", target, "import", str(bad))
    assert result.exit_code == 2, result.stdout
    assert needle in result.stderr, result.stderr
    # Validated before the store is opened: no database was created at all.
    assert not (tmp_path / "target.db").exists()


def test_export_import_usage_errors(sqlite_spec: str, tmp_path: Path) -> None:
    assert kode("-s", sqlite_spec, "export", "--json").exit_code == 2
    missing = kode("-s", sqlite_spec, "import", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    assert kode("-s", sqlite_spec, "import").exit_code == 2
