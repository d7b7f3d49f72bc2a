"""Associative memory: attention, the delta rule, Titans and the optimizers as memories (REFERENCE.md §1, §5)."""
from __future__ import annotations

import streamlit as st

from app.components.sessions import session_for, show_notices
from app.components.shell import page_setup
from app.panels import memory as panels

page_setup(
    "Associative memory",
    "attention, linear attention, the delta rule, Titans' memory and the optimizers Adam, Muon and M3, each seen "
    "as a memory that stores keys → values by solving an inner objective, run side by side on the same data.",
    "read the table, then pick memories and drag the sliders: the figures rerun on the same key/value stream. "
    "The last tab treats optimizers as memories of past gradients.",
)
session = session_for("memory")
show_notices(session)
tab_table, tab_run, tab_eq, tab_opt = st.tabs(["The table", "Memories side by side", "Exact equivalences",
                                               "Optimizers are memories"])
with tab_table:
    panels.memory_catalogue(session)
with tab_run:
    panels.memory_recall(session)
    panels.memory_sweeps(session)
with tab_eq:
    panels.memory_equivalences(session)
with tab_opt:
    panels.optimizer_buffers(session)
    panels.optimizer_tasks(session)
    panels.optimizer_trajectories(session)
