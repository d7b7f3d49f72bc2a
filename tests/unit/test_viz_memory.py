"""Figure builders of the associative-memory page (lab.viz.memory_view, lab.viz.optim_view):
valid plotly, one trace per series, palette colours only, honest about empty and diverged data."""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from lab.assoc import KVStream, MemoryParams, recall, sweep
from lab.optim.toys import (AdamSpec, M3Spec, MuonSpec, SurfaceSpec, buffer_weights, orthogonal_tasks,
                            surface_grid, trajectories)
from lab.viz import palette
from lab.viz.memory_view import equivalence_figure, memory_color, recall_age_figure, sweep_figure
from lab.viz.optim_view import (buffer_weights_figure, optimizer_color, orthogonal_tasks_figure, trajectory_figure,
                                trajectory_loss_figure)
from lab.viz.style import CURSOR, TEXT

torch.set_num_threads(1)
PALETTE = set(palette.ARCH_COLORS.values()) | set(palette.LEVEL_COLORS) | set(palette.TASK_COLORS) | {
    palette.SLEEP_COLOR, CURSOR, TEXT, "#000000"}
STREAM = KVStream(n_pairs=12, d_key=8, d_value=8)


def validated(fig) -> go.Figure:
    return go.Figure(fig.to_dict())              # raises on any invalid property


def colors(fig) -> set[str]:
    out = set()
    for trace in fig.to_dict()["data"]:
        for part in ("line", "marker"):
            c = (trace.get(part) or {}).get("color")
            if isinstance(c, str):
                out.add(c)
    return out


def test_recall_figure_one_trace_per_memory_in_its_colour():
    frame = recall(["softmax", "delta", "titans"], STREAM, MemoryParams())
    fig = validated(recall_age_figure(frame, 12, log_y=True))
    assert [t.name for t in fig.data] == ["softmax attention", "DeltaNet (delta rule)", "Titans memory, 1 layer"]
    assert [t.line.color for t in fig.data] == [memory_color(n) for n in ("softmax", "delta", "titans")]
    assert len({t.line.color for t in fig.data}) == 3 and colors(fig) <= PALETTE
    assert list(fig.data[1].x) == sorted(frame[frame["memory"] == "delta"]["age"])
    assert fig.layout.yaxis.type == "log"


def test_diverged_memory_is_named_not_drawn():
    frame = recall(["titans"], STREAM.replace(n_pairs=200), MemoryParams(write_strength=1.9, momentum=0.95))
    fig = validated(recall_age_figure(frame))
    assert "diverged" in fig.data[0].name and all(y is None for y in fig.data[0].y)


def test_sweep_figure_means_over_seeds_and_marks_divergence():
    frame = sweep(["delta", "hebbian"], STREAM, MemoryParams(), "n_pairs", [4, 8], seeds=2)
    fig = validated(sweep_figure(frame, "n_pairs", log_x=True))
    delta = frame[frame["memory"] == "delta"].groupby("value")["error"].mean()
    assert list(fig.data[0].y) == pytest.approx(list(delta))
    assert list(fig.layout.xaxis.tickvals) == [4, 8]
    broken = pd.DataFrame({"memory": ["delta"] * 2, "label": ["d"] * 2, "field": ["decay"] * 2, "value": [0.9, 0.9],
                           "seed": [0, 1], "error": [0.5, math.nan], "diverged": [False, True]})
    fig = validated(sweep_figure(broken, "decay"))
    assert fig.data[0].y == (None,) and "diverged at 0.9" in fig.data[0].name


def test_equivalence_figure_bars_and_tolerances():
    frame = pd.DataFrame({"name": ["a", "b"], "max_abs_diff": [0.0, 1e-3], "tolerance": [1e-5, 1e-6],
                          "expected_equal": [True, True], "holds": [True, False]})
    fig = validated(equivalence_figure(frame))
    assert list(fig.data[0].x) == [1e-12, 1e-3] and list(fig.data[1].x) == [1e-5, 1e-6]
    texts = [a.text for a in fig.layout.annotations]
    assert "✓ equal" in texts and "✗ unexpected" in texts


def test_buffer_figure_uses_level_colours_for_m3_fast_and_slow():
    fig = validated(buffer_weights_figure(buffer_weights(horizon=30), value="share", log_y=True))
    by_name = {t.name: t for t in fig.data}
    fast = next(t for n, t in by_name.items() if n.startswith("M3 M1"))
    slow = next(t for n, t in by_name.items() if n.startswith("M3 M2"))
    assert fast.line.color == palette.level_color(0) and slow.line.color != fast.line.color
    assert slow.line.color in palette.LEVEL_COLORS and slow.line.shape == "hv"
    assert "half-life 6.58 steps" in next(n for n in by_name if n.startswith("momentum"))
    assert len(fig.data) == 10 and colors(fig) <= PALETTE        # 5 buffers × (closed form, measured)


def test_orthogonal_tasks_figure_shades_phases_and_highlights_one_task():
    frame = orthogonal_tasks(n_tasks=3, steps_per_task=10, slow_every=5)
    fig = validated(orthogonal_tasks_figure(frame, task=1))
    shown = [t for t in fig.data if t.showlegend]
    assert len(fig.data) == 6 and len(shown) == 2
    assert {t.line.color for t in shown} == {palette.level_color(0), palette.level_color(2)}
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(s.x0, s.x1) for s in rects] == [(0, 10), (10, 20), (20, 30)]
    assert [s.fillcolor for s in rects] == [palette.task_color(i) for i in range(3)]


def test_trajectory_figures():
    specs = {"adam": AdamSpec(), "muon": MuonSpec(), "m3": M3Spec()}
    paths = trajectories(SurfaceSpec(surface="two_basins", steps=20), specs)
    fig = validated(trajectory_figure(surface_grid("two_basins", n=20), paths))
    assert fig.data[0].type == "contour" and [t.line.color for t in fig.data[1:4]] == [
        optimizer_color(n) for n in specs]
    assert len(set(optimizer_color(n) for n in ("adam", "muon", "m3", "momentum"))) == 4
    assert colors(fig) <= PALETTE
    loss = validated(trajectory_loss_figure(paths))
    assert loss.layout.yaxis.type == "log" and len(loss.data[0].x) == 21
    below_zero = paths.assign(loss=paths["loss"] - 10)             # a log axis cannot show a negative loss
    assert validated(trajectory_loss_figure(below_zero)).layout.yaxis.type != "log"


def test_empty_frames_say_so():
    for fig in (recall_age_figure(recall(["delta"], STREAM, MemoryParams()).iloc[:0]),
                buffer_weights_figure(buffer_weights(horizon=3).iloc[:0]),
                orthogonal_tasks_figure(orthogonal_tasks(2, 2).iloc[:0]),
                trajectory_loss_figure(trajectories(SurfaceSpec(steps=2), {}))):
        fig = validated(fig)
        assert len(fig.data) == 0 and fig.layout.annotations
