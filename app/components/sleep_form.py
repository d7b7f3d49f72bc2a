"""The Sleep page's settings (sidebar) and its buttons: Train next task, Sleep now, Start over.

Widget ranges come from `SleepSettings`' own field specs; the values go to `session.configure`,
and take effect at the next run (a run keeps the settings it was built with).
"""
from __future__ import annotations

import streamlit as st

from lab.sessions.sleep import SleepSession, SleepSettings


def _spec(name: str) -> dict:
    return next(s for s in SleepSettings.field_specs() if s["name"] == name)


def _number(where, label: str, name: str, key: str, step: int = 1) -> int:
    spec = _spec(name)
    return int(where.number_input(label, spec["lo"], spec["hi"], spec["default"], step=step, key=key, help=spec["doc"]))


def sleep_form(session: SleepSession, key: str = "sl") -> None:
    sb = st.sidebar
    sb.subheader("Run (HOPE)")
    values = {"preset": sb.radio("Model size", ["tiny", "small"], index=1, key=f"{key}_preset", horizontal=True),
              "steps": _number(sb, "Steps per task", "steps", f"{key}_steps", 10),
              "eval_size": _number(sb, "Held-out sequences per task", "eval_size", f"{key}_eval", 4),
              "auto_sleep": sb.checkbox("Sleep after each task", value=False, key=f"{key}_auto")}
    with sb.expander("Sleep sizes"):
        values.update(distill_steps=_number(st, "Distillation steps", "distill_steps", f"{key}_distill"),
                      dream_samples=_number(st, "Dreamed sequences", "dream_samples", f"{key}_dreams"),
                      repair_steps=_number(st, "Repair steps after pruning", "repair_steps", f"{key}_repair"))
    if values != {k: getattr(session.settings, k) for k in values}:
        session.configure(session.settings.to_dict() | values)


def sleep_controls(session: SleepSession, key: str = "sl") -> None:
    run = session.run
    cols = st.columns([1, 1, 1, 3])
    cols[0].button("Train next task", type="primary", key=f"{key}_train", on_click=session.request_train,
                   disabled=not session.can_train)
    cols[1].button("Sleep now", key=f"{key}_sleep", on_click=session.request_sleep, disabled=run is None)
    cols[2].button("Start over", key=f"{key}_reset", on_click=session.reset, disabled=run is None)
    if run is None:
        cols[3].markdown("No run yet: press **Train next task**.")
        return
    cols[3].markdown(f"**Step {run.step_count} of {run.stream.total_steps}** · tasks trained: {session.tasks_trained} "
                     f"of {len(run.stream.phases)} · sleeps: {len(session.sleeps)}")
    if session.settings_differ:
        st.info("The settings in the sidebar differ from this run's: the next “Train next task” starts a new run.")
