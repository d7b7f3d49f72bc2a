"""Panels of a live run (a `lab.sessions.playground.PlaygroundSession`): the run's status, loss and
accuracy, and inside the model, level by level: when each CMS level updates, how far it drifts,
what its units compute, what it adds to the stream, the memory's surprise and gates, attention.

Every panel shows the run as it was at the step the time scrubber picks (`session.shown_step`),
and is drawn static while the run plays (no hover layer: cheaper for the browser)."""
from __future__ import annotations

import math
import time

import streamlit as st

from app.components.charts import chart
from app.components.shell import panel_guard
from app.panels.registry import panel
from lab.sessions.playground import EXAMPLES
from lab.viz.inside import attention_figure, level_activations_figure, level_contributions_figure, memory_figure
from lab.viz.training import accuracy_figure, drift_figure, loss_figure, update_timeline_figure


INSIDE_EVERY_S = 1.0      # while a run plays, the inside views follow once a second (below)


def _live(session) -> bool:
    return session.playing or session.replaying


def _inside_figure(session, name: str, build, clock=time.monotonic):
    """While the run plays, the figure of an inside view is made again at most once every
    INSIDE_EVERY_S: in between the page sends the same chart, which the browser does not draw again.
    Streamlit mounts a changed Plotly chart afresh, and the update timeline drawn afresh at every redraw
    held Chromium's main thread 60-75 % of the time (8 % without it); the loss and accuracy keep
    the full rate. Paused, scrubbed or replayed: made for the step shown."""
    if not session.playing:
        return build()
    made = session.cached(("live", name), dict)           # one entry per view: the probes' figures stay
    second = int(clock() / INSIDE_EVERY_S)
    if made.get("second") != second:
        made.update(second=second, figure=build())
    return made["figure"]


@panel("run_status", "Where the run is", session="playground")
def run_status(session, key: str = "pg") -> None:
    """Step, tokens seen, steps per second, current task, recent loss: one HTML block, which the
    browser redraws far more cheaply than five metric widgets; then the end or divergence message."""
    run = session.run
    if run.diverged:
        st.error(run.diverged.message())
    elif run.done:
        st.success(f"The stream is finished after {run.step_count} steps. Scrub through the history, "
                   "replay it, download the records, or reset to train again.")
    sps = run.steps_per_sec
    losses = run.records()
    losses = losses[losses["metric"] == "loss"]["value"].tail(20)
    cells = [("Step", f"{run.step_count} / {run.stream.total_steps}"), ("Tokens seen", f"{run.tokens_seen:,}"),
             ("Steps per second", "–" if math.isnan(sps) else f"{sps:.1f}"),
             ("Training on", "finished" if run.done else run.stream.task_names[run.current_task]),
             ("Loss (last 20 steps)", f"{losses.mean():.3f}" if len(losses) else "–")]
    html = "".join(f"<div class='nll-metric'><div class='nll-metric-label'>{label}</div>"
                   f"<div class='nll-metric-value'>{value}</div></div>" for label, value in cells)
    st.markdown(f"<div class='nll-metrics'>{html}</div>", unsafe_allow_html=True)
    if _live(session):
        rate = session.redraws_per_sec
        st.caption(f"Live: the charts redraw {'…' if math.isnan(rate) else f'{rate:.1f}'} times a second.")


@panel("time_scrubber", "Time scrubber", session="playground")
def time_scrubber(session, key: str = "pg") -> None:
    """A slider over the recorded steps: every panel then shows the run as it was at that step."""
    latest = session.run.step_count
    if latest == 0:
        st.caption("The time scrubber appears after the first step.")
        return
    if session.playing:
        total = session.run.stream.total_steps
        st.progress(latest / max(1, total), text=f"Training: step {latest} of {total}. Pause to scrub through the history.")
        return
    scrub = f"{key}_scrub"
    st.session_state[scrub] = session.shown_step
    st.slider("Step shown (time scrubber): every panel shows the run as it was at this step", 0, latest,
              key=scrub, on_change=lambda: session.show_step(int(st.session_state[scrub])),
              disabled=session.replaying, help="Drag to go back in time; Replay plays the recorded steps back.")


@panel("loss_accuracy", "Loss and accuracy", session="playground")
def loss_accuracy(session, key: str = "pg") -> None:
    """The training loss and the held-out accuracy on every task, side by side."""
    run, records, cursor = session.run, session.records_until(), session.cursor
    left, right = st.columns(2)
    with left, panel_guard("loss"):
        empty = "Step 0: the untrained model" if run.step_count else "Press Play or Step to start training"
        chart(loss_figure(records, session.layout, session.config.model, cursor, empty), f"{key}_loss", _live(session))
    with right, panel_guard("accuracy"):
        chart(accuracy_figure(records, session.layout, cursor), f"{key}_accuracy", _live(session))


@panel("update_timeline", "When each CMS level updates", session="playground")
def update_timeline(session, key: str = "pg") -> None:
    """Each row a CMS level; a mark where its parameters changed, coloured by the size of the change."""
    st.caption("Each row is a CMS level; a mark is a step at which that level's parameters changed, "
               "coloured by the size of the change. Slow levels update rarely, with the error of a whole chunk."
               + (" Ticks: the levels' online updates while the stream is read, at their token of the stream "
                  "(every chunk of each stream's own tokens; later tokens of the read see them)."
                  if session.config.online.enabled else ""))
    with panel_guard("update timeline"):
        fig = _inside_figure(session, "timeline", lambda: update_timeline_figure(
            session.records_until(), session.layout, session.run.schedule.chunk_steps, session.cursor,
            chunk_tokens=session.run.model.config.cms_chunk_tokens))
        chart(fig, f"{key}_timeline", _live(session))


@panel("level_drift", "How far each level moved", session="playground")
def level_drift(session, key: str = "pg") -> None:
    """Each level's distance from where it stood when the current task began."""
    st.caption("How far each level moved from where it stood when the current task began "
               "(measured at every evaluation). It restarts from zero at each new task.")
    with panel_guard("drift"):
        fig = _inside_figure(session, "drift", lambda: drift_figure(session.records_until(), session.layout,
                                                                    session.cursor))
        chart(fig, f"{key}_drift", _live(session))


def input_picker(session, key: str) -> tuple[int, int, int]:
    """Which held-out example and which block a probe panel looks at."""
    names = session.run.stream.task_names
    layers = session.run.model.config.n_layers
    for name, count in ((f"{key}_in_task", len(names)), (f"{key}_in_layer", layers)):
        if st.session_state.get(name, 0) >= count:          # a new run may have fewer tasks or blocks
            st.session_state[name] = 0
    cols = st.columns([2, 1, 1])
    task = cols[0].selectbox("Input from task", range(len(names)), format_func=names.__getitem__, key=f"{key}_in_task")
    example = cols[1].number_input("Example", 0, EXAMPLES - 1, step=1, key=f"{key}_in_example")
    layer = cols[2].selectbox("Block", range(layers), key=f"{key}_in_layer")
    return int(task), int(example), int(layer)


def _probe(session, key: str, kind: str, build) -> None:
    """A probe of the model as it was at the shown step, on one held-out example."""
    task, example, layer = input_picker(session, key)
    saved, frame = session.probe(kind, session.shown_step, task, example)
    st.text(f"Input: {session.input_text(task, example)}")
    st.caption(f"The model as it was at step {saved} (parameters are recorded at every evaluation, every "
               f"{session.config.eval_every} steps).")
    args = (layer, session.config.model) if kind == "memory" else (layer,)
    fig = session.cached(("fig", kind, saved, task, example, layer), lambda: build(frame, *args))
    chart(fig, f"{key}_{kind}")


@panel("level_activations", "What each level's units compute", session="playground")
def level_activations(session, key: str = "pg") -> None:
    """The most active hidden units of every CMS level on one input, token by token."""
    with panel_guard("activations"):
        _probe(session, key, "activations", level_activations_figure)


@panel("level_contributions", "What each level adds to the stream", session="playground")
def level_contributions(session, key: str = "pg") -> None:
    """The size of each level's contribution to the residual stream, token by token."""
    with panel_guard("level contributions"):
        _probe(session, key, "contributions", level_contributions_figure)


@panel("memory_gates", "The memory's surprise and gates", session="playground")
def memory_gates(session, key: str = "pg") -> None:
    """Titans' and HOPE's memory: surprise and the gates α, η, θ per head and token."""
    if not session.has_memory:
        st.info("This model has no neural memory: choose Titans or HOPE.")
        return
    with panel_guard("memory"):
        _probe(session, key, "memory", memory_figure)


@panel("attention_maps", "Attention patterns", session="playground")
def attention_maps(session, key: str = "pg") -> None:
    """The Transformer's attention weights per head, on one input."""
    if not session.has_attention:
        st.info("This model has no attention pattern to show: choose the Transformer.")
        return
    with panel_guard("attention"):
        _probe(session, key, "attention", attention_figure)


VIEWS = {"Update timeline": update_timeline, "Activations": level_activations,
         "Level contributions": level_contributions, "Drift": level_drift, "Memory": memory_gates,
         "Attention": attention_maps}


@panel("inside_views", "Inside the model, level by level", session="playground")
def inside_views(session, key: str = "pg") -> None:
    """The per-frequency panels as tabs; only the open tab is computed."""
    st.subheader("Inside the model, level by level")
    if session.playing:
        st.caption(f"While the run plays, the update timeline and the drift follow once every "
                   f"{INSIDE_EVERY_S:g} s (the loss and accuracy at every redraw); pause to see every step.")
    labels = [label for label in VIEWS if (label != "Memory" or session.has_memory)
              and (label != "Attention" or session.has_attention)]
    view = f"{key}_view"
    if st.session_state.get(view) not in labels:
        st.session_state[view] = labels[0]
    tabs = dict(zip(labels, st.tabs(labels, key=view, on_change="rerun")))
    for label, tab in tabs.items():
        if tab.open:
            with tab:
                VIEWS[label](session, key)
