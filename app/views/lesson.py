"""Lessons: guided lessons over live models. Predict, then watch the panel run, then read what the
run's own records say. `?lesson=…&step=…` opens a step; `?present=1` is presenter mode."""
from __future__ import annotations

import streamlit as st

from app.components.lesson_page import follow_url, lesson_index, lesson_session, lesson_step, presenter_toggle, presenting
from app.components.lesson_poll import class_controls, class_poll
from app.components.live import work_area
from app.components.sessions import show_notices
from app.components.shell import configure_torch, page_setup

configure_torch()                       # the CLI's thread setting: the same numbers
session = lesson_session()
follow_url(session)
present, lesson = presenting(), session.lesson
page_setup(
    lesson.title if present and lesson else "Lessons",
    "guided lessons, one per mechanism of nested learning: each states what the papers claim, asks for your "
    "prediction, runs a panel of the lab, and fills its observation from the run's own records, with seeds and "
    "spread.",
    "open a lesson (or present it to a class), commit a prediction, then read what the run shows. Back and Next "
    "move between steps; the address bar is a link to the step on screen.",
    present=present,
)
left, right = st.columns([3, 1])
with right:
    presenter_toggle(session)
if lesson is not None:
    with left:
        st.caption(f"Lesson: {lesson.title} · {lesson.mechanism} · about {lesson.minutes} minutes")
        with st.expander("Class poll", expanded="poll_teacher" in st.session_state):
            class_controls(session)
show_notices(session)
if lesson is None:
    lesson_index(session)
    slot = None
else:
    with session.lock:                  # a worker's slice never changes the run being drawn
        slot = lesson_step(session, class_poll)
work_area(session, slot, title="Running this step")
