"""A class on one server, in the real browser: several students open pages at the same moment,
ten train at once, and the server's training pool serves them all. The figures (steps per
student, redraws per second, server memory) are written to tests/screenshots/class_load.json
and printed; they are reported, not asserted (these machines are shared and noisy)."""
from __future__ import annotations

import json
import os
import time

import pytest

from lab.bench import rss_mb
from tests.browser.conftest import SCREENSHOTS, Tab
from tests.browser.test_pages import FAST, LOAD_TIMEOUT_MS, assert_clean, open_page

pytestmark = pytest.mark.browser
STUDENTS = int(os.environ.get("NLL_LOAD_SESSIONS", "10"))
WINDOW_S = 5.0
# no student finishes during the test; NLL_LOAD_QUERY measures another setup (the default HOPE:
# "model=hope&steps=5000&tasks=2")
ENDLESS = os.environ.get("NLL_LOAD_QUERY", "model=transformer&preset=tiny&steps=10000&tasks=2")
# steps trained so far, as the page shows them: the last step of the loss chart, found by its key (the
# first chart of the page may be another one while a redraw mounts charts; its points are thinned)
STEPS_SHOWN = """() => { const el = document.querySelector('.st-key-pg_loss .js-plotly-plot');
    const x = el && el.data && el.data[0] && el.data[0].x;
    return x && x.length ? x[x.length - 1] : 0; }"""


def redraw_rate(tab, seconds: float) -> float:
    """How often the page's loss chart changed per second over `seconds`, counted inside the page
    every 10 ms (sampling from here costs a round trip each, which would cap the count near 10/s)."""
    tab.page.evaluate(f"""() => {{ const shown = {STEPS_SHOWN}; let last = shown(); window.nllRedraws = 0;
        window.nllCounter = setInterval(() => {{ const now = shown();
            if (now !== last) {{ window.nllRedraws += 1; last = now; }} }}, 10); }}""")
    tab.page.wait_for_timeout(seconds * 1000)
    redraws = tab.page.evaluate("() => { clearInterval(window.nllCounter); return window.nllRedraws; }")
    return round(redraws / seconds, 2)


def test_students_opening_pages_at_the_same_moment_all_get_their_page(app_url, browser_context):
    routes = ["", "playground", "forgetting", "sleep", "lessons"]
    tabs = [Tab(browser_context.new_page()) for _ in routes]
    try:
        for tab, route in zip(tabs, routes):                 # all requests out before any page is waited for
            tab.page.goto(f"{app_url}/{route}?{FAST}", wait_until="commit")
        for tab in tabs:
            open_page(tab, tab.page.url)
            assert tab.page.get_by_text("What you are looking at").count() >= 1
            assert_clean(tab)
    finally:
        for tab in tabs:
            tab.page.close()


def test_a_class_trains_at_once_and_every_student_advances(app_server, browser_context):
    url, pid = app_server["url"], app_server["pid"]
    figures = {"students": STUDENTS, "setup": ENDLESS, "rss_mib_before": rss_mb(pid)}
    tabs = [Tab(browser_context.new_page()) for _ in range(STUDENTS)]
    try:
        for tab in tabs:                                      # the class opens the Playground
            open_page(tab, f"{url}/playground?{ENDLESS}")
        alone = tabs[0]                                       # one student alone, for comparison
        alone.page.get_by_role("button", name="Play", exact=True).click()
        alone.page.wait_for_function(f"({STEPS_SHOWN})() > 0", timeout=LOAD_TIMEOUT_MS)
        first = alone.page.evaluate(STEPS_SHOWN)
        figures["redraws_per_s_alone"] = redraw_rate(alone, WINDOW_S)
        figures["steps_per_s_alone"] = round((alone.page.evaluate(STEPS_SHOWN) - first) / WINDOW_S, 1)
        for tab in tabs[1:]:                                  # then everybody presses Play
            tab.page.get_by_role("button", name="Play", exact=True).click()
        for tab in tabs:
            tab.page.wait_for_function(f"({STEPS_SHOWN})() > 0", timeout=LOAD_TIMEOUT_MS)
        # the same window for all: the steps each student's page shows at its start and at its end
        at_start = [tab.page.evaluate(STEPS_SHOWN) for tab in tabs]
        started = time.monotonic()
        figures["redraws_per_s_each_of_them"] = redraw_rate(tabs[-1], WINDOW_S)
        at_end = [tab.page.evaluate(STEPS_SHOWN) for tab in tabs]
        window = time.monotonic() - started
        figures["rss_mib_training"] = rss_mb(pid)
        figures["steps_in_window"] = [end - start for start, end in zip(at_start, at_end)]
        figures["steps_per_s_together"] = round(sum(figures["steps_in_window"]) / window, 1)
        for tab in tabs:
            assert_clean(tab)
    finally:
        for tab in tabs:                                      # the class leaves: the pool pauses the runs
            tab.page.close()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "class_load.json").write_text(json.dumps(figures, indent=2))
    print("class load:", json.dumps(figures))
    assert all(steps > 0 for steps in figures["steps_in_window"]), figures   # nobody starved


def test_a_shared_link_cannot_put_a_link_or_an_image_in_the_page(app_url, page):
    import urllib.parse
    hostile = {"model": "![x](http://127.0.0.1:9/pixel.png)", "lr": "[Session expired - log in](http://127.0.0.1:9/login)",
               "chunks": "<img src='http://127.0.0.1:9/tag.png'>" + "9" * 20_000, "preset": "tiny"}
    requested: list[str] = []
    page.page.on("request", lambda request: requested.append(request.url))
    open_page(page, f"{app_url}/playground?{urllib.parse.urlencode(hostile)}")
    alerts = page.page.locator("[data-testid='stAlert']")
    alerts.first.wait_for(timeout=LOAD_TIMEOUT_MS)
    text = " ".join(alerts.all_inner_texts()).replace("\u200b", "")     # as_text's autolink breaker
    assert "![x](http://127.0.0.1:9/pixel.png)" in text and "log in](http://127.0.0.1:9/login)" in text   # shown as text
    rendered = page.page.locator("[data-testid='stAlert'] a, [data-testid='stAlert'] img")
    assert rendered.count() == 0, [rendered.nth(i).evaluate("e => e.outerHTML") for i in range(rendered.count())]
    assert not [url for url in requested if "127.0.0.1:9/" in url]                # nothing fetched from the link
    assert max(len(t) for t in alerts.all_inner_texts()) < 2_000                   # a 20 KB echo is cut


def test_a_new_visitors_home_page_renders_cleanly_and_its_time_is_reported(app_url, page):
    started = time.monotonic()
    open_page(page, f"{app_url}/")
    seconds = round(time.monotonic() - started, 2)
    assert page.page.get_by_text("What you are looking at").count() >= 1
    assert_clean(page)
    print("home first render (s):", seconds)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "home_render.json").write_text(json.dumps({"seconds_to_legend": seconds}))
