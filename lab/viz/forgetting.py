"""Figures of a forgetting comparison (lab.forgetting): DataFrame in, go.Figure out, no Streamlit.

- `forgetting_curves_figure`: accuracy on each task against tokens seen, one panel per
  architecture on shared axes, each task's phase shaded in the task's colour; the line is the
  mean over seeds, the band ± one standard deviation (with more than one seed).
- `accuracy_matrix_figure`: the accuracy matrix R (REFERENCE.md §7) as a heatmap per
  architecture, mean over seeds; row 0 = the untrained model.
- `difference_figure`: per task, each architecture minus the reference (the Transformer),
  paired by seed on the identical stream; the bar is the mean, the whisker ± one std.

Identity colours come from lab.viz.palette only (architectures, tasks); the heatmap uses the
sequential Viridis scale of lab.viz.style for its magnitudes.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lab.viz.palette import arch_color, model_label, task_color
from lab.viz.style import FONT_SIZE, SEQUENTIAL, axis, base_layout, figure, note

DIFF_METRICS = {
    "forgetting": ("forgetting (max form)", "below 0: forgets less of this task than the reference"),
    "final": ("accuracy after the last task", "above 0: keeps more of this task than the reference"),
    "learned": ("accuracy right after training on the task", "above 0: learned this task better"),
}


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _panels(layout: dict, models: list[str], gap: float = 0.035, x_title: str = "") -> list[str]:
    """Side-by-side panels sharing the y axis (panel titles in the architecture's colour);
    returns the x axis reference of each panel ("x", "x2", …)."""
    n = len(models)
    width = (1 - gap * (n - 1)) / n
    refs = []
    for i, model in enumerate(models):
        lo = i * (width + gap)
        name = "xaxis" if i == 0 else f"xaxis{i + 1}"
        layout[name] = axis(x_title, domain=[max(0.0, round(lo, 6)), min(1.0, round(lo + width, 6))], anchor="y")
        if i > 0:
            layout[name]["matches"] = "x"
        layout["annotations"].append({"text": f"<b>{model_label(model)}</b>", "xref": "paper", "yref": "paper",
                                      "x": lo + width / 2, "y": 1.0, "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": FONT_SIZE + 1, "color": arch_color(model)}})
        refs.append("x" if i == 0 else f"x{i + 1}")
    return refs


def _top_legend(layout: dict) -> None:
    layout["legend"].update(y=1.13, yanchor="bottom", x=0.0, xanchor="left")
    layout["margin"]["t"] = 120


def forgetting_curves_figure(records: pd.DataFrame, boundaries_tokens: list[int], task_names: list[str],
                             models: list[str], method: str = "naive", phase_tasks: list[int] | None = None,
                             metric: str = "accuracy", title: str | None = None) -> go.Figure:
    """Accuracy on every task against tokens seen, one panel per model (shared axes).

    records: tidy rows with columns seed, method, model, tokens, task, metric, value (lab.forgetting).
    boundaries_tokens: the T+1 phase boundaries in tokens; phase i trains `phase_tasks[i]`
    (default: task i). The curve is the mean over seeds at each evaluation, the band ± 1 std.
    """
    models = list(models)
    layout = base_layout(title or f"Accuracy on each task while new tasks arrive ({method})", height=470)
    _top_legend(layout)
    refs = _panels(layout, models or ["(none)"], x_title="tokens seen")
    phase_tasks = list(range(len(boundaries_tokens) - 1)) if phase_tasks is None else list(phase_tasks)
    rows = records[(records["metric"] == metric) & (records["method"] == method)] if len(records) else records
    data = []
    for i, (model, ref) in enumerate(zip(models, refs)):
        mine = rows[rows["model"] == model]
        for t, name in enumerate(task_names):
            curve = mine[mine["task"] == name]
            if not len(curve):
                continue
            stats = curve.groupby("tokens")["value"].agg(["mean", "std", "count"]).reset_index()
            x = stats["tokens"].tolist()
            mean = stats["mean"].tolist()
            color = task_color(t)
            if int(stats["count"].max()) > 1:
                std = stats["std"].fillna(0.0)
                upper = (stats["mean"] + std).clip(upper=1.0).tolist()
                lower = (stats["mean"] - std).clip(lower=0.0).tolist()
                data.append({"type": "scatter", "x": x + x[::-1], "y": upper + lower[::-1], "xaxis": ref, "yaxis": "y",
                             "fill": "toself", "fillcolor": _rgba(color, 0.16), "line": {"width": 0},
                             "hoverinfo": "skip", "showlegend": False, "legendgroup": name, "mode": "lines"})
            n_seeds = int(curve["seed"].nunique()) if "seed" in curve else 1
            data.append({"type": "scatter", "x": x, "y": mean, "xaxis": ref, "yaxis": "y", "mode": "lines",
                         "name": name, "legendgroup": name, "showlegend": i == 0,
                         "line": {"color": color, "width": 3},
                         "hovertemplate": f"{model_label(model)} · {name}<br>%{{x:,}} tokens<br>accuracy %{{y:.1%}}"
                                          f"{' (mean of %d seeds)' % n_seeds if n_seeds > 1 else ''}<extra></extra>"})
        for p in range(len(boundaries_tokens) - 1):
            start, end = boundaries_tokens[p], boundaries_tokens[p + 1]
            task = phase_tasks[p] if p < len(phase_tasks) else p
            color = task_color(task)
            layout["shapes"].append({"type": "rect", "xref": ref, "yref": "paper", "x0": start, "x1": end,
                                     "y0": 0, "y1": 1, "fillcolor": color, "opacity": 0.08,
                                     "line": {"width": 0}, "layer": "below"})
            if start > 0:
                layout["shapes"].append({"type": "line", "xref": ref, "yref": "paper", "x0": start, "x1": start,
                                         "y0": 0, "y1": 1, "line": {"color": color, "width": 1.5, "dash": "dot"}})
            if task < len(task_names):
                layout["annotations"].append({"xref": ref, "yref": "paper", "x": (start + end) / 2, "y": 0.99,
                                              "yanchor": "top", "text": f"<b>{task_names[task]}</b>",
                                              "showarrow": False, "font": {"size": FONT_SIZE - 3, "color": color}})
    if boundaries_tokens:
        for ref in refs:
            name = "xaxis" if ref == "x" else f"xaxis{ref[1:]}"
            layout[name]["range"] = [0, max(1, boundaries_tokens[-1])]
    if not data:
        layout["annotations"].append(note("No accuracy recorded for this method"))
    # headroom above 100 % for the task names, so that a curve at 100 % never runs through them
    layout["yaxis"] = axis("accuracy on the task (answer tokens right)", range=[0, 1.12], tickformat=".0%",
                           tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0], anchor="x")
    return figure(data, layout)


def mean_matrix(matrix: pd.DataFrame, model: str, method: str) -> np.ndarray | None:
    """R averaged over seeds for one model and method (None if there is none)."""
    cells = matrix[(matrix["model"] == model) & (matrix["method"] == method)]
    if not len(cells):
        return None
    mean = cells.groupby(["after_task", "eval_task"])["accuracy"].mean().reset_index()
    T = int(mean["eval_task"].max())
    R = np.full((max(T, int(mean["after_task"].max())) + 1, T), np.nan)     # a deployment may have more phases
    for r in mean.itertuples():
        R[int(r.after_task), int(r.eval_task) - 1] = r.accuracy
    return R


def accuracy_matrix_figure(matrix: pd.DataFrame, task_names: list[str], models: list[str],
                           method: str = "naive", row_labels: list[str] | None = None) -> go.Figure:
    """R as a heatmap per model (mean over seeds): row i = after training on tasks 1..i, column
    j = accuracy on task j; row 0 is the untrained model. The numbers are printed in the cells.
    `row_labels` names the rows otherwise (a deployment: after pretraining, after each visit)."""
    models = list(models)
    n_seeds = int(matrix["seed"].nunique()) if len(matrix) else 0
    seeds_text = f"mean of {n_seeds} seeds" if n_seeds > 1 else "one seed"
    rows_labels = row_labels or ["untrained"] + [f"after {name}" for name in task_names]
    what = "row = after each phase" if row_labels else "row = after training on tasks 1..i"
    layout = base_layout(f"Accuracy matrix R: {what}, column = task evaluated ({method}, {seeds_text})",
                         height=150 + 62 * len(rows_labels), top=96)
    refs = _panels(layout, models or ["(none)"], gap=0.05)
    data = []
    for i, (model, ref) in enumerate(zip(models, refs)):
        R = mean_matrix(matrix, model, method)
        if R is None:
            continue
        z = [[None if math.isnan(v) else float(v) for v in row] for row in R]
        data.append({"type": "heatmap", "z": z, "x": list(task_names[:R.shape[1]]),
                     "y": rows_labels[:R.shape[0]], "xaxis": ref, "yaxis": "y", "colorscale": SEQUENTIAL,
                     "zmin": 0.0, "zmax": 1.0, "showscale": i == len(models) - 1,
                     "colorbar": {"title": {"text": "accuracy", "side": "right"}, "thickness": 14, "tickformat": ".0%"},
                     "texttemplate": "%{z:.2f}", "textfont": {"size": FONT_SIZE - 2},
                     "hovertemplate": f"{model_label(model)}<br>%{{y}}<br>on %{{x}}: %{{z:.1%}}<extra></extra>"})
        name = "xaxis" if ref == "x" else f"xaxis{ref[1:]}"
        layout[name].update(type="category", showgrid=False, title={"text": "task evaluated"})
        layout[name].pop("matches", None)
    if not data:
        layout["annotations"].append(note("No accuracy matrix for this method"))
    layout["yaxis"] = axis("", type="category", autorange="reversed", showgrid=False, anchor="x")
    return figure(data, layout)


def difference_figure(diffs: pd.DataFrame, task_names: list[str], metric: str = "forgetting",
                      method: str = "naive", reference: str = "transformer") -> go.Figure:
    """Per task: each model minus the reference model (lab.forgetting.differences), mean over seeds
    with ± 1 std whiskers, one bar per model in its colour."""
    what, reading = DIFF_METRICS.get(metric, (metric, ""))
    layout = base_layout(f"{what.capitalize()}: each architecture minus the {model_label(reference)}, per task "
                         f"({method}; paired by seed)", height=420, top=96)
    _top_legend(layout)
    rows = diffs[(diffs["metric"] == metric) & (diffs["method"] == method)].dropna(subset=["value"]) \
        if len(diffs) else diffs
    data = []
    for model in [m for m in dict.fromkeys(rows["model"]) if m != reference] if len(rows) else []:
        mine = rows[rows["model"] == model]
        stats = mine.groupby("task")["value"].agg(["mean", "std", "count"]).reset_index().sort_values("task")
        x = [task_names[int(t) - 1] if int(t) - 1 < len(task_names) else f"task {int(t)}" for t in stats["task"]]
        name = f"{model_label(model)} − {model_label(reference)}"
        trace = {"type": "bar", "x": x, "y": stats["mean"].tolist(), "name": name,
                 "marker": {"color": arch_color(model)},
                 "hovertemplate": f"{name}<br>%{{x}}: %{{y:+.3f}}<extra></extra>"}
        if int(stats["count"].max()) > 1:
            trace["error_y"] = {"type": "data", "array": stats["std"].fillna(0.0).tolist(), "visible": True,
                                "color": "#333333", "thickness": 1.5}
        data.append(trace)
    if not data:
        layout["annotations"].append(note(f"Nothing to compare: add the {model_label(reference)} and another "
                                          "architecture"))
    layout["barmode"] = "group"
    layout["xaxis"] = axis("task" + (" (the last task cannot be forgotten yet)" if metric == "forgetting" else ""),
                           type="category", categoryorder="array", categoryarray=list(task_names), showgrid=False)
    layout["yaxis"] = axis(f"model − {model_label(reference)}", zeroline=True, zerolinecolor="#333333",
                           zerolinewidth=2)
    if reading:
        layout["annotations"].append({"text": reading, "xref": "paper", "yref": "paper", "x": 1.0, "xanchor": "right",
                                      "y": 1.0, "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": FONT_SIZE - 2, "color": "#555555"}})
    return figure(data, layout)


def to_html(fig: go.Figure) -> str:
    """A standalone HTML page of the figure (plotly.js inlined, works offline). The builders skip
    plotly's validation (lab.viz.style.figure); the export builds the validated figure first."""
    return go.Figure(fig.to_dict()).to_html(full_html=True, include_plotlyjs=True)
