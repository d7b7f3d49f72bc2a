"""The Playground's setup: architecture, size, stream, CMS levels, optimizer, seed.

A form, so that nothing is rebuilt until "Apply and reset" is pressed. Widget ranges come
from the configs' own field specs; whatever the form cannot prevent (a chunk larger than the
stream, no level at all, a learning rate that diverges) is caught with a message and the
previous run stays.
"""
from __future__ import annotations

import streamlit as st

from lab.config import ConfigError
from lab.engine import RunConfig
from lab.online import OnlineConfig
from lab.models import MODELS, PRESETS, family_has
from lab.models.cms import MAX_LEVELS
from lab.models.hope import HopeConfig
from lab.optim import OPTIMIZERS
from lab.sessions.playground import PlaygroundSession
from lab.tasks.stream import KINDS, StreamConfig
from lab.urlstate import with_values
from lab.viz.palette import model_label

STREAM_LABELS = {"languages": "synthetic languages (translate)", "recall": "associative recall (key → value)",
                 "two_languages": "two languages learned in context",
                 "split_digits": "Split-Digits (8×8 images, two classes a task)",
                 "permuted_digits": "Permuted-Digits (8×8 images, a pixel permutation a task)",
                 "tracking": "state tracking (parity, sums mod k, permutations)"}
KEYS = {"model": "pg_model", "preset": "pg_preset", "stream": "pg_stream", "tasks": "pg_tasks",
        "steps": "pg_steps", "optimizer": "pg_optimizer", "lr": "pg_lr", "seed": "pg_seed", "online": "pg_online",
        "online_lr": "pg_online_lr", "trainable": "pg_trainable", "memory": "pg_memory_bound"}
MEMORY_BOUNDS = {"": f"the family's own ({HopeConfig().memory_bound})",
                 "none": "unbounded, as the equations are written",
                 "bounded": "bounded: unit-length values, weights in a ball"}
TRAINABLE = {"all": "every weight (outer optimizer)", "none": "nothing but the online levels"}
FAMILY_LEVELS, CHUNKS = "pg_family_levels", "pg_chunks"
NO_LEVELS = ("A model needs at least one CMS level: type one or more chunk sizes in tokens "
             "(for example 128, 512, 2048) or tick “the family's own levels”.")


def spec(cls, name: str) -> dict:
    return next(s for s in cls.field_specs() if s["name"] == name)


def seed_widgets(session: PlaygroundSession, force: bool = False) -> None:
    """Put the applied configuration into the widgets (all of them when `force`)."""
    c = session.config
    values = {"model": c.model, "preset": c.preset, "stream": c.stream.kind, "tasks": c.stream.n_tasks,
              "steps": c.stream.steps_per_task, "optimizer": c.optimizer, "lr": c.lr, "seed": c.seed,
              "online": c.online.enabled, "online_lr": c.online.lr, "trainable": c.trainable,
              "memory": c.memory_bound}
    state = {KEYS[k]: v for k, v in values.items()}
    state[FAMILY_LEVELS] = not c.cms_chunk_tokens
    state[CHUNKS] = ", ".join(str(t) for t in session.run.model.config.cms_chunk_tokens)
    for key, value in state.items():
        if force or key not in st.session_state:
            st.session_state[key] = value


def changes_from_widgets(session: PlaygroundSession) -> dict[str, object] | None:
    """The form's values as URL-style changes; None (with a message) when no level is given."""
    s = st.session_state
    changes = {name: s[key] for name, key in KEYS.items()}
    if s[FAMILY_LEVELS]:
        changes["chunks"] = ()
    else:
        text = str(s[CHUNKS]).strip()
        if not text.replace(",", "").replace(";", "").strip():
            session.notices.add("error", NO_LEVELS)
            return None
        changes["chunks"] = text
    same_levels = "".join(str(changes["chunks"]).split()).replace(";", ",").strip("(),") == \
        ",".join(map(str, session.config.cms_chunk_tokens))
    if not same_levels or changes["model"] != session.config.model:
        changes["level_lr"] = ()          # per-level rates (a URL's level_lr) belong to the levels they were set for
    if not family_has(changes["model"], "memory_bound"):
        changes["memory"] = ""            # only HOPE has a self-modifying memory
    return changes


def apply_setup(session: PlaygroundSession) -> None:
    session.stop()
    changes = changes_from_widgets(session)
    if changes is None:
        return
    try:
        config = with_values(session.config, changes)
    except ConfigError as err:
        session.notices.add("error", f"{session.refusal}: {err}")
        return
    session.notices.clear()
    if session.configure(config):
        seed_widgets(session, force=True)


def setup_form(session: PlaygroundSession) -> None:
    seed_widgets(session)
    steps, tasks, seed = spec(StreamConfig, "steps_per_task"), spec(StreamConfig, "n_tasks"), spec(RunConfig, "seed")
    lr = spec(RunConfig, "lr")
    with st.sidebar.form("pg_setup", border=False):
        st.subheader("Setup")
        st.radio("Architecture", tuple(MODELS), key=KEYS["model"], horizontal=True,
                 format_func=model_label, help="The model family to train.")
        st.radio("Size preset", tuple(PRESETS), key=KEYS["preset"], horizontal=True,
                 help="tiny = half the width of small, medium = twice.")
        st.selectbox("Task stream", KINDS, key=KEYS["stream"], format_func=STREAM_LABELS.get,
                     help=spec(StreamConfig, "kind")["doc"])
        left, right = st.columns(2)
        left.number_input("Tasks", min_value=tasks["lo"], max_value=tasks["hi"], step=1, key=KEYS["tasks"],
                          help=tasks["doc"])
        right.number_input("Steps per task", min_value=steps["lo"], max_value=steps["hi"], step=10,
                           key=KEYS["steps"], help=steps["doc"])
        st.checkbox("The family's own CMS levels", key=FAMILY_LEVELS,
                    help="Untick to set the levels yourself in the box below.")
        st.text_input("CMS chunk sizes in tokens, fastest level first", key=CHUNKS,
                      placeholder="for example 128, 512, 2048",
                      help=f"One number per level, at most {MAX_LEVELS} levels. Level ℓ updates once every "
                           "chunk of that many tokens (rounded to whole training steps).")
        left, right = st.columns(2)
        left.selectbox("Optimizer", OPTIMIZERS, key=KEYS["optimizer"], help=spec(RunConfig, "optimizer")["doc"])
        right.number_input("Learning rate", min_value=lr["lo"], max_value=lr["hi"], step=1e-3, format="%g",
                           key=KEYS["lr"], placeholder="the default",
                           help=f"{lr['doc']}; default {lr['default']}. Too high and the run diverges.")
        st.number_input("Seed", min_value=seed["lo"], max_value=seed["hi"], step=1, key=KEYS["seed"],
                        help="The same seed and setup give the same curves.")
        st.checkbox("CMS levels also learn while reading (online)", key=KEYS["online"],
                    help="Every sequence of a batch is a stream whose levels update every chunk of its own tokens, "
                         "inside the read: later tokens see the update (lab.online).")
        left, right = st.columns(2)
        online_lr = spec(OnlineConfig, "lr")
        left.number_input("Online rate", min_value=online_lr["lo"], max_value=online_lr["hi"], step=0.005,
                          format="%g", key=KEYS["online_lr"], help=online_lr["doc"])
        right.selectbox("Outer optimizer trains", tuple(TRAINABLE), key=KEYS["trainable"], format_func=TRAINABLE.get,
                        help=spec(RunConfig, "trainable")["doc"])
        st.selectbox("HOPE's self-modifying memory", tuple(MEMORY_BOUNDS), key=KEYS["memory"],
                     format_func=MEMORY_BOUNDS.get,
                     help=spec(RunConfig, "memory_bound")["doc"] + ". Bounded keeps it from overflowing on runs "
                          "of identical tokens (a digit's background, a context's padding) and from running away "
                          "unseen; every shipped HOPE result is made bounded.")
        st.form_submit_button("Apply and reset", type="primary", on_click=apply_setup, args=(session,),
                                 width="stretch")
