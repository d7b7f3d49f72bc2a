"""Every registered page in a real headless Chromium: it renders, shows no exception and logs
no console error; on a live page, pressing Play changes the charts. Screenshots go to
tests/screenshots/ (git-ignored) for a person to look at."""
from __future__ import annotations

import pytest

from app.components.registry import PAGES
from tests.browser.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser
LOAD_TIMEOUT_MS = 90_000
LIVE = [p for p in PAGES if p.live]
FAST = "model=transformer&preset=tiny&steps=40&tasks=2"
LONG = "model=transformer&preset=tiny&steps=2000&tasks=2"     # cannot finish before Pause is pressed
# Per chart, per trace, how many points it holds: changes whenever a chart gets new data.
CHARTS_SIGNATURE = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(
    el => (el.data || []).map(t => (t.x ? t.x.length : 0) + '/' + (t.z ? t.z.length : 0)).join(',')).join('|')"""
SCRIPT_IDLE = """() => !document.querySelector('[data-testid="stStatusWidget"]')"""


def open_page(tab, url: str) -> None:
    """Load a page and wait until its script has run to the end: the sidebar's colour legend is
    the last thing app/main.py writes, after the page itself."""
    tab.page.goto(url, wait_until="domcontentloaded")
    tab.page.locator("h1").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    tab.page.get_by_text("Colours (colour-blind safe)").wait_for(timeout=LOAD_TIMEOUT_MS)
    tab.page.wait_for_function(SCRIPT_IDLE, timeout=LOAD_TIMEOUT_MS)
    tab.page.wait_for_timeout(300)           # let the last deltas paint before a screenshot


def assert_clean(tab) -> None:
    exceptions = tab.page.locator("[data-testid='stException']")
    assert exceptions.count() == 0, exceptions.first.inner_text()
    assert not tab.errors(), tab.errors()


@pytest.mark.parametrize("spec", PAGES, ids=[p.url_path for p in PAGES])
def test_page_renders_cleanly(app_url, page, spec):
    open_page(page, f"{app_url}/{spec.route}?{FAST}")
    assert page.page.get_by_text("What you are looking at").count() >= 1
    page.page.screenshot(path=str(SCREENSHOTS / f"{spec.url_path}.png"), full_page=True)
    assert_clean(page)


@pytest.mark.parametrize("spec", LIVE, ids=[p.url_path for p in LIVE])
def test_play_changes_the_charts(app_url, page, spec):
    open_page(page, f"{app_url}/{spec.route}?{LONG}")
    page.page.locator(".js-plotly-plot").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    before = page.page.evaluate(CHARTS_SIGNATURE)
    page.page.get_by_role("button", name="Play", exact=True).click()
    page.page.wait_for_function(f"(before) => ({CHARTS_SIGNATURE})() !== before", arg=before,
                                timeout=LOAD_TIMEOUT_MS)
    page.page.get_by_text("Live: the charts redraw").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    page.page.screenshot(path=str(SCREENSHOTS / f"{spec.url_path}-playing.png"), full_page=True)
    page.page.get_by_role("button", name="Pause", exact=True).click()
    page.page.get_by_role("button", name="Play", exact=True).wait_for(timeout=LOAD_TIMEOUT_MS)
    assert_clean(page)


def test_tampered_url_gets_a_message_not_a_traceback(app_url, page):
    open_page(page, f"{app_url}/playground?lr=banana&chunks=0&model=gpt&preset=tiny")
    alerts = page.page.locator("[data-testid='stAlert']")
    alerts.first.wait_for(timeout=LOAD_TIMEOUT_MS)
    text = " ".join(alerts.all_inner_texts())
    assert "lr=banana" in text and "chunks=0" in text and "model=gpt" in text
    page.page.screenshot(path=str(SCREENSHOTS / "playground-bad-url.png"), full_page=True)
    assert_clean(page)
