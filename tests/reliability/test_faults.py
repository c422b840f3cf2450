"""Faults: a PostgreSQL restart mid-load, a full disk, damaged JSONStore files.

The restart uses a throwaway cluster this run starts (never the machine's
main server). The full disk is a 2 MiB tmpfs mounted by the test; where
mounting is not permitted those cases skip with a notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kode_sdk.errors import KodeError, StoreConnectionError, StoreCorruptionError
from kode_sdk.store.json_files import JOURNAL_NAME, Replace, encode_journal
from kode_sdk.store.json_store import JSONStore
from kode_sdk.store.postgres import PostgresStore
from kode_sdk.store.sqlite import SqliteStore
from postgres.conftest import ThrowawayCluster, drop_schema, new_schema_name

from ._common import conversation, open_store, sized
from .conftest import notices


def text_messages(prefix: str, count: int, size: int = 100) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": [{"type": "text", "text": f"{prefix} {i} " + "z" * size}]} for i in range(count)
    ]


# --------------------------------------------------------------------------- PostgreSQL restart


async def test_postgres_restart_mid_load_fails_cleanly_then_recovers(restartable_cluster: ThrowawayCluster) -> None:
    cluster = restartable_cluster
    schema = new_schema_name()
    store = PostgresStore(cluster.url, schema=schema)
    acked: dict[str, list[dict[str, Any]]] = {}
    errors: list[BaseException] = []
    stop = asyncio.Event()
    outage_seen = asyncio.Event()
    wanted_errors = 0

    async def load(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            agent = f"pg-load-{worker}"
            messages = conversation(agent, worker, n)
            try:
                await store.save_messages(agent, messages)
                acked[agent] = messages
                await store.load_messages(agent)
            except Exception as exc:
                errors.append(exc)
                if len(errors) >= wanted_errors:
                    outage_seen.set()
                await asyncio.sleep(0.05)

    try:
        await store.open()
        for i in range(3):
            await store.save_messages(f"pg-before-{i}", text_messages(f"before {i}", 20))
        loaders = [asyncio.create_task(load(w)) for w in range(4)]
        restarts = sized(1, 3)
        for _ in range(restarts):
            await asyncio.sleep(0.3)
            await asyncio.to_thread(cluster.stop)
            wanted_errors = len(errors) + 4  # the load keeps calling into the outage
            outage_seen.clear()
            await outage_seen.wait()
            await asyncio.to_thread(cluster.start)
            ok_before = dict(acked)
            for _ in range(200):  # recovery on the SAME store object, bounded
                await asyncio.sleep(0.05)
                if any(acked.get(k) is not v for k, v in ok_before.items()) or len(acked) > len(ok_before):
                    break
            else:
                pytest.fail("the store did not recover after the server came back")
        stop.set()
        await asyncio.gather(*loaders)
        unexpected = [e for e in errors if not isinstance(e, StoreConnectionError)]
        assert errors, "the outage was never observed"
        assert unexpected == [], f"errors other than StoreConnectionError: {unexpected[:3]!r}"
        for exc in errors:
            assert str(exc), "an empty error message"
        for i in range(3):
            loaded = await store.load_messages(f"pg-before-{i}")
            assert [m.content[0]["text"] for m in loaded] == [
                m["content"][0]["text"] for m in text_messages(f"before {i}", 20)
            ]
        for agent, messages in acked.items():
            # The last acknowledged save, or one whose reply the outage cut off (then it
            # was retried and acknowledged later, or is the newest acknowledged).
            loaded = await store.load_messages(agent)
            assert len(loaded) == len(messages)
            assert [m.content for m in loaded] == [m["content"] for m in messages]
    finally:
        stop.set()
        await store.close()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(cluster.start)
        drop_schema(cluster.url, schema)


# --------------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for this test; skipped with a notice when mounting is not permitted."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        notices.append("full-disk cases skipped: mounting a tmpfs needs root")
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        notices.append(f"full-disk cases skipped: mount -t tmpfs not permitted ({done.stderr.strip()})")
        pytest.skip(f"mount -t tmpfs not permitted: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


@pytest.mark.parametrize("backend", ["sqlite", "json"])
async def test_full_disk_clear_error_and_earlier_data_readable(backend: str, small_disk: Path) -> None:
    spec = f"sqlite:{small_disk / 'agents.db'}" if backend == "sqlite" else f"json:{small_disk / 'store'}"
    store = open_store(spec)
    saved: dict[str, list[dict[str, Any]]] = {}
    failure: BaseException | None = None
    async with store:
        for i in range(200):
            agent = f"fill-{i}"
            messages = text_messages(agent, 8, size=8_000)
            try:
                await store.save_messages(agent, messages)  # type: ignore[attr-defined]
            except Exception as exc:
                failure = exc
                break
            saved[agent] = messages
        assert failure is not None, "2 MiB never filled up"
        assert isinstance(failure, KodeError), f"a raw {type(failure).__name__} reached the caller: {failure}"
        text = str(failure).lower()
        assert "full" in text or "space" in text, f"the error does not say the disk is full: {failure}"
        assert saved, "nothing fitted before the disk was full"
        # Still readable through the same store object ...
        for agent, messages in saved.items():
            loaded = await store.load_messages(agent)  # type: ignore[attr-defined]
            assert [m.content for m in loaded] == [m["content"] for m in messages]
    # ... and after a reopen.
    async with open_store(spec) as again:
        for agent, messages in saved.items():
            loaded = await again.load_messages(agent)  # type: ignore[attr-defined]
            assert [m.content for m in loaded] == [m["content"] for m in messages]


# --------------------------------------------------------------------------- damaged JSONStore files


async def _json_with_agent(root: Path) -> list[dict[str, Any]]:
    messages = text_messages("kept", 5)
    async with JSONStore(root) as store:
        await store.save_messages("agent-1", messages)
    return messages


async def test_json_corrupted_list_file_is_reported_then_set_aside(tmp_path: Path, caplog: Any) -> None:
    root = tmp_path / "store"
    await _json_with_agent(root)
    path = root / "agent-1" / "runtime" / "messages.jsonl"
    data = bytearray(path.read_bytes())
    data[2:14] = b"\x00{{{garbage"  # the header line
    path.write_bytes(bytes(data))
    async with JSONStore(root) as store:
        with pytest.raises(StoreCorruptionError) as info:
            await store.load_messages("agent-1")
        assert "messages" in str(info.value)
        with caplog.at_level(logging.WARNING, logger="kode_sdk"):
            await store.save_messages("agent-1", text_messages("new", 2))
        assert any("messages" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
        kept = [p for p in path.parent.iterdir() if p.name != path.name and p.name.startswith("messages.jsonl")]
        assert kept, "the damaged file was not set aside"
        assert next(iter(kept)).read_bytes() == bytes(data), "the damaged file was not set aside intact"
        assert len(await store.load_messages("agent-1")) == 2


async def test_json_damaged_record_is_an_error_not_skipped(tmp_path: Path) -> None:
    root = tmp_path / "store"
    await _json_with_agent(root)
    path = root / "agent-1" / "runtime" / "messages.jsonl"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 12] = b"\x00{{{garbage"  # inside one stored message
    path.write_bytes(bytes(data))
    async with JSONStore(root) as store:
        with pytest.raises(StoreCorruptionError) as info:
            await store.load_messages("agent-1")
        assert str(path) in str(info.value)
        # A full replace still works; the damaged record is not carried into it.
        await store.save_messages("agent-1", text_messages("new", 2))
        loaded = await store.load_messages("agent-1")
        assert [m.content[0]["text"][:5] for m in loaded] == ["new 0", "new 1"]


async def test_json_truncated_list_file_is_not_loaded_as_shorter_silently(tmp_path: Path, caplog: Any) -> None:
    root = tmp_path / "store"
    await _json_with_agent(root)
    path = root / "agent-1" / "runtime" / "messages.jsonl"
    path.write_bytes(path.read_bytes()[:-7])
    with caplog.at_level(logging.WARNING, logger="kode_sdk"):
        async with JSONStore(root) as store:
            try:
                loaded = await store.load_messages("agent-1")
            except StoreCorruptionError:
                return  # reported as corruption: fine
    assert loaded, "a truncated file was loaded as empty"
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned, "a truncated file was loaded without a warning"
    assert any(p.name.startswith("messages.jsonl.") for p in path.parent.iterdir()), "the cut tail was not kept"


async def test_json_truncated_write_ahead_copy_is_set_aside(tmp_path: Path, caplog: Any) -> None:
    root = tmp_path / "store"
    messages = await _json_with_agent(root)
    agent_dir = root / "agent-1"
    before = (agent_dir / "runtime" / "messages.jsonl").read_bytes()
    journal = encode_journal([Replace("runtime/messages.jsonl", b"would-be new content\n")])
    (agent_dir / JOURNAL_NAME).write_bytes(journal[: len(journal) - 9])  # the crash came mid-write
    with caplog.at_level(logging.WARNING, logger="kode_sdk"):
        async with JSONStore(root) as store:
            loaded = await store.load_messages("agent-1")
    assert [m.content for m in loaded] == [m["content"] for m in messages]
    assert (agent_dir / "runtime" / "messages.jsonl").read_bytes() == before
    assert any(p.name.startswith(f"{JOURNAL_NAME}.corrupt-") for p in agent_dir.iterdir()), "journal not set aside"
    assert any("journal" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


async def test_sqlite_corrupted_file_is_an_error_not_empty(tmp_path: Path) -> None:
    path = tmp_path / "agents.db"
    async with SqliteStore(path) as store:
        await store.save_messages("agent-1", text_messages("kept", 50, size=2_000))
    with path.open("r+b") as f:  # keep the header, scramble the pages after it
        f.seek(4096)
        f.write(os.urandom(64 * 1024))
    store = SqliteStore(path)
    with pytest.raises(KodeError):
        await store.open()
        await store.load_messages("agent-1")
    with contextlib.suppress(Exception):
        await store.close()
