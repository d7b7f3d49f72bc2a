"""The live part of the Playground: one `st.fragment` that trains a batch of steps and redraws.

While playing (or replaying the history) the fragment reruns on a timer of TICK_SECONDS; each
tick first trains a batch of steps (at least one), then redraws the metrics, the scrubber and
the charts. Only the fragment reruns, not the page. The batch is sized by
`LabSession.live_budget` so that a redraw comes every REDRAW_PERIOD_SECONDS: the batch gets
what the period leaves after drawing (at most 0.2 s). When the run ends or diverges the
fragment asks for one full rerun, which switches the timer off.
"""
from __future__ import annotations

import math

import streamlit as st

from app.components.charts import chart
from app.components.lab_session import EXAMPLES, LabSession
from app.components.shell import panel_guard
from app.components.state import current_session
from lab.viz.inside import attention_figure, level_activations_figure, level_contributions_figure, memory_figure
from lab.viz.training import accuracy_figure, drift_figure, loss_figure, update_timeline_figure

TICK_SECONDS = 0.1                 # the timer; a tick that takes longer simply delays the next
REDRAW_PERIOD_SECONDS = 0.24       # aim: a little over four redraws a second
VIEWS = ("Update timeline", "Activations", "Level contributions", "Drift", "Memory", "Attention")


def live_view(session: LabSession) -> None:
    run_every = TICK_SECONDS if (session.playing or session.replaying) else None
    st.fragment(_live_body, run_every=run_every)()


def _live_body() -> None:
    session = current_session()
    if session.playing:
        session.advance(session.live_budget(REDRAW_PERIOD_SECONDS))
        if not session.can_train:
            session.playing = False
            st.rerun()                      # a full rerun switches the timer off and shows why
    elif session.replaying and not session.replay_tick():
        st.rerun()
    session.note_redraw()
    run = session.run
    if run.diverged:
        st.error(run.diverged.message())
    elif run.done:
        st.success(f"The stream is finished after {run.step_count} steps. Scrub through the history, "
                   "replay it, download the records, or reset to train again.")
    metrics_row(session)
    step = scrubber(session)
    records = session.records_until(step)
    cursor = step if step < run.step_count else None
    live = session.playing or session.replaying
    left, right = st.columns(2)
    with left, panel_guard("loss"):
        empty = "Step 0: the untrained model" if run.step_count else "Press Play or Step to start training"
        chart(loss_figure(records, session.layout, session.config.model, cursor, empty), "pg_loss", live)
    with right, panel_guard("accuracy"):
        chart(accuracy_figure(records, session.layout, cursor), "pg_accuracy", live)
    per_frequency_views(session, step, records, cursor, live)


def metrics_row(session: LabSession) -> None:
    """Step, tokens seen, steps per second, current task, recent loss: one HTML block, which the
    browser redraws far more cheaply than five metric widgets."""
    run = session.run
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
    if session.playing or session.replaying:
        rate = session.redraws_per_sec
        st.caption(f"Live: the charts redraw {'…' if math.isnan(rate) else f'{rate:.1f}'} times a second.")


def _on_scrub() -> None:
    session = current_session()
    value = int(st.session_state["pg_scrub"])
    session.view_step = None if value >= session.run.step_count else value


def scrubber(session: LabSession) -> int:
    latest = session.run.step_count
    if latest == 0:
        st.caption("The time scrubber appears after the first step.")
        return 0
    if session.playing:
        total = session.run.stream.total_steps
        st.progress(latest / max(1, total), text=f"Training: step {latest} of {total}. Pause to scrub through the history.")
        return latest
    st.session_state["pg_scrub"] = session.shown_step
    st.slider("Step shown (time scrubber): every panel shows the run as it was at this step", 0, latest,
              key="pg_scrub", on_change=_on_scrub, disabled=session.replaying,
              help="Drag to go back in time; Replay plays the recorded steps back.")
    return session.shown_step


def views_for(session: LabSession) -> list[str]:
    out = list(VIEWS[:4])
    if session.has_memory:
        out.append("Memory")
    if session.has_attention:
        out.append("Attention")
    return out


def input_picker(session: LabSession) -> tuple[int, int, int]:
    names = session.run.stream.task_names
    layers = session.run.model.config.n_layers
    for key, count in (("pg_in_task", len(names)), ("pg_in_layer", layers)):
        if st.session_state.get(key, 0) >= count:          # a new run may have fewer tasks or blocks
            st.session_state[key] = 0
    cols = st.columns([2, 1, 1])
    task = cols[0].selectbox("Input from task", range(len(names)), format_func=names.__getitem__, key="pg_in_task")
    example = cols[1].number_input("Example", 0, EXAMPLES - 1, step=1, key="pg_in_example")
    layer = cols[2].selectbox("Block", range(layers), key="pg_in_layer")
    return int(task), int(example), int(layer)


def per_frequency_views(session: LabSession, step: int, records, cursor, live: bool = False) -> None:
    st.subheader("Inside the model, level by level")
    labels = views_for(session)
    if st.session_state.get("pg_view") not in labels:
        st.session_state["pg_view"] = labels[0]
    tabs = dict(zip(labels, st.tabs(labels, key="pg_view", on_change="rerun")))
    run = session.run
    with tabs["Update timeline"]:
        if tabs["Update timeline"].open:
            st.caption("Each row is a CMS level; a mark is a step at which that level's parameters changed, "
                       "coloured by the size of the change. Slow levels update rarely, with the error of a whole chunk.")
            with panel_guard("update timeline"):
                chart(update_timeline_figure(records, session.layout, run.schedule.chunk_steps, cursor), "pg_timeline",
                      live)
    with tabs["Drift"]:
        if tabs["Drift"].open:
            st.caption("How far each level moved from where it stood when the current task began "
                       "(measured at every evaluation). It restarts from zero at each new task.")
            with panel_guard("drift"):
                chart(drift_figure(records, session.layout, cursor), "pg_drift", live)
    probe_views = {"Activations": ("activations", level_activations_figure),
                   "Level contributions": ("contributions", level_contributions_figure),
                   "Memory": ("memory", memory_figure), "Attention": ("attention", attention_figure)}
    for label, (kind, build) in probe_views.items():
        if label in tabs and tabs[label].open:
            with tabs[label], panel_guard(label.lower()):
                probe_view(session, kind, build, step)


def probe_view(session: LabSession, kind: str, build, step: int) -> None:
    task, example, layer = input_picker(session)
    saved, frame = session.probe(kind, step, task, example)
    st.caption(f"Input: `{session.input_text(task, example)}` · the model as it was at step {saved} "
               f"(parameters are recorded at every evaluation, every {session.config.eval_every} steps).")
    model = session.config.model
    args = (layer, model) if kind == "memory" else (layer,)
    fig = session.cached(("fig", kind, saved, task, example, layer), lambda: build(frame, *args))
    chart(fig, f"pg_{kind}")
