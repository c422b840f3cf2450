"""The reference workloads W1, W2, W3 (shared/bench/WORKLOAD.md), written once
against :class:`Target`, and the target that drives a real kode-sdk store.

A target is what a workload talks to: :class:`StoreTarget` goes through the
public Store API; the raw floors in ``raw.py`` write the same rows with the
bare driver. Workloads build all their input before the clock starts and
check everything they read back, so a fast wrong answer never looks good.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import secrets
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import data

# --------------------------------------------------------------------------- helpers


class BackendUnavailable(RuntimeError):
    """A backend cannot run here (module not importable, no server, …)."""


def log(message: str) -> None:
    """Human progress, on stderr only (stdout carries the JSON lines)."""
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (``q`` in 0..1)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-int(q * 1000) * len(ordered) // 1000))  # ceil(q * n) without float error
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> float:
    """Seconds → milliseconds, rounded for the JSON line."""
    return round(seconds * 1000, 3)


def dir_size(path: Path) -> int:
    """Bytes of every regular file under ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def default_dsn(dsn: str | None) -> str:
    """``--dsn``, else ``KODE_TEST_POSTGRES_URL``, else the local test server."""
    return dsn or os.environ.get("KODE_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"


def throwaway_schema() -> str:
    """A schema name no other run uses."""
    return f"kode_bench_{os.getpid()}_{secrets.token_hex(4)}"


async def postgres_schema_size(dsn: str, schema: str) -> int:
    """Bytes of every relation in ``schema`` (tables, indexes, TOAST)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (schema,),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def drop_postgres_schema(dsn: str, schema: str) -> None:
    """Remove a throwaway schema and everything in it."""
    import psycopg
    from psycopg import sql

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --------------------------------------------------------------------------- target


class Target(Protocol):
    """What a workload needs from a backend. ``open`` and ``close`` are not timed."""

    backend: str
    size_bytes: int | None

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # W1: one whole turn; ``messages``/``records`` are the agent's in-memory lists.
    async def turn(self, agent_id: str, turn: data.Turn, messages: list[Any], records: list[Any]) -> None: ...
    async def verify_agent(
        self, agent_id: str, messages: list[Any], records: list[Any], events: int, message_count: int
    ) -> list[str]: ...

    # W2 (and the end of W1): events, ``batch`` per call / transaction (1: one
    # append_event each); reads return the seqs in the order yielded.
    async def append_events(self, agent_id: str, events: list[data.Timeline], batch: int) -> None: ...
    async def read_events(self, agent_id: str, since: int | None = None, channel: str | None = None) -> list[int]: ...

    # W3
    async def populate(self, population: list[data.Population], concurrency: int) -> None: ...
    async def query_sessions(self, template_id: str) -> int: ...
    async def query_messages(self, agent_id: str) -> int: ...
    async def query_tool_calls(self) -> int: ...
    async def query_stats(self, agent_id: str) -> tuple[int, int]: ...
    async def query_list(self, prefix: str) -> int: ...


STORE_BACKENDS = {
    "json": ("kode_sdk.store.json_store", "JSONStore"),
    "sqlite": ("kode_sdk.store.sqlite", "SqliteStore"),
    "postgres": ("kode_sdk.store.postgres", "PostgresStore"),
}


def store_class(backend: str) -> Any:
    """The store class of ``backend``, imported now (not at script start)."""
    module_name, class_name = STORE_BACKENDS[backend]
    try:
        module = importlib.import_module(module_name)
        return getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise BackendUnavailable(
            f"backend {backend!r} needs {module_name}.{class_name}, which is not importable here: {exc}"
        ) from None


STEP_NAMES = ("save_messages", "save_tool_call_records", "append_event_x6", "save_info")


class StoreTarget:
    """Drives a kode-sdk store through its public async API."""

    def __init__(
        self, backend: str, workdir: Path, dsn: str | None, *, search_index: bool = True, mode: str = "calls"
    ) -> None:
        self.backend = backend
        self.search_index = search_index
        #: W1: "calls" (the Store-contract path: save_messages, save_tool_call_records,
        #: append_event ×6, save_info) or "turn" (one store.transaction with the step paths).
        self.mode = mode
        self.workdir = workdir
        self.dsn = default_dsn(dsn)
        self.schema: str | None = None
        self.size_bytes: int | None = None
        self.store: Any = None
        self.steps: list[tuple[int, tuple[float, float, float, float]]] = []

    async def open(self) -> None:
        cls = store_class(self.backend)
        if self.backend == "json":
            self.store = cls(self.workdir / "store")
        elif self.backend == "sqlite":
            self.store = cls(self.workdir / "agents.db")
        else:
            self.schema = throwaway_schema()
            self.store = cls(self.dsn, schema=self.schema)
        try:
            await self.store.open()
        except Exception as exc:
            if self.backend == "postgres":
                await self._drop_schema_quietly()
                raise BackendUnavailable(f"backend 'postgres' could not open: {type(exc).__name__}: {exc}") from exc
            raise
        if not self.search_index:
            await self._drop_search_index()

    async def _drop_search_index(self) -> None:
        """Run without the full-text index, to measure what keeping it costs
        (``--search-index off``): search_messages does not work afterwards."""
        if self.backend == "sqlite":

            def drop(conn: Any) -> None:
                for name in ("insert", "delete", "update"):
                    conn.execute(f"DROP TRIGGER messages_search_{name}")
                conn.execute("DROP TABLE messages_search")
                conn.execute("DROP TABLE messages_search_pending")

            await self.store._hop(drop)
        elif self.backend == "postgres":
            self.store._search_index = False  # no index text computed or sent
            async with self.store._connection() as conn:
                await conn.execute("DROP INDEX messages_search")
        else:
            raise SystemExit(f"--search-index off: the {self.backend} backend keeps no index")

    async def close(self) -> None:
        if self.store is None:
            return
        await self.store.close()
        if self.backend == "postgres" and self.schema:
            try:
                self.size_bytes = await postgres_schema_size(self.dsn, self.schema)
            finally:
                await self._drop_schema_quietly()
        else:
            self.size_bytes = dir_size(self.workdir)

    async def _drop_schema_quietly(self) -> None:
        if self.schema is None:
            return
        try:
            await drop_postgres_schema(self.dsn, self.schema)
        except Exception as exc:  # the run's result stands; say what was left behind
            log(f"warning: could not drop schema {self.schema}: {exc}")

    # W1 ---------------------------------------------------------------------

    async def turn(self, agent_id: str, turn: data.Turn, messages: list[Any], records: list[Any]) -> None:
        store = self.store
        clock = time.perf_counter
        if self.mode == "turn":
            # As the agent loop persists a step: appends and one record row, one transaction.
            # (Step times: each call queues its writes; the last slot holds the commit.)
            messages.extend(turn.messages)
            records.append(turn.record)
            t0 = clock()
            async with store.transaction(agent_id) as tx:
                await tx.append_messages(agent_id, turn.messages)
                t1 = clock()
                await tx.upsert_tool_call_record(agent_id, turn.record)
                t2 = clock()
                await tx.append_events(agent_id, turn.events)
                t3 = clock()
                await tx.save_info(agent_id, turn.info)
            self.steps.append((turn.t, (t1 - t0, t2 - t1, t3 - t2, clock() - t3)))
            return
        t0 = clock()
        messages.extend(turn.messages)
        await store.save_messages(agent_id, messages)
        t1 = clock()
        records.append(turn.record)
        await store.save_tool_call_records(agent_id, records)
        t2 = clock()
        for event in turn.events:
            await store.append_event(agent_id, event)
        t3 = clock()
        await store.save_info(agent_id, turn.info)
        self.steps.append((turn.t, (t1 - t0, t2 - t1, t3 - t2, clock() - t3)))

    def step_summary(self, turns: int) -> dict[str, dict[str, float]]:
        """p50 (ms) of each store call of a turn, over turns 1–20 and the last 20."""
        summary: dict[str, dict[str, float]] = {}
        for label, keep in (("early", lambda t: t < 20), ("late", lambda t: t >= turns - 20)):
            rows = [durations for t, durations in self.steps if keep(t)]
            summary[label] = {name: ms(percentile([r[i] for r in rows], 0.5)) for i, name in enumerate(STEP_NAMES)}
        return summary

    async def verify_agent(
        self, agent_id: str, messages: list[Any], records: list[Any], events: int, message_count: int
    ) -> list[str]:
        store = self.store
        problems = compare_lists(f"{agent_id} messages", await store.load_messages(agent_id), messages)
        problems += compare_lists(f"{agent_id} tool calls", await store.load_tool_call_records(agent_id), records)
        seqs = await self.read_events(agent_id)
        if seqs != list(range(1, events + 1)):
            problems.append(f"{agent_id} events: read {len(seqs)} (seq {seqs[:3]}…), expected seq 1..{events}")
        info = await store.load_info(agent_id)
        if info is None or info.message_count != message_count:
            got = None if info is None else info.message_count
            problems.append(f"{agent_id} info: message_count {got}, expected {message_count}")
        return problems

    # W2 ---------------------------------------------------------------------

    async def append_events(self, agent_id: str, events: list[data.Timeline], batch: int) -> None:
        if batch == 1:
            append = self.store.append_event
            for event in events:
                await append(agent_id, event)
            return
        append_batch = self.store.append_events
        for start in range(0, len(events), batch):
            await append_batch(agent_id, events[start : start + batch])

    async def read_events(self, agent_id: str, since: int | None = None, channel: str | None = None) -> list[int]:
        return [t.bookmark.seq async for t in self.store.read_events(agent_id, since=since, channel=channel)]

    # W3 ---------------------------------------------------------------------

    async def populate(self, population: list[data.Population], concurrency: int) -> None:
        store = self.store
        gate = asyncio.Semaphore(concurrency)

        async def one(p: data.Population) -> None:
            async with gate:
                await store.save_info(p.agent_id, p.info)
                await store.append_messages(p.agent_id, p.messages)
                await store.save_tool_call_records(p.agent_id, p.records)

        await asyncio.gather(*(one(p) for p in population))

    async def query_sessions(self, template_id: str) -> int:
        return len(await self.store.query_sessions(template_id=template_id, limit=20))

    async def query_messages(self, agent_id: str) -> int:
        return len(await self.store.query_messages(agent_id=agent_id, role="assistant", limit=50))

    async def query_tool_calls(self) -> int:
        return len(await self.store.query_tool_calls(tool_name="bash_run", is_error=True, limit=10))

    async def query_stats(self, agent_id: str) -> tuple[int, int]:
        stats = await self.store.aggregate_stats(agent_id)
        return stats.total_messages, stats.total_tool_calls

    async def query_list(self, prefix: str) -> int:
        return len(await self.store.list(prefix=prefix))

    async def query_search(self, word: str, agent_id: str | None = None) -> int:
        return len(await self.store.search_messages(word, agent_id=agent_id, limit=20))


def compare_lists(what: str, got: Sequence[Any], expected: Sequence[Any]) -> list[str]:
    """Problems found comparing a loaded list with what was saved (empty: equal)."""
    if len(got) != len(expected):
        return [f"{what}: loaded {len(got)}, saved {len(expected)}"]
    for index, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g != e:
            shown_g = g.to_wire() if hasattr(g, "to_wire") else g
            shown_e = e.to_wire() if hasattr(e, "to_wire") else e
            diff = {k: (shown_g.get(k), shown_e.get(k)) for k in set(shown_g) | set(shown_e)}
            diff = {k: v for k, v in diff.items() if v[0] != v[1]}
            where = f"differs in {sorted(diff)}" if diff else "equal on the wire but not as models"
            return [f"{what}[{index}] {where}: loaded {str(shown_g)[:300]} saved {str(shown_e)[:300]}"]
    return []


# --------------------------------------------------------------------------- profiling


class Profiler:
    """cProfile of a timed phase, including work the store hands to executor
    threads (``asyncio.to_thread`` / ``run_in_executor``), merged into one file."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._profiles: list[Any] = []
        self._main: Any = None
        self._restore: Callable[[], None] | None = None

    def __enter__(self) -> Profiler:
        if not self.path:
            return self
        import cProfile
        import threading
        from concurrent.futures import thread as futures_thread

        local = threading.local()
        profiles = self._profiles
        original_run = futures_thread._WorkItem.run

        def run(item: Any) -> None:
            profile = getattr(local, "profile", None)
            if profile is None:
                profile = local.profile = cProfile.Profile()
                profiles.append(profile)
            profile.enable()
            try:
                original_run(item)
            finally:
                profile.disable()

        futures_thread._WorkItem.run = run  # type: ignore[method-assign]

        def restore() -> None:
            futures_thread._WorkItem.run = original_run  # type: ignore[method-assign]

        self._restore = restore
        self._main = cProfile.Profile()
        self._main.enable()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.path:
            return
        import pstats

        self._main.disable()
        if self._restore:
            self._restore()
        stats = pstats.Stats(self._main)
        for profile in self._profiles:
            profile.create_stats()
            if profile.stats:
                stats.add(profile)
        stats.dump_stats(self.path)
        log(f"profile written to {self.path} ({len(self._profiles)} executor thread(s) merged); top by tottime:")
        stats.stream = sys.stderr  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)


# --------------------------------------------------------------------------- W1


async def run_w1(target: Target, agents: int, turns: int, profile: str | None = None) -> dict[str, Any]:
    """W1: ``agents`` agents × ``turns`` turns, round-robin; per-turn latency."""
    log(f"W1 {target.backend}: building {agents}×{turns} turns")
    plan = data.w1_turns(agents, turns)
    ids = [data.w1_agent_id(a) for a in range(agents)]
    messages: list[list[Any]] = [[] for _ in ids]
    records: list[list[Any]] = [[] for _ in ids]
    latency = [[0.0] * agents for _ in range(turns)]
    await target.open()
    try:
        clock = time.perf_counter
        # Process CPU (all threads; a database server's own CPU is not in it) per
        # round of turns: a growth measure that other load on the machine barely moves.
        cpu = [0.0] * turns
        with Profiler(profile):
            started = clock()
            for t, row in enumerate(plan):
                cpu_begin = time.process_time()
                for a, turn in enumerate(row):
                    begin = clock()
                    await target.turn(ids[a], turn, messages[a], records[a])
                    latency[t][a] = clock() - begin
                cpu[t] = time.process_time() - cpu_begin
                if (t + 1) % max(1, turns // 5) == 0:
                    log(f"  turn {t + 1}/{turns}: {clock() - started:.2f} s")
            # Buffered events count too: a read forces the last group commit.
            last_seq = 6 * turns
            await target.read_events(ids[-1], since=last_seq - 1)
            seconds = clock() - started
        log(f"W1 {target.backend}: verifying")
        problems: list[str] = []
        for a, agent_id in enumerate(ids):
            problems += await target.verify_agent(agent_id, messages[a], records[a], 6 * turns, 3 * turns)
        for problem in problems[:5]:
            log(f"  MISMATCH {problem}")
    finally:
        await target.close()
    flat = [x for row in latency for x in row]
    early = [x for row in latency[:20] for x in row]
    late = [x for row in latency[-20:] for x in row]
    return {
        "workload": "W1",
        "backend": target.backend,
        "agents": agents,
        "turns": turns,
        "seconds": round(seconds, 4),
        "turns_per_s": round(agents * turns / seconds, 2),
        "turn_p50_ms": ms(percentile(flat, 0.50)),
        "turn_p99_ms": ms(percentile(flat, 0.99)),
        "early_p50_ms": ms(percentile(early, 0.50)),
        "late_p50_ms": ms(percentile(late, 0.50)),
        "cpu_ms_per_turn": round(sum(cpu) / (agents * turns) * 1000, 3),
        "early_cpu_ms_per_turn": round(sum(cpu[:20]) / (agents * len(cpu[:20])) * 1000, 3),
        "late_cpu_ms_per_turn": round(sum(cpu[-20:]) / (agents * len(cpu[-20:])) * 1000, 3),
        "verified": not problems,
        **({"search_index": target.search_index, "mode": target.mode} if isinstance(target, StoreTarget) else {}),
        "messages": 3 * agents * turns,
        "events": 6 * agents * turns,
        "db_size_bytes": target.size_bytes,
        **({"step_p50_ms": target.step_summary(turns)} if isinstance(target, StoreTarget) else {}),
        # One value per turn: the median over agents of that turn's latency (the growth picture).
        "turn_series_ms": [ms(percentile(row, 0.50)) for row in latency],
    }


# --------------------------------------------------------------------------- W2


async def run_w2(target: Target, events: int, batch: int = 1, profile: str | None = None) -> dict[str, Any]:
    """W2: one agent appends ``events`` events, ``batch`` per call (1: sequential
    ``append_event``, each durable on return; more: ``append_events``); then
    read all, since 90 %, one channel."""
    if events < 10:
        raise ValueError("W2 needs at least 10 events")
    mode = "single" if batch == 1 else "batch"
    log(f"W2 {target.backend} ({mode}, {batch} per call): building {events} events")
    timeline = data.w2_events(events)
    agent_id = "w2-agent"
    mark = timeline[int(events * 0.9) - 1].bookmark.seq
    channel = "control"
    expected_channel = [t.bookmark.seq for t in timeline if t.event["channel"] == channel]
    problems: list[str] = []
    await target.open()
    try:
        clock = time.perf_counter
        with Profiler(profile):
            started = clock()
            await target.append_events(agent_id, timeline, batch)
            # Every append is committed on return; the read checks the last one is there.
            tail = await target.read_events(agent_id, since=events - 1)
            append_seconds = clock() - started
            if tail != [events]:
                problems.append(f"after appending, a read since {events - 1} returned {tail}")

            started = clock()
            everything = await target.read_events(agent_id)
            read_all = clock() - started
            started = clock()
            recent = await target.read_events(agent_id, since=mark)
            read_since = clock() - started
            started = clock()
            one_channel = await target.read_events(agent_id, channel=channel)
            read_channel = clock() - started
        if everything != list(range(1, events + 1)):
            problems.append(f"read all: {len(everything)} events, expected seq 1..{events} in order")
        if recent != list(range(mark + 1, events + 1)):
            problems.append(f"read since {mark}: {len(recent)} events, expected {events - mark}")
        if one_channel != expected_channel:
            problems.append(f"read channel {channel}: {len(one_channel)} events, expected {len(expected_channel)}")
        for problem in problems:
            log(f"  MISMATCH {problem}")
    finally:
        await target.close()
    return {
        "workload": "W2",
        "backend": target.backend,
        "mode": mode,
        "batch": batch,
        "events": events,
        "appends_per_s": round(events / append_seconds, 1),
        "append_seconds": round(append_seconds, 4),
        "read_all_seconds": round(read_all, 4),
        "read_since_seconds": round(read_since, 4),
        "read_channel_seconds": round(read_channel, 4),
        "since_events": len(recent),
        "channel_events": len(one_channel),
        "verified": not problems,
        "db_size_bytes": target.size_bytes,
    }


# --------------------------------------------------------------------------- W3


async def run_w3(
    target: Target,
    agents: int,
    messages_per_agent: int,
    tool_calls_per_agent: int,
    queries: int,
    concurrency: int,
    profile: str | None = None,
) -> dict[str, Any]:
    """W3: populate ``agents`` agents, then time each query ``queries`` times."""
    log(f"W3 {target.backend}: building {agents} agents × {messages_per_agent} messages, {tool_calls_per_agent} calls")
    base = data.now_ms() - agents * 1000
    population = [data.w3_population(k, base, messages_per_agent, tool_calls_per_agent) for k in range(agents)]
    ids = [p.agent_id for p in population]
    assistant_per_agent = sum(1 for m in population[0].message_wires if m["role"] == "assistant")
    per_template = [sum(1 for k in range(agents) if k % data.TEMPLATE_COUNT == i) for i in range(data.TEMPLATE_COUNT)]
    bash_errors = sum(
        1 for p in population for r in p.records if r.name == "bash_run" and r.is_error
    )  # every agent has the same calls, so this is agents × per-agent

    def pick(i: int) -> int:
        return (i * 7919 + 13) % agents

    def prefix_of(i: int) -> str:
        return ids[pick(i)][:-1]

    def listed(prefix: str) -> int:
        return sum(1 for x in ids if x.startswith(prefix))

    checks: list[tuple[str, Callable[[int], Awaitable[Any]], Callable[[int], Any]]] = [
        (
            "sessions",
            lambda i: target.query_sessions(data.template_id(i)),
            lambda i: min(20, per_template[i % data.TEMPLATE_COUNT]),
        ),
        ("messages", lambda i: target.query_messages(ids[pick(i)]), lambda i: min(50, assistant_per_agent)),
        ("tool_calls", lambda i: target.query_tool_calls(), lambda i: min(10, bash_errors)),
        (
            "stats",
            lambda i: target.query_stats(ids[pick(i)]),
            lambda i: (messages_per_agent, tool_calls_per_agent),
        ),
        ("list", lambda i: target.query_list(prefix_of(i)), lambda i: listed(prefix_of(i))),
    ]
    if isinstance(target, StoreTarget) and target.search_index:  # the raw floors have no search
        planted = [len(data.w3_search_seqs(k, messages_per_agent)) for k in range(agents)]
        checks += [
            ("search", lambda i: target.query_search(data.SEARCH_WORD), lambda i: min(20, sum(planted))),
            (
                "search_agent",
                lambda i: target.query_search(data.SEARCH_WORD, ids[pick(i)]),
                lambda i: min(20, planted[pick(i)]),
            ),
        ]
    timings: dict[str, float] = {}
    problems: list[str] = []
    await target.open()
    try:
        clock = time.perf_counter
        with Profiler(profile):
            log(f"W3 {target.backend}: populating")
            started = clock()
            await target.populate(population, concurrency)
            populate_seconds = clock() - started
            log(f"  populated in {populate_seconds:.2f} s")
            for name, call, expect in checks:
                for i in range(5):  # warm-up: statement caches, first page reads
                    begin = clock()
                    await call(i)
                    if name == "search" and i == 0:
                        # SQLite indexes queued messages before a search: here, all of them.
                        timings["search_first_ms"] = ms(clock() - begin)
                times: list[float] = []
                # JSONStore searches by reading every message: a few runs tell enough.
                runs = min(queries, 10) if name.startswith("search") and target.backend == "json" else queries
                for i in range(runs):
                    begin = clock()
                    got = await call(i)
                    times.append(clock() - begin)
                    if got != expect(i) and len(problems) < 10:
                        problems.append(f"{name} run {i}: got {got}, expected {expect(i)}")
                timings[f"{name}_p50_ms"] = ms(percentile(times, 0.50))
                timings[f"{name}_p95_ms"] = ms(percentile(times, 0.95))
                log(f"  {name}: p50 {timings[f'{name}_p50_ms']} ms, p95 {timings[f'{name}_p95_ms']} ms")
        for problem in problems:
            log(f"  MISMATCH {problem}")
    finally:
        await target.close()
    return {
        "workload": "W3",
        "backend": target.backend,
        "agents": agents,
        "messages": agents * messages_per_agent,
        "tool_calls": agents * tool_calls_per_agent,
        "populate_seconds": round(populate_seconds, 4),
        "db_size_bytes": target.size_bytes,
        **timings,
        "queries": queries,
        "verified": not problems,
    }


def remove_tree(path: Path) -> None:
    """Remove a temporary data directory."""
    shutil.rmtree(path, ignore_errors=True)
