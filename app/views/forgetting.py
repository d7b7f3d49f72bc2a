"""Forgetting: Transformer, Titans and HOPE side by side on one stream of tasks, from scratch, or
deployed after pretraining with their levels learning while they read."""
from __future__ import annotations

import streamlit as st

from app.components.deploy_form import deploy_form
from app.components.forgetting_form import settings_form
from app.components.forgetting_shipped import build_deployment_session, build_forgetting_session
from app.components.live import work_area
from app.components.sessions import session_for, show_notices
from app.components.shell import configure_torch, page_setup
from app.panels import forgetting as panels

page_setup(
    "Forgetting",
    "the architectures trained on the identical stream of tasks (same data, same order, same seed): how much of "
    "each earlier task every one of them keeps while new tasks arrive; or, after pretraining, deployed on new "
    "languages that come and come back, frozen, fine-tuned, or with their CMS levels learning while they read.",
    "read the shipped comparison below at once, or set up your own in the sidebar and press Run; open “Re-run … "
    "live” to check that the shipped numbers come out again.",
)
configure_torch()                      # the same thread setting as the CLI: the same numbers
MODES = {"scratch": "Continual training from scratch", "deployment": "Deployment after pretraining"}
mode = st.segmented_control("Setting", tuple(MODES), format_func=MODES.get, default="scratch", key="fg_mode",
                            required=True)
if mode == "deployment":
    session = session_for("deployment", build_deployment_session)     # holds the shipped deployment
    form_slot = deploy_form(session)
else:
    session = session_for("forgetting", build_forgetting_session)     # holds the shipped reference comparison
    form_slot = settings_form(session)                                # a run's progress also shows under it
show_notices(session)
top_slot = st.empty()                  # the progress of a comparison being trained
panels.forgetting_picker(session)
panels.forgetting_rerun(session)
rerun_slot = st.empty()                # the progress of a live re-run, under its button
panels.forgetting_reading(session)
panels.forgetting_table(session)
panels.literature_anchors(session)
panels.forgetting_method(session)
panels.forgetting_curves(session)
panels.accuracy_matrix(session)
panels.forgetting_differences(session)
panels.forgetting_exports(session)
slots = (rerun_slot,) if session.rerunning else (top_slot, form_slot)
work_area(session, *slots, title=f"Training: {session.pending_label}")
