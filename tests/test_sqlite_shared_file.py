"""SqliteStore: several stores on one database file inside one process.

SQLite's locks on a database file are POSIX (``fcntl``) locks, which belong to
the process: closing *any* descriptor of the file drops all of them, those of
every SQLite connection the process has open on it. A store that opened and
closed the file itself (to create it owner-only) while another store of the
same process was connected to it left that process holding no lock while
SQLite believed it held one. Another process closing its connection then took
itself for the last one and checkpointed and deleted the WAL under the first
process, whose later commits went into the deleted file: invisible to every
other process, and overwritten or lost (the rare failure of the contention
test). Real SQLite files and real child processes; nothing is mocked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kode_sdk.store.sqlite import SqliteStore

HELPERS = Path(__file__).parent / "helpers"
# SQLite's lock bytes (file format, stable): PENDING_BYTE = 0x40000000, then
# RESERVED, then 510 SHARED bytes. A connection holds a read lock there while
# it is connected in WAL mode.
_SHARED_FIRST = 0x40000000 + 2
_SHARED_SIZE = 510


def message(text: str) -> dict[str, object]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def texts(messages: list[object]) -> list[str]:
    return [m.content[0]["text"] for m in messages]  # type: ignore[attr-defined]


def peer(db: Path, text: str) -> list[str]:
    """Run a store in another process: append ``text`` to ``theirs``, return ``mine`` as it sees it."""
    done = subprocess.run(
        [sys.executable, str(HELPERS / "sqlite_peer.py"), str(db), text],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def exclusive_lock_free(db: Path) -> bool:
    """True when another process could take SQLite's EXCLUSIVE lock, i.e. when
    no process holds SQLite's SHARED lock on ``db``. Asked from a child process:
    a lock taken in this one would be ours, and closing its descriptor would
    drop our own locks."""
    code = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n"
        f"    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, {_SHARED_SIZE}, {_SHARED_FIRST})\n"
        "    print('free')\n"
        "except OSError:\n"
        "    print('held')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip() == "free"


async def test_opening_a_second_store_keeps_the_first_stores_file_lock(tmp_path: Path) -> None:
    db = tmp_path / "agents.db"
    async with SqliteStore(db) as first:
        await first.save_messages("mine", [message("one")])
        assert not exclusive_lock_free(db), "an open store must hold SQLite's shared lock"
        async with SqliteStore(db) as second:
            assert await second.load_messages("mine") != []
            assert not exclusive_lock_free(db), "opening a second store dropped the first one's lock"
        assert not exclusive_lock_free(db), "closing the second store dropped the first one's lock"
        await first.save_messages("mine", [message("one"), message("two")])
    assert exclusive_lock_free(db)


async def test_writes_of_a_process_with_two_stores_survive_another_process_closing(tmp_path: Path) -> None:
    db = tmp_path / "agents.db"
    first = SqliteStore(db)
    second = SqliteStore(db)
    async with first:
        await first.save_messages("mine", [message("one")])
        async with second:  # a second store of this process on the same file
            # Another process comes and goes: it must not take itself for the
            # last connection (and checkpoint and delete the WAL under us).
            assert peer(db, "peer-1") == ["one"]
            await first.save_messages("mine", [message("one"), message("two")])
            assert texts(await second.load_messages("mine")) == ["one", "two"]
            # What this process committed is what every other process reads.
            assert peer(db, "peer-2") == ["one", "two"]
            await first.save_messages("mine", [message("one"), message("two"), message("three")])
            assert texts(await first.load_messages("theirs")) == ["peer-1", "peer-2"]
    async with SqliteStore(db) as fresh:
        assert texts(await fresh.load_messages("mine")) == ["one", "two", "three"]
        assert texts(await fresh.load_messages("theirs")) == ["peer-1", "peer-2"]
