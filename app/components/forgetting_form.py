"""The Forgetting page's setup form (sidebar): stream, architectures, methods, seeds.

Nothing trains until "Run comparison" is pressed. The values go to `session.configure`, which
makes them a `lab.forgetting.ForgetSettings`, the very object `python -m lab forget` builds from its
options, so the page and the CLI run the same comparison for the same settings. A value the form
cannot prevent from being wrong gets a message naming it (a session notice); nothing runs then.
"""
from __future__ import annotations

import streamlit as st

from lab.forgetting import DEFAULT_REPLAY, ForgetSettings
from lab.models import MODELS, PRESETS
from lab.sessions.forgetting import ForgettingSession
from lab.tasks.stream import KINDS
from lab.viz.palette import model_label

STREAM_LABELS = {"languages": "synthetic languages (translate)", "recall": "associative recall (key → value)",
                 "two_languages": "two languages learned in context",
                 "split_digits": "Split-Digits (8×8 images, two classes a task)",
                 "permuted_digits": "Permuted-Digits (8×8 images, a pixel permutation a task)",
                 "tracking": "state tracking (parity, sums mod k, permutations)"}
OVERLAPS = (0.0, 0.25, 0.5, 0.75, 1.0)
OVERLAP_LABELS = {0.0: "disjoint", 0.25: "a quarter shared", 0.5: "half shared", 0.75: "three quarters shared",
                  1.0: "conflicting (all shared)"}
WIDGETS = {"models": "models", "kind": "kind", "overlap": "overlap", "n_tasks": "tasks", "steps_per_task": "steps",
           "seeds": "seeds", "naive": "naive", "replay_on": "replay_on", "replay": "replay", "joint": "joint",
           "preset": "preset"}
SUBMIT = "Run comparison"


def _spec(name: str) -> dict:
    return next(s for s in ForgetSettings.field_specs() if s["name"] == name)


def _keys(key: str) -> dict[str, str]:
    """Each form value's widget key: "fg_models", "fg_tasks", …"""
    return {name: f"{key}_{suffix}" for name, suffix in WIDGETS.items()}


def _initial(settings: ForgetSettings) -> dict:
    """The widgets' first values: the session's settings (the defaults, on a new session)."""
    overlap = min(OVERLAPS, key=lambda o: abs(o - settings.overlap))
    return {"models": list(settings.models), "kind": settings.kind, "overlap": overlap, "n_tasks": settings.n_tasks,
            "steps_per_task": settings.steps_per_task, "seeds": settings.seeds, "naive": "naive" in settings.methods,
            "replay_on": "replay" in settings.methods, "replay": settings.replay, "joint": settings.joint,
            "preset": settings.preset}


def submit(session: ForgettingSession, key: str) -> None:
    """The form's values to the session: it queues the comparison (or shows the kept one, or says
    which value cannot run)."""
    s, keys = st.session_state, _keys(key)
    methods = [m for m, on in (("naive", s[keys["naive"]]), ("replay", s[keys["replay_on"]])) if on]
    models = list(s[keys["models"]])
    if not models:
        session.notices.add("error", "Choose at least one architecture to train.")
        return
    if not methods:
        session.notices.add("error", "Choose at least one method: naive sequential training, experience replay, "
                                     "or both.")
        return
    session.configure({"models": tuple(models), "methods": tuple(methods), "kind": s[keys["kind"]],
                       "overlap": float(s[keys["overlap"]]), "n_tasks": int(s[keys["n_tasks"]]),
                       "steps_per_task": int(s[keys["steps_per_task"]]), "seeds": int(s[keys["seeds"]]),
                       "replay": int(s[keys["replay"]]), "joint": bool(s[keys["joint"]]), "preset": s[keys["preset"]]})


def settings_form(session: ForgettingSession, key: str = "fg"):
    """The form in the sidebar; returns a placeholder under it (for the progress of a run)."""
    keys = _keys(key)
    for name, value in _initial(session.settings).items():
        st.session_state.setdefault(keys[name], value)
    steps, tasks, seeds, replay = _spec("steps_per_task"), _spec("n_tasks"), _spec("seeds"), _spec("replay")
    with st.sidebar.form(f"{key}_setup", border=False):
        st.subheader("Comparison")
        st.multiselect("Architectures", tuple(MODELS), key=keys["models"], format_func=model_label,
                       help="Each one trains on the identical stream: same tasks, same batches, same order, same seed.")
        st.selectbox("Task stream", KINDS, key=keys["kind"], format_func=STREAM_LABELS.get,
                     help="The three synthetic languages are the default.")
        st.select_slider("Vocabularies", OVERLAPS, key=keys["overlap"], format_func=lambda o: OVERLAP_LABELS[o],
                         help=_spec("overlap")["doc"] + ". Disjoint tests capacity, conflicting tests interference.")
        left, right = st.columns(2)
        left.number_input("Tasks", min_value=tasks["lo"], max_value=tasks["hi"], step=1, key=keys["n_tasks"],
                          help=tasks["doc"])
        right.number_input("Steps per task", min_value=steps["lo"], max_value=steps["hi"], step=10,
                           key=keys["steps_per_task"], help=steps["doc"])
        st.number_input("Seeds", min_value=seeds["lo"], max_value=seeds["hi"], step=1, key=keys["seeds"],
                        help="Seeds 0, 1, …: each seed sets the stream and the initialisation. More seeds give the "
                             "spread (± std) but take proportionally longer.")
        st.markdown("**Methods** (the scale for “less forgetting”)")
        st.checkbox("Naive sequential training", key=keys["naive"], help="One task after another, nothing else.")
        st.checkbox("Experience replay (classical baseline)", key=keys["replay_on"],
                    help="Half of each batch is drawn from a small buffer of earlier tasks' sequences. "
                         "Any architecture can use it; it is not part of any of them.")
        st.number_input("Replay buffer (sequences)", min_value=replay["lo"], max_value=replay["hi"], step=16,
                        key=keys["replay"], help=f"Default {DEFAULT_REPLAY}: about 1 % of the default stream.")
        st.checkbox("Joint reference (intransigence)", key=keys["joint"],
                    help="Also train, for each k, a fresh model on tasks 1..k mixed together for as many steps: "
                         "intransigence = its accuracy on task k minus R[k][k]. Roughly doubles the time.")
        st.radio("Size preset", tuple(PRESETS), key=keys["preset"], horizontal=True,
                 help="tiny = half the width of small, medium = twice.")
        st.form_submit_button(SUBMIT, type="primary", on_click=submit, args=(session, key), width="stretch")
    return st.sidebar.empty()
