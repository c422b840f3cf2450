"""Secrets stay secret; files are owner-only.

A PostgreSQL password given by config dict, DSN, ``POSTGRES_PASSWORD``,
``KODE_DATABASE_URL`` or ``PGPASSWORD`` must never appear in an exception
(message, repr, whole chained traceback), a log record (DEBUG, every logger),
a ``repr``, health or metrics output, or the CLI's output. A throwaway role with
a password is created for the test (the server's trust auth accepts it) and
dropped afterwards; a DSN naming a closed port exercises the error paths.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import stat
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from kode_sdk.errors import KodeError, StoreConnectionError
from kode_sdk.store.factory import create_store
from kode_sdk.store.json_store import JSONStore
from kode_sdk.store.postgres import PostgresStore
from kode_sdk.store.sqlite import SqliteStore


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def exception_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)


@pytest.fixture
def role(pg_url: str, pg_schema: str) -> Iterator[dict[str, str]]:
    """A login role with a password, allowed to create the test's schema; dropped after."""
    name = f"kode_pw_test_{secrets.token_hex(4)}"
    password = f"Pw-{secrets.token_hex(12)}"
    parts = conninfo_to_dict(pg_url)
    dbname = str(parts.get("dbname") or "postgres")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        conn.execute(f'GRANT CREATE ON DATABASE "{dbname}" TO {name}')
    try:
        yield {
            "name": name,
            "password": password,
            "host": str(parts.get("host") or "127.0.0.1"),
            "port": str(parts.get("port") or 5432),
            "dbname": dbname,
            "schema": pg_schema,
        }
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {pg_schema} CASCADE")
            conn.execute(f"DROP OWNED BY {name} CASCADE")
            conn.execute(f"DROP ROLE {name}")


async def exercise(store: PostgresStore, seen: list[str]) -> None:
    """Use the store the ways a caller would, collecting every text it shows."""
    seen.append(repr(store))
    seen.append(str(store))
    await store.open()
    try:
        await store.save_info("agent-1", {"agent_id": "agent-1", "template_id": "t"})
        await store.save_messages("agent-1", [{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
        for bad in (lambda: store.save_messages("../x", []), lambda: store.save_info("agent-1", {"nope": 1})):
            try:
                await bad()
            except KodeError as exc:
                seen.append(exception_text(exc))
        seen.append((await store.health_check()).model_dump_json())
        seen.append((await store.get_metrics()).model_dump_json())
        seen.append(repr(store))
    finally:
        await store.close()
    seen.append(repr(store))


def configs(role: dict[str, str]) -> list[tuple[str, Any, dict[str, str]]]:
    """(label, connection or None for the environment, environment) for each way to pass the password."""
    pw, name, host, port, db = role["password"], role["name"], role["host"], role["port"], role["dbname"]
    dsn = f"postgresql://{name}:{pw}@{host}:{port}/{db}"
    return [
        ("dict", {"host": host, "port": int(port), "user": name, "password": pw, "database": db}, {}),
        ("dsn", dsn, {}),
        ("dict-dsn", {"dsn": dsn}, {}),
        ("key-value dsn", f"host={host} port={port} user={name} password={pw} dbname={db}", {}),
        ("PGPASSWORD", f"postgresql://{name}@{host}:{port}/{db}", {"PGPASSWORD": pw}),
        (
            "POSTGRES_*",
            None,
            {
                "KODE_STORE_TYPE": "postgres",
                "POSTGRES_HOST": host,
                "POSTGRES_PORT": port,
                "POSTGRES_USER": name,
                "POSTGRES_PASSWORD": pw,
                "POSTGRES_DB": db,
            },
        ),
        ("KODE_DATABASE_URL", None, {"KODE_STORE_TYPE": "postgres", "KODE_DATABASE_URL": dsn}),
    ]


def make_store(connection: Any, schema: str) -> PostgresStore:
    if connection is None:
        store = create_store(None)
        assert isinstance(store, PostgresStore)
        return store
    return PostgresStore(connection, schema=schema)


async def open_and_fail(store: PostgresStore, seen: list[str]) -> None:
    seen.append(repr(store))
    with pytest.raises(StoreConnectionError) as info:
        await store.open()
        await store.load_messages("agent-1")
    seen.append(exception_text(info.value))
    assert "unreachable" in str(info.value) or "connect" in str(info.value).lower(), str(info.value)
    await store.close()


async def test_password_never_shown(role: dict[str, str], caplog: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    password, port = role["password"], role["port"]
    seen: list[str] = []
    failing: list[PostgresStore] = []
    caplog.set_level(logging.DEBUG)
    for _label, connection, env in configs(role):
        with monkeypatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            patch.setenv("KODE_POSTGRES_SCHEMA", role["schema"])
            # Working server: every call path.
            await exercise(make_store(connection, role["schema"]), seen)
            # The same password towards a closed port: the error paths (run together below).
            if connection is None:
                patch.setenv("POSTGRES_PORT", str(closed_port()))
                if "KODE_DATABASE_URL" in env:
                    patch.setenv(
                        "KODE_DATABASE_URL", env["KODE_DATABASE_URL"].replace(f":{port}/", f":{closed_port()}/")
                    )
                failing.append(make_store(None, role["schema"]))
            elif isinstance(connection, dict) and "dsn" in connection:
                dsn = connection["dsn"].replace(f":{port}/", f":{closed_port()}/")
                failing.append(PostgresStore({"dsn": dsn}, schema=role["schema"]))
            elif isinstance(connection, dict):
                failing.append(PostgresStore({**connection, "port": closed_port()}, schema=role["schema"]))
            else:
                failing.append(PostgresStore(connection.replace(port, str(closed_port()), 1), schema=role["schema"]))
    await asyncio.gather(*(open_and_fail(store, seen) for store in failing))
    for text in seen:
        assert password not in text, f"the password leaked: {text[:500]}"
    records = list(caplog.records)
    assert any(r.levelno >= logging.WARNING for r in records), "no warning was logged: the log check would be empty"
    for record in records:
        text = record.getMessage() + (record.exc_text or "")
        if record.exc_info and record.exc_info[1] is not None:
            text += exception_text(record.exc_info[1])
        assert password not in text, f"the password leaked into a log record of {record.name}: {text[:500]}"


def test_cli_never_prints_the_password(role: dict[str, str]) -> None:
    pw, name, host, port, db = role["password"], role["name"], role["host"], role["port"], role["dbname"]
    good = f"postgresql://{name}:{pw}@{host}:{port}/{db}"
    bad = f"postgresql://{name}:{pw}@{host}:{closed_port()}/{db}"
    plan = [  # (dsn, through KODE_STORE rather than --store, arguments)
        (good, False, ["health"]),
        (good, False, ["sessions"]),
        (good, True, ["--debug", "metrics"]),
        (bad, False, ["health"]),
        (bad, False, ["--debug", "sessions"]),
        (bad, True, ["--debug", "health"]),
        (bad, True, ["metrics"]),
    ]

    async def create() -> None:  # read-only commands refuse a store that does not exist
        async with PostgresStore(good, schema=role["schema"]):
            pass

    asyncio.run(create())
    procs = []
    for dsn, via_env, args in plan:
        env = {**os.environ, "KODE_POSTGRES_SCHEMA": role["schema"]}
        cmd = [sys.executable, "-m", "kode_sdk.cli"]
        if via_env:
            env["KODE_STORE"] = f"postgres:{dsn}"
        else:
            cmd += ["--store", f"postgres:{dsn}"]
        procs.append(
            subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        )
    for (dsn, _, args), proc in zip(plan, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        assert pw not in out + err, f"kode {' '.join(args)} printed the password:\n{out}{err}"
        if dsn is bad:
            assert proc.returncode != 0, f"kode {' '.join(args)} against a closed port exited 0"
            assert "unreachable" in out + err or "connect" in (out + err).lower(), out + err
        else:
            assert proc.returncode == 0, f"kode {' '.join(args)} failed against the real server:\n{out}{err}"


# --------------------------------------------------------------------------- file modes


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_sqlite_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "data" / "agents.db"
        async with SqliteStore(path) as store:
            await store.save_messages("a", [{"role": "user", "content": [{"type": "text", "text": "x"}]}])
            async with store.agent_lock("a"):
                files = [path, path.with_name("agents.db-wal"), path.with_name("agents.db-shm")]
                files += list((path.parent / "locks").iterdir())
                for file in files:
                    assert mode(file) == 0o600, f"{file.name} is {oct(mode(file))}"
                assert mode(path.parent / "locks") == 0o700
    finally:
        os.umask(old)


async def test_json_store_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        root = tmp_path / "store"
        async with JSONStore(root) as store:
            await store.save_info("a", {"agent_id": "a", "template_id": "t"})
            await store.save_messages("a", [{"role": "user", "content": [{"type": "text", "text": "x"}]}])
            await store.append_event(
                "a",
                {"cursor": 1, "bookmark": {"seq": 1, "timestamp": 1}, "event": {"channel": "progress", "type": "t"}},
            )
            await store.save_snapshot("a", {"id": "s", "messages": []})
            await store.save_recovered_file("a", {"path": "f.py", "content": "c", "mtime": 1, "timestamp": 1})
        checked = 0
        for path in [root, *root.rglob("*")]:
            expected = 0o700 if path.is_dir() else 0o600
            assert mode(path) == expected, f"{path.relative_to(tmp_path)} is {oct(mode(path))}"
            checked += 1
        assert checked > 8
    finally:
        os.umask(old)
