"""Forgetting: Transformer, Titans and HOPE side by side on one stream of tasks."""
from __future__ import annotations

import streamlit as st

from app.components.forgetting_form import settings_form
from app.components.forgetting_state import current_job, pop_notices, run_pending, shipped
from app.components.forgetting_views import rerun_panel, result_picker, result_view
from app.components.shell import configure_torch, page_setup, show_notices

page_setup(
    "Forgetting",
    "the three architectures trained on the identical stream of tasks (same data, same order, same seed): "
    "how much of each earlier task every one of them keeps while new tasks arrive.",
    "read the shipped comparison below at once, or set up your own in the sidebar and press Run comparison; "
    "open “Re-run … live” to check that the shipped numbers come out again.",
)
configure_torch()                      # the same thread setting as the CLI: the same numbers
form_slot = settings_form()            # a run's progress also shows under the form's button
show_notices(pop_notices())
top_slot = st.empty()                  # the progress of a comparison being trained
label, comparison, agreement = result_picker()
reference, _ = shipped()
rerun_slot = rerun_panel(reference) if reference is not None else None
if comparison is not None:
    result_view(label, comparison, agreement)
job = current_job()
if job is not None and job["purpose"] == "rerun" and rerun_slot is not None:
    run_pending(rerun_slot)            # last: everything above is on screen while it trains
else:
    run_pending(top_slot, form_slot)
