"""The associative-memory panels (app.panels.memory) placed on their own, as a lesson would: they
are registered for the "memory" session, their widgets start from the session's settings (a
preset shows), and their widgets drive that session."""
from __future__ import annotations

import torch
from streamlit.testing.v1 import AppTest

from app.panels import PANELS

torch.set_num_threads(1)
MEMORY_PANELS = ("memory_catalogue", "memory_recall", "memory_sweeps", "memory_equivalences", "optimizer_buffers",
                 "optimizer_tasks", "optimizer_trajectories")


def lesson_step():
    """A lesson step: a preset session, two panels under a key of their own."""
    from app.components.sessions import session_for
    from app.panels import PANELS
    from lab.sessions.memory_explorer import MemoryExplorerSession

    def preset():
        session = MemoryExplorerSession()
        session.configure(memories=("delta",), stream={"n_pairs": 12, "correlation": 0.4})
        return session

    session = session_for("memory", preset)
    PANELS["memory_recall"].draw(session, key="lesson")
    PANELS["memory_sweeps"].draw(session, key="lesson")


def test_every_memory_panel_is_registered_for_the_memory_session():
    for name in MEMORY_PANELS:
        assert PANELS[name].session == "memory" and PANELS[name].doc, name


def test_panels_start_from_the_preset_and_drive_the_session():
    at = AppTest.from_function(lesson_step, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="lesson_memories").value == ["delta"]
    assert at.slider(key="lesson_n").value == 12 and at.slider(key="lesson_rho").value == 0.4
    assert len(at.get("plotly_chart")) == 5                           # recall + four sweeps
    at.slider(key="lesson_n").set_value(20).run()
    session = at.session_state["session:memory"]
    assert session.settings.stream.n_pairs == 20 and session.settings.stream.correlation == 0.4
    assert len(session.recall()) == 20 and not at.exception
