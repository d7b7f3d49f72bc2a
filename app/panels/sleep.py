"""Panels of a sleep experiment (a `lab.sessions.sleep.SleepSession`): what the last sleep did, the
knowledge map before and after it (side by side, and animated), accuracy per task around it, the
dreams it learned from, the model's size through grow and prune, and each level's drift."""
from __future__ import annotations

import streamlit as st

from app.components.charts import chart
from app.components.shell import panel_guard
from app.panels.registry import panel
from lab.viz import sleep as viz


def _last(session, name: str):
    last = session.last_sleep
    return None if last is None else last[name]


def _tasks(session):
    return None if session.run is None else session.run.stream.task_names


@panel("sleep_summary", "What the last sleep did", session="sleep")
def sleep_summary(session, key: str = "sl") -> None:
    """One paragraph on the last sleep: accuracy of the new and the old tasks, KL to the teacher."""
    last = session.last_sleep
    if last is None:
        return
    with panel_guard("summary"):
        st.markdown(f"**Sleep {len(session.sleeps)}** (at step {last['step']}). "
                    + viz.sleep_summary(last["accuracy"], last["task"], last["kl"]))


@panel("knowledge_map", "Knowledge map before and after a sleep", session="sleep")
def knowledge_map(session, key: str = "sl") -> None:
    """Accuracy lost on each task when each CMS level is reset, before and after the last sleep."""
    with panel_guard("knowledge map"):
        chart(viz.knowledge_pair_figure(_last(session, "before"), _last(session, "after"), _tasks(session)),
              f"{key}_knowledge")


@panel("knowledge_transition", "Knowledge map, animated", session="sleep")
def knowledge_transition(session, key: str = "sl") -> None:
    """The same two maps as one heatmap with two frames and a Play button."""
    with panel_guard("knowledge transition"):
        chart(viz.knowledge_transition_figure(_last(session, "before"), _last(session, "after"), _tasks(session)),
              f"{key}_transition")


@panel("sleep_accuracy", "Accuracy per task around a sleep", session="sleep")
def sleep_accuracy(session, key: str = "sl") -> None:
    """Held-out accuracy of every task just before and just after the last sleep."""
    with panel_guard("accuracy"):
        chart(viz.accuracy_before_after_figure(_last(session, "accuracy"), _tasks(session)), f"{key}_accuracy")


@panel("dreams", "Dreamed samples", session="sleep")
def dreams(session, key: str = "sl") -> None:
    """The model's own sequences: the only data a sleep sees."""
    with panel_guard("dreams"):
        st.markdown("**Dreamed samples** (the model's own sequences, the only data a sleep sees)")
        samples = _last(session, "dreams")
        if samples:
            st.code("\n".join(samples), language=None)
        else:
            st.caption("No dreams yet.")


@panel("sleep_params", "Model size through grow and prune", session="sleep")
def sleep_params(session, key: str = "sl") -> None:
    """The whole model's parameter count before a sleep, after growing and after pruning."""
    with panel_guard("parameters"):
        chart(viz.params_figure(viz.params_events(None if session.run is None else session.records())),
              f"{key}_params")


@panel("sleep_drift", "How far each level moved during the sleep", session="sleep")
def sleep_drift(session, key: str = "sl") -> None:
    """Per-level drift during the last sleep's distillation."""
    with panel_guard("drift"):
        chart(viz.drift_figure(_last(session, "drift")), f"{key}_drift")
