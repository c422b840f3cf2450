"""Hostile and odd input on every backend.

* arbitrary JSON (hypothesis): unicode, astral characters, NUL inside
  strings, deep nesting, huge and negative integers, floats — round-trips
  exactly (types included: 1 stays int, 1.0 stays float) or is refused with
  RecordValidationError;
* adversarial agent ids, snapshot ids and RecoveredFile paths write nothing
  outside the store (the file tree around it is checked);
* LIKE wildcards, quotes and SQL fragments in every filter are taken literally;
* a 20 MB message is stored and loaded intact (docs/reliability.md: limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kode_sdk.errors import InvalidAgentIdError, KodeError, RecordValidationError

from ._common import open_store, sized

EXAMPLES = sized(40, 600)
FIGURES = Path(__file__).parent / "figures"


def same(a: Any, b: Any) -> bool:
    """Exact JSON equality: bool, int and float are told apart; dict key order is not part of it."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**40, -(10**40), 0, -1, 0.0, -0.0, 1.0, 1e300, 5e-324])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.text(alphabet=st.sampled_from(["\x00", "\U0001f600", "\U00010348", "'", '"', "\\", "%", "_", "\u2028"]))
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture
async def store(spec: str) -> AsyncIterator[Any]:
    s = open_store(spec)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def test_arbitrary_json_round_trips_exactly_or_is_refused(spec: str) -> None:
    backend = spec.partition(":")[0]
    tried = refused = 0
    with asyncio.Runner() as runner:
        store = open_store(spec)
        runner.run(store.open())
        seq = 0

        async def round_trip(value: Any) -> None:
            nonlocal tried, refused, seq
            tried += 1
            message = {
                "role": "user",
                "content": [{"type": "text", "text": "x", "extra": value}],
                "metadata": {"v": value},
            }
            call = {"id": "c1", "name": "tool", "input": {"v": value}, "result": value}
            try:
                await store.save_messages("hyp", [message])
            except RecordValidationError:
                refused += 1
                return
            loaded = await store.load_messages("hyp")
            assert same(loaded[0].content[0]["extra"], value), (
                f"content changed: {value!r} -> {loaded[0].content[0]['extra']!r}"
            )
            assert same(loaded[0].metadata, {"v": value})
            await store.save_tool_call_records("hyp", [call])
            record = (await store.load_tool_call_records("hyp"))[0]
            assert same(record.input, {"v": value}) and same(record.result, value)
            await store.save_info("hyp", {"agent_id": "hyp", "template_id": "t", "metadata": {"v": value}})
            info = await store.load_info("hyp")
            assert info is not None and same(info.metadata, {"v": value})
            seq += 1
            event = {
                "cursor": seq,
                "bookmark": {"seq": seq, "timestamp": seq},
                "event": {"channel": "progress", "type": "t", "v": value},
            }
            await store.append_event("hyp", event)
            last = [t async for t in store.read_events("hyp", since=seq - 1)]
            assert len(last) == 1 and same(last[0].event["v"], value)

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(json_values)
        def check(value: Any) -> None:
            runner.run(round_trip(value))

        try:
            check()
        finally:
            runner.run(store.close())
    assert tried >= EXAMPLES
    FIGURES.mkdir(exist_ok=True)
    (FIGURES / f"json-{backend}.json").write_text(json.dumps({"backend": backend, "inputs": tried, "refused": refused}))


@pytest.mark.parametrize("cold", [False, True], ids=["cached", "reopened"])
async def test_equal_numbers_of_another_json_kind_are_a_change(spec: str, cold: bool) -> None:
    """0, False and 0.0 (1, True, 1.0; 0.0, -0.0) are equal in Python and different in JSON:
    saving one over the other must store the new one (an incremental diff once skipped it)."""
    pairs = [(0, False), (False, 0), (1, True), (True, 1), (1, 1.0), (1.0, 1), (0.0, -0.0), (-0.0, 0.0), (0, 0.0)]

    def messages(v: Any) -> list[dict[str, Any]]:
        return [{"role": "user", "content": [{"type": "text", "text": "", "v": v}]}]

    def call(v: Any) -> list[dict[str, Any]]:
        return [{"id": "c", "name": "n", "input": {"v": v}, "result": v}]

    for index, (before, after) in enumerate(pairs):
        agent = f"kind-{index}"
        store = open_store(spec)
        async with store:
            await store.save_messages(agent, messages(before))
            await store.save_tool_call_records(agent, call(before))
            if cold:  # a new store object: the diff reads what is stored
                await store.close()
                store = open_store(spec)
                await store.open()
            await store.save_messages(agent, messages(after))
            await store.save_tool_call_records(agent, call(after))
            await store.close()
        async with open_store(spec) as fresh:
            message = (await fresh.load_messages(agent))[0]
            record = (await fresh.load_tool_call_records(agent))[0]
        assert same(message.content[0]["v"], after), (
            f"{before!r} -> {after!r}: message kept {message.content[0]['v']!r}"
        )
        assert same(record.result, after) and same(record.input, {"v": after}), f"{before!r} -> {after!r}: tool call"


@pytest.mark.parametrize("depth", [64, 500, 5000])
async def test_deep_nesting_round_trips_or_is_refused(store: Any, depth: int) -> None:
    value: Any = "leaf\x00"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    try:
        await store.save_messages("deep", [{"role": "user", "content": [{"type": "text", "text": "", "v": value}]}])
    except RecordValidationError:
        return
    loaded = await store.load_messages("deep")
    assert same(loaded[0].content[0]["v"], value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "\ud800", {"k": "a\udfffb"}])
async def test_not_json_is_refused_and_nothing_is_lost(store: Any, bad: Any) -> None:
    good = [{"role": "user", "content": [{"type": "text", "text": "kept"}]}]
    await store.save_messages("agent", good)
    with pytest.raises(RecordValidationError):
        await store.save_messages(
            "agent", [*good, {"role": "user", "content": [{"type": "text", "text": "", "v": bad}]}]
        )
    assert [m.content for m in await store.load_messages("agent")] == [good[0]["content"]]


# --------------------------------------------------------------------------- paths and ids

BAD_AGENT_IDS = [
    "",
    ".",
    "..",
    "../x",
    "a/b",
    "a\\b",
    "/abs",
    "a\x00b",
    "x" * 5000,
    "a b",
    "%2e%2e",
    "ü",
    "~root",
    "a\nb",
]
ODD_NAMES = [
    "../../../../escape",
    "/tmp/kode-escape-{token}",
    "..",
    ".",
    "a/../../b",
    "C:\\Windows\\x",
    "nul\x00byte",
    "x" * 3000,
    "%2e%2e%2f%2e%2e",
    "\U0001f600/../..",
    "-rf",
    "a\nb",
]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def store_in_sandbox(backend: str, tmp_path: Path, pg: str | None) -> tuple[Any, Path]:
    """A store deep inside ``tmp_path``: anything escaping lands in tmp_path and is seen."""
    home = tmp_path / "l1" / "l2" / "l3" / "home"
    home.mkdir(parents=True)
    if backend == "sqlite":
        from kode_sdk.store.sqlite import SqliteStore

        return SqliteStore(home / "agents.db", file_store_base_dir=home / "files"), home
    if backend == "json":
        return open_store(f"json:{home / 'store'}"), home
    from kode_sdk.store.postgres import PostgresStore

    assert pg is not None
    url, _, schema = pg.rpartition("#")
    return PostgresStore(url, file_store_base_dir=home / "files", schema=schema), home


async def test_adversarial_ids_and_paths_stay_inside_the_store(spec: str, tmp_path: Path) -> None:
    backend = spec.partition(":")[0]
    store, home = store_in_sandbox(backend, tmp_path, spec.partition(":")[2] if backend == "postgres" else None)
    token = secrets.token_hex(4)
    names = [n.format(token=token) for n in ODD_NAMES]
    async with store:
        await store.save_info("victim", {"agent_id": "victim", "template_id": "t"})
        for bad in BAD_AGENT_IDS:
            with pytest.raises(InvalidAgentIdError):
                await store.save_messages(bad, [])
            with pytest.raises(InvalidAgentIdError):
                await store.load_messages(bad)
            with pytest.raises(InvalidAgentIdError):
                await store.delete(bad)
            if hasattr(store, "acquire_agent_lock"):
                with pytest.raises(InvalidAgentIdError):
                    await store.acquire_agent_lock(bad, timeout_ms=100)
        for name in names:
            snapshot = {"id": name, "messages": [{"role": "user", "content": [{"type": "text", "text": name}]}]}
            try:
                await store.save_snapshot("victim", snapshot)
            except RecordValidationError:
                pass
            else:
                loaded = await store.load_snapshot("victim", name)
                assert loaded is not None and loaded.id == name and loaded.messages[0].content[0]["text"] == name
            with contextlib.suppress(RecordValidationError):
                await store.save_recovered_file(
                    "victim", {"path": name, "content": f"c {name}", "mtime": 1, "timestamp": 2}
                )
        files = {f.path: f.content for f in await store.load_recovered_files("victim")}
        for path, content in files.items():
            assert content == f"c {path}"
        assert await store.list() == ["victim"]
    check_nothing_outside(tmp_path, home, token)


def check_nothing_outside(tmp_path: Path, home: Path, token: str) -> None:
    outside = {p for p in tree(tmp_path) if not p.startswith("l1/l2/l3/home")}
    assert outside == {"l1", "l1/l2", "l1/l2/l3"}, f"written outside the store: {sorted(outside)}"
    assert not Path(f"/tmp/kode-escape-{token}").exists()
    for p in home.rglob("*"):
        assert os.path.realpath(p).startswith(os.path.realpath(home))


# --------------------------------------------------------------------------- filters taken literally

HOSTILE_FILTERS = [
    "%",
    "_",
    "%%",
    "t_",
    "t%",
    "'",
    "' OR '1'='1",
    "'; DROP TABLE messages; --",
    '"',
    "\\",
    "\\%",
    "*",
    ".*",
]


async def test_filters_take_wildcards_quotes_and_sql_literally(store: Any) -> None:
    text = {"role": "user", "content": [{"type": "text", "text": "hello"}]}
    for agent, template, user in [("a_1", "t_x", "u%1"), ("ab1", "tax", "u11"), ("a-2", "t'q", "u'1")]:
        await store.save_info(agent, {"agent_id": agent, "template_id": template, "metadata": {"user_id": user}})
        await store.save_messages(agent, [text])
        await store.save_tool_call_records(agent, [{"id": "c", "name": "to_l", "state": "completed"}])
    assert await store.list(prefix="a_") == ["a_1"]
    assert await store.list(prefix="a") == ["a-2", "a_1", "ab1"]
    assert [s.agent_id for s in await store.query_sessions(template_id="t_x")] == ["a_1"]
    assert [s.agent_id for s in await store.query_sessions(template_id="t'q")] == ["a-2"]
    assert [s.agent_id for s in await store.query_sessions(user_id="u%1")] == ["a_1"]
    assert [c.agent_id for c in await store.query_tool_calls(tool_name="to_l", agent_id="a_1")] == ["a_1"]
    for hostile in HOSTILE_FILTERS:
        if hostile != "_":  # "_" is a valid prefix of nothing here either
            assert await store.list(prefix=hostile) == [] or hostile in ("a",), hostile
        assert await store.query_sessions(template_id=hostile) == [], hostile
        assert await store.query_sessions(user_id=hostile) == [], hostile
        assert await store.query_tool_calls(tool_name=hostile) == [], hostile
        assert await store.query_messages(content_type=hostile) == [], hostile
        for kwargs in ({"role": hostile}, {"state": hostile}):
            query = store.query_messages if "role" in kwargs else store.query_tool_calls
            with contextlib.suppress(ValueError, KodeError):  # refused as unknown: fine, never "everything"
                assert await query(**kwargs) == [], (kwargs, hostile)
    assert len(await store.query_messages()) == 3, "a hostile filter changed the data"


# --------------------------------------------------------------------------- oversize payload


async def test_twenty_megabyte_message_round_trips(store: Any) -> None:
    big = "".join(chr(0x41 + i % 26) for i in range(1024)) * (20 * 1024)
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "before"}]},
        {"role": "assistant", "content": [{"type": "text", "text": big + "\U0001f600\x00end"}]},
    ]
    await store.save_messages("big", messages)
    loaded = await store.load_messages("big")
    assert len(loaded) == 2
    assert loaded[1].content[0]["text"] == messages[1]["content"][0]["text"]  # type: ignore[index]
