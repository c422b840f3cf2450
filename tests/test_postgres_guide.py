"""docs/postgres-guide.md and compose.yaml cannot drift from the code: the
numbers are the benchmark page's, the settings are the ones the code reads
(with the defaults it uses), compose.yaml's app is configured the way the
factory reads it and agrees with its server, the Python examples run as far as
they can without a server, and the guide is linked from the README. The
commands and error messages are checked against a real server in
tests/postgres/test_postgres_guide_errors.py."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from kode_sdk.store.factory import config_from_env, create_store
from kode_sdk.store.postgres import PostgresStore
from kode_sdk.store.postgres import config as postgres_config
from kode_sdk.store.postgres.config import parse_connection

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "postgres-guide.md"
TEXT = GUIDE.read_text(encoding="utf-8")


def section(name: str) -> str:
    """The guide's text between ``<!-- guide:NAME -->`` and ``<!-- guide:NAME-end -->``."""
    match = re.search(rf"<!-- guide:{name}\b[^>]*-->(.*?)<!-- guide:{name}-end -->", TEXT, flags=re.DOTALL)
    assert match, f"marker guide:{name} missing"
    return match.group(1)


def table_rows(block: str) -> list[list[str]]:
    rows = [line for line in block.strip().splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", TEXT, flags=re.DOTALL | re.MULTILINE)


def test_the_guide_is_linked_from_the_readme() -> None:
    assert "(docs/postgres-guide.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    for heading in ("SQLite or PostgreSQL", "Docker quick start", "Pool sizing", "Backup", "Troubleshooting"):
        assert f"## {heading}" in TEXT


def test_every_number_in_the_comparison_is_measured_in_benchmarks_md() -> None:
    bench = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    numbers = []
    for row in table_rows(section("numbers")):
        for cell in row[1:]:
            numbers += re.findall(r"\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+", cell)
    assert len(numbers) >= 14
    missing = [n for n in numbers if n not in bench]
    assert missing == [], f"numbers not in docs/benchmarks.md: {missing}"


def test_every_environment_variable_does_what_the_guide_says() -> None:
    names = {row[0].strip("`") for row in table_rows(section("env"))}
    assert names == {
        "KODE_STORE_TYPE",
        "KODE_DATABASE_URL",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_DB",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "KODE_POSTGRES_SCHEMA",
        "KODE_POSTGRES_POOLER",
        "KODE_POSTGRES_REPLICAS",
    }
    parts = {
        "KODE_STORE_TYPE": "postgres",
        "POSTGRES_HOST": "db",
        "POSTGRES_PORT": "6543",
        "POSTGRES_DB": "kdb",
        "POSTGRES_USER": "ku",
        "POSTGRES_PASSWORD": "pw-secret-1",
        "KODE_POSTGRES_SCHEMA": "ks",
    }
    config = config_from_env(parts)
    assert config["schema"] == "ks"
    assert config["connection"] == {
        "host": "db",
        "port": 6543,
        "database": "kdb",
        "user": "ku",
        "password": "pw-secret-1",
    }
    # KODE_DATABASE_URL wins over the parts; POSTGRES_PORT defaults to 5432.
    with_url = config_from_env({**parts, "KODE_DATABASE_URL": "postgresql://x@h/d"})
    assert with_url["dsn"] == "postgresql://x@h/d" and "connection" not in with_url
    store = create_store(config_from_env({k: v for k, v in parts.items() if k != "POSTGRES_PORT"}))
    assert "db:5432/kdb user=ku schema=ks" in repr(store)
    # Pooler and replicas: applied to explicit DSNs too.
    env = {"KODE_POSTGRES_POOLER": "transaction", "KODE_POSTGRES_REPLICAS": "host=r1, host=r2"}
    settings = parse_connection("postgresql://x@h/d", environ=env)
    assert settings.transaction_pooled and len(settings.replicas) == 2
    assert "sqlite" in repr(create_store(config_from_env({})).__class__).lower()  # the default


def test_every_connection_key_and_default_is_the_codes() -> None:
    rows = table_rows(section("keys"))
    documented: dict[str, str] = {}
    for row in rows:
        for key in re.findall(r"`([a-z_]+)`", row[0]):
            documented[key] = row[1]
    assert set(documented) == set(postgres_config._KNOWN_KEYS) - {"dbname"}
    defaults = {
        "max": postgres_config.DEFAULT_MAX,
        "idle_timeout_ms": postgres_config.DEFAULT_IDLE_TIMEOUT_MS,
        "connection_timeout_ms": postgres_config.DEFAULT_CONNECTION_TIMEOUT_MS,
        "lock_lease_ms": postgres_config.DEFAULT_LOCK_LEASE_MS,
        "min": 1,
    }
    for key, value in defaults.items():
        assert documented[key] == str(value), key
    assert documented["schema"] == f"`{postgres_config.DEFAULT_SCHEMA}`"
    settings = parse_connection({"host": "h"}, environ={})
    assert (settings.min_size, settings.max_size, settings.schema) == (1, postgres_config.DEFAULT_MAX, "public")
    assert "application_name=kode-sdk" in settings.conninfo
    # The ssl forms the table names.
    for ssl in (True, False, "verify-full", {"mode": "verify-full", "rootcert": "/path/ca.pem"}):
        parse_connection({"host": "h", "ssl": ssl}, environ={})
    assert "sslmode=require" in parse_connection({"host": "h", "ssl": True}, environ={}).conninfo


def test_python_examples_parse_and_build_their_stores() -> None:
    blocks = code_blocks("python")
    assert len(blocks) >= 4
    built = 0
    for block in blocks:
        ast.parse(block)
        if "asyncio.run(" in block:
            continue  # needs a server: run in tests/postgres/test_postgres_guide_errors.py
        scope: dict[str, Any] = {}
        exec(compile(block, str(GUIDE), "exec"), scope)  # the constructor does no I/O
        assert isinstance(scope["store"], PostgresStore)
        built += 1
    assert built == 3


def test_pool_sizing_is_how_the_store_opens_connections() -> None:
    assert "`max(4, max)`" in TEXT and "`2 × max`" in TEXT
    store = PostgresStore({"host": "h", "max": 3})
    assert store._new_pool(locks=False).max_size == 3
    assert store._new_pool(locks=True).max_size == 4
    store = PostgresStore({"host": "h", "max": 7})
    assert store._new_pool(locks=True).max_size == 7


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_app_is_configured_the_way_the_factory_reads_it() -> None:
    services = compose()["services"]
    server = services["postgres"]["environment"]
    app = {key: str(value) for key, value in services["app"]["environment"].items()}
    # Every variable of the app is one the guide documents (and so one the code reads).
    documented = {row[0].strip("`") for row in table_rows(section("env"))}
    assert set(app) <= documented, set(app) - documented
    # The app reaches the postgres service with the server's own credentials.
    assert app["POSTGRES_HOST"] == "postgres"
    assert (app["POSTGRES_DB"], app["POSTGRES_USER"], app["POSTGRES_PASSWORD"]) == (
        server["POSTGRES_DB"],
        server["POSTGRES_USER"],
        server["POSTGRES_PASSWORD"],
    )
    published = {str(port).split(":")[-1] for port in services["postgres"]["ports"]}
    assert app["POSTGRES_PORT"] in published
    assert services["app"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["postgres"]["healthcheck"]["test"][-3:] == ["kode", "-d", "kode"]
    config = config_from_env(app)
    assert config["type"] == "postgres" and config["schema"] == "kode"
    store = create_store(config)
    assert repr(store).startswith("<PostgresStore postgres:5432/kode user=kode schema=kode")
    assert server["POSTGRES_PASSWORD"] not in repr(store)
    assert services["app"]["command"] == ["kode", "health"]


def test_the_guides_host_settings_match_compose() -> None:
    services = compose()["services"]
    server = services["postgres"]["environment"]
    exports = " ".join(line for block in code_blocks("sh") for line in block.splitlines() if line.startswith("export"))
    for name in ("POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"):
        assert f"{name}={server[name]}" in exports, name
    assert "docker compose up -d postgres" in TEXT and "docker compose run --rm app kode health" in TEXT


def test_every_kode_command_in_the_guide_exists_with_its_options() -> None:
    commands = [line.strip() for block in code_blocks("sh") for line in block.splitlines() if line.startswith("kode ")]
    assert len(commands) >= 3
    for command in commands:
        words = command.split()
        done = subprocess.run(
            [sys.executable, "-m", "kode_sdk.cli", words[1], "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, command
        for option in (w for w in words[2:] if w.startswith("--")):
            assert option in done.stdout, f"{command}: {option} is not an option of kode {words[1]}"


async def test_sqlite_database_is_locked_is_what_the_guide_says(tmp_path: Path, monkeypatch: Any) -> None:
    """Another connection holds SQLite's write lock (a shell left inside BEGIN):
    the write raises StoreConnectionError naming the file, and writes nothing."""
    import sqlite3

    from kode_sdk.errors import StoreConnectionError
    from kode_sdk.store.sqlite import SqliteStore
    from kode_sdk.store.sqlite import connection as sqlite_connection

    troubleshooting = TEXT[TEXT.index("## Troubleshooting") :]
    assert 'SQLite: "database is locked"' in troubleshooting and "(10 s)" in troubleshooting
    assert sqlite_connection._BUSY_TIMEOUT_MS == 10_000
    monkeypatch.setattr(sqlite_connection, "_BUSY_TIMEOUT_MS", 100)  # the guide's 10 s, shortened for the test
    path = tmp_path / "agents.db"
    async with SqliteStore(path) as store:
        await store.save_info("agt", {"agent_id": "agt", "template_id": "before"})
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            try:
                await store.save_info("agt", {"agent_id": "agt", "template_id": "after"})
            except StoreConnectionError as exc:
                assert "database is locked" in str(exc) and str(path) in str(exc)
            else:
                raise AssertionError("the write went through another connection's write lock")
        finally:
            other.execute("ROLLBACK")
            other.close()
        info = await store.load_info("agt")
        assert info is not None and info.template_id == "before"
