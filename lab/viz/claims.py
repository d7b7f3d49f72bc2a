"""Figures of a claim card (lab.claims): the effect per seed with its mean and 95 % interval, and the
regime map (the effect in each cell of the lab's knobs). DataFrame or card dict in, figure out."""
from __future__ import annotations

import math

import plotly.graph_objects as go

from lab.viz.style import FONT_SIZE, axis, base_layout, figure, note

SIDE_COLORS = {1: "#009E73", -1: "#D55E00", 0: "#999999"}       # claimed side / the other / both (Okabe–Ito)
SIDE_LABELS = {1: "on the claimed side", -1: "on the other side", 0: "interval includes zero"}


def _claimed_band(layout: dict, direction: int, axis_ref: str = "y") -> None:
    """Shade the half of the plot where the claim predicts the effect."""
    layout["shapes"].append({"type": "rect", "xref": "paper", "yref": axis_ref, "x0": 0, "x1": 1,
                             "y0": 0, "y1": 1e6 if direction > 0 else -1e6, "fillcolor": SIDE_COLORS[1],
                             "opacity": 0.06, "line": {"width": 0}, "layer": "below"})
    layout["shapes"].append({"type": "line", "xref": "paper", "yref": axis_ref, "x0": 0, "x1": 1, "y0": 0, "y1": 0,
                             "line": {"color": "#333333", "width": 1.5}})


def effect_figure(card: dict) -> go.Figure:
    """One dot per seed, the mean with its 95 % interval; the claimed side of zero shaded."""
    layout = base_layout("Effect per seed (dots) and mean ± 95 % interval", height=300, top=56)
    seeds = card.get("per_seed") or []
    values = [row["value"] for row in seeds if row.get("value") is not None and math.isfinite(row["value"])]
    eff = card["effect"]
    data = []
    if values:
        data.append({"type": "scatter", "x": [str(row["seed"]) for row in seeds], "y": [row["value"] for row in seeds],
                     "mode": "markers", "name": "a seed", "marker": {"size": 11, "color": "#0072B2"},
                     "hovertemplate": "seed %{x}: %{y:+.3f}<extra></extra>"})
    if eff["mean"] is not None and math.isfinite(eff["mean"]):
        ci = eff["ci95"] if eff["ci95"] is not None and math.isfinite(eff["ci95"]) else 0.0
        data.append({"type": "scatter", "x": ["mean"], "y": [eff["mean"]], "mode": "markers", "name": "mean ± 95 %",
                     "marker": {"size": 14, "color": "#000000", "symbol": "diamond"},
                     "error_y": {"type": "data", "array": [ci], "thickness": 2.5, "width": 10, "color": "#000000"},
                     "hovertemplate": f"mean %{{y:+.3f}} ± {ci:.3f}<extra></extra>"})
    else:
        layout["annotations"].append(note("No seed has this effect defined"))
    _claimed_band(layout, card["direction"])
    span = max([abs(v) for v in values] + [abs(eff["mean"] or 0) + abs(eff["ci95"] or 0), 1e-3]) * 1.25
    layout["xaxis"] = axis("seed", type="category")
    layout["yaxis"] = axis(card["effect_doc"].split(" (")[0], range=[-span, span], zeroline=False)
    layout["yaxis"]["title"]["font"] = {"size": FONT_SIZE - 2}
    return figure(data, layout)


def regime_figure(card: dict) -> go.Figure:
    """The effect in each cell of the regime map, mean ± 95 % interval, coloured by the side of zero its
    interval lies on."""
    rows, fields = card.get("regime") or [], card.get("regime_fields") or []
    seeds = ", ".join(map(str, card.get("regime_seeds") or []))
    layout = base_layout(f"Where it holds: the effect in each cell of the lab's knobs (seeds {seeds})", height=320,
                         top=56)
    if not rows:
        layout["annotations"].append(note("No regime map for this claim"))
        return figure([], layout)
    labels = [" · ".join(f"{f}={r.get(f)}" for f in fields) or "all" for r in rows]
    data = []
    for side in (1, 0, -1):
        mine = [(label, r) for label, r in zip(labels, rows) if r.get("side") == side]
        if not mine:
            continue
        data.append({"type": "bar", "x": [m[0] for m in mine], "y": [m[1]["mean"] for m in mine],
                     "name": SIDE_LABELS[side], "marker": {"color": SIDE_COLORS[side]},
                     "error_y": {"type": "data", "array": [m[1]["ci95"] or 0 for m in mine], "thickness": 2},
                     "hovertemplate": "%{x}<br>effect %{y:+.3f}<extra></extra>"})
    _claimed_band(layout, card["direction"])
    layout["xaxis"] = axis("", type="category")
    layout["yaxis"] = axis("effect", zeroline=False)
    layout["barmode"] = "group"
    return figure(data, layout)
