"""The shipped claim cards (assets/claims/), read once per process and shared read-only."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from lab.claims import load
from lab.sessions.claims import ClaimsSession

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "claims"


@st.cache_resource(show_spinner=False)
def _cards(folder: str) -> tuple[list[dict], str | None]:
    try:
        return load(folder), None
    except ValueError as err:
        return [], str(err)


def build_claims_session() -> ClaimsSession:
    cards, problem = _cards(str(ASSETS))
    if problem:
        problem = (f"The shipped claim cards are missing or unreadable ({problem}). Make them with "
                   "`python -m lab claims --out assets/claims`.")
    return ClaimsSession(cards, problem)
