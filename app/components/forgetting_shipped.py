"""The shipped reference comparison (assets/forgetting/), read once per process and shared
read-only by every browser session (DESIGN.md principle 7: shared caches hold only immutable
things), and the Forgetting session built around it."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from lab.forgetting import Comparison
from lab.sessions.forgetting import ForgettingSession

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "forgetting"


@st.cache_resource(show_spinner=False)
def _load_shipped(folder: str) -> tuple[Comparison | None, str | None]:
    """Read once per process; the comparison is never modified (sessions and panels only read it)."""
    try:
        return Comparison.load(folder), None
    except ValueError as err:
        return None, str(err)


def shipped() -> tuple[Comparison | None, str | None]:
    """(the shipped comparison, None) or (None, why it cannot be shown)."""
    if not (Path(ASSETS) / "summary.json").is_file():
        return None, (f"The precomputed comparison is missing from {Path(ASSETS).name}/. Make it with the command in "
                      "assets/forgetting/README.md, or run a comparison live with the form in the sidebar.")
    return _load_shipped(str(ASSETS))


def build_forgetting_session() -> ForgettingSession:
    """A new ForgettingSession holding the shipped comparison (or the reason there is none)."""
    comparison, problem = shipped()
    return ForgettingSession(shipped=comparison, shipped_problem=problem)
