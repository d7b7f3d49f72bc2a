"""Panels the lessons place besides the pages' own: what a run's model reads (one held-out example of
each task), and where a shipped deployment's knowledge sits at its end (its knowledge map)."""
from __future__ import annotations

import streamlit as st

from app.components.charts import chart
from app.components.shell import panel_guard
from app.panels.registry import panel
from lab.lessons.figures import knowledge_figure
from lab.viz.palette import model_label


@panel("stream_examples", "What the model reads", session="playground")
def stream_examples(session, key: str = "ls") -> None:
    """One held-out example of each task of the run's stream, decoded as the model reads it."""
    with panel_guard("examples"):
        names = session.run.stream.task_names
        for task, name in enumerate(names):
            st.markdown(f"**{name}**")
            st.code(session.input_text(task, 0), language=None, wrap_lines=True)


@panel("deployment_knowledge", "Where a deployment's knowledge sits", session="deployment")
def deployment_knowledge(session, key: str = "ls") -> None:
    """The shipped deployment's knowledge map at its end, per variant: accuracy lost on each language
    when each CMS level is reset, mean over the seeds."""
    comparison = session.shown
    knowledge = getattr(comparison, "knowledge", None)
    if comparison is None or knowledge is None or not len(knowledge):
        st.info("This deployment has no knowledge map.")
        return
    variants = [v for v in comparison.models if v.startswith("hope")]
    picked = st.multiselect("Variants", variants, default=[v for v in variants if v in ("hope/finetune",
                                                                                          "hope/cms_online+sleep")],
                            format_func=model_label, key=f"{key}_kn_variants")
    with panel_guard("knowledge map"):
        chart(knowledge_figure(knowledge, picked), f"{key}_kn_map")
    st.caption(f"Seeds {', '.join(map(str, comparison.seeds))}; a positive number is accuracy lost without the "
               "level, so a level that holds a language shows a large one.")
