"""Retention: ``store.prune`` deletes thousands of agents in a handful of
statements (counted), and ``kode prune`` drives it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from clidata import fill, kode

from kode_sdk.cli.app import parse_store_spec
from kode_sdk.store.base import Store
from kode_sdk.store.factory import create_store
from kode_sdk.store.sqlite import SqliteStore

BASE = datetime(2024, 1, 1, tzinfo=UTC)
N = 10_000
CUT = 6_000  # agents 0 … 5999 are older than the cutoff


async def make_agents(store: Store, count: int = N, concurrency: int = 1) -> None:
    async def one(i: int) -> None:
        agent_id = f"old-{i:05d}"
        if i % 100 == 0:
            await store.save_messages(agent_id, [{"role": "user", "content": "hi"}])
            await store.append_event(
                agent_id,
                {"cursor": 1, "bookmark": {"seq": 1, "timestamp": 1}, "event": {"channel": "monitor", "type": "x"}},
            )
        created = BASE + timedelta(minutes=i)
        template = "coder" if i % 2 else "assistant"
        await store.save_info(agent_id, {"agent_id": agent_id, "template_id": template, "created_at": created})

    for start in range(0, count, concurrency):
        await asyncio.gather(*(one(i) for i in range(start, min(count, start + concurrency))))


def expected(template: str | None = None) -> list[str]:
    return [f"old-{i:05d}" for i in range(CUT) if template is None or (template == "coder") == bool(i % 2)]


def test_sqlite_prune_10000_agents_in_three_statements(tmp_path: Path) -> None:
    async def go() -> None:
        async with SqliteStore(tmp_path / "agents.db") as store:
            await make_agents(store)
            cutoff = BASE + timedelta(minutes=CUT)
            assert await store.prune(created_before=cutoff, template_id="coder", dry_run=True) == expected("coder")
            statements: list[str] = []
            await store._hop(lambda conn: conn.set_trace_callback(statements.append))
            pruned = await store.prune(created_before=cutoff)
            await store._hop(lambda conn: conn.set_trace_callback(None))
            assert pruned == expected()
            # SQLite reports each foreign-key cascade (a subprogram inside the one
            # DELETE) with the parent's text again; statements run one per agent
            # would carry different bound values. So runs of equal text are one statement.
            # The search index's triggers (schema 0004) show up as FTS5's own
            # statements (its shadow tables, its data_version check): not
            # statements of the store.
            statements = [sql for sql in statements if "messages_search" not in sql and "data_version" not in sql]
            distinct = [sql for n, sql in enumerate(statements) if n == 0 or statements[n - 1] != sql]
            assert len(distinct) <= 3, distinct  # BEGIN IMMEDIATE, DELETE … RETURNING, COMMIT
            remaining = await store.list()
            assert len(remaining) == N - CUT and remaining[0] == f"old-{CUT:05d}"
            assert await store.load_messages("old-00100") == []
            assert [e async for e in store.read_events("old-00100")] == []
            assert await store.load_messages(f"old-{CUT:05d}") != []
            assert await store.prune(created_before=cutoff) == []

    asyncio.run(go())


@pytest.mark.postgres
def test_postgres_prune_10000_agents_in_a_handful_of_statements(pg_spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> None:
        store: Any = create_store(parse_store_spec(pg_spec))
        async with store:
            await make_agents(store, concurrency=50)
            cutoff = BASE + timedelta(minutes=CUT)
            assert await store.prune(created_before=cutoff, template_id="coder", dry_run=True) == expected("coder")
            statements: list[str] = []
            original = psycopg.AsyncCursor.execute

            async def counting(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                statements.append(str(query)[:80])
                return await original(self, query, *args, **kwargs)

            monkeypatch.setattr(psycopg.AsyncCursor, "execute", counting)
            pruned = await store.prune(created_before=cutoff)
            monkeypatch.undo()
            assert pruned == expected()
            assert len(statements) <= 3, statements
            assert len(await store.list()) == N - CUT
            assert await store.load_messages("old-00100") == []
            assert [e async for e in store.read_events("old-00100")] == []

    asyncio.run(go())


def test_json_store_prune_by_scanning(tmp_path: Path) -> None:
    async def go() -> None:
        store: Any = create_store({"type": "json", "base_dir": str(tmp_path / "js")})
        async with store:
            await make_agents(store, count=30)
            cutoff = BASE + timedelta(minutes=10)
            wanted = [f"old-{i:05d}" for i in range(10)]
            assert await store.prune(created_before=cutoff, dry_run=True) == wanted
            assert await store.prune(created_before=cutoff) == wanted
            assert len(await store.list()) == 20

    asyncio.run(go())


def test_prune_command(tmp_path: Path) -> None:
    spec = f"sqlite:{tmp_path / 'agents.db'}"
    fill(spec, 30)  # created 2025-01-01 plus i hours
    dry = kode("-s", spec, "prune", "--older-than", "1s", "--template", "coder", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dryRun"] is True and report["agentIds"] == [f"agt-{i:05d}" for i in range(1, 30, 3)]
    assert len(json.loads(kode("-s", spec, "sessions", "--json").stdout)) == 30
    table = kode("-s", spec, "prune", "--older-than", "1s", "--template", "coder", "--dry-run")
    assert table.exit_code == 0 and "would delete 10 agents" in table.stdout
    done = kode("-s", spec, "prune", "--older-than", "1s", "--template", "coder", "--json")
    assert json.loads(done.stdout)["count"] == 10
    assert len(json.loads(kode("-s", spec, "sessions", "--json").stdout)) == 20
    assert json.loads(kode("-s", spec, "prune", "--older-than", "100000d", "--json").stdout)["count"] == 0
    assert "deleted 20 agents" in kode("-s", spec, "prune", "--older-than", "2w").stdout


def test_prune_bad_input_exits_2(tmp_path: Path) -> None:
    spec = f"sqlite:{tmp_path / 'agents.db'}"
    bad = kode("-s", spec, "prune", "--older-than", "ninety days")
    assert bad.exit_code == 2 and "--older-than" in bad.stderr
    assert kode("-s", spec, "prune").exit_code == 2
