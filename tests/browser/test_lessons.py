"""Lessons in a real headless Chromium: one lesson in presenter mode at 1280×720 (no sidebar, large
type, Back/Next, the lesson and step in the URL), and a class poll: a teacher starts a class, a
student joins from another browser session with the code and answers, and the teacher's screen
counts the answer. Screenshots go to tests/screenshots/."""
from __future__ import annotations

import re

import pytest

from tests.browser.conftest import SCREENSHOTS, Tab
from tests.browser.test_pages import LOAD_TIMEOUT_MS, SCRIPT_IDLE, assert_clean

pytestmark = pytest.mark.browser
MIN_BODY_PX = 24
# The smallest font size of the text of the page's main area (the step's paragraphs, buttons, caption).
BODY_FONT = """() => Math.min(...Array.from(document.querySelectorAll('[data-testid="stMain"] p'))
                                 .map(p => parseFloat(getComputedStyle(p).fontSize)))"""
SIDEBAR_SHOWN = """() => { const s = document.querySelector('[data-testid="stSidebar"]');
                           return !!s && getComputedStyle(s).display !== 'none'; }"""
# The class poll's bar chart on the teacher's screen: the number of answers it counts.
POLL_ANSWERS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(
    el => (el.data || []).filter(t => t.type === 'bar').map(t => t.x.reduce((a, b) => a + b, 0))
    .reduce((a, b) => a + b, 0)).reduce((a, b) => a + b, 0)"""


def wait_idle(tab: Tab) -> None:
    """Until the script has run to its end: the sidebar's legend is the last thing app/main.py writes
    (hidden in presenter mode, so only attached)."""
    tab.page.locator("h1").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    tab.page.get_by_text("Colours (colour-blind safe)").wait_for(state="attached", timeout=LOAD_TIMEOUT_MS)
    tab.page.wait_for_function(SCRIPT_IDLE, timeout=LOAD_TIMEOUT_MS)
    tab.page.wait_for_timeout(300)


def step_shown(tab: Tab, number: int) -> None:
    tab.page.wait_for_url(re.compile(rf"[?&]step={number}(&|$)"), timeout=LOAD_TIMEOUT_MS)
    tab.page.locator("h2", has_text=re.compile(rf"^{number}\. ")).first.wait_for(timeout=LOAD_TIMEOUT_MS)
    wait_idle(tab)


def test_a_lesson_in_presenter_mode_steps_back_and_forth_with_the_step_in_the_url(app_url, page):
    page.page.set_viewport_size({"width": 1280, "height": 720})
    page.page.goto(f"{app_url}/lessons?lesson=levels&step=1&present=1", wait_until="domcontentloaded")
    page.page.get_by_role("heading", name="Levels and frequencies").first.wait_for(timeout=LOAD_TIMEOUT_MS)
    step_shown(page, 1)
    assert page.page.get_by_text("What you are looking at").count() == 0
    assert not page.page.evaluate(SIDEBAR_SHOWN)
    assert page.page.evaluate(BODY_FONT) >= MIN_BODY_PX
    page.page.screenshot(path=str(SCREENSHOTS / "lesson-present-step1.png"))

    steps = int(re.search(r"Step 1 of (\d+)", page.page.locator(".nll-step-count").first.inner_text()).group(1))
    assert steps >= 3
    for number in range(2, steps + 1):                        # the whole lesson, one screen a step
        page.page.get_by_role("button", name="Next").first.click()
        step_shown(page, number)
        assert "lesson=levels" in page.page.url and "present=1" in page.page.url
        assert page.page.evaluate(BODY_FONT) >= MIN_BODY_PX
        page.page.screenshot(path=str(SCREENSHOTS / f"lesson-present-step{number}.png"))
    assert page.page.get_by_role("button", name="Next").first.is_disabled()

    page.page.get_by_role("button", name="Back").first.click()
    step_shown(page, steps - 1)
    assert "lesson=levels" in page.page.url and "present=1" in page.page.url
    assert_clean(page)


def test_a_link_opens_that_exact_step(app_url, page):
    page.page.goto(f"{app_url}/lessons?lesson=forgetting&step=3", wait_until="domcontentloaded")
    step_shown(page, 3)
    assert page.page.get_by_text("Step 3 of").count() >= 1
    assert page.page.get_by_text("What you are looking at").count() >= 1       # not presenting: the page's header
    assert_clean(page)


def test_a_student_joins_with_the_code_and_the_teacher_sees_the_answer(app_url, browser_context, page):
    teacher = page
    teacher.page.goto(f"{app_url}/lessons?lesson=forgetting&step=2", wait_until="domcontentloaded")
    step_shown(teacher, 2)
    teacher.page.get_by_text("Class poll").first.click()
    teacher.page.get_by_role("button", name="Start a class poll").click()
    code_box = teacher.page.locator(".nll-code b")
    code_box.wait_for(timeout=LOAD_TIMEOUT_MS)
    code = code_box.inner_text().strip()
    assert re.fullmatch(r"[A-Z2-9]{6}", code), code
    wait_idle(teacher)
    assert teacher.page.evaluate(POLL_ANSWERS) == 0

    student = Tab(browser_context.new_page())
    try:
        student.page.goto(f"{app_url}/class", wait_until="domcontentloaded")
        wait_idle(student)
        student.page.get_by_label("Class code").fill("ZZZZZZ")
        student.page.get_by_role("button", name="Join").click()
        student.page.get_by_text("No class with the code").first.wait_for(timeout=LOAD_TIMEOUT_MS)
        student.page.get_by_label("Class code").fill(code.lower())
        student.page.get_by_role("button", name="Join").click()
        student.page.get_by_text("almost nothing").first.wait_for(timeout=LOAD_TIMEOUT_MS)
        student.page.get_by_text("almost nothing").first.click()
        student.page.get_by_role("button", name="Send").click()
        student.page.get_by_text("Your prediction is in").first.wait_for(timeout=LOAD_TIMEOUT_MS)
        student.page.screenshot(path=str(SCREENSHOTS / "lesson-student.png"), full_page=True)
        assert_clean(student)
    finally:
        student.page.close()

    teacher.page.wait_for_function(f"() => ({POLL_ANSWERS})() === 1", timeout=LOAD_TIMEOUT_MS)
    teacher.page.screenshot(path=str(SCREENSHOTS / "lesson-teacher-poll.png"), full_page=True)
    assert_clean(teacher)
