"""The Lessons page and the "Join a class" page in AppTest: the list of lessons, every shipped lesson
rendered through all its steps, a prediction committed before the panel runs, an observation filled
from the shipped records with seeds and spread, presenter mode with the lesson and step in the URL,
a bad URL, and the class poll (a student's answer reaches the teacher's count; a wrong code gets a
message).

The training pool is replaced by one that does nothing, so nothing trains behind the test's back:
a test that wants a step's run drives the session itself (`finish`)."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

import app.components.live as live
from app.components.lesson_page import lesson_library
from app.components.lesson_poll import classroom
from tests.app.helpers import ROOT, TIMEOUT, assert_healthy, errors, shown

LESSON_PAGE = ROOT / "app" / "views" / "lesson.py"
CLASS_PAGE = ROOT / "app" / "views" / "classroom.py"


class IdlePool:
    def want(self, session) -> None:
        pass

    def place(self, session):
        return None


@pytest.fixture(autouse=True)
def idle_pool(monkeypatch):
    monkeypatch.setattr(live, "pool", lambda: IdlePool())


def open_lesson(query: dict | None = None, page=LESSON_PAGE) -> AppTest:
    at = AppTest.from_file(str(page), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    return at.run()


def lesson_of(at: AppTest):
    return at.session_state["session:lesson"]


def texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def finish(session) -> None:
    while session.busy:
        session.advance(1.0)


def test_the_index_lists_every_lesson_with_open_and_present():
    at = open_lesson()
    assert_healthy(at)
    library = lesson_library()
    assert len(library.lessons) >= 10 and not library.problems
    body = texts(at)
    for lesson in library.lessons:
        assert f"#### {lesson.title}" in body
        assert at.button(key=f"ls_open_{lesson.id}") and at.button(key=f"ls_present_{lesson.id}")
    at.button(key="ls_open_forgetting").click().run()
    assert dict(at.query_params) == {"lesson": "forgetting", "step": "1"}
    assert lesson_of(at).settings.lesson == "forgetting" and at.header[0].value.startswith("1. ")


@pytest.mark.parametrize("lesson_id", [lesson.id for lesson in lesson_library().lessons])
def test_every_lesson_renders_through_all_its_steps(lesson_id):
    """Every step, revealed without a prediction; a step's live run is stopped at once (its panels then
    draw the run as it is), so the walk is quick: what a run measures is tested on its own below."""
    at = open_lesson({"lesson": lesson_id, "step": "1"})
    session = lesson_of(at)
    lesson = session.lesson
    for step in lesson.steps:
        assert_healthy(at)
        assert not errors(at), errors(at)
        assert session.settings.step == step.number and at.query_params["step"] == str(step.number)
        assert at.header[0].value.startswith(f"{step.number}. ")
        if step.predict is not None:
            assert "Predict." in texts(at) and not session.revealed_now
            at.button(key=f"ls_{lesson_id}_{step.number}_reveal").click().run()
            assert session.revealed_now
        if session.busy:
            session.stop()
            at.run()
        assert_healthy(at)
        if step.number < len(lesson.steps):
            at.button(key="ls_next_bottom").click().run()
    assert at.button(key="ls_next_bottom").disabled


def test_a_committed_prediction_runs_the_step_and_the_observation_reads_the_records():
    at = open_lesson({"lesson": "forgetting", "step": "3"})
    session = lesson_of(at)
    assert "What the run shows" not in texts(at)
    at.radio(key="ls_forgetting_3_choice").set_value("it reduces it a lot").run()
    at.button(key="ls_forgetting_3_commit").click().run()
    assert session.answer == "it reduces it a lot"
    body = texts(at)
    assert "Your prediction: **it reduces it a lot**" in body
    observation = next(m.value for m in at.markdown if m.value.startswith("Backward transfer"))
    assert "mean ± std over" in observation and "seeds" in observation and "(not available)" not in observation
    shipped = session.inner.shipped
    assert f"over {len(shipped.seeds)} seeds" in observation
    assert at.button(key="ls_rerun_forgetting_3")            # the shipped result can be re-run live


def test_presenter_mode_keeps_the_lesson_and_step_in_the_url():
    at = open_lesson({"lesson": "levels", "step": "1", "present": "1"})
    assert_healthy(at)
    assert "What you are looking at" not in texts(at)
    assert any("nll-present" in m.value for m in at.markdown)
    assert at.title[0].value == lesson_of(at).lesson.title
    at.button(key="ls_next_top").click().run()
    assert dict(at.query_params) == {"lesson": "levels", "step": "2", "present": "1"}
    assert lesson_of(at).settings.step == 2
    at.button(key="ls_back_top").click().run()
    assert dict(at.query_params) == {"lesson": "levels", "step": "1", "present": "1"}
    at.toggle(key="ls_present").set_value(False).run()
    assert dict(at.query_params) == {"lesson": "levels", "step": "1"}


def test_a_bad_lesson_or_step_in_the_url_gets_a_message():
    at = open_lesson({"lesson": "no-such-lesson", "step": "2"})
    assert_healthy(at)
    assert any("no-such-lesson" in e and "must be one of" in e for e in errors(at)), errors(at)
    assert lesson_of(at).settings.lesson == "" and "lessons.**" in texts(at)
    at = open_lesson({"lesson": "levels", "step": "99"})
    assert any("step" in e for e in errors(at)) and lesson_of(at).settings.lesson == ""


def test_a_student_answer_reaches_the_teachers_poll_and_a_wrong_code_gets_a_message():
    teacher = open_lesson({"lesson": "forgetting", "step": "2"})
    teacher.button(key="poll_start").click().run()
    code, _ = teacher.session_state["poll_teacher"]
    assert code in texts(teacher)
    assert "forgetting/2" in [q for q in classroom().classes[code].questions]

    student = open_lesson(page=CLASS_PAGE)
    student.text_input(key="poll_code").input("WRONG1").run()
    student.button(key="poll_join").click().run()
    assert any("No class with the code" in e for e in errors(student)), errors(student)
    student.text_input(key="poll_code").input(code.lower()).run()
    student.button(key="poll_join").click().run()
    assert "poll_student" in student.session_state
    student.radio(key="poll_answer_forgetting/2").set_value("almost nothing").run()
    student.button(key="poll_send_forgetting/2").click().run()
    assert any("Your prediction is in: almost nothing" in shown(s.value) for s in student.success)

    teacher.run()                                         # the teacher's screen, redrawn
    figure = next(c for c in teacher.get("plotly_chart") if c.key == "poll_forgetting_2")
    bars = json.loads(figure.proto.spec)["data"][0]
    assert dict(zip(bars["y"], bars["x"])) == {"almost all of it": 0, "about half": 0, "almost nothing": 1}
    teacher.button(key="poll_reveal_forgetting/2").click().run()
    assert lesson_of(teacher).revealed_now
