"""What the CLI prints never leaks a password and never lets stored content
act on the terminal (issue 11, items 7 and 9)."""

from __future__ import annotations

import asyncio
import json

import pytest
from clidata import kode

from kode_sdk.redact import redact
from kode_sdk.store.sqlite import SqliteStore

PASSWORD = "hunter2-secret"

# Clear screen, cursor home, an OSC-8 link, a window title, a C1 CSI, a bidi override, rich markup.
NASTY = (
    "[bold red]x[/] \x1b[2J\x1b[H\u202eevil \x9b31m \x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x1b]0;title\x07"
)


@pytest.mark.parametrize(
    "args",
    [
        ("--store", f"host=db.example user=kode password={PASSWORD} dbname=kode", "sessions"),
        ("--store", f"host=db.example password='{PASSWORD}' dbname=kode", "health", "--json"),
        ("--store", f"host=db.example password={PASSWORD}:x dbname=kode", "sessions"),
        ("migrate", f"host=db.example password={PASSWORD}", "sqlite:/nonexistent-kode/x.db"),
        ("migrate", "sqlite:/nonexistent-kode/x.db", f"user=u password={PASSWORD} host=h"),
    ],
)
def test_key_value_dsn_without_prefix_never_echoes_its_password(args: tuple[str, ...]) -> None:
    result = kode(*args)
    assert result.exit_code == 2, result.output
    assert PASSWORD not in result.stderr + result.stdout
    assert "password=***" in result.stderr
    assert "postgres: prefix" in result.stderr


def test_store_spec_in_environment_is_redacted_too() -> None:
    result = kode("sessions", env={"KODE_STORE": f"dbname=kode password={PASSWORD}"})
    assert result.exit_code == 2
    assert PASSWORD not in result.stderr
    assert "password=***" in result.stderr


def test_redact_covers_url_and_key_value_forms() -> None:
    assert redact(f"postgresql://kode:{PASSWORD}@db/kode") == "postgresql://kode:***@db/kode"
    assert redact(f"host=db sslpassword = '{PASSWORD} x' port=5") == "host=db sslpassword = *** port=5"
    assert redact(f"connect failed for {PASSWORD}", [PASSWORD]) == "connect failed for ***"


@pytest.fixture(scope="module")
def nasty_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("nasty") / "agents.db"

    async def go() -> None:
        async with SqliteStore(db) as store:
            await store.save_messages("a1", [{"role": "user", "content": NASTY}])
            await store.save_tool_call_records(
                "a1",
                [
                    {
                        "id": "tc1",
                        "name": "t" + NASTY,
                        "input": {},
                        "state": "completed",
                        "created_at": 1,
                        "updated_at": 2,
                    }
                ],
            )
            await store.append_event(
                "a1",
                {"cursor": 1, "bookmark": {"seq": 1, "timestamp": 1}, "event": {"channel": "progress", "type": NASTY}},
            )
            await store.save_info(
                "a1",
                {
                    "agent_id": "a1",
                    "template_id": "tpl" + NASTY,
                    "created_at": 1,
                    "lineage": [],
                    "config_version": "v1",
                    "message_count": 1,
                    "metadata": {"userId": NASTY},
                },
            )

    asyncio.run(go())
    return f"sqlite:{db}"


@pytest.mark.parametrize("command", [("sessions",), ("messages",), ("tool-calls",), ("events", "a1"), ("stats", "a1")])
def test_control_characters_in_stored_content_are_visible_and_inert(nasty_spec: str, command: tuple[str, ...]) -> None:
    result = kode("--store", nasty_spec, *command, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.stderr
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in result.stdout, f"{raw!r} reached the terminal in kode {command[0]}"
    if command[0] != "stats":
        assert "\\x1b[2J" in result.stdout
        assert "[bold red]x[/]" in result.stdout  # shown literally, not taken as markup


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("command", [("messages",), ("events", "a1")])
def test_json_output_keeps_stored_content_exact(nasty_spec: str, command: tuple[str, ...]) -> None:
    result = kode("--store", nasty_spec, *command, "--json")
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout  # JSON escapes it
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert NASTY in _strings(documents)
