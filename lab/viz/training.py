"""Figures of a run's tidy records (columns step, tokens, phase, model, task, level, metric, value).

Each builder takes the records (already cut at the step being shown, if any), the stream's
layout and the step the scrubber points at, and returns a plotly Figure. The x axis always
spans the whole stream, so a curve grows across a fixed canvas while the run plays, and each
task's phase is shaded in the task's colour.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lab.viz.palette import arch_color, level_color, task_color
from lab.viz.style import (SEQUENTIAL, StreamLayout, add_cursor, add_phases, axis, base_layout, figure,
                           level_label, note, thin)


def _metric(records: pd.DataFrame, metric: str) -> pd.DataFrame:
    return records[records["metric"] == metric]


def nice_ceiling(value: float) -> float:
    """A round number at or above `value` (1, 1.5, 2, 3, 4, 5, 7.5 times a power of ten).

    Live charts use it as a fixed axis or colour range: the range then changes only now and
    then, and the browser can redraw just the data instead of the whole figure.
    """
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 1.5, 2, 3, 4, 5, 7.5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def smooth(values, half_life: float = 8.0) -> list[float]:
    """Exponential moving average, bias-corrected (a point k steps old weighs 0.5^(k / half_life))."""
    beta = 0.5 ** (1.0 / half_life)
    out, avg, weight = [], 0.0, 0.0
    for v in values:
        avg, weight = beta * avg + (1 - beta) * v, beta * weight + (1 - beta)
        out.append(avg / weight)
    return out


def _finish(layout: dict, stream: StreamLayout, cursor: int | None, y_title: str, phase_labels: bool = True):
    add_phases(layout, stream, label=phase_labels)
    add_cursor(layout, cursor)
    layout["xaxis"]["title"]["text"] = stream.step_axis_title()
    layout["yaxis"]["title"]["text"] = y_title


def loss_figure(records: pd.DataFrame, stream: StreamLayout, model: str, cursor: int | None = None,
                empty_text: str = "Press Play or Step to start training") -> go.Figure:
    """Training loss of each step (faint) and its moving average, in the architecture's colour."""
    layout = base_layout(f"Training loss · {model}", fixed_margins=True, showlegend=False, top=72)
    layout["title"]["subtitle"] = {"text": "thin: each step · thick: moving average", "font": {"size": 13}}
    rows = _metric(records, "loss")
    color = arch_color(model)
    data = []
    if len(rows):
        x, y = thin(rows["step"].tolist(), rows["value"].tolist())
        data = [
            {"type": "scatter", "x": x, "y": y, "mode": "lines", "name": "each step", "opacity": 0.35,
             "line": {"color": color, "width": 1}, "hovertemplate": "step %{x}<br>loss %{y:.3f}<extra></extra>"},
            {"type": "scatter", "x": x, "y": smooth(y), "mode": "lines", "name": "moving average",
             "line": {"color": color, "width": 3},
             "hovertemplate": "step %{x}<br>average %{y:.3f}<extra></extra>"},
        ]
    else:
        layout["annotations"].append(note(empty_text))
    _finish(layout, stream, cursor, "loss (nats per token)")
    layout["yaxis"]["range"] = [0, nice_ceiling(max(rows["value"]) if len(rows) else 1.0)]
    return figure(data, layout)


def accuracy_figure(records: pd.DataFrame, stream: StreamLayout, cursor: int | None = None,
                    metric: str = "accuracy") -> go.Figure:
    """Held-out accuracy on every task of the stream, one line per task in its colour."""
    title = "Accuracy on each task (held out)" if metric == "accuracy" else "Whole-sequence accuracy on each task"
    layout = base_layout(title, fixed_margins=True, showlegend=False)    # tasks are named on their phases
    data = []
    for name, group in _metric(records, metric).groupby("task", sort=False):
        color = task_color(stream.task_index(name))
        data.append({"type": "scatter", "x": group["step"].tolist(), "y": group["value"].tolist(),
                     "mode": "lines+markers", "name": name, "line": {"color": color, "width": 3},
                     "marker": {"size": 5, "color": color},
                     "hovertemplate": f"{name}<br>step %{{x}}<br>accuracy %{{y:.1%}}<extra></extra>"})
    _finish(layout, stream, cursor, "answer tokens right")
    layout["yaxis"].update(range=[0, 1.02], tickformat=".0%")
    return figure(data, layout)


def drift_figure(records: pd.DataFrame, stream: StreamLayout, cursor: int | None = None) -> go.Figure:
    """How far each CMS level's parameters moved since the current task began."""
    layout = base_layout("Drift of each CMS level since the current task began (θ₀: its parameters then)",
                         fixed_margins=True)
    rows = _metric(records, "drift")
    data = []
    for level, group in rows.groupby("level", sort=True):
        color = level_color(level)
        data.append({"type": "scatter", "x": group["step"].tolist(), "y": group["value"].tolist(),
                     "mode": "lines+markers", "name": f"level {int(level)}", "line": {"color": color, "width": 3},
                     "marker": {"size": 5, "color": color},
                     "hovertemplate": f"level {int(level)}<br>step %{{x}}<br>drift %{{y:.3g}}<extra></extra>"})
    if not len(rows):
        layout["annotations"].append(note("No evaluation yet"))
    _finish(layout, stream, cursor, "relative drift ‖Δθ‖ / ‖θ₀‖")
    layout["yaxis"]["range"] = [0, nice_ceiling(max(rows["value"]) if len(rows) else 0.0)]
    return figure(data, layout)


def update_grid(records: pd.DataFrame, n_levels: int, total_steps: int, max_columns: int = 1500):
    """(bin end steps, z[level][bin]): the mean update size of each level in each bin of steps,
    NaN where the level did not update. One bin per step unless the run is longer than `max_columns`."""
    rows = _metric(records, "update_norm")
    bin_size = max(1, math.ceil(max(1, total_steps) / max_columns))
    n_bins = math.ceil(max(1, total_steps) / bin_size)
    sums = np.zeros((n_levels, n_bins))
    counts = np.zeros((n_levels, n_bins))
    if len(rows):
        bins = (rows["step"].to_numpy() - 1) // bin_size
        levels = rows["level"].to_numpy()
        keep = (levels >= 0) & (levels < n_levels) & (bins >= 0) & (bins < n_bins)
        np.add.at(sums, (levels[keep].astype(int), bins[keep].astype(int)), rows["value"].to_numpy()[keep])
        np.add.at(counts, (levels[keep].astype(int), bins[keep].astype(int)), 1)
    with np.errstate(invalid="ignore"):
        z = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return (np.arange(1, n_bins + 1) * bin_size).tolist(), z, bin_size


def update_timeline_figure(records: pd.DataFrame, stream: StreamLayout, chunk_steps: tuple[int, ...],
                           cursor: int | None = None, max_columns: int = 1500,
                           chunk_tokens: tuple[int, ...] | None = None) -> go.Figure:
    """Step × level: a mark wherever a level's parameters changed, coloured by the update's size.

    Slow levels show sparse marks (one per chunk), fast levels dense ones. Updates of the outer
    optimizer ("update_norm" rows, between steps) fill the heatmap; online updates while the
    stream is read ("online_update_norm" rows, lab.online) are drawn as ticks at their token of the
    stream (x = tokens / tokens per step), on the level's row, in the level's colour.
    """
    n_levels = len(chunk_steps)
    online = _metric(records, "online_update_norm")
    title = "When each CMS level updates, and by how much" + (" (ticks: online, while reading)" if len(online) else "")
    layout = base_layout(title, height=130 + 56 * n_levels, top=44, left=230, fixed_margins=True)
    x, z, bin_size = update_grid(records, n_levels, stream.total_steps, max_columns)
    labels = [level_label(level, chunk_steps[level]) for level in range(n_levels)]
    if len(online) and chunk_tokens:
        labels = [f"{level_label(level)} · every {chunk_tokens[level]:,} tokens" for level in range(n_levels)]
    z_list = [[None if math.isnan(v) else float(v) for v in row] for row in z]
    top = float(np.nanmax(z)) if np.isfinite(z).any() else 0.0
    data = [{"type": "heatmap", "z": z_list, "x": x, "y": labels, "colorscale": SEQUENTIAL, "hoverongaps": False,
             "zmin": 0.0, "zmax": nice_ceiling(top),
             "colorbar": {"title": {"text": "update size ‖Δθ‖", "side": "right"}, "thickness": 14},
             "hovertemplate": "%{y}<br>step %{x}<br>‖Δθ‖ = %{z:.3g}<extra></extra>"},
            # keeps every level's row and label on the axis even before any update
            {"type": "scatter", "x": [0] * n_levels, "y": labels, "mode": "markers", "marker": {"opacity": 0},
             "hoverinfo": "skip", "showlegend": False}]
    for level in range(n_levels):
        mine = online[online["level"] == level]
        if not len(mine):
            continue
        xs, ys = thin((mine["tokens"] / stream.tokens_per_step).tolist(), mine["value"].tolist())
        data.append({"type": "scatter", "x": xs, "y": [labels[level]] * len(xs), "mode": "markers",
                     "name": f"level {level}, online", "showlegend": False,
                     "marker": {"symbol": "line-ns-open", "size": 18, "color": level_color(level), "line": {"width": 2}},
                     "customdata": ys, "hovertemplate": "%{y}<br>online update at step %{x:.2f}<br>"
                                                       "‖Δθ‖ = %{customdata:.3g}<extra></extra>"})
    if not np.isfinite(z).any() and not len(online):
        layout["annotations"].append(note("No level has updated yet"))
    _finish(layout, stream, cursor, "", phase_labels=False)
    if bin_size > 1:
        layout["xaxis"]["title"]["text"] += f", bins of {bin_size} steps"
    layout["xaxis"]["showgrid"] = False
    layout["yaxis"] = axis("", autorange="reversed", showgrid=False, type="category", automargin=False)
    return figure(data, layout)
