"""The factory: configs, the environment, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from kode_sdk import StoreConfigError
from kode_sdk.store.factory import config_from_env, create_extended_store, create_store
from kode_sdk.store.json_store import JSONStore
from kode_sdk.store.sqlite import SqliteStore


def test_env_defaults_to_embedded_sqlite() -> None:
    assert config_from_env({}) == {"type": "sqlite", "db_path": "./data/agents.db", "file_store_base_dir": None}


def test_env_store_type_is_case_insensitive() -> None:
    config = config_from_env({"KODE_STORE_TYPE": "JSON", "KODE_STORE_PATH": "/tmp/x"})
    assert config == {"type": "json", "base_dir": "/tmp/x"}


def test_env_bad_store_type_names_the_variable() -> None:
    with pytest.raises(StoreConfigError, match="KODE_STORE_TYPE"):
        config_from_env({"KODE_STORE_TYPE": "mongo"})


def test_env_database_url_wins_over_parts() -> None:
    config = config_from_env(
        {
            "KODE_STORE_TYPE": "postgres",
            "KODE_DATABASE_URL": "postgresql://u@db/x",
            "POSTGRES_HOST": "ignored",
        }
    )
    assert config["dsn"] == "postgresql://u@db/x"
    assert "connection" not in config


def test_env_postgres_parts() -> None:
    config = config_from_env(
        {
            "KODE_STORE_TYPE": "postgres",
            "POSTGRES_HOST": "db",
            "POSTGRES_PORT": "5433",
            "POSTGRES_DB": "kode",
            "POSTGRES_USER": "agent",
            "POSTGRES_PASSWORD": "s3cret-pw",
        }
    )
    assert config["connection"] == {
        "host": "db",
        "port": 5433,
        "database": "kode",
        "user": "agent",
        "password": "s3cret-pw",
    }


@pytest.mark.parametrize("port", ["abc", "0", "70000"])
def test_env_bad_port_names_the_variable_not_the_password(port: str) -> None:
    with pytest.raises(StoreConfigError, match="POSTGRES_PORT") as info:
        config_from_env(
            {"KODE_STORE_TYPE": "postgres", "POSTGRES_HOST": "db", "POSTGRES_PORT": port, "POSTGRES_PASSWORD": "pw-123"}
        )
    assert "pw-123" not in str(info.value)


def test_env_postgres_without_host_or_url() -> None:
    with pytest.raises(StoreConfigError, match="KODE_DATABASE_URL"):
        config_from_env({"KODE_STORE_TYPE": "postgres"})


def test_create_store_does_no_io(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "agents.db"
    store = create_store({"type": "sqlite", "db_path": str(db)})
    assert isinstance(store, SqliteStore)
    assert not db.parent.exists()
    json_store = create_store({"type": "json", "base_dir": str(tmp_path / "js")})
    assert isinstance(json_store, JSONStore)
    assert not (tmp_path / "js").exists()


def test_create_store_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KODE_STORE_TYPE", "json")
    monkeypatch.setenv("KODE_STORE_PATH", str(tmp_path / "store"))
    assert isinstance(create_store(), JSONStore)


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"type": "oracle"}, "'type'"),
        ({"type": "sqlite", "db_path": ""}, "'db_path'"),
        ({"type": "postgres"}, "'dsn' or 'connection'"),
        ({"type": "postgres", "connection": {"host": "h", "port": "x"}}, r"connection\.port"),
        ({"type": "postgres", "connection": {"host": "h", "max": -1}}, r"connection\.max"),
        ({"type": "postgres", "dsn": "postgresql://h/x", "connection": {"host": "h"}}, "not both"),
    ],
)
def test_create_store_rejects_bad_config(config: dict[str, object], needle: str) -> None:
    with pytest.raises(StoreConfigError, match=needle):
        create_store(config)


def test_bad_password_type_is_not_echoed() -> None:
    with pytest.raises(StoreConfigError, match=r"connection\.password") as info:
        create_store({"type": "postgres", "connection": {"host": "h", "password": 123456789}})
    assert "123456789" not in str(info.value)


async def test_create_extended_store_refuses_json(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match="json"):
        await create_extended_store({"type": "json", "base_dir": str(tmp_path)})


async def test_create_extended_store_opens_sqlite_and_creates_parents(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "agents.db"
    store = await create_extended_store({"type": "sqlite", "db_path": str(db)})
    try:
        assert db.exists()
        assert (await store.health_check()).healthy
    finally:
        await store.close()


async def test_create_extended_store_defaults_to_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("KODE_STORE_TYPE", "KODE_SQLITE_PATH", "KODE_STORE_PATH", "KODE_DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    store = await create_extended_store()
    try:
        await store.save_info("agt-1", {"agent_id": "agt-1", "template_id": "t"})
        assert (tmp_path / "data" / "agents.db").exists()
    finally:
        await store.close()
