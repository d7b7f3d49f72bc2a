"""Drawing a Plotly figure the same way on every page."""
from __future__ import annotations

import streamlit as st

CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def chart(fig, key: str, live: bool = False) -> None:
    """A figure at full width; while a run plays it is drawn static (no hover layer), which spares
    the browser work. The reader's zoom survives redraws (uirevision = key)."""
    fig.layout.uirevision = key
    st.plotly_chart(fig, key=key, theme=None, width="stretch", config={**CHART_CONFIG, "staticPlot": live})
