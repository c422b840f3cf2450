"""Build stores full of varied agents for the CLI tests (every record kind, odd JSON).

Runnable as a script so a test can fill a store from another process:
``python tests/cli/populate.py SPEC COUNT [START]``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from kode_sdk.cli import app
from kode_sdk.store.base import Store
from kode_sdk.store.catalog import RecordTimes, restore_record_times

BASE = datetime(2025, 1, 1, tzinfo=UTC)


def agent_records(i: int) -> dict[str, Any]:
    """Deterministic content of agent number ``i`` (every kind of record)."""
    agent_id = f"agt-{i:05d}"
    created = BASE + timedelta(hours=i)
    ms = int(created.timestamp() * 1000)
    n_msgs = 2 + i % 5
    messages: list[dict[str, Any]] = []
    for m in range(n_msgs):
        if m % 2 == 0:
            messages.append({"role": "user", "content": f"question {m} of {agent_id} ✓ \u0000 𝄞"})
        else:
            messages.append(
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": f"answer {m}"},
                        {"type": "tool_use", "id": f"tu-{i}-{m}", "name": "fs_read", "input": {"path": f"/f{m}"}},
                        {"type": "thinking", "thinking": "hmm", "signature": "x", "cache_control": {"k": 1}},
                    ],
                    "metadata": {"big": 2**70 + i, "f": 1.5e-7},
                }
            )
    tool_calls = [
        {
            "id": f"tu-{i}-{t}",
            "name": ["fs_read", "bash_run", "search"][t % 3],
            "input": {"path": f"/f{t}", "n": t},
            "state": ["completed", "failed", "approval_required", "denied"][(i + t) % 4],
            "approval": {"required": t % 2 == 1, "decision": "allow" if t % 2 else None},
            "result": {"out": "ok\u0000done"} if t % 2 == 0 else None,
            "error": "boom" if (i + t) % 4 == 1 else None,
            "is_error": (i + t) % 4 == 1,
            "duration_ms": 12.5 + t,
            "created_at": ms + t,
            "updated_at": ms + t + 5,
            "audit_trail": [{"state": "pending", "timestamp": ms + t, "note": None}],
        }
        for t in range(i % 4)
    ]
    events = [
        {
            "cursor": s,
            "bookmark": {"seq": s, "timestamp": ms + s},
            "event": {"channel": ["progress", "control", "monitor"][s % 3], "type": "text_chunk", "delta": f"d{s}"},
        }
        for s in range(1, 1 + i % 7)
    ]
    return {
        "agent_id": agent_id,
        "message_times": [ms + 1_000 * m for m in range(n_msgs)],
        "info": {
            "agent_id": agent_id,
            "template_id": ["assistant", "coder", "ops"][i % 3],
            "created_at": ms,
            "lineage": [],
            "config_version": "v1",
            "message_count": n_msgs,
            "metadata": {"userId": f"user-{i % 10}", "nested": {"a": [1, 2, {"b": None}]}},
        },
        "messages": messages,
        "tool_calls": tool_calls,
        "todos": {
            "todos": [{"id": "t1", "title": "do it", "status": "pending", "created_at": ms, "updated_at": ms}],
            "version": 1 + i % 3,
            "updated_at": ms,
        }
        if i % 2
        else None,
        "events": events,
        "windows": [
            {"id": f"w{w}", "messages": messages[:1], "events": events[:1], "timestamp": ms + w} for w in range(i % 3)
        ],
        "compressions": [
            {"id": f"c{c}", "window_id": f"w{c}", "summary": "sum", "ratio": 0.5, "timestamp": ms} for c in range(i % 2)
        ],
        "recovered": [{"path": f"/r{r}.txt", "content": "x", "mtime": ms, "timestamp": ms + r} for r in range(i % 3)],
        "media": [
            {"key": f"k{k}", "provider": "anthropic", "mime_type": "image/png", "size_bytes": 10, "created_at": ms}
            for k in range(i % 2)
        ],
        "snapshots": [
            {"id": f"s{s}", "messages": messages[:2], "last_sfp_index": s, "created_at": ms + s} for s in range(i % 3)
        ],
    }


async def write_agent(store: Store, i: int) -> None:
    """Store agent number ``i`` through the public API."""
    r = agent_records(i)
    agent_id = r["agent_id"]
    await store.save_messages(agent_id, r["messages"])
    await store.save_tool_call_records(agent_id, r["tool_calls"])
    if r["todos"] is not None:
        await store.save_todos(agent_id, r["todos"])
    for event in r["events"]:
        await store.append_event(agent_id, event)
    for window in r["windows"]:
        await store.save_history_window(agent_id, window)
    for record in r["compressions"]:
        await store.save_compression_record(agent_id, record)
    for file in r["recovered"]:
        await store.save_recovered_file(agent_id, file)
    await store.save_media_cache(agent_id, r["media"])
    for snapshot in r["snapshots"]:
        await store.save_snapshot(agent_id, snapshot)
    await store.save_info(agent_id, r["info"])
    # Deterministic store-kept times, so that stores filled apart export the same bytes.
    times = RecordTimes(r["message_times"], r["info"]["created_at"] + 60_000)
    await restore_record_times(store, agent_id, times, len(r["messages"]))


async def populate(store: Store, count: int, start: int = 0) -> None:
    """Store agents ``start`` … ``start + count - 1``."""
    for i in range(start, start + count):
        await write_agent(store, i)


# --------------------------------------------------------------------------- running the CLI

HERE = Path(__file__).parent


def kode(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Result:
    """Run ``kode ARGS`` in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=False)


def kode_process(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kode_sdk.cli ARGS`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "kode_sdk.cli", *args], capture_output=True, text=True, timeout=300, **kwargs
    )


def fill(spec: str, count: int, start: int = 0) -> None:
    """Store ``count`` varied agents in the store ``spec`` names."""
    from kode_sdk.cli.app import parse_store_spec
    from kode_sdk.store.factory import create_store

    async def go() -> None:
        async with create_store(parse_store_spec(spec)) as store:  # type: ignore[attr-defined]
            await populate(store, count, start)

    asyncio.run(go())


def export_bytes(spec: str) -> bytes:
    """The ``kode export`` of ``spec``."""
    result = kode("--store", spec, "export")
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def main() -> None:
    from kode_sdk.cli.app import parse_store_spec
    from kode_sdk.store.factory import create_store

    spec, count = sys.argv[1], int(sys.argv[2])
    start = int(sys.argv[3]) if len(sys.argv) > 3 else 0

    async def go() -> None:
        store = create_store(parse_store_spec(spec))
        async with store:
            await populate(store, count, start)

    asyncio.run(go())


if __name__ == "__main__":
    main()
