"""Figures of what happens inside a model on one input, from the frames of `lab.probes`.

    level_activations_figure(level_activations(model, tokens, decode), layer=0)
    level_contributions_figure(level_contributions(...), layer=0)
    memory_figure(memory_traces(...), layer=0, model="titans")
    attention_figure(attention_maps(...), layer=0)

Token positions are labelled "position token" (e.g. "3 A:w20") so that repeated tokens stay
distinct rows; position 0 is at the top.
"""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from lab.viz.palette import arch_color, level_color
from lab.viz.style import (DIVERGING, FONT_SIZE, SEQUENTIAL, TEXT, axis, base_layout, columns_layout, figure,
                           note, rows_layout)

GATE_NAMES = {
    "titans": {"surprise": "surprise ‖∇ℓ‖", "alpha": "α forgetting", "eta": "η surprise momentum",
               "theta": "θ write strength"},
    "hope": {"surprise": "surprise ‖∇ℓ‖", "alpha": "α retention", "eta": "η learning rate"},
}
GATE_ORDER = ("surprise", "alpha", "eta", "theta")


def token_labels(frame: pd.DataFrame, position: str = "position", token: str = "token") -> list[str]:
    pairs = frame[[position, token]].drop_duplicates(position).sort_values(position)
    return [f"{int(p)} {t}" for p, t in zip(pairs[position], pairs[token])]


def _empty(title: str, text: str) -> go.Figure:
    layout = base_layout(title)
    layout["annotations"].append(note(text))
    layout["xaxis"]["visible"] = layout["yaxis"]["visible"] = False
    return figure([], layout)


def _grid(part: pd.DataFrame, index: str, columns: str, values: str) -> pd.DataFrame:
    return part.pivot_table(index=index, columns=columns, values=values, sort=True)


def level_activations_figure(frame: pd.DataFrame, layer: int = 0) -> go.Figure:
    """Tokens × the most active hidden units of each CMS level of one block."""
    title = f"Block {layer}: activations of each CMS level's most active units"
    rows = frame[frame["layer"] == layer]
    levels = sorted(int(v) for v in rows["level"].unique())
    if not levels:
        return _empty(title, "This block has no CMS levels")
    labels = token_labels(rows)
    layout = base_layout(title, height=190 + 26 * len(labels), top=96)
    axes = columns_layout(layout, [f"level {lv}" for lv in levels], [level_color(lv) for lv in levels],
                          x_title="hidden unit")
    data = []
    for level, x_axis in zip(levels, axes):
        grid = _grid(rows[rows["level"] == level], "position", "unit", "activation")
        data.append({"type": "heatmap", "z": grid.to_numpy().tolist(), "x": [f"u{u}" for u in grid.columns],
                     "y": labels, "xaxis": x_axis, "yaxis": "y", "coloraxis": "coloraxis",
                     "hovertemplate": f"level {level}<br>%{{y}}<br>unit %{{x}}<br>activation %{{z:.3f}}<extra></extra>"})
    layout["yaxis"] = axis("input token", autorange="reversed", showgrid=False, type="category",
                           tickfont={"size": FONT_SIZE - 2})
    layout["coloraxis"] = {"colorscale": DIVERGING, "cmid": 0, "reversescale": True,
                           "colorbar": {"title": {"text": "activation", "side": "right"}, "thickness": 14}}
    return figure(data, layout)


def level_contributions_figure(frame: pd.DataFrame, layer: int = 0) -> go.Figure:
    """How much each CMS level adds to the residual stream at each token (L2 norm)."""
    title = f"Block {layer}: what each CMS level adds to the residual stream"
    rows = frame[frame["layer"] == layer]
    if not len(rows):
        return _empty(title, "This block has no CMS levels")
    labels = token_labels(rows)
    layout = base_layout(title, height=400, barmode="group", bargap=0.25)
    data = []
    for level, group in rows.groupby("level", sort=True):
        group = group.sort_values("position")
        data.append({"type": "bar", "x": labels, "y": group["norm"].tolist(), "name": f"level {int(level)}",
                     "marker": {"color": level_color(level)}, "customdata": group["share"].tolist(),
                     "hovertemplate": f"level {int(level)}<br>%{{x}}<br>‖output‖ %{{y:.3f}}<br>"
                                      "share %{customdata:.0%}<extra></extra>"})
    layout["xaxis"] = axis("input token", tickangle=-45, showgrid=False, type="category")
    layout["yaxis"] = axis("‖level output‖ (L2 norm)", rangemode="tozero")
    return figure(data, layout)


def memory_figure(frame: pd.DataFrame, layer: int = 0, model: str = "titans") -> go.Figure:
    """Surprise per token and the gates of the memory, one row each; thin lines are heads."""
    title = f"Block {layer}: memory surprise and gates per token (thin lines: heads)"
    rows = frame[frame["layer"] == layer]
    present = set(rows["metric"])
    metrics = [m for m in GATE_ORDER if m in present]
    if not metrics:
        return _empty(title, "This model has no neural memory")
    names = GATE_NAMES.get(model, GATE_NAMES["titans"])
    labels = token_labels(rows)
    color = arch_color(model)
    layout = base_layout(title, height=140 + 130 * len(metrics), top=80)
    y_axes = rows_layout(layout, [names.get(m, m) for m in metrics], x_title="input token")
    layout["xaxis"]["type"] = "category"
    data = []
    for metric, y_axis in zip(metrics, y_axes):
        grid = _grid(rows[rows["metric"] == metric], "position", "head", "value")
        for head in grid.columns:
            data.append({"type": "scatter", "x": labels, "y": grid[head].tolist(), "xaxis": "x", "yaxis": y_axis,
                         "mode": "lines", "line": {"color": color, "width": 1}, "opacity": 0.35,
                         "showlegend": False, "name": f"head {head}",
                         "hovertemplate": f"head {head}<br>%{{x}}<br>%{{y:.3f}}<extra></extra>"})
        data.append({"type": "scatter", "x": labels, "y": grid.mean(axis=1).tolist(), "xaxis": "x", "yaxis": y_axis,
                     "mode": "lines+markers", "line": {"color": color, "width": 3}, "marker": {"color": color},
                     "name": "mean over heads", "showlegend": y_axis == "y",
                     "hovertemplate": "mean over heads<br>%{x}<br>%{y:.3f}<extra></extra>"})
        axis_name = "yaxis" + y_axis[1:]
        if metric in ("alpha", "eta"):                   # gates in (0, 1); θ lies in (0, θ_max)
            layout[axis_name]["range"] = [0, 1.02]
        else:
            layout[axis_name]["rangemode"] = "tozero"
    return figure(data, layout)


def attention_figure(frame: pd.DataFrame, layer: int = 0) -> go.Figure:
    """Attention weights of every head of one layer: query token (row) × key token (column)."""
    title = f"Layer {layer}: attention of each head (row: query token, column: key token)"
    rows = frame[frame["layer"] == layer]
    heads = sorted(int(h) for h in rows["head"].unique())
    if not heads:
        return _empty(title, "This model has no attention maps to show")
    queries = token_labels(rows, "query", "query_token")
    keys = token_labels(rows, "key", "key_token")
    layout = base_layout(title, height=260 + 24 * len(queries), top=96)
    axes = columns_layout(layout, [f"head {h}" for h in heads], [TEXT] * len(heads), x_title="key token")
    data = []
    for head, x_axis in zip(heads, axes):
        grid = _grid(rows[rows["head"] == head], "query", "key", "weight")
        data.append({"type": "heatmap", "z": grid.to_numpy().tolist(), "x": keys[:grid.shape[1]],
                     "y": queries[:grid.shape[0]], "xaxis": x_axis, "yaxis": "y", "coloraxis": "coloraxis",
                     "hovertemplate": f"head {head}<br>query %{{y}}<br>key %{{x}}<br>weight %{{z:.2f}}<extra></extra>"})
    layout["yaxis"] = axis("query token", autorange="reversed", showgrid=False, type="category",
                           tickfont={"size": FONT_SIZE - 2})
    layout["coloraxis"] = {"colorscale": SEQUENTIAL, "cmin": 0, "cmax": 1,
                           "colorbar": {"title": {"text": "weight", "side": "right"}, "thickness": 14}}
    return figure(data, layout)
