"""Figures of a sleep phase (lab.sleep, REFERENCE.md §6): DataFrame in, go.Figure out, no Streamlit.

- `knowledge_pair_figure`: the knowledge map (levels × tasks, "drop" = accuracy lost when the
  level is removed) before and after a sleep, side by side on one zero-centred diverging scale.
- `knowledge_transition_figure`: the same two maps as one heatmap with two frames (before,
  after), a Play button and a slider.
- `accuracy_before_after_figure`: accuracy per task before vs after the sleep (grouped bars,
  task colours; "before" pale, "after" full).
- `params_figure`: whole-model parameter count at every sleep stage (before, grown, pruned), a
  step chart; `params_events` turns run records into its frame.
- `drift_figure`: per-level drift during the sleep (report.drift), level colours.

Every builder returns a figure with a note instead of data when its input is empty.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lab.viz.palette import level_color, task_color
from lab.viz.style import DIVERGING, FONT_SIZE, axis, base_layout, columns_layout, figure, note

PARAM_STAGES = ("before", "grown", "after_prune")
STAGE_LABELS = {"before": "before sleep", "grown": "grown", "after_prune": "pruned"}


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _empty(title: str, text: str, height: int = 320) -> go.Figure:
    layout = base_layout(title, height=height)
    layout["annotations"].append(note(text))
    layout["xaxis"]["visible"] = False
    layout["yaxis"]["visible"] = False
    return figure([], layout)


def knowledge_table(frame: pd.DataFrame | None, tasks: list[str] | None = None) -> pd.DataFrame:
    """levels × tasks table of frame["drop"] (columns level, task, drop); tasks in stream order."""
    if frame is None or frame.empty:
        return pd.DataFrame()
    order = tasks or list(dict.fromkeys(frame["task"]))
    table = frame.pivot_table(index="level", columns="task", values="drop", aggfunc="last")
    return table.reindex(columns=[t for t in order if t in table.columns]).sort_index()


def _zmax(*tables: pd.DataFrame) -> float:
    values = [np.abs(t.to_numpy(dtype=float)) for t in tables if not t.empty]
    top = max((float(np.nanmax(v)) for v in values if v.size and np.isfinite(v).any()), default=0.0)
    return max(top, 0.05)


def _heatmap(table: pd.DataFrame, zmax: float, xaxis: str = "x", show_scale: bool = True) -> dict:
    z = table.to_numpy(dtype=float)
    return {"type": "heatmap", "x": list(table.columns), "y": [f"level {int(i)}" for i in table.index],
            "z": z.tolist(), "xaxis": xaxis, "yaxis": "y", "colorscale": DIVERGING, "reversescale": False,
            "zmin": -zmax, "zmid": 0.0, "zmax": zmax, "showscale": show_scale,
            "text": [[f"{v:+.2f}" for v in row] for row in z], "texttemplate": "%{text}",
            "textfont": {"size": FONT_SIZE}, "colorbar": {"title": {"text": "drop"}, "thickness": 14},
            "hovertemplate": "%{y} · %{x}<br>accuracy drop when removed: %{z:+.3f}<extra></extra>"}


KNOWLEDGE_TITLE = "Knowledge map: accuracy lost without each level"


def knowledge_pair_figure(before: pd.DataFrame | None, after: pd.DataFrame | None,
                          tasks: list[str] | None = None) -> go.Figure:
    b, a = knowledge_table(before, tasks), knowledge_table(after, tasks)
    if b.empty and a.empty:
        return _empty(KNOWLEDGE_TITLE, "No sleep yet: train a task, then press “Sleep now”.")
    zmax = _zmax(b, a)
    layout = base_layout(KNOWLEDGE_TITLE, height=340, top=92)
    refs = columns_layout(layout, ["before", "after"], ["#333333", "#333333"], gap=0.12)
    for name in ("xaxis", "xaxis2"):
        layout[name]["tickangle"] = 0
        layout[name]["tickfont"] = {"size": FONT_SIZE - 1}
    layout["yaxis"] = axis(None, showgrid=False, autorange="reversed")
    data = [_heatmap(t, zmax, ref, show_scale=(i == 1)) for i, (t, ref) in enumerate(zip((b, a), refs))
            if not t.empty]
    return figure(data, layout)


def knowledge_transition_figure(before: pd.DataFrame | None, after: pd.DataFrame | None,
                                tasks: list[str] | None = None, duration_ms: int = 900) -> go.Figure:
    """One heatmap, two frames ("before sleep", "after sleep"), Play button and slider."""
    title = "Knowledge map through the sleep (press ▶)"
    b, a = knowledge_table(before, tasks), knowledge_table(after, tasks)
    if b.empty or a.empty:
        return _empty(title, "No sleep yet: the transition appears after the first sleep.")
    zmax = _zmax(b, a)
    names = ("before sleep", "after sleep")
    frames = [{"name": n, "data": [_heatmap(t, zmax)]} for n, t in zip(names, (b, a))]
    layout = base_layout(title, height=400, top=64, bottom=110)
    layout["xaxis"] = axis(None, showgrid=False)
    layout["yaxis"] = axis(None, showgrid=False, autorange="reversed")
    anim = {"frame": {"duration": duration_ms, "redraw": True}, "transition": {"duration": duration_ms // 2},
            "mode": "immediate"}
    layout["updatemenus"] = [{"type": "buttons", "showactive": False, "x": 0.0, "xanchor": "left", "y": -0.2,
                              "yanchor": "top", "direction": "left",
                              "buttons": [{"label": "▶ Play", "method": "animate", "args": [None, anim]},
                                          {"label": "⏸", "method": "animate",
                                           "args": [[None], {"frame": {"duration": 0, "redraw": False},
                                                             "mode": "immediate"}]}]}]
    layout["sliders"] = [{"active": 0, "x": 0.28, "len": 0.72, "y": -0.12, "yanchor": "top",
                          "currentvalue": {"visible": False},
                          "steps": [{"label": n, "method": "animate",
                                     "args": [[n], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}]}
                                    for n in names]}]
    fig = figure(frames[0]["data"], layout)
    fig.frames = [go.Frame(data=f["data"], name=f["name"]) for f in frames]
    return fig


def accuracy_before_after_figure(frame: pd.DataFrame | None, tasks: list[str] | None = None) -> go.Figure:
    """frame: columns task, before, after (token accuracy)."""
    title = "Accuracy per task, before vs after the last sleep"
    if frame is None or frame.empty:
        return _empty(title, "No sleep yet.")
    order = tasks or list(frame["task"])
    frame = frame.set_index("task").reindex([t for t in order if t in set(frame["task"])]).reset_index()
    colors = [task_color(order.index(t)) for t in frame["task"]]
    data = [
        {"type": "bar", "name": "before sleep", "x": list(frame["task"]), "y": [float(v) for v in frame["before"]],
         "marker": {"color": [_rgba(c, 0.35) for c in colors], "line": {"color": colors, "width": 2}},
         "hovertemplate": "%{x} before sleep: %{y:.3f}<extra></extra>"},
        {"type": "bar", "name": "after sleep", "x": list(frame["task"]), "y": [float(v) for v in frame["after"]],
         "marker": {"color": colors, "line": {"color": colors, "width": 2}},
         "hovertemplate": "%{x} after sleep: %{y:.3f}<extra></extra>"},
    ]
    layout = base_layout(title, height=340, barmode="group")
    layout["yaxis"] = axis("token accuracy", range=[0, 1])
    layout["xaxis"] = axis(None, showgrid=False)
    layout["annotations"].append({"text": "pale = before · full = after", "xref": "paper", "yref": "paper",
                                  "x": 0.0, "y": 1.0, "xanchor": "left", "yanchor": "bottom", "showarrow": False,
                                  "font": {"size": FONT_SIZE - 2, "color": "#666666"}})
    return figure(data, layout)


def params_events(records: pd.DataFrame | None) -> pd.DataFrame:
    """Whole-model "params" rows of run records as columns step, stage, params, label, in order."""
    cols = ["step", "stage", "params", "label"]
    if records is None or records.empty:
        return pd.DataFrame(columns=cols)
    rows = records[(records["metric"] == "params") & (records["level"] == -1)].reset_index(drop=True)
    if rows.empty:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame({"step": rows["step"].astype(int), "params": rows["value"].astype(float)})
    out["stage"] = [PARAM_STAGES[i % len(PARAM_STAGES)] for i in range(len(out))]
    sleep_no = [i // len(PARAM_STAGES) + 1 for i in range(len(out))]
    out["label"] = [f"sleep {n} · {STAGE_LABELS[s]}" for n, s in zip(sleep_no, out["stage"])]
    return out[cols]


def params_figure(events: pd.DataFrame | None) -> go.Figure:
    title = "Parameters of the whole model: grown, then pruned"
    if events is None or events.empty:
        return _empty(title, "No sleep yet: the count changes only during a sleep.")
    x = list(range(len(events)))
    data = [{"type": "scatter", "mode": "lines+markers", "x": x, "y": [float(v) for v in events["params"]],
             "line": {"shape": "hv", "color": "#333333", "width": 2.5}, "marker": {"size": 9},
             "text": [f"{lab} (step {s})" for lab, s in zip(events["label"], events["step"])],
             "name": "parameters", "hovertemplate": "%{text}<br>%{y:,.0f} parameters<extra></extra>"}]
    layout = base_layout(title, height=320, bottom=110)
    layout["xaxis"] = axis(None, tickmode="array", tickvals=x, ticktext=list(events["label"]), tickangle=-35,
                           showgrid=False)
    layout["yaxis"] = axis("parameters", tickformat=",d")
    return figure(data, layout)


def drift_figure(drift: pd.DataFrame | None) -> go.Figure:
    """drift: columns iteration, level, drift (report.drift)."""
    title = "Drift per level during the last sleep"
    if drift is None or drift.empty:
        return _empty(title, "No drift recorded yet: it is measured during distillation.")
    data = []
    for level, rows in drift.groupby("level", sort=True):
        rows = rows.sort_values("iteration", kind="stable")
        data.append({"type": "scatter", "mode": "lines+markers", "name": f"level {int(level)}",
                     "x": [int(v) for v in rows["iteration"]], "y": [float(v) for v in rows["drift"]],
                     "line": {"color": level_color(int(level)), "width": 3}, "marker": {"size": 7},
                     "hovertemplate": f"level {int(level)}<br>distillation step %{{x}}: %{{y:.3f}}<extra></extra>"})
    layout = base_layout(title, height=320)
    layout["xaxis"] = axis("distillation step")
    layout["yaxis"] = axis("‖θ − θ before‖ / ‖θ before‖", rangemode="tozero")
    return figure(data, layout)


def sleep_summary(acc: pd.DataFrame | None, new_task: str | None, kl: dict | None) -> str:
    """One honest line from the numbers: mean accuracy change of old tasks and of the new one,
    and what distillation did to KL(teacher ‖ model) on the dreams compared with the reset alone."""
    if acc is None or acc.empty:
        return ""
    delta = (acc["after"] - acc["before"]).astype(float)
    tasks = list(acc["task"])
    old = [d for t, d in zip(tasks, delta) if t != new_task]
    parts = []
    if new_task in tasks:
        parts.append(f"the task just trained ({new_task}) changed by {float(delta[tasks.index(new_task)]):+.3f}")
    if old:
        parts.append(f"the other tasks by {float(np.mean(old)):+.3f} on average")
    text = "After this sleep, " + " and ".join(parts) + " (token accuracy)." if parts else ""
    kl = kl or {}
    if "reset" in kl:
        final = next((kl[k] for k in ("repaired", "pruned", "distilled") if k in kl), None)
        if final is not None:
            verdict = "lower" if final < kl["reset"] else "not lower"
            text += (f" With the fast level reset alone, the model's outputs on the dreams differed from the "
                     f"pre-sleep model by KL = {kl['reset']:.3g}; after distillation into the slow level, "
                     f"KL = {final:.3g} ({verdict}).")
        else:
            text += f" The fast reset alone gives KL = {kl['reset']:.3g} to the pre-sleep model on the dreams."
    return text.strip()
