"""The read-only commands against a real SQLite file: tables, ``--json`` and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clidata import agent_records, fill, kode, kode_process


def as_json(result: object) -> object:
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
    return json.loads(result.stdout)  # type: ignore[attr-defined]


def test_sessions_json_filters_and_paging(sqlite_spec: str) -> None:
    rows = as_json(kode("--store", sqlite_spec, "sessions", "--json", "--limit", "5"))
    assert [r["agentId"] for r in rows] == [f"agt-{i:05d}" for i in range(29, 24, -1)]
    assert rows[0]["templateId"] == agent_records(29)["info"]["template_id"]
    assert rows[0]["messageCount"] == len(agent_records(29)["messages"])
    coder = as_json(kode("-s", sqlite_spec, "sessions", "--json", "--template", "coder", "--order", "asc"))
    assert [r["agentId"] for r in coder] == [f"agt-{i:05d}" for i in range(1, 30, 3)]
    user = as_json(kode("-s", sqlite_spec, "sessions", "--json", "--user", "user-3"))
    assert {r["agentId"] for r in user} == {"agt-00003", "agt-00013", "agt-00023"}
    window = as_json(
        kode(
            "-s",
            sqlite_spec,
            "sessions",
            "--json",
            "--after",
            "2025-01-01T05:00:00Z",
            "--before",
            "2025-01-01T07:00:00Z",
        )
    )
    assert {r["agentId"] for r in window} == {"agt-00005", "agt-00006", "agt-00007"}
    page = as_json(kode("-s", sqlite_spec, "sessions", "--json", "--limit", "2", "--offset", "3"))
    assert [r["agentId"] for r in page] == ["agt-00026", "agt-00025"]
    by_count = as_json(kode("-s", sqlite_spec, "sessions", "--json", "--sort", "message_count", "--limit", "1"))
    assert by_count[0]["messageCount"] == 6


def test_sessions_table(sqlite_spec: str) -> None:
    result = kode("-s", sqlite_spec, "sessions", "--limit", "3")
    assert result.exit_code == 0
    assert "agt-00029" in result.stdout and "agt-00026" not in result.stdout


def test_messages(sqlite_spec: str) -> None:
    rows = as_json(kode("-s", sqlite_spec, "messages", "--json", "--agent", "agt-00004"))
    expected = agent_records(4)["messages"]
    assert sorted(r["seq"] for r in rows) == list(range(len(expected)))
    first = next(r for r in rows if r["seq"] == 0)
    assert first["content"] == [{"type": "text", "text": expected[0]["content"]}]
    assistant = as_json(kode("-s", sqlite_spec, "messages", "--json", "-a", "agt-00004", "--role", "assistant"))
    assert {r["role"] for r in assistant} == {"assistant"}
    assert len(assistant) == sum(1 for m in expected if m["role"] == "assistant")
    thinking = as_json(kode("-s", sqlite_spec, "messages", "--json", "--content-type", "thinking", "--limit", "500"))
    assert thinking and all(any(b["type"] == "thinking" for b in r["content"]) for r in thinking)
    table = kode("-s", sqlite_spec, "messages", "-a", "agt-00004")
    assert table.exit_code == 0 and "question 0" in table.stdout


def test_search(sqlite_spec: str) -> None:
    # "agt-00004" is a phrase of two words, found in that agent's questions only.
    hits = as_json(kode("-s", sqlite_spec, "search", "question agt-00004", "--json"))
    questions = [m for m in agent_records(4)["messages"] if m["role"] == "user"]
    assert len(hits) == len(questions)
    assert {(h["agentId"], h["role"]) for h in hits} == {("agt-00004", "user")}
    for hit in hits:
        assert set(hit) >= {"agentId", "seq", "role", "createdAt", "snippet", "highlights", "score"}
        marked = {hit["snippet"][start:end] for start, end in hit["highlights"]}
        assert marked == {"question", "agt-00004"}
    # Filters use the same names as the other commands.
    answers = as_json(kode("-s", sqlite_spec, "search", "answer", "--role", "assistant", "-a", "agt-00007", "--json"))
    assert answers and {(h["agentId"], h["role"]) for h in answers} == {("agt-00007", "assistant")}
    coder = as_json(kode("-s", sqlite_spec, "search", "question", "--template", "coder", "--limit", "1000", "--json"))
    assert {h["agentId"] for h in coder} == {f"agt-{i:05d}" for i in range(1, 30, 3)}
    tool_input = as_json(kode("-s", sqlite_spec, "search", "fs_read f1", "-a", "agt-00004", "--json"))
    assert [h["role"] for h in tool_input] == ["assistant"]
    page = as_json(kode("-s", sqlite_spec, "search", "question", "--limit", "3", "--offset", "2", "--json"))
    assert len(page) == 3
    table = kode("-s", sqlite_spec, "search", "question agt-00004")
    assert table.exit_code == 0 and "agt-00004" in table.stdout and "question" in table.stdout
    # A query that is not one: exit code 2 and the reason.
    for bad in ("", "((()))"):
        result = kode("-s", sqlite_spec, "search", bad)
        assert result.exit_code == 2 and "query" in result.stderr


def test_tool_calls(sqlite_spec: str) -> None:
    errors = as_json(kode("-s", sqlite_spec, "tool-calls", "--json", "--errors", "--limit", "1000"))
    assert errors and all(r["isError"] for r in errors)
    ok = as_json(kode("-s", sqlite_spec, "tool-calls", "--json", "--no-errors", "--limit", "1000"))
    assert ok and not any(r["isError"] for r in ok)
    total = sum(len(agent_records(i)["tool_calls"]) for i in range(30))
    assert len(errors) + len(ok) == total
    denied = as_json(kode("-s", sqlite_spec, "tool-calls", "--json", "--state", "DENIED", "--tool", "bash_run"))
    assert denied and {(r["state"], r["toolName"]) for r in denied} == {("denied", "bash_run")}
    approval = as_json(kode("-s", sqlite_spec, "tool-calls", "--json", "--approval", "--limit", "1000"))
    assert approval and all(r["approval"]["required"] for r in approval)
    assert kode("-s", sqlite_spec, "tool-calls", "-a", "agt-00007").exit_code == 0


def test_stats(sqlite_spec: str) -> None:
    stats = as_json(kode("-s", sqlite_spec, "stats", "agt-00007", "--json"))
    records = agent_records(7)
    assert stats["agentId"] == "agt-00007"
    assert stats["totalMessages"] == len(records["messages"])
    assert stats["totalToolCalls"] == len(records["tool_calls"])
    assert stats["totalSnapshots"] == len(records["snapshots"])
    assert stats["messagesByRole"] == {"user": 2, "assistant": 2}
    table = kode("-s", sqlite_spec, "stats", "agt-00007")
    assert table.exit_code == 0 and "snapshots" in table.stdout


def test_events(sqlite_spec: str) -> None:
    lines = kode("-s", sqlite_spec, "events", "agt-00006", "--json").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["bookmark"]["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    since = kode("-s", sqlite_spec, "events", "agt-00006", "--json", "--since", "4").stdout.splitlines()
    assert [json.loads(line)["bookmark"]["seq"] for line in since] == [5, 6]
    control = [
        json.loads(line)
        for line in kode("-s", sqlite_spec, "events", "agt-00006", "--json", "--channel", "control").stdout.splitlines()
    ]
    assert control and {e["event"]["channel"] for e in control} == {"control"}
    table = kode("-s", sqlite_spec, "events", "agt-00006")
    assert table.exit_code == 0 and "text_chunk" in table.stdout


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_events_follow_streams_new_events(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    # SQLite is polled; PostgreSQL uses the store's tail_events (LISTEN/NOTIFY).
    spec = f"sqlite:{tmp_path / 'live.db'}" if backend == "sqlite" else request.getfixturevalue("pg_spec")
    fill(spec, 1)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kode_sdk.cli",
            "-s",
            spec,
            "events",
            "agt-00000",
            "--json",
            "--follow",
            "--interval",
            "0.05",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        writer = (
            "import asyncio\n"
            "from kode_sdk.cli.app import parse_store_spec\n"
            "from kode_sdk.store.factory import create_store\n"
            "async def go():\n"
            f"    async with create_store(parse_store_spec({spec!r})) as s:\n"
            "        for seq in (100, 101):\n"
            "            await s.append_event('agt-00000', {'cursor': seq, 'bookmark': {'seq': seq, 'timestamp': 1},"
            " 'event': {'channel': 'monitor', 'type': 'late'}})\n"
            "asyncio.run(go())\n"
        )
        time.sleep(0.5)
        subprocess.run([sys.executable, "-c", writer], check=True, timeout=60)
        seen: list[int] = []
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while 101 not in seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(json.loads(line)["bookmark"]["seq"])
        assert seen[-2:] == [100, 101]
        assert seen.count(100) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_health_and_metrics(sqlite_spec: str) -> None:
    result = kode("-s", sqlite_spec, "health", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["healthy"] is True
    assert "healthy" in kode("-s", sqlite_spec, "health").stdout
    metrics = as_json(kode("-s", sqlite_spec, "metrics", "--json"))
    assert metrics["storage"]["totalAgents"] == 30
    prom = kode("-s", sqlite_spec, "metrics", "--prometheus")
    assert prom.exit_code == 0
    assert 'kode_store_agents{backend="sqlite"} 30' in prom.stdout
    assert "# TYPE kode_store_call_duration_seconds histogram" in prom.stdout
    assert kode("-s", sqlite_spec, "metrics").exit_code == 0


def test_unhealthy_store_exits_1(tmp_path: Path) -> None:
    blocker = tmp_path / "agents.db"
    blocker.write_text("x" * 5000)
    result = kode_process("--store", f"sqlite:{blocker}", "sessions")
    assert result.returncode == 1
    assert result.stderr.startswith("kode: error:") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert kode_process("--store", f"sqlite:{blocker}", "health").returncode == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sessions", "--after", "last tuesday"], "not a time"),
        (["sessions", "--sort", "name"], "sort_by"),
        (["sessions", "--order", "up"], "sort_order"),
        (["sessions", "--limit", "0"], "limit"),
        (["messages", "--role", "robot"], "role"),
        (["tool-calls", "--state", "sleeping"], "state"),
        (["stats", "../etc"], "invalid agent id"),
        (["events", "agt-00001", "--channel", "loud"], "channel"),
        (["metrics", "--json", "--prometheus"], "exclusive"),
    ],
)
def test_bad_input_exits_2_with_one_line(sqlite_spec: str, args: list[str], needle: str) -> None:
    result = kode("-s", sqlite_spec, *args)
    assert result.exit_code == 2, result.stdout
    assert result.stdout == ""
    assert needle in result.stderr and result.stderr.count("\n") == 1


def test_usage_errors_exit_2() -> None:
    assert kode("sessions", "--no-such-option").exit_code == 2
    assert kode("--store", "mysql:foo", "sessions").exit_code == 2
    assert kode("--store", "sqlite:", "sessions").exit_code == 2
    assert kode("stats").exit_code == 2


def test_not_found_exits_1(sqlite_spec: str) -> None:
    result = kode("-s", sqlite_spec, "stats", "agt-missing", "--json")
    assert result.exit_code == 1 and "not found" in result.stderr
    assert kode("-s", sqlite_spec, "events", "agt-missing").exit_code == 1


def test_debug_shows_traceback_otherwise_not(tmp_path: Path) -> None:
    blocker = tmp_path / "file.db"
    blocker.write_text("x" * 5000)  # not a database
    quiet = kode_process("--store", f"sqlite:{blocker}", "sessions")
    loud = kode_process("--debug", "--store", f"sqlite:{blocker}", "sessions")
    assert quiet.returncode == loud.returncode == 1
    assert "Traceback" not in quiet.stderr and "Traceback" in loud.stderr


def test_password_never_printed() -> None:
    result = kode_process("--store", "postgresql://kode:s3cr3t-pw@127.0.0.1:1/nodb", "health", "--json")
    assert result.returncode == 1
    assert "s3cr3t-pw" not in result.stdout + result.stderr


def test_store_from_environment(sqlite_spec: str) -> None:
    path = sqlite_spec.removeprefix("sqlite:")
    env = {**os.environ, "KODE_STORE_TYPE": "sqlite", "KODE_SQLITE_PATH": path}
    env.pop("KODE_STORE", None)
    result = kode_process("sessions", "--json", "--limit", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["agentId"] == "agt-00029"
    bad = kode_process("sessions", env={**env, "KODE_STORE_TYPE": "oracle"})
    assert bad.returncode == 2 and "KODE_STORE_TYPE" in bad.stderr
