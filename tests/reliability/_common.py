"""Pieces shared by the reliability tests and the child processes they run.

A child process is started as ``python <script> SPEC ...`` where SPEC names a
store: ``sqlite:PATH``, ``json:DIR``, ``postgres:URL#SCHEMA`` or
``pgbouncer:URL#SCHEMA`` (PostgreSQL through PgBouncer in transaction mode). The child
imports this module by file name (its directory is ``sys.path[0]``).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from kode_sdk.store.base import BaseStore

TORTURE = os.environ.get("KODE_TORTURE") == "1"
AGENTS = ("rel-a", "rel-b", "rel-c")
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def sized(short: int, long: int) -> int:
    """``long`` under ``KODE_TORTURE=1`` (``make torture``), else ``short``."""
    return long if TORTURE else short


def open_store(spec: str) -> BaseStore:
    """A new, unopened store for ``spec`` (see the module docs)."""
    kind, _, rest = spec.partition(":")
    if kind == "sqlite":
        from kode_sdk.store.sqlite import SqliteStore

        return SqliteStore(rest)
    if kind == "json":
        from kode_sdk.store.json_store import JSONStore

        return JSONStore(rest)
    if kind == "postgres":
        from kode_sdk.store.postgres import PostgresStore

        url, _, schema = rest.rpartition("#")
        return PostgresStore(url, schema=schema)
    if kind == "pgbouncer":
        from kode_sdk.store.postgres import PostgresStore

        url, _, schema = rest.rpartition("#")
        return PostgresStore({"dsn": url, "pooler": "transaction"}, schema=schema)
    raise SystemExit(f"unknown store spec {spec!r}")


def conversation(agent: str, tag: int, n: int) -> list[dict[str, Any]]:
    """The message list of ``agent`` at step ``n`` of run ``tag``: W1-like turns
    (user, assistant with a tool_use, user with its tool_result); the list grows
    and sometimes shrinks (a compaction), and early entries change now and then."""
    turns = 2 + (n * 7) % 23
    out: list[dict[str, Any]] = []
    for t in range(turns):
        stamp = f"{agent} r{tag} t{t} v{n // (1 + t % 4)}"
        out.append({"role": "user", "content": [{"type": "text", "text": f"ask {stamp} " + "u" * 200}]})
        out.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"answer {stamp}"},
                    {"type": "tool_use", "id": f"tu-{t}", "name": "bash", "input": {"cmd": f"echo {stamp}"}},
                ],
            }
        )
        out.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"tu-{t}", "content": f"out {stamp} " + "o" * 300}],
            }
        )
    return out


def tool_calls(agent: str, tag: int, n: int) -> list[dict[str, Any]]:
    """The tool-call records of ``agent`` at step ``n`` of run ``tag``."""
    count = 2 + (n * 5) % 17
    at = _EPOCH + timedelta(seconds=n)
    return [
        {
            "id": f"tu-{i}",
            "name": "bash",
            "input": {"cmd": f"echo {agent} {i}"},
            "state": "completed" if i < count - 1 else "executing",
            "result": {"stdout": f"{agent} r{tag} n{n} i{i}", "code": 0},
            "created_at": at,
            "updated_at": at,
        }
        for i in range(count)
    ]


def digest(records: list[Any]) -> str:
    """A short hash of validated records (models or their dumps), stable across
    processes. Keys are sorted: deep equality ignores key order (jsonb reorders)."""
    dumped = [r.model_dump(mode="json") if hasattr(r, "model_dump") else r for r in records]
    return hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()[:16]
