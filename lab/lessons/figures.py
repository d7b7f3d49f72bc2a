"""Figures of the lessons' own panels: the class poll's answers, and the knowledge map of a shipped
deployment. DataFrame or Tally in, go.Figure out, no Streamlit (lab.viz's style and colours)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lab.viz.palette import model_label
from lab.viz.style import DIVERGING, FONT_SIZE, axis, base_layout, figure, note

POLL_COLOR, MEASURED_COLOR = "#4477AA", "#D55E00"


def poll_figure(tally, measured: float | None = None) -> go.Figure:
    """How the class answered: a bar per choice, or a histogram of the numbers (with the measured
    value as a line once it is known)."""
    question = tally.question
    title = f"The class's predictions: {tally.answered} of {tally.students} students answered"
    layout = base_layout(title, height=380)
    if question.choices:
        counts = [tally.counts.get(c, 0) for c in question.choices]
        data = [{"type": "bar", "x": counts, "y": list(question.choices), "orientation": "h",
                 "marker": {"color": POLL_COLOR}, "text": [str(n) for n in counts], "textposition": "outside",
                 "textfont": {"size": FONT_SIZE + 4}, "hovertemplate": "%{y}: %{x}<extra></extra>"}]
        layout["xaxis"] = axis("students", rangemode="tozero", dtick=max(1, math.ceil(max(counts + [1]) / 8)))
        layout["yaxis"] = axis(None, autorange="reversed", tickfont={"size": FONT_SIZE + 3})
        return figure(data, layout)
    numbers = list(tally.numbers)
    if not numbers:
        layout["annotations"].append(note("No answers yet."))
        layout["xaxis"]["visible"] = layout["yaxis"]["visible"] = False
        return figure([], layout)
    data = [{"type": "histogram", "x": numbers, "marker": {"color": POLL_COLOR}, "nbinsx": 20,
             "hovertemplate": "%{x}: %{y} students<extra></extra>"}]
    layout["xaxis"] = axis(question.title if len(question.title) < 40 else "answer",
                           range=[question.low, question.high] if question.low is not None else None)
    layout["yaxis"] = axis("students", rangemode="tozero")
    if measured is not None and math.isfinite(measured):
        layout["shapes"].append({"type": "line", "x0": measured, "x1": measured, "y0": 0, "y1": 1, "yref": "paper",
                                 "line": {"color": MEASURED_COLOR, "width": 3}})
        layout["annotations"].append({"x": measured, "y": 1, "yref": "paper", "text": "measured",
                                      "showarrow": False, "yanchor": "bottom",
                                      "font": {"color": MEASURED_COLOR, "size": FONT_SIZE}})
    return figure(data, layout)


def knowledge_frame(knowledge: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The knowledge map of one variant at the end of the deployment, mean over the seeds: level × task → drop."""
    rows = knowledge[knowledge["model"] == variant]
    if not len(rows):
        return pd.DataFrame()
    rows = rows[rows["step"] == rows["step"].max()]
    return rows.pivot_table(index="level", columns="task", values="drop", aggfunc="mean", sort=False).sort_index()


def knowledge_figure(knowledge: pd.DataFrame | None, variants: list[str]) -> go.Figure:
    """One heatmap per variant: accuracy lost on each language when each CMS level is reset."""
    title = "Knowledge map at the end of the deployment: accuracy lost without each level (mean over seeds)"
    tables = [(v, knowledge_frame(knowledge, v)) for v in variants] if knowledge is not None and len(knowledge) else []
    tables = [(v, t) for v, t in tables if not t.empty]
    layout = base_layout(title, height=150 + 70 * max([len(t) for _, t in tables] + [1]) * max(1, len(tables)))
    if not tables:
        layout["annotations"].append(note("No knowledge map in this deployment."))
        layout["xaxis"]["visible"] = layout["yaxis"]["visible"] = False
        return figure([], layout)
    zmax = max(0.05, max(float(np.nanmax(np.abs(t.to_numpy(dtype=float)))) for _, t in tables))
    data, n = [], len(tables)
    for i, (variant, table) in enumerate(tables):
        name = "" if i == 0 else str(i + 1)
        top, bottom = 1 - i / n, 1 - (i + 1) / n + (0.12 / n if n > 1 else 0)
        z = table.to_numpy(dtype=float)
        data.append({"type": "heatmap", "x": list(table.columns), "y": [f"level {int(l)}" for l in table.index],
                     "z": z.tolist(), "xaxis": f"x{name}", "yaxis": f"y{name}", "colorscale": DIVERGING,
                     "zmin": -zmax, "zmid": 0.0, "zmax": zmax, "showscale": i == 0,
                     "text": [[f"{v:+.2f}" for v in row] for row in z], "texttemplate": "%{text}",
                     "hovertemplate": "%{y} · %{x}: %{z:+.3f}<extra></extra>"})
        layout[f"xaxis{name}"] = axis(None, anchor=f"y{name}")
        layout[f"yaxis{name}"] = axis(model_label(variant), domain=[max(0.0, bottom), top - 0.06 / n],
                                      anchor=f"x{name}")
    return figure(data, layout)
