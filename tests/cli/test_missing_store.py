"""Commands pointed at a store that does not exist fail (exit 2) and create
nothing: no database, no folders (issue 11, item 11)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from clidata import kode

from kode_sdk.errors import StoreConfigError
from kode_sdk.store.factory import create_store

READ_ONLY = [
    ("sessions",),
    ("messages",),
    ("tool-calls",),
    ("stats", "agt-1"),
    ("events", "agt-1"),
    ("health",),
    ("health", "--json"),
    ("metrics",),
    ("export",),
    ("prune", "--older-than", "1d"),
]


@pytest.mark.parametrize("backend", ["sqlite", "json"])
@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: "-".join(c))
def test_read_only_command_on_a_missing_store_is_an_error(
    tmp_path: Path, backend: str, command: tuple[str, ...]
) -> None:
    typo = tmp_path / "typo"
    spec = f"sqlite:{typo / 'agents.db'}" if backend == "sqlite" else f"json:{typo / 'store'}"
    result = kode("--store", spec, *command)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "does not exist" in result.stderr
    assert not typo.exists()


def test_missing_store_in_the_same_folder_is_not_created(tmp_path: Path) -> None:
    result = kode("--store", f"sqlite:{tmp_path / 'agents.db'}", "sessions")
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_migrate_from_a_missing_store_creates_neither_side(tmp_path: Path) -> None:
    result = kode("migrate", f"sqlite:{tmp_path / 'typo' / 'a.db'}", f"sqlite:{tmp_path / 'out' / 'b.db'}")
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []


def test_import_dry_run_into_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    export = tmp_path / "empty.jsonl"
    export.write_text("")
    result = kode("--store", f"sqlite:{tmp_path / 'new' / 'a.db'}", "import", str(export), "--dry-run")
    assert result.exit_code == 2
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "config",
    [{"type": "sqlite", "db_path": "typo/agents.db"}, {"type": "json", "base_dir": "typo/store"}],
    ids=["sqlite", "json"],
)
def test_factory_create_false_refuses_a_missing_store(tmp_path: Path, config: dict[str, str]) -> None:
    key = "db_path" if config["type"] == "sqlite" else "base_dir"
    store = create_store({**config, key: str(tmp_path / config[key]), "create": False})

    async def go() -> None:
        with pytest.raises(StoreConfigError, match="does not exist"):
            await store.open()
        await store.close()

    asyncio.run(go())
    assert not (tmp_path / "typo").exists()


def test_factory_create_must_be_a_bool() -> None:
    with pytest.raises(StoreConfigError, match="'create'"):
        create_store({"type": "sqlite", "db_path": "x.db", "create": "no"})


@pytest.mark.postgres
@pytest.mark.parametrize("command", [("sessions",), ("health", "--json"), ("export",)], ids=lambda c: c[0])
def test_read_only_command_on_a_postgres_schema_without_a_store_creates_nothing(
    pg_spec: str, command: tuple[str, ...]
) -> None:
    import psycopg

    from conftest import PG_URL

    schema = pg_spec.rsplit("schema=", 1)[1]
    result = kode("--store", pg_spec, *command)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "does not exist" in result.stderr and "nothing created" in result.stderr
    with psycopg.connect(PG_URL) as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone() is None
