"""Figures of the associative-memory view: DataFrames of `lab.assoc` in, plotly Figures out.

Colours: one per memory, from its registry entry (`lab.memory.registry`, the same on every page).
"""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from lab.memory import registry
from lab.viz.style import CURSOR, TEXT, axis, base_layout, figure, note

FIELD_TITLES = {"n_pairs": "pairs written N", "correlation": "key correlation ρ (cosine between keys)",
                "d_key": "key dimension d", "decay": "retention per write (decay)",
                "momentum": "Titans momentum η", "write_strength": "write strength β",
                "sharpness": "softmax sharpness"}


def memory_color(name: str) -> str:
    """The memory's registered colour; grey for a name the registry does not know."""
    return next((e.color for e in registry.entries() if e.key == name), "#555555")


def _label(frame: pd.DataFrame, name: str) -> str:
    labels = frame.loc[frame["memory"] == name, "label"]
    return str(labels.iloc[0]) if len(labels) else name


def _error_axis(log_y: bool) -> dict:
    title = "‖read(k) − v‖² / ‖v‖²"
    return axis(title + " (log)", type="log") if log_y else axis(title, rangemode="tozero")


def _finite(values) -> list:
    return [None if v is None or not math.isfinite(v) else float(v) for v in values]


def recall_age_figure(frame: pd.DataFrame, n_pairs: int | None = None, log_y: bool = False) -> go.Figure:
    """Recall error of every pair against its age (writes since it was stored): forgetting at the
    level of one memory. frame: columns memory, label, pair, age, error, diverged (lab.assoc.recall).
    A memory that diverged has no points; its legend entry says so."""
    layout = base_layout("Recall error of each pair against its age", height=380)
    data = []
    for name, group in frame.groupby("memory", sort=False):
        group = group.sort_values("age")
        color = memory_color(name)
        label = _label(frame, name) + (" — diverged" if group["error"].isna().any() else "")
        data.append({"type": "scatter", "x": group["age"].tolist(), "y": _finite(group["error"]),
                     "mode": "lines+markers", "name": label, "line": {"color": color, "width": 2.5},
                     "marker": {"size": 5, "color": color}, "customdata": group["pair"].tolist(),
                     "hovertemplate": f"{_label(frame, name)}<br>pair %{{customdata}}, age %{{x}}"
                                      "<br>error %{y:.3g}<extra></extra>"})
    if not len(frame):
        layout["annotations"].append(note("Pick at least one memory"))
    title = "age of the pair (pairs written after it)" + (f", N = {n_pairs}" if n_pairs else "")
    layout["xaxis"] = axis(title)
    layout["yaxis"] = _error_axis(log_y)
    layout["shapes"].append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": 1, "y1": 1,
                             "line": {"color": CURSOR, "width": 1, "dash": "dot"}})
    layout["annotations"].append({"text": "1 = no better than reading zeros", "xref": "paper", "x": 1.0,
                                  "xanchor": "right", "yref": "y", "y": 1, "yanchor": "bottom", "showarrow": False,
                                  "font": {"size": 13, "color": CURSOR}})
    return figure(data, layout)


def sweep_figure(frame: pd.DataFrame, field: str, title: str | None = None, log_x: bool = False,
                 log_y: bool = False) -> go.Figure:
    """Mean recall error against one swept field, per memory, mean ± spread over seeds.
    frame: columns memory, label, field, value, seed, error, diverged (lab.assoc.sweep). A value at
    which any seed diverged gets no point (a mean over the survivors would flatter the memory)."""
    layout = base_layout(title or f"Mean recall error against {FIELD_TITLES.get(field, field)}", height=420)
    data = []
    for name, group in frame.groupby("memory", sort=False):
        stats = group.groupby("value")["error"].agg(
            mean=lambda e: e.mean(skipna=False), std="std", count="count").reset_index()
        color = memory_color(name)
        spread = [0.0 if (c < 2 or math.isnan(s)) else float(s) for s, c in zip(stats["std"], stats["count"])]
        bad = [v for v, m in zip(stats["value"], stats["mean"]) if math.isnan(m)]
        label = _label(frame, name) + (f" — diverged at {', '.join(f'{v:g}' for v in bad)}" if bad else "")
        data.append({"type": "scatter", "x": stats["value"].tolist(), "y": _finite(stats["mean"]),
                     "mode": "lines+markers", "name": label, "line": {"color": color, "width": 2.5},
                     "marker": {"size": 7, "color": color},
                     "error_y": {"type": "data", "array": spread, "visible": bool(any(spread)), "color": color},
                     "hovertemplate": f"{_label(frame, name)}<br>{field} = %{{x}}<br>mean error %{{y:.3g}}"
                                      "<extra></extra>"})
    if not len(frame):
        layout["annotations"].append(note("No selected memory has this knob"))
    ticks = sorted(frame["value"].unique().tolist()) if log_x and len(frame) else None
    layout["xaxis"] = axis(FIELD_TITLES.get(field, field), type="log" if log_x else "linear",
                           **({"tickvals": ticks} if ticks else {}))
    layout["yaxis"] = _error_axis(log_y)
    layout["legend"].update(y=-0.3, yanchor="top", x=0.0, xanchor="left")      # below: these plots are small
    layout["margin"]["b"] = 130
    layout["yaxis"]["title"]["text"] = "mean " + layout["yaxis"]["title"]["text"]
    return figure(data, layout)


def equivalence_figure(frame: pd.DataFrame) -> go.Figure:
    """Measured difference of each equivalence against its tolerance, on a log scale.
    frame: columns name, max_abs_diff, tolerance, expected_equal, holds (lab.assoc.all_equivalences)."""
    layout = base_layout("Numerical difference of each equivalence (log scale)", height=140 + 34 * max(1, len(frame)),
                         margin={"l": 330, "r": 24, "t": 64, "b": 60})
    names = frame["name"].tolist() if len(frame) else []
    floor = 1e-12                                    # exact zeros drawn at the floor
    diffs = [max(floor, float(d)) for d in frame.get("max_abs_diff", [])]
    data = [
        {"type": "bar", "orientation": "h", "y": names, "x": diffs, "name": "measured |difference|",
         "marker": {"color": CURSOR}, "customdata": frame.get("max_abs_diff", pd.Series(dtype=float)).tolist(),
         "hovertemplate": "%{y}<br>max |difference| = %{customdata:.3g}<extra></extra>"},
        {"type": "scatter", "mode": "markers", "y": names, "x": frame.get("tolerance", pd.Series(dtype=float)).tolist(),
         "name": "tolerance", "marker": {"symbol": "line-ns-open", "size": 22, "color": TEXT, "line": {"width": 3}},
         "hovertemplate": "%{y}<br>tolerance %{x:.3g}<extra></extra>"},
    ]
    for name, ok, expected in zip(names, frame.get("holds", []), frame.get("expected_equal", [])):
        text = ("✓ equal" if expected else "✓ differs, as expected") if ok else "✗ unexpected"
        layout["annotations"].append({"text": text, "xref": "paper", "x": 1.0, "xanchor": "right", "yref": "y",
                                      "y": name, "showarrow": False, "font": {"size": 13, "color": TEXT}})
    layout["xaxis"] = axis("max |lhs − rhs| (exact zeros shown at 1e-12)", type="log")
    layout["yaxis"] = axis("", autorange="reversed", type="category", showgrid=False)
    return figure(data, layout)
