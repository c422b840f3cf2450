"""`python -m kode_sdk.demo`, run twice in a fresh directory: the first run
creates the agents, the second resumes them; both print the query tables."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agent_stores import open_store

SRC = Path(__file__).parents[2] / "src"
DEMO_IDS = ("demo-researcher", "demo-operator", "demo-analyst")


def _demo_env(store_spec: dict[str, Any]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KODE_", "POSTGRES_")) and k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    if store_spec["backend"] == "postgres":
        env.update(
            KODE_STORE_TYPE="postgres", KODE_DATABASE_URL=store_spec["dsn"], KODE_POSTGRES_SCHEMA=store_spec["schema"]
        )
    return env


def _run_demo(cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kode_sdk.demo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_demo_runs_twice_and_prints_the_tables(store_spec: dict[str, Any], tmp_path: Path) -> None:
    if store_spec["backend"] == "json":
        pytest.skip("the demo needs an ExtendedStore (SQLite by default, or PostgreSQL); JSONStore is not one")
    env = _demo_env(store_spec)

    first = _run_demo(tmp_path, env)
    for title in (
        "Agents at work",
        "Sessions (query_sessions)",
        "Failed tool calls",
        "Calls that needed approval",
        "Per-agent stats",
    ):
        assert title in first
    assert "ConnectionError: metrics backend" in first
    assert "demo-operator asks to run deploy" in first
    assert "resumed from the store with" not in first

    second = _run_demo(tmp_path, env)
    assert second.count("resumed from the store with") == 3
    assert "Per-agent stats" in second

    spec = (
        store_spec
        if store_spec["backend"] != "sqlite"
        else {"backend": "sqlite", "path": str(tmp_path / "data" / "agents.db")}
    )
    if store_spec["backend"] == "sqlite":
        assert (tmp_path / "data" / "agents.db").exists()

    async def check() -> None:
        store = open_store(spec)
        try:
            for agent_id in DEMO_IDS:
                messages = await store.load_messages(agent_id)
                assert len(messages) == 12  # two runs, six messages each: nothing lost or doubled
                user_texts = [m for m in messages if m.role == "user" and m.content[0]["type"] == "text"]
                assert [m.content[0]["text"].endswith("(run 2)") for m in user_texts] == [False, True]
            records = await store.load_tool_call_records("demo-analyst")
            assert [r.state.value for r in records].count("failed") == 2
            deploys = [r for r in await store.load_tool_call_records("demo-operator") if r.name == "deploy"]
            assert [(r.approval.decision, r.state.value) for r in deploys] == [("allow", "completed")] * 2
            assert len(await store.list_snapshots("demo-researcher")) == 2
        finally:
            await store.close()

    asyncio.run(check())


@pytest.mark.parametrize("sdk", ["anthropic", "openai"])
def test_demo_uses_the_real_provider_when_a_key_is_set(sdk: str, tmp_path: Path) -> None:
    pytest.importorskip(sdk, reason=f"the '{sdk}' extra is not installed")
    from fake_llm import FakeLLMServer

    turns = [
        [("text", "Planning."), ("tool", "call-1", "search_notes", {"query": "wal"})],
        [("text", "WAL lets readers run beside the writer.")],
    ]
    env = _demo_env({"backend": "sqlite"})
    with FakeLLMServer(turns) as server:
        if sdk == "anthropic":
            env.update(ANTHROPIC_API_KEY="sk-test", ANTHROPIC_BASE_URL=server.url)
        else:
            env.update(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=server.url + "/v1")
        output = _run_demo(tmp_path, env)
    assert len(server.requests) == 2  # the researcher's two model calls, nothing else
    assert f"│ demo-researcher │ {sdk}" in output
    assert "demo-researcher ▸ WAL lets readers run beside the writer." in output
    assert "Per-agent stats" in output


def test_kode_demo_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from kode_sdk.cli import app

    for name in [k for k in os.environ if k.startswith(("KODE_", "POSTGRES_"))] + [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
    ]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert "demo" in runner.invoke(app, ["--help"]).output
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "Per-agent stats" in result.output
    assert (tmp_path / "data" / "agents.db").exists()
