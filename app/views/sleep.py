"""Sleep: train HOPE on a stream task by task, let it sleep, and see where its knowledge moved."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app.components.shell import configure_torch, log, page_setup, panel_guard
from lab.config import ConfigError
from lab.engine import Run, RunConfig
from lab.sleep import SleepConfig, SleepError
from lab.tasks.stream import StreamConfig
from lab.viz import sleep as viz

STATE = "sl_state"          # {"run", "settings", "sleeps": [...], "notice"}
CHUNK = 5                   # steps between progress-bar updates

page_setup(
    "Sleep",
    "HOPE learning a stream of languages one task at a time, and a sleep phase between tasks: dreams from the "
    "model itself, distillation of the fast CMS level into the slow one, growth then pruning. The knowledge map "
    "says which level each task needs, before and after the sleep.",
    "choose the size in the sidebar, press “Train next task”, then “Sleep now” (or tick “sleep after each task”). "
    "Compare the maps, the accuracy bars and the dreams below.",
)
configure_torch()

# --- settings -------------------------------------------------------------------------------
sb = st.sidebar
sb.subheader("Run (HOPE)")
preset = sb.radio("Model size", ["tiny", "small"], index=1, key="sl_preset", horizontal=True)
steps = int(sb.number_input("Steps per task", 1, 2000, 100, step=10, key="sl_steps"))
eval_size = int(sb.number_input("Held-out sequences per task", 4, 512, 64, step=4, key="sl_eval"))
auto_sleep = sb.checkbox("Sleep after each task", value=False, key="sl_auto")
with sb.expander("Sleep sizes"):
    distill_steps = int(st.number_input("Distillation steps", 0, 2000, 60, key="sl_distill"))
    dream_samples = int(st.number_input("Dreamed sequences", 1, 4096, 128, key="sl_dreams"))
    repair_steps = int(st.number_input("Repair steps after pruning", 0, 1000, 20, key="sl_repair"))

settings = {"preset": preset, "steps": steps, "eval_size": eval_size}
state = st.session_state.setdefault(STATE, {"run": None, "settings": None, "sleeps": [], "notice": None})


def sleep_config() -> SleepConfig:
    return SleepConfig(distill_steps=distill_steps, dream_samples=dream_samples, repair_steps=repair_steps,
                       record_every=max(1, distill_steps // 10))


def new_run() -> Run:
    config = RunConfig(model="hope", preset=preset, stream=StreamConfig(steps_per_task=steps),
                       eval_size=eval_size, eval_every=max(1, steps // 5))
    return Run(config)


def knowledge_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """knowledge_drop records as the knowledge map's columns level, task, drop."""
    return pd.DataFrame({"level": rows["level"].astype(int).to_numpy(), "task": rows["task"].to_numpy(),
                         "drop": rows["value"].astype(float).to_numpy()})


def do_sleep(run: Run) -> None:
    """One sleep, with what the page shows of it kept in the state (small frames only)."""
    records_before = len(run.records())
    run.evaluate()                               # the accuracy row just before the sleep
    with st.spinner("Sleeping: dreaming, distilling, pruning…"):
        report = run.sleep(sleep_config())
    new = run.records().iloc[records_before:]
    know = new[new.metric == "knowledge_drop"]
    acc = new[new.metric == "accuracy"]
    before = acc[acc.phase == "active"].groupby("task", sort=False)["value"].last()
    after = acc[acc.phase == "sleep"].groupby("task", sort=False)["value"].last()
    names = list(run.stream.task_names)
    last_task = names[run.stream.task_at(max(0, run.step_count - 1))]
    state["sleeps"].append({
        "step": run.step_count, "task": last_task if run.step_count > 0 else None,
        "before": knowledge_frame(know[know.phase == "active"]),
        "after": knowledge_frame(know[know.phase == "sleep"]),
        "accuracy": pd.DataFrame({"task": names, "before": [float(before.get(t, float("nan"))) for t in names],
                                  "after": [float(after.get(t, float("nan"))) for t in names]}),
        "dreams": [run.stream.decode(row) for row in report.dreams[:5]] if report.dreams is not None else [],
        "drift": report.drift.copy(), "kl": dict(report.kl),
    })


def train_next_task(run: Run) -> None:
    bounds = run.stream.boundaries_steps()
    target = min((b for b in bounds if b > run.step_count), default=run.stream.total_steps)
    start = run.step_count
    bar = st.progress(0.0, text=f"Training {run.stream.task_names[run.current_task]}…")
    while run.step_count < target and not run.done and not run.diverged:
        run.step(min(CHUNK, target - run.step_count))
        bar.progress((run.step_count - start) / max(1, target - start),
                     text=f"step {run.step_count} of {target}")
    bar.empty()
    if run.diverged:
        state["notice"] = run.diverged.message()
    elif auto_sleep:
        do_sleep(run)


# --- actions --------------------------------------------------------------------------------
run: Run | None = state["run"]


def _press(action: str) -> None:
    state["action"] = action


action = state.pop("action", None)
train, sleep_now, reset = (action == "train"), (action == "sleep"), (action == "reset")

if reset:
    state.update(run=None, settings=None, sleeps=[], notice=None)
    run = None
try:
    if train:
        if run is None or state["settings"] != settings:
            with st.spinner("Building the model…"):
                run = new_run()
            state.update(run=run, settings=dict(settings), sleeps=[], notice=None)
        train_next_task(run)
    if sleep_now and run is not None:
        do_sleep(run)
except (SleepError, ConfigError) as err:
    st.error(f"This cannot run: {err}")
except Exception as err:  # noqa: BLE001 - a teaching page shows a message, never a traceback
    log.exception("sleep page action %s failed", action)
    st.error(f"That did not work: {err}")

cols = st.columns([1, 1, 1, 3])
cols[0].button("Train next task", type="primary", key="sl_train", on_click=_press, args=("train",),
               disabled=run is not None and (run.done or run.diverged is not None))
cols[1].button("Sleep now", key="sl_sleep", on_click=_press, args=("sleep",), disabled=run is None)
cols[2].button("Start over", key="sl_reset", on_click=_press, args=("reset",), disabled=run is None)

if state["notice"]:
    st.warning(state["notice"])
if run is not None and state["settings"] != settings:
    st.info("The settings in the sidebar differ from this run's: the next “Train next task” starts a new run.")

if run is not None:
    names = run.stream.task_names
    done = sum(1 for b in run.stream.boundaries_steps()[1:] if b <= run.step_count)
    cols[3].markdown(f"**Step {run.step_count} of {run.stream.total_steps}** · tasks trained: {done} of "
                     f"{len(run.stream.phases)} · sleeps: {len(state['sleeps'])}")
else:
    names = None
    cols[3].markdown("No run yet: press **Train next task**.")

# --- what the last sleep did ----------------------------------------------------------------
last = state["sleeps"][-1] if state["sleeps"] else None
with panel_guard("summary"):
    if last is not None:
        st.markdown(f"**Sleep {len(state['sleeps'])}** (at step {last['step']}). "
                    + viz.sleep_summary(last["accuracy"], last["task"], last["kl"]))

left, right = st.columns(2)
with left, panel_guard("knowledge map"):
    st.plotly_chart(viz.knowledge_pair_figure(last and last["before"], last and last["after"], names),
                    key="sl_knowledge", width="stretch")
with right, panel_guard("knowledge transition"):
    st.plotly_chart(viz.knowledge_transition_figure(last and last["before"], last and last["after"], names),
                    key="sl_transition", width="stretch")

left, right = st.columns(2)
with left, panel_guard("accuracy"):
    st.plotly_chart(viz.accuracy_before_after_figure(last and last["accuracy"], names), key="sl_accuracy",
                    width="stretch")
with right, panel_guard("dreams"):
    st.markdown("**Dreamed samples** (the model's own sequences, the only data a sleep sees)")
    if last is not None and last["dreams"]:
        st.code("\n".join(last["dreams"]), language=None)
    else:
        st.caption("No dreams yet.")

left, right = st.columns(2)
with left, panel_guard("parameters"):
    records = run.records() if run is not None else None
    st.plotly_chart(viz.params_figure(viz.params_events(records)), key="sl_params", width="stretch")
with right, panel_guard("drift"):
    st.plotly_chart(viz.drift_figure(last and last["drift"]), key="sl_drift", width="stretch")
