"""Panels of attributions (lab.attribution): which level, branch and token answered one held-out
example, through training (Playground), and the attribution map beside the lesion knowledge map
(Playground, and before and after a sleep on the Sleep page).

The Playground's "Attributions" tab is registered in `app.panels.training.VIEWS` from here. Every
computation is cached per checkpoint, and none runs while the run plays (an example takes about a
second, a map tens of seconds): the panels say so and show what is cached."""
from __future__ import annotations

from collections import OrderedDict
from contextlib import nullcontext
from typing import Callable

import streamlit as st

from app.components.charts import chart
from app.components.shell import panel_guard
from app.panels import training
from app.panels.registry import panel
from lab.attribution import (BASELINES, DEFAULT_BASELINE, AttributionError, SleepAttributions, attribute_example,
                             checkpoints, compare_run, level_trajectory, rank_agreement, scored_positions)
from lab.attribution.figures import components_figure, flow_figure, map_pair_figure, trajectory_figure

BASELINE_HELP = ("What the tokens are compared with. Padding sequence (the default): every token replaced by the "
                 "padding token, an input the model can read, so the baseline's answer is the model's answer when "
                 "it has read nothing. Zero: the zero vector (an input unlike any the model saw). Mean: the mean "
                 "embedding (it holds a share of the answer token itself). Levels and branches are always "
                 "compared with adding nothing.")
BASELINE_LABELS = {"pad": "padding sequence", "zero": "zero", "mean": "mean embedding"}


def _lock(session):
    return getattr(session, "lock", None) or nullcontext()


def _memo(key: str, what: tuple, build: Callable[[], object] | None = None, capacity: int = 16):
    """A small cache of this browser session (st.session_state), per panel key: the value for `what`,
    built by `build` if missing (None without `build`)."""
    cache = st.session_state.setdefault(f"{key}_attr_cache", OrderedDict())
    if what not in cache:
        if build is None:
            return None
        cache[what] = build()
        while len(cache) > capacity:
            cache.popitem(last=False)
    cache.move_to_end(what)
    return cache[what]


def _state_id(session, step: int) -> tuple[int, int]:
    """A checkpoint's identity: its step and the parameters object kept for it (a restored history
    keeps new objects, so nothing computed for another run is shown)."""
    return step, id(session.history.states[step])


def _picker(session, key: str) -> tuple[int, int, int, str]:
    """Task, example of its held-out set (the accuracy matrix's), scored position, baseline."""
    run = session.run
    names = run.stream.task_names
    _valid(f"{key}_attr_task", range(len(names)),
           lambda v: f"Task {v!r} is not in this stream: it has tasks 0…{len(names) - 1} ({', '.join(names)}); "
                     f"showing {names[0]}.")
    cols = st.columns([2, 1, 1, 2])
    task = int(cols[0].selectbox("Held-out example of task", range(len(names)), format_func=names.__getitem__,
                                 key=f"{key}_attr_task"))
    inputs, targets = run.eval_sets[task]
    _valid(f"{key}_attr_example", range(inputs.shape[0]),
           lambda v: f"Example {v!r} is not in the held-out set of {names[task]}: it has examples 0…"
                     f"{inputs.shape[0] - 1}; showing example 0.")
    example = int(cols[1].number_input("Example", 0, inputs.shape[0] - 1, step=1, key=f"{key}_attr_example"))
    scored = scored_positions(targets[example])
    if st.session_state.get(f"{key}_attr_position") not in scored:      # another example: its first answer
        st.session_state[f"{key}_attr_position"] = scored[0]
    position = int(cols[2].selectbox("Answer at position", scored, key=f"{key}_attr_position"))
    options = [DEFAULT_BASELINE] + [b for b in BASELINES if b != DEFAULT_BASELINE]     # the default first
    _valid(f"{key}_attr_baseline", options,
           lambda v: f"Baseline {v!r} is unknown: use one of {', '.join(options)}; showing "
                     f"{BASELINE_LABELS[options[0]]}.")
    baseline = cols[3].radio("Token baseline", options, horizontal=True,
                             format_func=BASELINE_LABELS.get, key=f"{key}_attr_baseline", help=BASELINE_HELP)
    return task, example, position, baseline


def _valid(name: str, allowed, message: Callable[[object], str]):
    """A widget's value set from outside (a lesson preset, a run with fewer examples): an allowed one
    is kept; another gets `message` on the page and the first allowed value. Returns the value."""
    allowed = list(allowed)
    value = st.session_state.get(name, allowed[0])
    if value not in allowed:
        st.error(message(value))
        value = st.session_state[name] = allowed[0]
    return value


def _checkpoint(session, key: str) -> int:
    """The recorded step shown: the page's time scrubber, or this panel's scrub over checkpoints
    (which moves the page's too)."""
    history = session.history
    saved = history.step_at_or_before(session.shown_step)
    steps = [s for s in history.states]
    if session.playing or len(steps) < 2:
        return saved
    name = f"{key}_attr_scrub"
    st.session_state[name] = saved
    st.select_slider("Scrub through training (recorded checkpoints)", options=steps, key=name,
                     on_change=lambda: session.show_step(int(st.session_state[name])),
                     help="The model's parameters are kept at every evaluation; attributions are computed for the "
                          "model as it was at the chosen one.")
    return saved


@panel("attribution_example", "Which level answered: one example's attributions", session="playground")
def attribution_example(session, key: str = "pg") -> None:
    """One held-out answer's attributions to its tokens, each CMS level and branch, and the residual
    stream of each block, for the model at the chosen checkpoint."""
    with panel_guard("attributions"), _lock(session):
        task, example, position, baseline = _picker(session, key)
        saved = _checkpoint(session, key)
        inputs, targets = session.run.eval_sets[task]
        what = ("example", _state_id(session, saved), task, example, position, baseline)
        result = _memo(key, what)
        if session.playing and result is None:
            st.info("Attributions are computed while the run is paused (each takes about a second): press Pause.")
            return
        if result is None:
            _, model = session.history.model_at(saved)
            try:
                result = _memo(key, what, lambda: attribute_example(
                    model, inputs[example], targets[example], position=position, baseline=baseline,
                    decode=session.run.stream.decode))
            except AttributionError as err:
                st.error(f"These attributions cannot be computed: {err}")
                return
        st.caption(f"The model as it was at step {saved}. Integrated gradients (captum, {result.summary['n_steps']} "
                   f"Gauss–Legendre points) of log p(answer); largest convergence delta "
                   f"{_largest_delta(result.summary):.1e}.")
        chart(flow_figure(result), f"{key}_attr_flow")
        chart(components_figure(result), f"{key}_attr_components")
        if st.checkbox("Follow this example through training (up to 8 checkpoints)", key=f"{key}_attr_follow"):
            steps = tuple(checkpoints(session.history, saved))
            what = ("trajectory", tuple(_state_id(session, s) for s in steps), task, example, position)
            frame = _memo(key, what, None if session.playing else lambda: level_trajectory(
                session.history, steps, inputs[example], targets[example], position))
            chart(trajectory_figure(frame, saved), f"{key}_attr_trajectory")


def _largest_delta(summary: dict) -> float:
    d = summary.get("delta", {})
    values = [abs(d.get("token", 0.0))] + [abs(v) for v in d.get("component", {}).values()] + \
        [abs(v) for v in d.get("residual", {}).values()]
    return max(values)


@panel("attribution_maps", "Attribution map beside the knowledge map", session="playground")
def attribution_maps(session, key: str = "pg") -> None:
    """The lesion knowledge map and the attribution map of the model at the shown checkpoint, on the
    run's held-out sets, with their rank agreement."""
    with panel_guard("attribution map"), _lock(session):
        saved = session.history.step_at_or_before(session.shown_step)
        what = ("maps", _state_id(session, saved))
        comparison = _memo(key, what)
        if comparison is None:
            st.caption(f"Both maps on every task's held-out set for the model at step {saved}: tens of seconds.")
            if session.playing or not st.button("Compute the maps", key=f"{key}_attr_maps"):
                return
            _, model = session.history.model_at(saved)
            with st.spinner("Attributing every held-out answer…"):
                comparison = _memo(key, what, lambda: compare_run(session.run, model))
        chart(map_pair_figure(comparison.attribution, comparison.lesion, comparison.agreement,
                              session.run.stream.task_names, f"Step {saved}: lesion map and attribution map"),
              f"{key}_attr_map")


def inside_attributions(session, key: str = "pg") -> None:
    """The Playground's "Attributions" tab."""
    attribution_example(session, key)
    attribution_maps(session, key)


training.VIEWS.setdefault("Attributions", inside_attributions)


def _tracker(session, key: str) -> SleepAttributions | None:
    """The session run's SleepAttributions (kept in this browser session; a new run, a new one)."""
    name = f"{key}_attr_tracker"
    tracker = st.session_state.get(name)
    if session.run is None:
        return None
    if tracker is None or tracker.run is not session.run:
        tracker = st.session_state[name] = SleepAttributions(session.run)
    return tracker


@panel("sleep_attribution", "Attribution map beside the knowledge map, around a sleep", session="sleep")
def sleep_attribution(session, key: str = "sl") -> None:
    """The attribution map beside the lesion map just before and just after the last sleep, with
    their rank agreement: did the two methods see knowledge move alike?"""
    with panel_guard("attribution maps"), _lock(session):
        tracker = _tracker(session, key)
        last = session.last_sleep
        if tracker is None or last is None:
            st.caption("After a sleep, the attribution map (log-probability each level carries) appears here beside "
                       "the lesion map.")
            return
        if tracker.pair_at(last["step"]) is None:
            st.info("This sleep happened before this view was watching the run: the next one will be mapped.")
            return
        done = all(w in tracker.pair_at(last["step"])["maps"] for w in ("before", "after"))
        if not done and (session.busy or not st.button("Compute the attribution maps", key=f"{key}_attr_maps")):
            st.caption("Both maps on every task's held-out set, before and after the sleep: tens of seconds.")
            return
        with st.spinner("Attributing every held-out answer, before and after the sleep…"):
            maps = {w: tracker.maps(last["step"], w) for w in ("before", "after")}
        left, right = st.columns(2)
        for column, which in ((left, "before"), (right, "after")):
            with column:
                chart(map_pair_figure(maps[which], last[which], rank_agreement(maps[which], last[which]),
                                      session.run.stream.task_names, f"{which.capitalize()} the sleep"),
                      f"{key}_attr_{which}")

