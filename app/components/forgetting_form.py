"""The Forgetting page's setup form (sidebar): stream, architectures, methods, seeds.

Nothing trains until "Run comparison" is pressed. The values become a
`lab.compare.ForgetSettings`, the very object `python -m lab forget` builds from its options, so
the page and the CLI run the same comparison for the same settings. A value the form cannot
prevent from being wrong gets a message naming it; nothing runs then.
"""
from __future__ import annotations

import streamlit as st

from app.components.forgetting_state import add_notice, find_result, show, start_job
from lab.compare import DEFAULT_REPLAY, ForgetSettings, method_label
from lab.config import ConfigError
from lab.models import MODELS, PRESETS
from lab.tasks.stream import KINDS

STREAM_LABELS = {"languages": "synthetic languages (translate)", "recall": "associative recall (key → value)",
                 "two_languages": "two languages learned in context"}
MODEL_LABELS = {"transformer": "Transformer", "titans": "Titans", "hope": "HOPE"}
OVERLAPS = (0.0, 0.25, 0.5, 0.75, 1.0)
OVERLAP_LABELS = {0.0: "disjoint", 0.25: "a quarter shared", 0.5: "half shared", 0.75: "three quarters shared",
                  1.0: "conflicting (all shared)"}
KEYS = {"models": "fg_models", "kind": "fg_kind", "overlap": "fg_overlap", "n_tasks": "fg_tasks",
        "steps_per_task": "fg_steps", "seeds": "fg_seeds", "naive": "fg_naive", "replay_on": "fg_replay_on",
        "replay": "fg_replay", "joint": "fg_joint", "preset": "fg_preset"}
SUBMIT = "Run comparison"


def _spec(name: str) -> dict:
    return next(s for s in ForgetSettings.field_specs() if s["name"] == name)


def _defaults() -> dict:
    d = ForgetSettings()
    overlap = min(OVERLAPS, key=lambda o: abs(o - d.overlap))
    return {"models": list(d.models), "kind": d.kind, "overlap": overlap, "n_tasks": d.n_tasks,
            "steps_per_task": d.steps_per_task, "seeds": d.seeds, "naive": "naive" in d.methods,
            "replay_on": "replay" in d.methods, "replay": d.replay, "joint": d.joint, "preset": d.preset}


def settings_from_widgets() -> ForgetSettings | None:
    """The form's values as ForgetSettings; None (with a message) when they cannot run."""
    s = st.session_state
    methods = [m for m, on in (("naive", s[KEYS["naive"]]), ("replay", s[KEYS["replay_on"]])) if on]
    models = list(s[KEYS["models"]])
    if not models:
        add_notice("error", "Choose at least one architecture to train.")
        return None
    if not methods:
        add_notice("error", "Choose at least one method: naive sequential training, experience replay, or both.")
        return None
    try:
        return ForgetSettings(models=tuple(models), methods=tuple(methods), kind=s[KEYS["kind"]],
                              overlap=float(s[KEYS["overlap"]]), n_tasks=int(s[KEYS["n_tasks"]]),
                              steps_per_task=int(s[KEYS["steps_per_task"]]), seeds=int(s[KEYS["seeds"]]),
                              replay=int(s[KEYS["replay"]]), joint=bool(s[KEYS["joint"]]), preset=s[KEYS["preset"]])
    except ConfigError as err:
        add_notice("error", f"This comparison cannot run: {err}")
        return None


def describe_settings(settings: ForgetSettings) -> str:
    models = ", ".join(MODEL_LABELS.get(m, m) for m in settings.models)
    methods = " and ".join(method_label(m, settings.replay) for m in settings.methods)
    vocabulary = f", overlap {settings.overlap:g}" if settings.kind != "two_languages" else ""
    joint = ", with the joint reference" if settings.joint else ""
    return (f"{models} · {settings.n_tasks} × {settings.steps_per_task} steps of {settings.kind}{vocabulary} · "
            f"{methods} · {settings.seeds} seed{'s' if settings.seeds != 1 else ''} · {settings.preset}{joint}")


def submit() -> None:
    settings = settings_from_widgets()
    if settings is None:
        return
    key = settings.to_json()
    kept = find_result(key)
    if kept is not None:
        show(kept)
        add_notice("info", f"These settings were already run in this session: showing the kept result “{kept}”.")
        return
    start_job(settings.job(), describe_settings(settings), "run", key)


def settings_form():
    """The form in the sidebar; returns a placeholder under it (for the progress of a run)."""
    for name, value in _defaults().items():
        st.session_state.setdefault(KEYS[name], value)
    steps, tasks, seeds, replay = _spec("steps_per_task"), _spec("n_tasks"), _spec("seeds"), _spec("replay")
    with st.sidebar.form("fg_setup", border=False):
        st.subheader("Comparison")
        st.multiselect("Architectures", tuple(MODELS), key=KEYS["models"], format_func=MODEL_LABELS.get,
                       help="Each one trains on the identical stream: same tasks, same batches, same order, same seed.")
        st.selectbox("Task stream", KINDS, key=KEYS["kind"], format_func=STREAM_LABELS.get,
                     help="The three synthetic languages are the default.")
        st.select_slider("Vocabularies", OVERLAPS, key=KEYS["overlap"], format_func=lambda o: OVERLAP_LABELS[o],
                         help=_spec("overlap")["doc"] + ". Disjoint tests capacity, conflicting tests interference.")
        left, right = st.columns(2)
        left.number_input("Tasks", min_value=tasks["lo"], max_value=tasks["hi"], step=1, key=KEYS["n_tasks"],
                          help=tasks["doc"])
        right.number_input("Steps per task", min_value=steps["lo"], max_value=steps["hi"], step=10,
                           key=KEYS["steps_per_task"], help=steps["doc"])
        st.number_input("Seeds", min_value=seeds["lo"], max_value=seeds["hi"], step=1, key=KEYS["seeds"],
                        help="Seeds 0, 1, …: each seed sets the stream and the initialisation. More seeds give the "
                             "spread (± std) but take proportionally longer.")
        st.markdown("**Methods** (the scale for “less forgetting”)")
        st.checkbox("Naive sequential training", key=KEYS["naive"], help="One task after another, nothing else.")
        st.checkbox("Experience replay (classical baseline)", key=KEYS["replay_on"],
                    help="Half of each batch is drawn from a small buffer of earlier tasks' sequences. "
                         "Any architecture can use it; it is not part of any of them.")
        st.number_input("Replay buffer (sequences)", min_value=replay["lo"], max_value=replay["hi"], step=16,
                        key=KEYS["replay"], help=f"Default {DEFAULT_REPLAY}: about 1 % of the default stream.")
        st.checkbox("Joint reference (intransigence)", key=KEYS["joint"],
                    help="Also train, for each k, a fresh model on tasks 1..k mixed together for as many steps: "
                         "intransigence = its accuracy on task k minus R[k][k]. Roughly doubles the time.")
        st.radio("Size preset", tuple(PRESETS), key=KEYS["preset"], horizontal=True,
                 help="tiny = half the width of small, medium = twice.")
        st.form_submit_button(SUBMIT, type="primary", on_click=submit, width="stretch")
    return st.sidebar.empty()
