"""kode_sdk.sync beyond the conformance suite (which runs through it in
test_sync_conformance.py): the generated file, threads, process exit, fork.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import multiprocessing
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kode_sdk import JSONStore, SqliteStore, StoreClosedError, StoreConfigError, _gen_sync, sync
from kode_sdk.errors import LockTimeoutError
from kode_sdk.testing import data

ROOT = Path(__file__).resolve().parent.parent
WRITER = ROOT / "tests" / "helpers" / "sync_writer.py"
TEXT = {"role": "user", "content": [{"type": "text", "text": "hi"}]}

# ---------------------------------------------------------------- the generated file


def test_generated_facade_is_current() -> None:
    """Fails after a protocol or factory change until `python -m kode_sdk._gen_sync` is run."""
    assert _gen_sync.main(["--check"]) == 0, "sync/_generated.py is stale: run python -m kode_sdk._gen_sync"


def test_every_protocol_method_has_a_blocking_form() -> None:
    import kode_sdk

    for facade, protocol in (
        (sync.SyncStore, kode_sdk.Store),
        (sync.SyncQueryableStore, kode_sdk.QueryableStore),
        (sync.SyncExtendedStore, kode_sdk.ExtendedStore),
    ):
        wanted = {name for name in dir(protocol) if not name.startswith("_")}
        missing = {name for name in wanted if not callable(getattr(facade, name, None))}
        assert missing == set(), f"{facade.__name__} lacks {sorted(missing)}"
        for name in wanted - {"open", "close"}:
            assert not inspect.iscoroutinefunction(getattr(facade, name)), name


def _load_generated(text: str, tmp_path: Path) -> Any:
    path = tmp_path / "generated_toy.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("generated_toy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_picks_up_new_methods_and_any_annotation_style(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    import sync_toy_protocols as toy

    text = _gen_sync.generate({"ExtendedStore": toy.ToyExtendedStore})
    module = _load_generated(text, tmp_path)
    cls = module.SyncExtendedStore
    assert str(inspect.signature(cls.toy_append_events)) == (
        "(self, agent_id: 'str', timelines: 'Sequence[Timeline | Mapping[str, Any]]') -> 'None'"
    )
    assert str(inspect.signature(cls.toy_search)) == (
        "(self, query: 'str', /, *, agent_id: 'str | None' = None, mode: \"Literal['any', 'all']\" = 'any', "
        "limit: 'int' = 20) -> 'builtins.list[ToyHit]'"
    )
    assert inspect.signature(cls.toy_tail).return_annotation == "Iterator[Timeline]"
    assert inspect.signature(cls.toy_transaction).return_annotation == "AbstractContextManager[SyncToyTransaction]"
    assert inspect.signature(cls.toy_begin).return_annotation == "SyncToyTransaction"
    assert "Append many events in one transaction." in (cls.toy_append_events.__doc__ or "")
    # The names those annotations need are imported from where they live.
    assert "from sync_toy_protocols import ToyHit" in text
    assert "Literal" in text.split("if TYPE_CHECKING:")[1].split("__all__")[0]
    # The inherited methods are all still there, once.
    for name in ("health_check", "agent_lock", "batch_fork", "query_messages", "save_messages"):
        assert callable(getattr(cls, name))
    assert text.count("def health_check(") == 1
    # An object with async methods of its own (a transaction) gets a blocking class too, and it works.
    toy_store = toy.ToyStoreImpl()
    blocking = cls(toy_store)
    try:
        with blocking.toy_transaction("agt-1") as tx:
            assert type(tx).__name__ == "SyncToyTransaction"
            tx.save_messages("agt-1", [TEXT])
            assert list(tx.events()) == [0, 1, 2]
        blocking.toy_begin("agt-1").save_messages("agt-2", [TEXT])
    finally:
        blocking.close()
    assert toy_store.tx.saved == [("agt-1", [TEXT]), ("agt-2", [TEXT])]
    assert toy_store.tx.threads == ["kode-sdk-sync", "kode-sdk-sync"]


def test_generator_refuses_a_shape_it_does_not_know(monkeypatch: Any) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    import sync_toy_protocols as toy

    with pytest.raises(_gen_sync.GenerationError, match=r"ExtendedStore\.plain: a plain def returning int"):
        _gen_sync.generate({"ExtendedStore": toy.WeirdStore})


def test_docs_sync_examples_run(tmp_path: Path) -> None:
    """Every Python example in docs/sync.md runs as shown and prints what it says."""
    import os
    import re

    text = (ROOT / "docs" / "sync.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) == 2
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KODE_", "POSTGRES_"))}
    outputs = []
    for index, block in enumerate(blocks):
        script = tmp_path / f"sync_doc_{index}.py"
        script.write_text(block, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"docs/sync.md example {index} failed:\n{done.stderr}"
        outputs.append(done.stdout.split())
    assert outputs == [["10", "10", "['chat-u1']", "10"], ["1"]]


# ---------------------------------------------------------------- factories and classes


def test_reachable_as_an_attribute_of_the_package() -> None:
    code = "import kode_sdk; print(kode_sdk.sync.create_store.__name__, kode_sdk.sync.SyncStore.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["create_store", "SyncStore"], done.stderr


def test_factories_return_the_richest_blocking_class(tmp_path: Path) -> None:
    sqlite = sync.create_store({"type": "sqlite", "db_path": str(tmp_path / "a.db")})
    json_store = sync.create_store({"type": "json", "base_dir": str(tmp_path / "store")})
    extended = sync.create_extended_store({"type": "sqlite", "db_path": str(tmp_path / "b.db")})
    try:
        assert type(sqlite) is sync.SyncExtendedStore
        assert type(json_store) is sync.SyncQueryableStore
        assert type(extended) is sync.SyncExtendedStore
        assert extended.health_check().healthy is True
    finally:
        for store in (sqlite, json_store, extended):
            store.close()
    with pytest.raises(StoreConfigError, match="type"):
        sync.create_store({"type": "mongo"})
    with pytest.raises(StoreConfigError, match="json"):
        sync.create_extended_store({"type": "json", "base_dir": str(tmp_path / "store")})


def test_with_block_iterators_and_locks(tmp_path: Path) -> None:
    with sync.create_extended_store({"type": "sqlite", "db_path": str(tmp_path / "a.db")}) as store:
        for seq in range(1, 6):
            store.append_event("agt-1", data.timeline(seq))
        events = store.read_events("agt-1")
        assert next(events).bookmark.seq == 1
        events.close()  # an iterator dropped early is closed on the loop
        assert [e.bookmark.seq for e in store.read_events("agt-1")] == [1, 2, 3, 4, 5]
        with store.agent_lock("agt-1", timeout_ms=1000) as lock:
            assert isinstance(lock, sync.SyncAgentLock)
            assert lock.agent_id == "agt-1" and not lock.released
        assert lock.released
    assert store.closed
    with pytest.raises(StoreClosedError):
        store.list()


def _enter_in_thread(store: sync.SyncExtendedStore, agent_id: str, timeout_ms: int, got: list[str]) -> threading.Thread:
    def enter() -> None:
        try:
            with store.agent_lock(agent_id, timeout_ms=timeout_ms):
                got.append("acquired")
        except LockTimeoutError:
            got.append("timed out")

    thread = threading.Thread(target=enter)
    thread.start()
    return thread


def test_agent_lock_blocks_nest_per_thread(tmp_path: Path) -> None:
    # The conformance suite checks nesting through the facade too (the sync
    # adapter runs each task's calls on one thread); this is the plain blocking form.
    config = {"type": "sqlite", "db_path": str(tmp_path / "a.db")}
    with sync.create_extended_store(config) as store, sync.create_extended_store(config) as other:
        with store.agent_lock("agt-1", timeout_ms=1000) as outer:
            # A helper taking the lock itself (as agent.chat() does), then
            # writing for the agent, from inside the caller's block: no waiting on ourselves.
            with store.agent_lock("agt-1", timeout_ms=200) as inner:
                assert inner is outer
                store.save_messages("agt-1", [TEXT])
                store.append_event("agt-1", data.timeline(1))
            with pytest.raises(ValueError), store.agent_lock("agt-1", timeout_ms=200):
                raise ValueError("an error in an inner block")
            assert not outer.released, "an inner block must not free the outer block's lock"
            store.append_event("agt-1", data.timeline(2))
            # Another thread, another store object: they wait.
            got: list[str] = []
            _enter_in_thread(store, "agt-1", 100, got).join(30)
            assert got == ["timed out"]
            with pytest.raises(LockTimeoutError), other.agent_lock("agt-1", timeout_ms=100):
                pass
            with pytest.raises(LockTimeoutError):  # acquire_agent_lock stays non-re-entrant
                store.acquire_agent_lock("agt-1", timeout_ms=100)
            # Another agent's lock is its own.
            with store.agent_lock("agt-2", timeout_ms=200) as second:
                assert second is not outer
        assert outer.released
        assert len(store.load_messages("agt-1")) == 1
        assert [e.bookmark.seq for e in store.read_events("agt-1")] == [1, 2]
        with other.agent_lock("agt-1", timeout_ms=1000):  # freed when the outermost block ended
            pass


def test_second_thread_waits_for_the_outermost_block(tmp_path: Path) -> None:
    with sync.create_extended_store({"type": "sqlite", "db_path": str(tmp_path / "a.db")}) as store:
        order: list[str] = []
        with store.agent_lock("agt-1", timeout_ms=1000):
            waiter = _enter_in_thread(store, "agt-1", 30_000, order)
            with store.agent_lock("agt-1", timeout_ms=200):
                pass
            waiter.join(0.5)
            assert waiter.is_alive(), "the other thread must still be waiting after the inner block"
            order.append("outer released")
        waiter.join(30)
        assert order == ["outer released", "acquired"]
        # A lock released by hand inside a block is taken afresh by the next block.
        with store.agent_lock("agt-1", timeout_ms=1000) as first:
            first.release()
            with store.agent_lock("agt-1", timeout_ms=1000) as again:
                assert again is not first and not again.released
            assert again.released


def test_wrapping_a_store_instance_and_a_callable(tmp_path: Path) -> None:
    wrapped = sync.SyncQueryableStore(JSONStore(tmp_path / "store"))
    made = sync.SyncQueryableStore(lambda: JSONStore(tmp_path / "store"))
    try:
        wrapped.save_messages("agt-1", [TEXT])
        assert len(made.load_messages("agt-1")) == 1
        assert made.query_messages(agent_id="agt-1")[0].role == "user"
    finally:
        wrapped.close()
        made.close()


def test_iterate_hands_over_items_before_waiting_for_more() -> None:
    """A live iterator (a tail) must not sit on an item while it waits for the next."""
    released = threading.Event()

    async def live() -> Any:
        yield "first"
        # Waits for the consumer, who can only react after receiving "first".
        yield await asyncio.to_thread(released.wait, 10)

    items = sync.iterate(live)
    assert next(items) == "first"
    released.set()
    assert next(items) is True
    assert list(items) == []


def test_iterate_delivers_items_then_the_error_and_closes_early_exits() -> None:
    async def failing() -> Any:
        yield 1
        yield 2
        raise ValueError("bad row")

    received: list[int] = []
    with pytest.raises(ValueError, match="bad row"):
        for item in sync.iterate(failing):
            received.append(item)
    assert received == [1, 2]

    closed_on: list[str] = []

    async def endless() -> Any:
        try:
            count = 0
            while True:
                count += 1
                yield count
        finally:
            closed_on.append(threading.current_thread().name)

    for item in sync.iterate(endless):
        if item == 1000:
            break
    assert closed_on == ["kode-sdk-sync"]


# ---------------------------------------------------------------- threads


def test_many_threads_share_one_store(tmp_path: Path) -> None:
    store = sync.create_extended_store({"type": "sqlite", "db_path": str(tmp_path / "a.db")})
    errors: list[BaseException] = []
    threads_n, turns = 8, 25

    def worker(index: int) -> None:
        try:
            agent = f"agt-{index}"
            for turn in range(1, turns + 1):
                store.append_messages(agent, [{"role": "user", "content": [{"type": "text", "text": f"{turn}"}]}])
                store.append_event(agent, data.timeline(turn))
                store.list()  # reads interleaved with everyone's writes
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        for index in range(threads_n):
            texts = [m.content[0]["text"] for m in store.load_messages(f"agt-{index}")]
            assert texts == [str(turn) for turn in range(1, turns + 1)]
            assert [e.bookmark.seq for e in store.read_events(f"agt-{index}")] == list(range(1, turns + 1))
    finally:
        store.close()


def test_calling_from_the_loop_thread_raises_instead_of_deadlocking(tmp_path: Path) -> None:
    store = sync.create_store({"type": "sqlite", "db_path": str(tmp_path / "a.db")})

    async def inside() -> list[str]:
        return store.list()  # a blocking call from a coroutine the facade itself runs

    try:
        with pytest.raises(RuntimeError, match="its own event-loop thread"):
            sync.call(inside)
        assert store.list() == []
    finally:
        store.close()


def test_ctrl_c_during_a_blocking_call_cancels_the_call() -> None:
    """KeyboardInterrupt while waiting stops the coroutine instead of leaving it running unobserved."""
    import os
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread")
    started, cancelled = threading.Event(), threading.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def interrupt() -> None:
        if started.wait(10):
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    killer = threading.Thread(target=interrupt)
    killer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            sync.call(slow)
    finally:
        killer.join()
        signal.signal(signal.SIGINT, previous)
    assert cancelled.wait(5)


def test_usable_from_inside_a_running_event_loop(tmp_path: Path) -> None:
    """A blocking call from async code blocks that loop, but works: the store runs on its own loop."""
    store = sync.create_store({"type": "sqlite", "db_path": str(tmp_path / "a.db")})

    async def main() -> bool:
        store.save_info("agt-1", data.info("agt-1"))
        return store.exists("agt-1")

    try:
        assert asyncio.run(main()) is True
    finally:
        store.close()


# ---------------------------------------------------------------- process exit and fork


def _configs(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return {
        "sqlite": {"type": "sqlite", "db_path": str(tmp_path / "agents.db")},
        "json": {"type": "json", "base_dir": str(tmp_path / "store")},
    }


def run_writer(config: dict[str, Any], agent_id: str, count: int) -> int:
    """Run tests/helpers/sync_writer.py; returns how many turns it acknowledged."""
    done = subprocess.run(
        [sys.executable, str(WRITER), json.dumps(config), agent_id, str(count)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return int(json.loads(done.stdout.strip().splitlines()[-1])["acknowledged"])


async def stored(make: Callable[[], Any], agent_id: str) -> tuple[int, list[int]]:
    async with make() as store:
        messages = await store.load_messages(agent_id)
        seqs = [event.bookmark.seq async for event in store.read_events(agent_id)]
    return len(messages), seqs


def test_a_call_after_the_exit_hook_raises_instead_of_hanging(tmp_path: Path) -> None:
    """An atexit handler registered before kode_sdk.sync was imported runs after its hook."""
    script = tmp_path / "late.py"
    script.write_text(
        "import atexit\n"
        "def late():\n"
        "    try:\n"
        "        store.list()\n"
        "    except StoreClosedError:\n"
        "        print('closed', flush=True)\n"
        "atexit.register(late)\n"
        "from kode_sdk import StoreClosedError, sync\n"
        f"store = sync.create_store({{'type': 'sqlite', 'db_path': {str(tmp_path / 'a.db')!r}}})\n"
        "store.list()\n",
        encoding="utf-8",
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["closed"]


@pytest.mark.parametrize("backend", ["sqlite", "json"])
def test_child_exiting_without_close_loses_nothing_acknowledged(tmp_path: Path, backend: str) -> None:
    """What users try first is asyncio.run() per call (49 of 50 events lost when
    the script ends without close(); docs/sync.md). kode_sdk.sync is the
    supported alternative: plain calls, and exit keeps every acknowledged write."""
    config = _configs(tmp_path)[backend]
    acknowledged = run_writer(config, "agt-exit", 50)
    assert acknowledged == 50
    make = (lambda: SqliteStore(config["db_path"])) if backend == "sqlite" else (lambda: JSONStore(config["base_dir"]))
    messages, seqs = asyncio.run(stored(make, "agt-exit"))
    assert messages == acknowledged
    assert seqs == list(range(1, acknowledged + 1))


def forked_child(store: sync.SyncStore, agent_id: str) -> None:
    # Runs in a multiprocessing child made by fork, with the parent's facade
    # object; multiprocessing ends it with os._exit(), after its finalizers
    # (the last calls are events, which a store may still buffer).
    store.append_messages(agent_id, [{"role": "user", "content": [{"type": "text", "text": "from the child"}]}])
    for seq in range(1, 21):
        store.append_event(agent_id, data.timeline(seq))


@pytest.mark.parametrize("backend", ["sqlite", "json"])
def test_forked_child_gets_its_own_loop_and_keeps_its_writes(tmp_path: Path, backend: str) -> None:
    store = sync.create_store(_configs(tmp_path)[backend])
    try:
        store.append_event("agt-parent", data.timeline(1))  # the parent's store is open and in use
        child = multiprocessing.get_context("fork").Process(target=forked_child, args=(store, "agt-child"))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert [e.bookmark.seq for e in store.read_events("agt-child")] == list(range(1, 21))
        assert len(store.load_messages("agt-child")) == 1
        # The parent's own store still works after the fork.
        store.append_event("agt-parent", data.timeline(2))
        assert [e.bookmark.seq for e in store.read_events("agt-parent")] == [1, 2]
    finally:
        store.close()


def test_fork_while_a_parent_thread_is_inside_the_facade(tmp_path: Path) -> None:
    store = sync.create_store(_configs(tmp_path)["sqlite"])
    child = multiprocessing.get_context("fork").Process(target=forked_child, args=(store, "agt-child"))
    try:
        store.list()
        # As if another parent thread were inside the facade at the moment of fork:
        # that thread does not exist in the child, so its lock must not either.
        with store._guard:
            child.start()
            child.join(30)
        assert child.exitcode == 0
        assert len(list(store.read_events("agt-child"))) == 20
    finally:
        if child.pid is not None and child.exitcode is None:
            child.kill()
        store.close()


def test_store_instance_opened_before_fork_is_refused_in_the_child(tmp_path: Path) -> None:
    store = sync.SyncExtendedStore(SqliteStore(tmp_path / "a.db"))
    store.open()
    queue: Any = multiprocessing.get_context("fork").SimpleQueue()

    def child() -> None:
        try:
            store.list()
            queue.put("no error")
        except StoreClosedError as exc:
            queue.put(str(exc))

    try:
        process = multiprocessing.get_context("fork").Process(target=child)
        process.start()
        process.join(60)
        assert "before os.fork()" in queue.get()
        assert store.list() == []
    finally:
        store.close()
