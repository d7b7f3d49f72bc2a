"""Claims: the nested-learning papers' claims put to the test, one card each, verdicts computed."""
from __future__ import annotations

import streamlit as st

from app.components.claims_shipped import build_claims_session
from app.components.live import work_area
from app.components.sessions import session_for, show_notices
from app.components.shell import page_setup
from app.panels import claims as panels
from lab.claims import VERDICTS

page_setup(
    "Claims",
    "the claims of the nested-learning papers, each as a card: the lab's experiment and controls, the verdict computed "
    "from five seeds with a 95 % interval, the effect per seed, a map of where in the lab's knobs it holds, and the "
    "command that reproduces it.",
    "read the verdicts at a glance, then open a card; “Re-run one trial live” checks that a stored number comes out "
    "again.",
)
session = session_for("claims", build_claims_session)
verdict = st.segmented_control("Show", ("all", *VERDICTS), default="all",
                               key="cl_filter", required=True)
if verdict != session.settings.verdicts:
    session.configure(verdicts=verdict)
show_notices(session)
panels.claims_overview(session)
slot = st.empty()
panels.claim_cards(session)
work_area(session, slot, title="Re-running one trial")
