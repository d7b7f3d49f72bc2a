"""Sleep: train HOPE on a stream task by task, let it sleep, and see where its knowledge moved."""
from __future__ import annotations

import streamlit as st

from app.components.live import work_area
from app.components.sessions import session_for, show_notices
from app.components.shell import page_setup
from app.components.sleep_form import sleep_controls, sleep_form
from app.panels import attribution
from app.panels import sleep as panels

page_setup(
    "Sleep",
    "HOPE learning a stream of languages one task at a time, and a sleep phase between tasks: dreams from the "
    "model itself, distillation of the fast CMS level into the slow one, growth then pruning. The knowledge map "
    "says which level each task needs, before and after the sleep.",
    "choose the size in the sidebar, press “Train next task”, then “Sleep now” (or tick “sleep after each task”). "
    "Compare the maps, the accuracy bars and the dreams below.",
)
session = session_for("sleep")
sleep_form(session)
show_notices(session)
sleep_controls(session)
progress = st.empty()
panels.sleep_summary(session)
left, right = st.columns(2)
with left:
    panels.knowledge_map(session)
with right:
    panels.knowledge_transition(session)
attribution.sleep_attribution(session)                   # the attribution map beside the lesion map
left, right = st.columns(2)
with left:
    panels.sleep_accuracy(session)
with right:
    panels.dreams(session)
left, right = st.columns(2)
with left:
    panels.sleep_params(session)
with right:
    panels.sleep_drift(session)
work_area(session, progress, title="Training and sleeping")
