"""Playground: train one model live and look inside it, level by level."""
from __future__ import annotations

import streamlit as st

from app.components.live import live_area
from app.components.optimizer_race import optimizer_race
from app.components.sessions import session_for, show_notices
from app.components.setup_form import setup_form
from app.components.shell import page_setup
from app.components.transport import schedule_line, transport_bar
from app.panels import training as panels
from lab.sessions.playground import PlaygroundSession

page_setup(
    "Playground",
    "one model learning a stream of tasks, live: its loss, its accuracy on every task, and inside it "
    "when each CMS level updates, what it computes and how far it drifts.",
    "pick a setup in the sidebar and press Play (or Step). Drag the time scrubber to look back; "
    "the address bar is a link to this exact setup.",
)
session = session_for("playground", lambda: PlaygroundSession.from_params(st.query_params.to_dict()))
setup_form(session)
if st.query_params.to_dict() != session.params():
    st.query_params.from_dict(session.params())          # the address bar: a link to this setup
show_notices(session)
transport_bar(session)
schedule_line(session)


def live() -> None:
    panels.run_status(session)
    panels.time_scrubber(session)
    panels.loss_accuracy(session)
    panels.inside_views(session)


live_area(session, live)
optimizer_race(session)
