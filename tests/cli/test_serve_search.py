"""Search over HTTP: the JSON endpoint and the search page of the browser."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from httpserve import Page, fetch, serving
from webdata import HOSTILE, NEEDLE, STORY, fill_web


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    spec = f"sqlite:{tmp_path_factory.mktemp('search') / 'agents.db'}"
    fill_web(spec, filler=5)
    with serving(spec) as url:
        yield url


def test_json_search_endpoint(base: str) -> None:
    answer = fetch(base + f"/api/search?q={NEEDLE}")
    assert answer.status == 200
    hits = answer.json()
    assert [(h["agentId"], h["seq"]) for h in hits] == [(STORY, 4)]
    start, end = hits[0]["highlights"][0]
    assert hits[0]["snippet"][start:end] == NEEDLE and hits[0]["role"] == "user"
    # The library's names, and the filters.
    assert fetch(base + f"/api/search?query={NEEDLE}&agent_id={STORY}&role=user").json() == hits
    assert fetch(base + f"/api/search?q={NEEDLE}&agent=agt-00001").json() == []
    assert fetch(base + f"/api/search?q={NEEDLE}&created_before=2025-01-01").json() == []
    phrase = fetch(base + "/api/search?q=%22empty%20list%22&agent=" + STORY + "&limit=50").json()
    assert phrase and all(h["agentId"] == STORY for h in phrase)
    for path in ("/api/search", "/api/search?q=", "/api/search?q=x&query=y", "/api/search?q=x&role=robot"):
        bad = fetch(base + path)
        assert bad.status == 400 and bad.json()["error"], path


def test_hostile_queries_never_break_the_endpoint(base: str) -> None:
    for query in (
        '"',
        "(",
        ")",
        "AND OR NOT",
        "a*",
        "NEAR(a b)",
        "\x00",
        "-x",
        "col:x",
        "^",
        "x" * 10_000,
        "' OR 1=1 --",
    ):
        answer = fetch(base + "/api/search?" + urlencode({"q": query}))
        assert answer.status in (200, 400), (query[:20], answer.text[:200])
        assert isinstance(answer.json(), list) or answer.json()["error"]


def test_search_page_links_to_the_message(base: str) -> None:
    page = Page(fetch(base + "/").text)
    assert "/search" in [x.split("?")[0] for x in page.links] or "site-q" in page.ids
    answer = fetch(base + f"/search?q={NEEDLE}")
    assert answer.status == 200
    page = Page(answer.text)
    assert f"/session/{STORY}#msg-4" in page.links
    assert "mark" in page.tags and NEEDLE in page.text
    empty = Page(fetch(base + "/search").text)
    assert "Every word must match" in empty.text
    none = Page(fetch(base + "/search?q=nothingmatchesthis").text)
    assert "No message matches." in none.text
    bad = fetch(base + "/search?q=x&after=soon")
    assert bad.status == 400 and "soon" in Page(bad.text).text


def test_search_results_show_stored_markup_as_text(base: str) -> None:
    answer = fetch(base + "/search?q=pwned")
    assert answer.status == 200
    page = Page(answer.text)
    assert f"/session/{HOSTILE}#msg-0" in page.links
    assert "<script" not in answer.text and "script" not in page.tags and "img" not in page.tags
    assert "<script>window.__ pwned = 1</script>" in page.text
