"""Kill loops: SIGKILL a writer at random moments, then check what survived.

The child (``kill_child.py``) saves W1-like message lists and tool-call
records for three agents and prints an acknowledgement after each call
returned. After each kill the store is reopened and every agent's lists must
equal a state some call produced: the last acknowledged one, or the one in
flight when the kill came — never a torn mix, never an acknowledged save lost.

On a server backend a call in flight at a kill may commit *after* the check
read the state before it: its statements, COMMIT included, can still sit in
the server's or PgBouncer's socket buffers when the client dies (seen under
load through PgBouncer). Nobody was told it committed, so no promise is
broken; the check accepts that state at the next kill too, as long as the new
child has not acknowledged a save of the same list.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from kode_sdk.store.base import coerce_list
from kode_sdk.store.json_files import journal_pending
from kode_sdk.types import Message, ToolCallRecord

from ._common import AGENTS, conversation, digest, open_store, sized, tool_calls
from .conftest import child

KILLS = sized(10, 50)
FIGURES = Path(__file__).parent / "figures"

Key = tuple[str, str]  # (agent, "messages" | "tools")


def expected(kind: str, agent: str, tag: int, n: int) -> str:
    if kind == "messages":
        return digest(coerce_list(Message, conversation(agent, tag, n), "m"))
    return digest(coerce_list(ToolCallRecord, tool_calls(agent, tag, n), "t"))


def run_child_and_kill(spec: str, tag: int, rng: random.Random) -> tuple[dict[Key, tuple[int, str]], int]:
    """Run one child, kill it at a random moment; the last ack per key, and the ack count."""
    proc = child("kill_child.py", spec, str(tag))
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if first.strip() != "ready":
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"kill child did not start: {first!r} {err[-2000:]}")
    time.sleep(rng.uniform(0.0, 0.4))
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"child ended on its own ({proc.returncode}): {err[-2000:]}"
    acks: dict[Key, tuple[int, str]] = {}
    count = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) != 5 or parts[0] != "ack":  # a line cut by the kill carries no promise
            continue
        _, agent, kind, n, hashed = parts
        acks[(agent, kind)] = (int(n), hashed)
        count += 1
    return acks, count


async def loaded_digests(spec: str) -> dict[Key, str]:
    store = open_store(spec)
    await store.open()
    try:
        out: dict[Key, str] = {}
        for agent in AGENTS:
            out[(agent, "messages")] = digest(await store.load_messages(agent))  # type: ignore[attr-defined]
            out[(agent, "tools")] = digest(await store.load_tool_call_records(agent))  # type: ignore[attr-defined]
        return out
    finally:
        await store.close()


def check_files(spec: str) -> int:
    """Backend checks before reopening; returns the number of journals left to recover."""
    kind, _, rest = spec.partition(":")
    if kind == "sqlite" and Path(rest).exists():
        conn = sqlite3.connect(rest)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()
    if kind == "json" and Path(rest).exists():
        return sum(1 for agent in AGENTS if (Path(rest) / agent).is_dir() and journal_pending(Path(rest) / agent))
    return 0


@pytest.mark.parametrize("spec", ["sqlite", "json", "postgres", "pgbouncer"], indirect=True)
async def test_kill_loop_loses_nothing_acknowledged(spec: str) -> None:
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    empty = digest([])
    # The state each key is known to hold: (tag, n) of the producing call, (0, 0) for empty.
    held: dict[Key, tuple[int, int]] = {(a, k): (0, 0) for a in AGENTS for k in ("messages", "tools")}
    # The call in flight at the last kill, where the check did not find it: it may still land.
    late: dict[Key, tuple[int, int]] = {}
    acked_total = in_flight_seen = journals = 0
    for tag in range(1, KILLS + 1):
        acks, count = run_child_and_kill(spec, tag, rng)
        acked_total += count
        journals += await asyncio.to_thread(check_files, spec)
        found = await loaded_digests(spec)
        await asyncio.to_thread(check_files, spec)  # and still intact after the reopen
        if spec.startswith("json:"):
            root = Path(spec.partition(":")[2])
            assert not any((root / a).is_dir() and journal_pending(root / a) for a in AGENTS)
        for key, got in found.items():
            agent, kind = key
            if key in acks:
                n, acked_hash = acks[key]
                assert acked_hash == expected(kind, agent, tag, n), "child acknowledged something else"
                base: tuple[int, int] = (tag, n)
                nxt = (tag, n + 1)
            else:
                base, nxt = held[key], (tag, 1)
            candidates = {
                (empty if base == (0, 0) else expected(kind, agent, *base)): base,
                expected(kind, agent, *nxt): nxt,
            }
            if key not in acks and key in late and not spec.startswith(("sqlite:", "json:")):
                candidates[expected(kind, agent, *late[key])] = late[key]
            assert got in candidates, (
                f"seed {seed}, kill {tag}: {agent} {kind} holds a state no call produced "
                f"(acked {base}, in flight {nxt}) — torn or an acknowledged save lost"
            )
            if candidates[got] == nxt:
                in_flight_seen += 1
            held[key] = candidates[got]
            if candidates[got] == nxt:
                late.pop(key, None)
            else:
                late[key] = nxt
    assert acked_total > 0, "no call was ever acknowledged: the kills came too early to test anything"
    FIGURES.mkdir(exist_ok=True)
    backend = spec.partition(":")[0]
    (FIGURES / f"kill-{backend}.json").write_text(
        json.dumps(
            {
                "backend": backend,
                "kills": KILLS,
                "acknowledged_calls": acked_total,
                "in_flight_call_found_committed": in_flight_seen,
                "journals_recovered": journals,
                "lost": 0,
                "seed": seed,
            }
        )
    )
