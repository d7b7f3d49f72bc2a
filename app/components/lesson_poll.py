"""The class poll in the app: one `lab.classroom.Classroom` per server (every browser session of the
server shares it: it holds anonymous answers only, bounded and expiring, behind a lock), the teacher's
controls and live results on the Lessons page, and the students' side on the "Join a class" page.

A teacher's class lives in their browser session as (code, secret token); a student's as (code,
token). Messages that repeat what someone typed (a wrong code) are shown as text (`as_text`).
"""
from __future__ import annotations

import math

import streamlit as st

from app.components.charts import chart
from app.components.sessions import as_text
from lab.classroom import Classroom, PollError
from lab.lessons.figures import poll_figure

TEACHER, STUDENT, PROBLEM = "poll_teacher", "poll_student", "poll_problem"
REFRESH_S = 2.0


@st.cache_resource(show_spinner=False)
def classroom() -> Classroom:
    """The server's one class poll (shared on purpose: students and teacher meet in it)."""
    return Classroom()


def _problem() -> None:
    text = st.session_state.pop(PROBLEM, None)
    if text:
        st.error(as_text(text))


# --- the teacher -----------------------------------------------------------------------------------

def _start(lesson: str) -> None:
    try:
        st.session_state[TEACHER] = classroom().start(lesson)
    except PollError as err:
        st.session_state[PROBLEM] = str(err)


def _end() -> None:
    code, teacher = st.session_state.pop(TEACHER)
    try:
        classroom().end(code, teacher)
    except PollError:
        pass                                    # expired already: nothing to end


def class_controls(session) -> None:
    """Start a class (a code for the students) or show the running one's code, and end it."""
    _problem()
    held = st.session_state.get(TEACHER)
    if held is None:
        st.button("Start a class poll", key="poll_start", icon=":material/groups:", on_click=_start,
                  args=(session.settings.lesson,), help="Students join on their own devices with a short code and "
                                                        "send their predictions; you see them before the reveal.")
        return
    code = held[0]                              # made by the poll from its own alphabet: safe to show as HTML
    st.markdown(f"<div class='nll-code'>Class code <b>{code}</b></div>", unsafe_allow_html=True)
    st.caption("Students: open “Join a class” on this server and enter the code. Answers are anonymous and kept in "
               "memory only.")
    st.button("End the class", key="poll_end", icon=":material/logout:", on_click=_end)


def _reveal(session, code: str, teacher: str, key: str) -> None:
    try:
        classroom().reveal(code, teacher, key)
    except PollError as err:
        st.session_state[PROBLEM] = str(err)
    session.reveal()


def _results(session, code: str, teacher: str, key: str) -> None:
    try:
        tally = classroom().tally(code, teacher, key)
    except PollError as err:
        st.warning(as_text(str(err)))
        return
    measured = session.measured_answer()
    value = getattr(measured, "value", None)
    chart(poll_figure(tally, value if isinstance(value, float) and math.isfinite(value) else None),
          f"poll_{key.replace('/', '_')}")


def class_poll(session) -> bool:
    """While a class runs: ask the class this step's question, show its answers live and a Reveal
    button. False (nothing drawn) when no class runs."""
    held = st.session_state.get(TEACHER)
    step = session.step
    if held is None or step is None or step.predict is None:
        return False
    code, teacher = held
    key, predict = f"{session.settings.lesson}/{step.number}", step.predict
    try:
        classroom().ask(code, teacher, key, session.fill(predict.question), predict.choices, predict.low, predict.high)
    except PollError as err:
        st.session_state.pop(TEACHER, None)
        st.warning(as_text(f"The class poll ended: {err}"))
        return False
    st.fragment(_results, run_every=None if session.revealed_now else REFRESH_S)(session, code, teacher, key)
    if not session.revealed_now:
        st.button("Reveal to the class", key=f"poll_reveal_{key}", type="primary", icon=":material/visibility:",
                  on_click=_reveal, args=(session, code, teacher, key))
    return True


# --- the students ----------------------------------------------------------------------------------------

def _join() -> None:
    code = st.session_state.get("poll_code", "")
    try:
        st.session_state[STUDENT] = (Classroom.normalise(code), classroom().join(code))
    except PollError as err:
        st.session_state[PROBLEM] = str(err)


def _answer(code: str, student: str, key: str, widget: str) -> None:
    try:
        classroom().answer(code, student, key, st.session_state.get(widget))
    except PollError as err:
        st.session_state[PROBLEM] = str(err)


def _question(code: str, student: str) -> None:
    room = classroom()
    try:
        question = room.current(code)
    except PollError as err:
        st.session_state.pop(STUDENT, None)
        st.error(as_text(str(err)))
        return
    if question is None:
        st.info("Waiting for the teacher's first question…")
        return
    st.markdown(f"**{as_text(question.title)}**")
    widget = f"poll_answer_{question.key}"
    if question.choices:
        st.radio("Your prediction", question.choices, index=None, key=widget)
    else:
        st.number_input("Your prediction", question.low, question.high, value=None, key=widget)
    st.button("Send", key=f"poll_send_{question.key}", type="primary", on_click=_answer,
              args=(code, student, question.key, widget))
    mine = room.my_answer(code, student, question.key)
    if mine is not None:
        st.success(as_text(f"Your prediction is in: {mine:g}" if isinstance(mine, float) else
                           f"Your prediction is in: {mine}") + ". You can change it until the reveal.")
    try:
        chart(poll_figure(room.tally(code, None, question.key)), f"poll_student_{question.key.replace('/', '_')}")
    except PollError:
        st.caption("The class's answers appear here after the teacher's reveal.")


def student_view() -> None:
    """Join with a code, then answer the question the teacher's screen shows now (followed live)."""
    _problem()
    held = st.session_state.get(STUDENT)
    if held is None:
        st.text_input("Class code", max_chars=12, key="poll_code", placeholder="e.g. K7QX2M")
        st.button("Join", key="poll_join", type="primary", icon=":material/login:", on_click=_join)
        return
    code, student = held
    st.markdown(f"You are in class **{as_text(code)}**. No name is kept: your answers are anonymous.")
    st.button("Leave the class", key="poll_leave", on_click=lambda: st.session_state.pop(STUDENT, None))
    st.fragment(_question, run_every=REFRESH_S)(code, student)
