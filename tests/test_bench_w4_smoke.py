"""W4 at tiny sizes: our stores (and any peer that is installed) write the
conversation and read back exactly what was written. No timing assertions:
speed lives in bench/."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
DSN = os.environ.get("KODE_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"


def _load_w4() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kode_bench_w4", BENCH / "w4.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


w4 = _load_w4()


def _postgres_problem() -> str | None:
    problem: str | None = w4.pg_reachable(DSN)
    if problem and os.environ.get("KODE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"KODE_REQUIRE_POSTGRES=1 but {problem}")
    return problem


def _check_row(row: dict[str, Any], sessions: int, turns: int) -> None:
    assert "skipped" not in row, row.get("skipped")
    assert row["verified"] is True, row
    assert row["messages"] == 3 * sessions * turns
    assert row["write_seconds"] > 0 and row["read_seconds"] > 0
    if row["backend"] != "memory":
        assert row["bytes"] > 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_our_stores_write_and_read_back_the_conversation(backend: str) -> None:
    if backend == "postgres" and (problem := _postgres_problem()):
        pytest.skip(problem)
    rows = await w4.run(backend=backend, sessions=3, turns=4, repeat=1, dsn=DSN, systems="ours")
    names = {r["system"] for r in rows}
    assert names == {f"kode-{backend}-append", f"kode-{backend}-save"}
    for row in rows:
        _check_row(row, 3, 4)
    append = next(r for r in rows if r["system"] == f"kode-{backend}-append")
    assert append["write_vs_ours"] == 1.0


@pytest.mark.parametrize(
    ("system", "module"),
    [
        ("openai-sqlitesession", "agents"),
        ("openai-sqlalchemy-aiosqlite", "sqlalchemy"),  # aiosqlite may come without it
        ("langgraph-sqlitesaver", "langgraph.checkpoint.sqlite"),
        ("langgraph-inmemorysaver", "langgraph"),
        ("kode-langgraph-sqlite", "langgraph"),
        ("kode-openai-session-sqlite", "agents"),
        ("kode-adk-sqlite", "google.adk"),
        ("adk-databasesessionservice-sqlite", "sqlalchemy"),  # google-adk[db]
    ],
)
async def test_installed_sqlite_peers_verify(system: str, module: str) -> None:
    pytest.importorskip(module, reason=f"{system} needs the .[bench] extra")
    rows = await w4.run(backend="sqlite", sessions=2, turns=3, repeat=1, systems=system)
    assert [r["system"] for r in rows] == [system]
    _check_row(rows[0], 2, 3)


async def test_a_changed_message_is_not_verified(tmp_path: Path) -> None:
    """The comparison catches a history that differs from what was written."""
    from peers import Workspace, make_conversation
    from peers.kode import KodeStore

    conversation = make_conversation(1, 2)
    system = KodeStore(conversation, Workspace(tmp_path, DSN, "unused"), backend="sqlite", mode="append")
    await system.setup()
    try:
        for turn in range(2):
            await system.write_turn(0, turn)
        native = await system.read(0)
        assert system.decode(native) == system.expected(0)

        changed = [m.model_copy(deep=True) for m in native]
        changed[4].content[0]["text"] += "!"  # the second turn's assistant text
        assert system.decode(changed) != system.expected(0)

        changed = [m.model_copy(deep=True) for m in native]
        changed[2].content[0]["is_error"] = not changed[2].content[0]["is_error"]
        assert system.decode(changed) != system.expected(0)

        assert system.decode(native[:-1]) != system.expected(0)
    finally:
        await system.close()


def test_random_text_is_the_advertised_size() -> None:
    conversation = w4.make_conversation(2, 3)
    assert conversation.raw_text_bytes == 2 * 3 * 930
    first, second = conversation.turns[0][0], conversation.turns[1][0]
    assert first.user != second.user  # random per turn, not a repeated block
    assert w4.make_conversation(2, 3).turns == conversation.turns  # deterministic for a seed
