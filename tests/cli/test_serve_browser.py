"""The session browser in a real browser: Debian's headless Chromium, driven
by playwright (with the system browser; playwright downloads nothing).

Skipped with a notice when Chromium or playwright is missing, unless
``KODE_REQUIRE_BROWSER=1`` (``.ci/run`` sets it) makes that a failure.
``KODE_SCREENSHOTS=DIR`` also writes the screenshots docs/browser.md shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from httpserve import serving
from webdata import FAILED_CALL, HOSTILE, NEEDLE, STORY, fill_web

REQUIRE = os.environ.get("KODE_REQUIRE_BROWSER") == "1"


def _chromium() -> str | None:
    named = os.environ.get("KODE_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    problem = None if executable else "no Chromium on this machine (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = problem or "playwright is not installed (pip install -e '.[dev]')"
    if problem:
        if REQUIRE:
            pytest.fail(problem + " (KODE_REQUIRE_BROWSER=1)")
        pytest.skip("browser tests skipped: " + problem)
    with sync_playwright() as p:
        # Root in a container has no user namespaces for Chromium's sandbox; the pages are our own.
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    spec = f"sqlite:{tmp_path_factory.mktemp('browser') / 'agents.db'}"
    # playwright's sync API runs an event loop in this thread while the browser is open.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(fill_web, spec, 30).result()
    with serving(spec) as base:
        yield base


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, java_script_enabled=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, errors


def _shot(page: Any, name: str, *, full: bool = True) -> None:
    folder = os.environ.get("KODE_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=full)


def test_list_to_session_to_failed_call(page: Any, site: str) -> None:
    page.goto(site + "/")
    assert page.title() == "Sessions · kode"
    _shot(page, "browser-sessions.png", full=False)
    page.get_by_role("link", name=STORY, exact=True).click()
    page.wait_for_url(f"**/session/{STORY}")
    assert page.get_by_role("heading", level=1).inner_text() == f"Session {STORY}"
    _shot(page, "browser-session.png", full=False)
    failed = page.get_by_role("region", name="Failed tool calls")
    failed.get_by_role("link").first.click()
    page.wait_for_url(f"**/session/{STORY}#call-{FAILED_CALL}")
    card = page.locator(f"[id='call-{FAILED_CALL}']")
    assert "failed" in (card.get_attribute("class") or "").split()
    assert card.is_visible() and card.evaluate("el => el.matches(':target')")
    text = card.inner_text()
    assert "Failed" in text and f"{NEEDLE}: division by zero" in text and "pytest -x tests/test_stats.py" in text
    # The failed call is in view: the browser scrolled to it.
    box = card.bounding_box()
    assert box is not None and -2 <= box["y"] < 900


def test_filters_paging_and_channels_by_keyboard(page: Any, site: str) -> None:
    page.goto(site + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.get_by_label("Template").fill("coder")
    page.get_by_label("Per page").fill("4")
    page.get_by_label("Per page").press("Enter")
    page.wait_for_url("**/?*template=coder*")
    rows = page.locator("table.sessions tbody tr")
    assert rows.count() == 4 and all("coder" in rows.nth(i).inner_text() for i in range(4))
    first_page = rows.first.inner_text()
    page.get_by_role("link", name="Next page").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**offset=4*")
    assert rows.count() == 4 and rows.first.inner_text() != first_page
    page.get_by_role("link", name="Previous page").click()
    page.wait_for_url("**offset=0*")
    assert rows.first.inner_text() == first_page
    page.goto(site + f"/session/{STORY}")
    page.get_by_role("navigation", name="Event channels").get_by_role("link", name="control").click()
    page.wait_for_url("**channel=control*")
    events = page.locator("table.events tbody tr")
    assert events.count() == 4 and all("control" in events.nth(i).inner_text() for i in range(4))
    page.goto(site + f"/session/{STORY}#stats")
    assert page.locator("svg[role=img]").count() == 2
    _shot(page, "browser-session-stats.png", full=False)


def test_stored_script_does_not_run(page: Any, site: str) -> None:
    page.goto(site + f"/session/{HOSTILE}")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("script").count() == 0 and page.locator("main img").count() == 0
    assert "<script>window.__pwned = 1</script>" in page.locator("main").inner_text()
    page.goto(site + "/")
    assert page.evaluate("window.__pwned") is None


def test_search_box_to_the_hit(page: Any, site: str) -> None:
    page.goto(site + "/")
    box = page.get_by_role("searchbox", name="Search all sessions")
    box.fill(NEEDLE)
    box.press("Enter")
    page.wait_for_url(f"**/search?q={NEEDLE}")
    hits = page.locator("ol.hits li")
    assert hits.count() == 1 and NEEDLE in hits.first.locator("mark").first.inner_text()
    _shot(page, "browser-search.png", full=False)
    hits.first.get_by_role("link").click()
    page.wait_for_url(f"**/session/{STORY}#msg-4")
    target = page.locator("[id='msg-4']")
    assert target.evaluate("el => el.matches(':target')") and NEEDLE in target.inner_text()
    box = target.bounding_box()
    assert box is not None and -2 <= box["y"] < 900
