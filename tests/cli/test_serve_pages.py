"""The session browser of ``kode serve`` and the JSON API's parameter names,
over real HTTP against real stores."""

from __future__ import annotations

import asyncio

import pytest
from httpserve import Page, fetch, serving
from webdata import FAILED_CALL, HOSTILE, NEEDLE, STORY, XSS, fill_web

from kode_sdk.cli.app import parse_store_spec
from kode_sdk.store.factory import create_store
from kode_sdk.web.pages import MESSAGES_PER_PAGE


@pytest.fixture(scope="module")
def web_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file with the story, the hostile session and 30 filler agents."""
    spec = f"sqlite:{tmp_path_factory.mktemp('web') / 'agents.db'}"
    fill_web(spec)
    return spec


@pytest.fixture(scope="module")
def base(web_spec: str):  # type: ignore[no-untyped-def]
    with serving(web_spec) as url:
        yield url


def test_json_endpoints_take_the_library_names_too(base: str) -> None:
    pairs = [
        (
            "/sessions?template=coder&user=user-1&sort=message_count&order=asc&after=2025-01-01T00:30:00Z",
            "/sessions?template_id=coder&user_id=user-1&sort_by=message_count&sort_order=asc&created_after=2025-01-01T00:30:00Z",
        ),
        ("/messages?agent=agt-00004&before=2030-01-01", "/messages?agent_id=agt-00004&created_before=2030-01-01"),
        ("/tool-calls?tool=bash_run&errors=true&limit=1000", "/tool-calls?tool_name=bash_run&is_error=true&limit=1000"),
        ("/tool-calls?approval=true&agent=agt-00007", "/tool-calls?has_approval=true&agent_id=agt-00007"),
    ]
    for short, long in pairs:
        a, b = fetch(base + short), fetch(base + long)
        assert a.status == b.status == 200, (long, b.text)
        assert a.json() == b.json() and a.json(), long
    calls = fetch(base + "/tool-calls?tool_name=bash_run&is_error=true&limit=1000").json()
    assert {c["toolName"] for c in calls} == {"bash_run"} and all(c["isError"] for c in calls)
    for path in ("/tool-calls?errors=true&is_error=false", "/sessions?agent=a&agent_id=a", "/messages?tool_name=x"):
        answer = fetch(base + path)
        assert answer.status == 400, path
        assert "agent_id" in answer.json()["error"] or "same filter" in answer.json()["error"]


def test_sessions_page_lists_filters_and_pages(base: str) -> None:
    answer = fetch(base + "/")
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/html")
    page = Page(answer.text)
    assert f"/session/{STORY}" in page.links and "/session/agt-00000" in page.links
    assert "script" not in page.tags
    coder = Page(fetch(base + "/?template=coder&limit=100").text)
    sessions = [link for link in coder.links if link.startswith("/session/")]
    assert f"/session/{STORY}" in sessions and "/session/agt-00001" in sessions and "/session/agt-00000" not in sessions
    first = Page(fetch(base + "/?limit=5&sort=created_at&order=asc").text)
    assert [x for x in first.links if x.startswith("/session/")] == [f"/session/agt-{i:05d}" for i in range(5)]
    following = [x for x in first.links if "offset=5" in x]
    assert following, "no link to the next page"
    second = Page(fetch(base + following[0]).text)
    assert [x for x in second.links if x.startswith("/session/")] == [f"/session/agt-{i:05d}" for i in range(5, 10)]
    assert any("offset=0" in x for x in second.links), "no link back"
    # The library's names work in the page too.
    alice = Page(fetch(base + "/?user_id=alice").text)
    assert [x for x in alice.links if x.startswith("/session/")] == [f"/session/{STORY}"]
    bad = fetch(base + "/?sort=colour")
    assert bad.status == 400 and "sort" in Page(bad.text).text


def test_session_page_shows_conversation_calls_stats_and_events(base: str) -> None:
    answer = fetch(base + f"/session/{STORY}")
    assert answer.status == 200
    page = Page(answer.text)
    text = page.text
    assert "The test suite fails on an empty list." in text and "all 24 tests pass" in text
    assert [f"msg-{i}" in page.ids for i in range(12)] == [True] * 12
    # Tool calls inline, the failed one marked, with its input, error, approval and audit trail.
    assert "failed" in page.ids[f"call-{FAILED_CALL}"].split()
    assert "failed" not in page.ids["call-toolu_01_read"].split()
    assert f"#call-{FAILED_CALL}" in page.links
    assert "pytest -x tests/test_stats.py" in text and "ZeroDivisionError: division by zero" in text
    assert "Decision: deny by alice" in text and "Note: not needed for this fix" in text
    assert "Decision: allow by alice" in text
    assert "approval_required" in text and "asks a human" in text
    # Stats: totals and both charts, each with a table of the same figures.
    assert answer.text.count('<svg role="img"') == 2
    assert "Tool success rate" in text and "Durations per tool" in text
    assert "bash_run 1 1 1 50 %" in text
    # The timeline, all channels, then one.
    for kind in ("text_chunk", "permission_decided", "tool_executed", "done"):
        assert kind in text
    control = Page(fetch(base + f"/session/{STORY}?channel=control").text).text
    assert "permission_decided" in control and "text_chunk" not in control and "tool_executed" not in control


def test_unknown_and_invalid_sessions(base: str) -> None:
    assert fetch(base + "/session/agt-nobody").status == 404
    for path in ("/session/bad%20id", f"/session/{STORY}?channel=loud", f"/session/{STORY}?start=-1"):
        answer = fetch(base + path)
        assert answer.status == 400, path
        assert answer.headers["content-type"].startswith("text/html")


def test_stored_markup_is_shown_as_text(base: str) -> None:
    for path in (f"/session/{HOSTILE}", "/", "/?user=" + "%3Cscript%3E"):
        answer = fetch(base + path)
        assert answer.status == 200
        assert "<script" not in answer.text and "<img" not in answer.text and "<b>" not in answer.text
        assert "script-src" not in answer.headers["content-security-policy"]
        assert "default-src 'none'" in answer.headers["content-security-policy"]
    page = Page(fetch(base + f"/session/{HOSTILE}").text)
    assert XSS in page.text and "<b>bold_tool</b>" in page.text and "<svg onload=alert(1)>" in page.text
    assert "script" not in page.tags and "img" not in page.tags and "b" not in page.tags


def test_long_conversation_pages(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = f"sqlite:{tmp_path / 'long.db'}"
    total = MESSAGES_PER_PAGE * 2 + 50

    async def fill() -> None:
        async with create_store(parse_store_spec(spec)) as store:  # type: ignore[attr-defined]
            messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"line {i}"} for i in range(total)]
            messages[-1] = {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "late", "name": "t", "input": {}}],
            }
            await store.save_messages("agt-long", messages)
            await store.save_tool_call_records(
                "agt-long", [{"id": "late", "name": "t", "state": "failed", "is_error": True}]
            )
            await store.save_info("agt-long", {"agent_id": "agt-long", "template_id": "x"})

    asyncio.run(fill())
    with serving(spec) as url:
        first = Page(fetch(url + "/session/agt-long").text)
        assert "msg-0" in first.ids and f"msg-{MESSAGES_PER_PAGE - 1}" in first.ids
        assert f"msg-{MESSAGES_PER_PAGE}" not in first.ids
        # The failed call lives on the last page; this page still shows its card, so its link works.
        assert "failed" in first.ids["call-late"].split() and "#call-late" in first.links
        pages = [x for x in first.links if "start=" in x]
        assert len(pages) == 3
        last = Page(fetch(url + pages[-1]).text)
        assert "msg-400" in last.ids and f"msg-{total - 1}" in last.ids and "msg-399" not in last.ids
        assert f"line {total - 2}" in last.text and "line 399" not in last.text
        assert "failed" in last.ids["call-late"].split()


def _story_pages(url: str) -> None:
    listing = Page(fetch(url + "/").text)
    assert f"/session/{STORY}" in listing.links and f"/session/{HOSTILE}" in listing.links
    answer = fetch(url + f"/session/{STORY}")
    assert answer.status == 200 and "<script" not in answer.text
    page = Page(answer.text)
    assert "failed" in page.ids[f"call-{FAILED_CALL}"].split() and "Decision: deny by alice" in page.text
    assert [f"msg-{i}" in page.ids for i in range(12)] == [True] * 12
    assert "permission_decided" in page.text
    hits = fetch(url + f"/api/search?q={NEEDLE}").json()
    assert [(h["agentId"], h["seq"]) for h in hits] == [(STORY, 4)]
    found = Page(fetch(url + f"/search?q={NEEDLE}").text)
    assert f"/session/{STORY}#msg-4" in found.links and "mark" in found.tags


def test_pages_on_a_json_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = f"json:{tmp_path / 'store'}"
    fill_web(spec, filler=2)
    with serving(spec) as url:
        _story_pages(url)


@pytest.mark.postgres
def test_pages_on_postgres(pg_spec: str) -> None:
    fill_web(pg_spec, filler=2)
    with serving(pg_spec) as url:
        _story_pages(url)
