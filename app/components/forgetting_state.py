"""The Forgetting page's per-session state: the comparisons run in this session, the one shown,
and the one being trained (a `lab.compare.ComparisonJob`, advanced at the end of each script run
with a progress bar). The shipped comparison (assets/forgetting/) is read once per process and
shared read-only.

Keys in st.session_state (prefix fg_):
    fg_results   {label: {"comparison": Comparison, "agreement": dict | None, "key": str}}
    fg_shown     the label of the result on screen (SHIPPED for the shipped one)
    fg_job       {"job": ComparisonJob, "label": str, "purpose": "run" | "rerun", "key": str} or None
    fg_notices   [(kind, text)] shown once under the header
"""
from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from lab.compare import Comparison, ComparisonError, ComparisonJob, check_agreement

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "forgetting"
SHIPPED = "The shipped default comparison (precomputed)"
RESULTS, SHOWN, JOB, NOTICES = "fg_results", "fg_shown", "fg_job", "fg_notices"
log = logging.getLogger("nll.app")


@st.cache_resource(show_spinner=False)
def _load_shipped(folder: str) -> tuple[Comparison | None, str | None]:
    """Read once per process; the comparison is never modified (pages only read it)."""
    try:
        return Comparison.load(folder), None
    except ValueError as err:
        return None, str(err)


def shipped() -> tuple[Comparison | None, str | None]:
    """(the shipped comparison, None) or (None, why it cannot be shown)."""
    if not (ASSETS / "summary.json").is_file():
        return None, (f"The precomputed comparison is missing from {ASSETS.name}/. Make it with the command in "
                      "assets/forgetting/README.md, or run a comparison live with the form in the sidebar.")
    return _load_shipped(str(ASSETS))


def results() -> dict:
    return st.session_state.setdefault(RESULTS, {})


def notices() -> list[tuple[str, str]]:
    return st.session_state.setdefault(NOTICES, [])


def add_notice(kind: str, text: str) -> None:
    if (kind, text) not in notices():
        notices().append((kind, text))


def pop_notices() -> list[tuple[str, str]]:
    out = list(notices())
    st.session_state[NOTICES] = []
    return out


def current_job() -> dict | None:
    return st.session_state.get(JOB)


def start_job(job: ComparisonJob, label: str, purpose: str, key: str) -> None:
    if current_job() is not None:
        add_notice("info", f"The unfinished comparison “{current_job()['label']}” was dropped for the new one.")
    st.session_state[JOB] = {"job": job, "label": label, "purpose": purpose, "key": key}


def stop_job() -> None:
    job = current_job()
    if job is not None:
        add_notice("info", f"Stopped “{job['label']}” at {100 * job['job'].fraction:.0f} %; nothing of it is kept.")
    st.session_state[JOB] = None


def find_result(key: str) -> str | None:
    """The label of a kept result made with the same settings (key), if any."""
    return next((label for label, r in results().items() if r["key"] == key), None)


def shown_label() -> str:
    label = st.session_state.get(SHOWN)
    if label == SHIPPED or label in results():
        return label
    return next(reversed(results()), SHIPPED) if results() else SHIPPED


def show(label: str) -> None:
    st.session_state[SHOWN] = label


def run_pending(*slots) -> None:
    """Train the pending job to its end, redrawing a progress bar in every slot after each chunk
    (one at the top of the page, one next to the button that started it).

    Streamlit stops this loop whenever the user touches a widget (the next progress update
    raises); the job keeps its place in the session and continues at the end of the next run.
    """
    entry = current_job()
    if entry is None:
        return
    job: ComparisonJob = entry["job"]
    bars = []
    for i, slot in enumerate(slot for slot in slots if slot is not None):
        with slot.container(border=True):
            st.markdown(f"**Training:** {entry['label']}")
            bars.append(st.progress(job.fraction, text=job.label))
            st.button("Stop", key=f"fg_stop_{i}", icon=":material/stop:", on_click=stop_job,
                      help="Stop training; this comparison is dropped (the results already kept stay).")
    try:
        while not job.done:
            job.advance(budget_s=0.3)
            for bar in bars:
                bar.progress(job.fraction, text=f"{100 * job.fraction:.0f} % · {job.label}")
        comparison = job.result()
    except ComparisonError as err:
        st.session_state[JOB] = None
        add_notice("error", f"The comparison could not finish: {err}")
        st.rerun()
    except Exception as err:  # noqa: BLE001 - a teaching page must not show a traceback
        log.exception("comparison failed")
        st.session_state[JOB] = None
        add_notice("error", f"The comparison could not finish: {err}")
        st.rerun()
    agreement = None
    if entry["purpose"] == "rerun":
        reference, _ = shipped()
        agreement = check_agreement(reference, comparison) if reference is not None else None
    label = entry["label"]
    if label in results():
        label = f"{label} ({len(results()) + 1})"
    results()[label] = {"comparison": comparison, "agreement": agreement, "key": entry["key"]}
    st.session_state[JOB] = None
    show(label)
    st.rerun()
