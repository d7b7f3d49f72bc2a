"""Shared look of every figure: readable on a projector, light, and cheap to build.

Identity colours (architectures, CMS levels, tasks) come from `lab.viz.palette` only. The
continuous colour scales below are for magnitudes (update sizes, activations, attention) and
are colour-blind safe: Viridis (sequential) and the diverging RdBu centred on zero.

Live figures use fixed margins rather than automatic ones (see `base_layout`). Builders
assemble plain dicts and make the Figure once with `figure(data, layout)`, which
skips plotly's per-property validation: a live chart is rebuilt four times a second, and
validated construction costs tens of milliseconds per figure. The unit tests validate every
builder's output instead (`go.Figure(fig.to_dict())`).
"""
from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from lab.viz.palette import level_color, task_color

SEQUENTIAL = "Viridis"
DIVERGING = "RdBu"
FONT_SIZE = 15
TITLE_SIZE = 18
TEXT = "#1B1F24"
GRID = "#E3E7EC"
CURSOR = "#555555"
MAX_POINTS = 1500            # longer series are averaged into this many bins before drawing


def figure(data: list[dict], layout: dict) -> go.Figure:
    """The Figure of plain trace and layout dicts, without plotly's slow validation."""
    return go.Figure(data=data, layout=layout, _validate=False)


def axis(title: str | None = None, **extra) -> dict:
    out = {"showgrid": True, "gridcolor": GRID, "zeroline": False, "linecolor": "#999999", "ticks": "outside",
           "automargin": True, "title": {"text": title or "", "font": {"size": FONT_SIZE}}}
    out.update(extra)
    return out


def base_layout(title: str, height: int = 360, top: int = 64, left: int = 76, bottom: int = 64,
                fixed_margins: bool = False, **extra) -> dict:
    """The common layout. `fixed_margins` turns plotly's automatic margins off for the axes made
    here (pass `automargin=False` to axes made later): automatic margins make the browser lay a
    figure out twice on every redraw, which costs a live chart about a third of its frame."""
    layout = {
        "template": "none", "height": height,
        "title": {"text": title, "font": {"size": TITLE_SIZE}, "x": 0.0, "xanchor": "left", "y": 0.98,
                  "yanchor": "top", "yref": "container"},
        "font": {"size": FONT_SIZE, "family": "Source Sans Pro, Arial, sans-serif", "color": TEXT},
        "paper_bgcolor": "white", "plot_bgcolor": "white",
        "margin": {"l": left, "r": 24, "t": top, "b": bottom},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0,
                   "font": {"size": FONT_SIZE - 1}, "bgcolor": "rgba(255,255,255,0.85)"},
        "hoverlabel": {"font": {"size": FONT_SIZE}},
        "xaxis": axis(automargin=not fixed_margins), "yaxis": axis(automargin=not fixed_margins),
        "shapes": [], "annotations": [],
    }
    layout.update(extra)
    return layout


def note(text: str, size: int = FONT_SIZE + 1) -> dict:
    """A message in the middle of an empty plot."""
    return {"text": text, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5, "showarrow": False,
            "font": {"size": size, "color": "#666666"}}


def swatch(color: str) -> str:
    return f"<span style='color:{color}'>■</span>"


def level_label(level: int, every_steps: int | None = None) -> str:
    text = f"{swatch(level_color(level))} level {int(level)}"
    if not every_steps:
        return text
    return text + (" · every step" if every_steps == 1 else f" · every {every_steps} steps")


@dataclass(frozen=True)
class StreamLayout:
    """What a figure needs to know about the stream: task names (colour order), phases, units."""

    task_names: tuple[str, ...]
    phases: tuple[tuple[int, int, int], ...]        # (task index, first step, end step)
    tokens_per_step: int

    @property
    def total_steps(self) -> int:
        return self.phases[-1][2] if self.phases else 0

    @classmethod
    def of(cls, stream) -> "StreamLayout":
        bounds = stream.boundaries_steps()
        phases = tuple((task, bounds[i], bounds[i + 1]) for i, (task, _) in enumerate(stream.phases))
        return cls(tuple(stream.task_names), phases, int(stream.tokens_per_step))

    def task_index(self, name: str) -> int:
        return self.task_names.index(name) if name in self.task_names else 0

    def step_axis_title(self) -> str:
        return f"training step (1 step = {self.tokens_per_step} tokens)"


def add_phases(layout: dict, stream: StreamLayout, label: bool = True) -> None:
    """Shade each phase of the stream in its task's colour, named inside the top of the plot."""
    for task, start, end in stream.phases:
        color = task_color(task)
        layout["shapes"].append({"type": "rect", "xref": "x", "yref": "paper", "x0": start, "x1": end, "y0": 0,
                                 "y1": 1, "fillcolor": color, "opacity": 0.08, "line": {"width": 0},
                                 "layer": "below"})
        if start > 0:
            layout["shapes"].append({"type": "line", "xref": "x", "yref": "paper", "x0": start, "x1": start,
                                     "y0": 0, "y1": 1, "line": {"color": color, "width": 1.5, "dash": "dot"}})
        if label:
            layout["annotations"].append({"xref": "x", "yref": "paper", "x": (start + end) / 2, "y": 0.99,
                                          "yanchor": "top", "text": f"<b>{stream.task_names[task]}</b>",
                                          "showarrow": False, "font": {"size": FONT_SIZE - 1, "color": color}})
    layout["xaxis"]["range"] = [0, max(1, stream.total_steps)]


def add_cursor(layout: dict, step: int | None) -> None:
    """A vertical line at the step the scrubber shows (None: the latest step, no line)."""
    if step is not None:
        layout["shapes"].append({"type": "line", "xref": "x", "yref": "paper", "x0": step, "x1": step, "y0": 0,
                                 "y1": 1, "line": {"color": CURSOR, "width": 2}})


def thin(x, y, max_points: int = MAX_POINTS):
    """Average consecutive points so that at most `max_points` remain (for very long runs)."""
    x, y = list(x), list(y)
    n = len(x)
    if n <= max_points:
        return x, y
    size = -(-n // max_points)
    xs, ys = [], []
    for i in range(0, n, size):
        chunk_y = y[i:i + size]
        xs.append(x[min(i + size, n) - 1])
        ys.append(sum(chunk_y) / len(chunk_y))
    return xs, ys


def columns_layout(layout: dict, titles: list[str], colors: list[str], gap: float = 0.03,
                   x_title: str = "") -> list[str]:
    """Side-by-side panels sharing the y axis; returns the x axis name of each panel."""
    n = len(titles)
    width = (1 - gap * (n - 1)) / n
    names = []
    for i, (title, color) in enumerate(zip(titles, colors)):
        lo = i * (width + gap)
        name = "xaxis" if i == 0 else f"xaxis{i + 1}"
        layout[name] = axis(x_title, domain=[max(0.0, round(lo, 6)), min(1.0, round(lo + width, 6))], anchor="y",
                            showgrid=False, tickangle=-90,
                            tickfont={"size": FONT_SIZE - 4})
        layout["annotations"].append({"text": f"<b>{title}</b>", "xref": "paper", "yref": "paper",
                                      "x": lo + width / 2, "y": 1.0, "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": FONT_SIZE + 1, "color": color}})
        names.append("x" if i == 0 else f"x{i + 1}")
    return names


def rows_layout(layout: dict, titles: list[str], gap: float = 0.09, x_title: str = "") -> list[str]:
    """Stacked panels sharing the x axis (at the bottom); returns the y axis name of each panel."""
    n = len(titles)
    height = (1 - gap * (n - 1)) / n
    names = []
    for i, title in enumerate(titles):
        top = 1 - i * (height + gap)
        name = "yaxis" if i == 0 else f"yaxis{i + 1}"
        layout[name] = axis(None, domain=[max(0.0, round(top - height, 6)), min(1.0, round(top, 6))], anchor="x")
        layout["annotations"].append({"text": f"<b>{title}</b>", "xref": "paper", "yref": "paper", "x": 0.0,
                                      "xanchor": "left", "y": top, "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": FONT_SIZE}})
        names.append("y" if i == 0 else f"y{i + 1}")
    layout["xaxis"] = axis(x_title, anchor=names[-1], showgrid=False, tickangle=-45)
    return names
