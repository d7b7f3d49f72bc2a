"""Forgetting: Transformer, Titans and HOPE side by side on one stream of tasks."""
from __future__ import annotations

import streamlit as st

from app.components.forgetting_form import settings_form
from app.components.forgetting_shipped import build_forgetting_session
from app.components.sessions import session_for, show_notices, work_while_busy
from app.components.shell import configure_torch, page_setup
from app.panels import forgetting as panels

page_setup(
    "Forgetting",
    "the three architectures trained on the identical stream of tasks (same data, same order, same seed): "
    "how much of each earlier task every one of them keeps while new tasks arrive.",
    "read the shipped comparison below at once, or set up your own in the sidebar and press Run comparison; "
    "open “Re-run … live” to check that the shipped numbers come out again.",
)
configure_torch()                      # the same thread setting as the CLI: the same numbers
session = session_for("forgetting", build_forgetting_session)      # holds the shipped reference comparison
form_slot = settings_form(session)     # a run's progress also shows under the form's button
show_notices(session)
top_slot = st.empty()                  # the progress of a comparison being trained
panels.forgetting_picker(session)
panels.forgetting_rerun(session)
rerun_slot = st.empty()                # the progress of a live re-run, under its button
panels.forgetting_reading(session)
panels.forgetting_table(session)
panels.forgetting_method(session)
panels.forgetting_curves(session)
panels.accuracy_matrix(session)
panels.forgetting_differences(session)
panels.forgetting_exports(session)
slots = (rerun_slot,) if session.rerunning else (top_slot, form_slot)
work_while_busy(session, *slots, title=f"Training: {session.pending_label}")   # last: all above is on screen
