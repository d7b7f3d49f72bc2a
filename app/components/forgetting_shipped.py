"""The shipped reference results (assets/forgetting/, assets/deployment/, the digits benchmarks in
assets/digits/), read once per process and
shared read-only by every browser session (DESIGN.md principle 7: shared caches hold only immutable
things), and the sessions built around them."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from lab.deploy.summary import Deployment
from lab.forgetting import Comparison
from lab.sessions.deployment import DeploymentSession
from lab.sessions.forgetting import ForgettingSession

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "forgetting"
DEPLOY_ASSETS = Path(__file__).resolve().parents[2] / "assets" / "deployment"
# the benchmarks the field knows, precomputed (assets/digits/README.md): picked like the shipped one
LIBRARY = {"Split-Digits, 5 tasks, class-incremental (precomputed)": "digits/split",
           "Split-Digits, HOPE with its memory bounded (precomputed)": "digits/split_hope",
           "Permuted-Digits (precomputed)": "digits/permuted",
           "Permuted-Digits, HOPE with its memory bounded (precomputed)": "digits/permuted_hope"}


@st.cache_resource(show_spinner=False)
def _load_shipped(folder: str, deployment: bool) -> tuple[Comparison | None, str | None]:
    """Read once per process; the result is never modified (sessions and panels only read it)."""
    try:
        return (Deployment if deployment else Comparison).load(folder), None
    except ValueError as err:
        return None, str(err)


def shipped(folder: Path | None = None, deployment: bool = False) -> tuple[Comparison | None, str | None]:
    """(the shipped result, None) or (None, why it cannot be shown)."""
    folder = Path(folder or (DEPLOY_ASSETS if deployment else ASSETS))
    if not (folder / "summary.json").is_file():
        return None, (f"The precomputed result is missing from {folder.name}/. Make it with the command in "
                      f"assets/{folder.name}/README.md, or run one live with the form in the sidebar.")
    return _load_shipped(str(folder), deployment)


def build_forgetting_session() -> ForgettingSession:
    """A new ForgettingSession holding the shipped comparison (or the reason there is none) and the
    precomputed benchmarks that ship (one that is missing or unreadable is left out)."""
    comparison, problem = shipped(ASSETS)
    library = {}
    for label, folder in LIBRARY.items():
        result, _ = shipped(ASSETS.parent / folder)
        if result is not None:
            library[label] = (result, f"assets/{folder}/")
    return ForgettingSession(shipped=comparison, shipped_problem=problem, library=library)


def build_deployment_session() -> DeploymentSession:
    """A new DeploymentSession holding the shipped deployment (or the reason there is none)."""
    result, problem = shipped(DEPLOY_ASSETS, deployment=True)
    return DeploymentSession(shipped=result, shipped_problem=problem)
