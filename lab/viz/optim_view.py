"""Figures of optimizers as memories: DataFrames of `lab.optim.toys` in, plotly Figures out.

Colours (all from `lab.viz.palette`): M3's fast momentum is the colour of CMS level 0 and its
slow momentum that of level 2 (the same fast/slow language as the CMS pages); tasks have their
task colours. Optimizers have theirs in `palette.OPTIMIZER_COLORS`.
"""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from lab.viz import palette
from lab.viz.style import SEQUENTIAL, StreamLayout, add_phases, axis, base_layout, figure, note

LABELS = {"adam": "Adam", "muon": "Muon", "m3": "M3", "momentum": "momentum", "adamw": "AdamW", "sgd": "SGD"}
SLOW_LEVEL = 2                       # the level colour of M3's slow momentum
DASHES = {"v (2nd moment)": "dash"}


def optimizer_color(name: str) -> str:
    return palette.OPTIMIZER_COLORS.get(name, "#555555")


def _buffer_color(optimizer: str, level: int) -> str:
    if optimizer == "m3":
        return palette.level_color(0 if level == 0 else SLOW_LEVEL)
    return optimizer_color(optimizer)


def buffer_weights_figure(frame: pd.DataFrame, value: str = "share", log_y: bool = False) -> go.Figure:
    """Weight of a gradient k steps old in each buffer: measured impulse response (markers) and
    closed form (line), with each buffer's half-life marked. frame: lab.optim.toys.buffer_weights."""
    layout = base_layout("How much each buffer remembers of a gradient k steps old", height=420)
    data = []
    for (opt, buffer), group in frame.groupby(["optimizer", "buffer"], sort=False):
        color = _buffer_color(opt, int(group["level"].iloc[0]))
        name = f"{LABELS.get(opt, opt)} {buffer}"
        hl = float(group["half_life"].iloc[0])
        closed = group["closed_form" if value == "weight" else "closed_share"].tolist()
        data.append({"type": "scatter", "x": group["age"].tolist(), "y": closed, "mode": "lines",
                     "name": f"{name} · half-life {hl:.3g} steps", "legendgroup": name,
                     "line": {"color": color, "width": 2.5, "dash": DASHES.get(buffer, "solid"),
                              "shape": "hv" if opt == "m3" and buffer.startswith("M2") else "linear"},
                     "hovertemplate": f"{name}<br>age %{{x}}<br>closed form %{{y:.3g}}<extra></extra>"})
        data.append({"type": "scatter", "x": group["age"].tolist(), "y": group[value].tolist(), "mode": "markers",
                     "name": f"{name}, measured", "legendgroup": name, "showlegend": False,
                     "marker": {"color": color, "size": 5, "symbol": "circle-open"},
                     "hovertemplate": f"{name}<br>age %{{x}}<br>measured %{{y:.3g}}<extra></extra>"})
        if math.isfinite(hl) and hl <= float(group["age"].max()):
            layout["shapes"].append({"type": "line", "xref": "x", "x0": hl, "x1": hl, "yref": "paper", "y0": 0,
                                     "y1": 1, "line": {"color": color, "width": 1.5, "dash": "dot"}})
    if not len(frame):
        layout["annotations"].append(note("Nothing to show"))
    layout["legend"] = {"orientation": "v", "x": 1.0, "xanchor": "right", "y": 1.0, "yanchor": "top",
                        "bgcolor": "rgba(255,255,255,0.85)"}
    layout["xaxis"] = axis("age k of the gradient (steps ago)")
    y_title = "share of the buffer's memory" if value == "share" else "weight in the buffer"
    layout["yaxis"] = axis(y_title, type="log" if log_y else "linear", **({} if log_y else {"rangemode": "tozero"}))
    return figure(data, layout)


def orthogonal_tasks_figure(frame: pd.DataFrame, task: int = 0, value: str = "coefficient") -> go.Figure:
    """How much of one task survives in M3's fast and slow momentum as later tasks arrive.
    frame: lab.optim.toys.orthogonal_tasks. Other tasks are drawn faint."""
    layout = base_layout(f"What the fast and the slow momentum keep of task {task + 1}", height=400)
    data = []
    if len(frame):
        per_task = frame.groupby("current_task")["step"].agg(["min", "max"])
        phases = tuple((int(t), int(r["min"]) - 1, int(r["max"])) for t, r in per_task.iterrows())
        names = tuple(f"task {t + 1}" for t in range(int(frame["task"].max()) + 1))
        add_phases(layout, StreamLayout(names, phases, 1))
        for (buffer, level, j), group in frame.groupby(["buffer", "level", "task"], sort=True):
            color = palette.level_color(0 if level == 0 else SLOW_LEVEL)
            main = j == task
            label = f"{'fast M1' if level == 0 else 'slow M2'}" + ("" if main else f", task {j + 1}")
            data.append({"type": "scatter", "x": group["step"].tolist(), "y": group[value].tolist(), "mode": "lines",
                         "name": label, "showlegend": bool(main), "legendgroup": f"{buffer}{j}",
                         "opacity": 1.0 if main else 0.25, "line": {"color": color, "width": 3 if main else 1.2},
                         "hovertemplate": f"{label}<br>step %{{x}}<br>{value} %{{y:.3g}}"
                                          "<extra></extra>"})
    else:
        layout["annotations"].append(note("Nothing to show"))
    layout["xaxis"]["title"]["text"] = "optimizer step (each task's gradient is its own direction)"
    y_title = ("weight on the task's direction (1 = all of it)" if value == "coefficient"
               else "task's share of the buffer's direction")
    layout["yaxis"] = axis(y_title, rangemode="tozero")
    return figure(data, layout)


def trajectory_figure(grid: pd.DataFrame, paths: pd.DataFrame, title: str = "Trajectories on the loss surface"
                      ) -> go.Figure:
    """Contour lines of the loss (log-spaced) and each optimizer's path from the shared start.
    grid: columns x, y, loss (lab.optim.toys.surface_grid); paths: lab.optim.toys.trajectories."""
    layout = base_layout(title, height=520)
    xs, ys = sorted(grid["x"].unique()), sorted(grid["y"].unique())
    z = grid.pivot(index="y", columns="x", values="loss").reindex(index=ys, columns=xs)
    shift = 1e-3 - min(0.0, float(grid["loss"].min()))               # log of a positive loss
    zlog = [[math.log10(v + shift) for v in row] for row in z.to_numpy().tolist()]
    data = [{"type": "contour", "x": xs, "y": ys, "z": zlog, "colorscale": SEQUENTIAL, "ncontours": 24,
             "contours": {"coloring": "lines"}, "line": {"width": 1}, "showscale": False, "hoverinfo": "skip",
             "name": "loss"}]
    for name, path in paths.groupby("optimizer", sort=False):
        color = optimizer_color(name)
        label = LABELS.get(name, name)
        data.append({"type": "scatter", "x": path["x"].tolist(), "y": path["y"].tolist(), "mode": "lines+markers",
                     "name": f"{label} (final loss {path['loss'].iloc[-1]:.3g})", "line": {"color": color, "width": 3},
                     "marker": {"size": 4, "color": color}, "customdata": path[["step", "loss"]].to_numpy().tolist(),
                     "hovertemplate": f"{label}<br>step %{{customdata[0]}}<br>loss %{{customdata[1]:.4g}}<extra></extra>"})
    if len(paths):
        first = paths.iloc[0]
        data.append({"type": "scatter", "x": [first["x"]], "y": [first["y"]], "mode": "markers", "name": "start",
                     "marker": {"symbol": "x", "size": 14, "color": "#000000"}, "hoverinfo": "skip"})
    layout["xaxis"] = axis("x", constrain="domain", **({"range": [xs[0], xs[-1]]} if xs else {}))
    layout["yaxis"] = axis("y", scaleanchor="x", scaleratio=1, **({"range": [ys[0], ys[-1]]} if ys else {}))
    return figure(data, layout)


def trajectory_loss_figure(paths: pd.DataFrame) -> go.Figure:
    """Loss against step for each optimizer of the 2-D toy."""
    layout = base_layout("Loss along each trajectory", height=340)
    data = []
    for name, path in paths.groupby("optimizer", sort=False):
        color = optimizer_color(name)
        data.append({"type": "scatter", "x": path["step"].tolist(), "y": path["loss"].tolist(), "mode": "lines",
                     "name": LABELS.get(name, name), "line": {"color": color, "width": 3},
                     "hovertemplate": f"{LABELS.get(name, name)}<br>step %{{x}}<br>loss %{{y:.4g}}<extra></extra>"})
    if not len(paths):
        layout["annotations"].append(note("Pick at least one optimizer"))
    layout["xaxis"] = axis("step")
    positive = bool(len(paths)) and float(paths["loss"].min()) > 0
    layout["yaxis"] = axis("loss (log)", type="log") if positive else axis("loss")
    return figure(data, layout)


def optimizer_race_figure(frame: pd.DataFrame, window: int = 10) -> go.Figure:
    """Training loss (moving average over `window` steps) of each optimizer on the same task,
    from `lab.optimizer_race.race` rows."""
    layout = base_layout(f"Training loss by optimizer (same model, seed and batches; {window}-step mean)",
                         height=340)
    data = []
    losses = frame[frame["metric"] == "loss"] if len(frame) else frame
    for name, rows in losses.groupby("optimizer", sort=False):
        label = LABELS.get(name, name)
        smooth = rows["value"].rolling(window, min_periods=1).mean()
        data.append({"type": "scatter", "x": rows["step"].tolist(), "y": smooth.tolist(), "mode": "lines",
                     "name": label, "line": {"color": optimizer_color(name), "width": 3},
                     "hovertemplate": f"{label}<br>step %{{x}}<br>loss %{{y:.3f}}<extra></extra>"})
    if not data:
        layout["annotations"].append(note("Press “Compare” to train the same setup with each optimizer"))
    layout["xaxis"] = axis("training step")
    layout["yaxis"] = axis("loss (nats per token)", rangemode="tozero")
    return figure(data, layout)
