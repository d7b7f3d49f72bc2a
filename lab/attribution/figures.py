"""Figures of attributions (lab.attribution): frame in, go.Figure out, no Streamlit.

- `flow_figure`: one example, position by position: the input tokens, then in every block each
  component (CMS levels, attention or memory) and the residual stream after the block, coloured by
  attribution on one zero-centred diverging scale.
- `components_figure`: one example, each component's total attribution (bars in level colours).
- `map_pair_figure`: the lesion knowledge map and the attribution map (level × task) side by side,
  with their rank agreement in the title.
- `trajectory_figure`: one example's attribution to each CMS level at checkpoints of a run.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lab.viz.palette import level_color
from lab.viz.style import DIVERGING, FONT_SIZE, axis, base_layout, columns_layout, figure, note

BRANCH_COLOR = "#777777"
UNIT = "Δ log p(answer)"


def _empty(title: str, text: str, height: int = 320) -> go.Figure:
    layout = base_layout(title, height=height)
    layout["annotations"].append(note(text))
    layout["xaxis"]["visible"] = layout["yaxis"]["visible"] = False
    return figure([], layout)


def _zmax(values) -> float:
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    return max(float(v.max()) if v.size else 0.0, 1e-6)


def _subtitle(summary: dict) -> str:
    diff = summary["value"] - summary["baseline_value"]
    return (f"answer “{summary['answer']}” at position {summary['position']}: log p = {summary['value']:.3f}; "
            f"on the {summary['baseline']} baseline {summary['baseline_value']:.3f} (difference {diff:+.3f})")


def flow_figure(result) -> go.Figure:
    """Rows: input tokens, then per block its components and the stream after it; columns: positions."""
    frame, summary = result.frame, result.summary
    title = "Where the answer comes from, position by position"
    if frame.empty:
        return _empty(title, "Nothing to show")
    words = summary["tokens_text"]
    labels = [f"{i} {w}" for i, w in enumerate(words)]
    order = [("token", "tokens", "input tokens")]
    per_block = frame[(frame.part != "token") & (frame.block >= 0)]
    for block in sorted(per_block.block.unique()):
        here = per_block[per_block.block == block]
        order += [("component", g, g) for g in dict.fromkeys(here[here.part == "component"].group)]
        order += [("residual", f"block {block}", f"block {block} · stream after")]
    z = []
    for part, group, _ in order:
        rows = frame[(frame.part == part) & (frame.group == group)].sort_values("position")
        z.append(rows.attribution.tolist())
    zmax = _zmax([v for row in z for v in row])
    layout = base_layout(title + "<br><sup>" + _subtitle(summary) + "</sup>", height=150 + 30 * len(order), top=84)
    layout["xaxis"] = axis("input position and token", showgrid=False, type="category", tickangle=-30)
    layout["yaxis"] = axis(None, showgrid=False, autorange="reversed", type="category",
                           tickfont={"size": FONT_SIZE - 2})
    layout["shapes"].append({"type": "rect", "xref": "x", "yref": "paper", "x0": summary["position"] - 0.5,
                             "x1": summary["position"] + 0.5, "y0": 0, "y1": 1,
                             "line": {"color": "#222222", "width": 2}})
    data = [{"type": "heatmap", "z": z, "x": labels, "y": [label for _, _, label in order],
             "colorscale": DIVERGING, "zmin": -zmax, "zmid": 0.0, "zmax": zmax, "reversescale": False,
             "colorbar": {"title": {"text": UNIT}, "thickness": 14},
             "text": [[f"{v:+.2f}" for v in row] for row in z], "texttemplate": "%{text}",
             "textfont": {"size": FONT_SIZE - 3},
             "hovertemplate": "%{y}<br>%{x}<br>attribution %{z:+.4f}<extra></extra>"}]
    return figure(data, layout)


def components_figure(result) -> go.Figure:
    """Each component's attribution (summed over positions): a bar per block's level or branch, and
    per CMS level in every block at once (what a lesion removes)."""
    title = "Which level answered: attribution of each component"
    totals = result.totals("component")
    if totals.empty:
        return _empty(title, "This model has no CMS level or branch to attribute to")
    colors = [level_color(lv) if comp == "level" else BRANCH_COLOR for comp, lv in zip(totals.component, totals.level)]
    deltas = result.summary.get("delta", {}).get("component", {})
    layout = base_layout(title + "<br><sup>" + _subtitle(result.summary) + "</sup>", height=140 + 28 * len(totals),
                         top=84, left=150)
    layout["xaxis"] = axis(f"attribution ({UNIT})", zeroline=True, zerolinecolor="#888888")
    layout["yaxis"] = axis(None, autorange="reversed", type="category", showgrid=False)
    data = [{"type": "bar", "orientation": "h", "y": totals.group.tolist(), "x": totals.attribution.tolist(),
             "marker": {"color": colors}, "text": [f"{v:+.3f}" for v in totals.attribution],
             "textposition": "outside", "cliponaxis": False,
             "customdata": [deltas.get(g, float("nan")) for g in totals.group],
             "hovertemplate": "%{y}<br>attribution %{x:+.4f}<br>convergence delta %{customdata:.1e}<extra></extra>"}]
    return figure(data, layout)


def _table(frame: pd.DataFrame, value: str, tasks) -> pd.DataFrame:
    table = frame.pivot_table(index="level", columns="task", values=value, aggfunc="last")
    order = list(tasks) if tasks is not None else list(dict.fromkeys(frame["task"]))
    return table.reindex(columns=[t for t in order if t in table.columns]).sort_index()


def _heat(table: pd.DataFrame, xaxis: str, colorbar_x: float, label: str, hover: str) -> dict:
    z = table.to_numpy(dtype=float)
    zmax = _zmax(z)
    return {"type": "heatmap", "x": list(table.columns), "y": [f"level {int(i)}" for i in table.index],
            "z": z.tolist(), "xaxis": xaxis, "yaxis": "y", "colorscale": DIVERGING, "zmin": -zmax, "zmid": 0.0,
            "zmax": zmax, "text": [[f"{v:+.2f}" for v in row] for row in z], "texttemplate": "%{text}",
            "textfont": {"size": FONT_SIZE - 1},
            "colorbar": {"title": {"text": label}, "thickness": 12, "x": colorbar_x, "len": 0.8},
            "hovertemplate": "%{y} · %{x}<br>" + hover + " %{z:+.3f}<extra></extra>"}


def agreement_text(agreement: float) -> str:
    return "agreement: n/a (too few cells or a constant map)" if agreement is None or math.isnan(agreement) \
        else f"rank agreement (Spearman ρ over levels × tasks) = {agreement:+.2f}"


def map_pair_figure(attribution: pd.DataFrame | None, lesion: pd.DataFrame | None, agreement: float | None,
                    tasks=None, title: str = "Lesion map and attribution map") -> go.Figure:
    """The lesion knowledge map (accuracy lost without each level) beside the attribution map
    (log-probability each level carries), each on its own zero-centred scale."""
    if attribution is None or lesion is None or attribution.empty or lesion.empty:
        return _empty(title, "No maps yet")
    layout = base_layout(f"{title}<br><sup>{agreement_text(agreement)}</sup>", height=330, top=100)
    refs = columns_layout(layout, ["lesion: accuracy drop", "attribution: Δ log p"], ["#333333", "#333333"], gap=0.2)
    for name in ("xaxis", "xaxis2"):
        layout[name]["tickangle"] = 0
        layout[name]["tickfont"] = {"size": FONT_SIZE - 2}
    layout["yaxis"] = axis(None, showgrid=False, autorange="reversed")
    data = [_heat(_table(lesion, "drop", tasks), refs[0], 0.41, "drop", "accuracy drop when reset"),
            _heat(_table(attribution, "attribution", tasks), refs[1], 1.0, "Δ log p", "attribution")]
    return figure(data, layout)


def trajectory_figure(frame: pd.DataFrame | None, cursor: int | None = None) -> go.Figure:
    """Attribution to each CMS level (in every block) at recorded steps of the run."""
    title = "The same example through training: attribution to each level"
    if frame is None or frame.empty:
        return _empty(title, "No checkpoints yet")
    layout = base_layout(title, height=330)
    layout["xaxis"] = axis("step")
    layout["yaxis"] = axis(f"attribution ({UNIT})", zeroline=True, zerolinecolor="#888888")
    data = [{"type": "scatter", "mode": "lines+markers", "x": g.step.tolist(), "y": g.attribution.tolist(),
             "name": f"level {int(level)}", "line": {"color": level_color(level), "width": 3}}
            for level, g in frame.sort_values("step").groupby("level")]
    if cursor is not None:
        layout["shapes"].append({"type": "line", "xref": "x", "yref": "paper", "x0": cursor, "x1": cursor,
                                 "y0": 0, "y1": 1, "line": {"color": "#555555", "dash": "dot"}})
    return figure(data, layout)
