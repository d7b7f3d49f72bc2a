"""Figure builders of lab.viz: DataFrame in, valid plotly Figure out, with the data and colours
the page promises (one colour per architecture, CMS level and task, from lab.viz.palette)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lab.records import COLUMNS
from lab.viz.inside import attention_figure, level_activations_figure, level_contributions_figure, memory_figure
from lab.viz.palette import arch_color, level_color, task_color
from lab.viz.style import StreamLayout, thin
from lab.viz.training import (accuracy_figure, drift_figure, loss_figure, smooth, update_grid,
                              update_timeline_figure)

STREAM = StreamLayout(task_names=("a", "b"), phases=((0, 0, 10), (1, 10, 20)), tokens_per_step=72)


def valid(fig: go.Figure) -> go.Figure:
    """Rebuild with plotly's full validation: a typo in any property raises here."""
    assert isinstance(fig, go.Figure)
    return go.Figure(fig.to_dict())


def records(rows) -> pd.DataFrame:
    return pd.DataFrame([(s, s * 72, "active", "hope", task, level, metric, value)
                         for s, task, level, metric, value in rows], columns=COLUMNS)


def training_records() -> pd.DataFrame:
    rows = [(s, "a" if s <= 10 else "b", -1, "loss", 4.0 - 0.1 * s) for s in range(1, 21)]
    for s in (0, 10, 20):
        rows += [(s, "a", -1, "accuracy", 0.02 * s), (s, "b", -1, "accuracy", 0.01 * s)]
        rows += [(s, "", lv, "drift", 0.1 * s * (lv + 1)) for lv in range(2)]
    rows += [(s, "a", 0, "update_norm", 0.5) for s in range(1, 21)]
    rows += [(s, "a", 1, "update_norm", 2.0) for s in range(5, 21, 5)]
    return records(rows)


# --- records-based figures -------------------------------------------------------------------

def test_loss_figure_shows_every_step_and_its_average_in_the_architecture_colour():
    fig = valid(loss_figure(training_records(), STREAM, "titans"))
    raw, average = fig.data
    assert list(raw.x) == list(range(1, 21))
    assert list(raw.y) == pytest.approx([4.0 - 0.1 * s for s in range(1, 21)])
    assert list(average.y) == pytest.approx(smooth(raw.y))
    assert raw.line.color == average.line.color == arch_color("titans")
    assert fig.layout.xaxis.range == (0, 20)
    assert "72 tokens" in fig.layout.xaxis.title.text


def test_loss_figure_without_records_says_what_to_do():
    fig = valid(loss_figure(training_records().iloc[:0], STREAM, "hope"))
    assert not fig.data
    assert any("Play" in a.text for a in fig.layout.annotations)


def test_phases_are_shaded_in_task_colours_and_the_cursor_is_drawn():
    fig = valid(loss_figure(training_records(), STREAM, "hope", cursor=7))
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [r.fillcolor for r in rects] == [task_color(0), task_color(1)]
    assert [(r.x0, r.x1) for r in rects] == [(0, 10), (10, 20)]
    cursors = [s for s in fig.layout.shapes if s.type == "line" and s.x0 == 7]
    assert len(cursors) == 1
    assert {a.text for a in fig.layout.annotations} >= {"<b>a</b>", "<b>b</b>"}


def test_accuracy_figure_has_one_line_per_task_in_its_colour():
    fig = valid(accuracy_figure(training_records(), STREAM))
    assert [t.name for t in fig.data] == ["a", "b"]
    assert [t.line.color for t in fig.data] == [task_color(0), task_color(1)]
    assert list(fig.data[1].y) == pytest.approx([0.0, 0.1, 0.2])
    assert fig.layout.yaxis.range == (0, 1.02)


def test_drift_figure_has_one_line_per_level_in_its_colour():
    fig = valid(drift_figure(training_records(), STREAM))
    assert [t.name for t in fig.data] == ["level 0", "level 1"]
    assert [t.line.color for t in fig.data] == [level_color(0), level_color(1)]
    assert list(fig.data[1].y) == pytest.approx([0.0, 2.0, 4.0])


def test_update_timeline_marks_exactly_the_steps_where_a_level_changed():
    fig = valid(update_timeline_figure(training_records(), STREAM, (1, 5)))
    z = np.array([[np.nan if v is None else v for v in row] for row in fig.data[0].z], dtype=float)
    assert z.shape == (2, 20)
    assert np.all(z[0] == 0.5)
    marked = [int(x) for x, v in zip(fig.data[0].x, z[1]) if not math.isnan(v)]
    assert marked == [5, 10, 15, 20] and np.nanmax(z[1]) == 2.0
    assert "every 5 steps" in fig.data[0].y[1] and level_color(1) in fig.data[0].y[1]


def test_update_grid_bins_long_runs_and_averages_inside_a_bin():
    rows = records([(s, "a", 0, "update_norm", float(s)) for s in range(1, 101)])
    x, z, bin_size = update_grid(rows, n_levels=1, total_steps=100, max_columns=10)
    assert bin_size == 10 and len(x) == 10 and x[-1] == 100
    assert z[0, 0] == pytest.approx(np.mean(range(1, 11)))


def test_update_timeline_without_updates_says_so():
    fig = valid(update_timeline_figure(training_records().iloc[:0], STREAM, (2,)))
    assert any("No level" in a.text for a in fig.layout.annotations)


def test_thin_keeps_short_series_and_averages_long_ones():
    assert thin([1, 2, 3], [4, 5, 6]) == ([1, 2, 3], [4, 5, 6])
    x, y = thin(list(range(10)), [1.0] * 5 + [3.0] * 5, max_points=2)
    assert x == [4, 9] and y == [1.0, 3.0]


def test_smooth_of_a_constant_is_that_constant():
    assert smooth([2.0] * 30) == pytest.approx([2.0] * 30)


def test_stream_layout_reads_a_real_stream():
    from lab.tasks.stream import StreamConfig, build_stream
    stream = build_stream(StreamConfig(n_tasks=2, steps_per_task=5, schedule=(0, 1, 0)))
    layout = StreamLayout.of(stream)
    assert layout.phases == ((0, 0, 5), (1, 5, 10), (0, 10, 15))
    assert layout.total_steps == 15 and layout.tokens_per_step == stream.tokens_per_step


# --- probe-based figures ----------------------------------------------------------------------

def activations_frame() -> pd.DataFrame:
    rows = [(0, level, pos, f"t{pos}", unit, float(level + pos - unit)) for level in range(3)
            for pos in range(4) for unit in (1, 5)]
    return pd.DataFrame(rows, columns=["layer", "level", "position", "token", "unit", "activation"])


def test_activations_figure_has_a_heatmap_per_level_titled_in_the_level_colour():
    fig = valid(level_activations_figure(activations_frame(), layer=0))
    assert len(fig.data) == 3 and all(t.type == "heatmap" for t in fig.data)
    assert fig.data[2].z[3][0] == 2 + 3 - 1           # level 2, position 3, unit 1
    assert list(fig.data[0].y) == ["0 t0", "1 t1", "2 t2", "3 t3"]
    titles = {a.text: a.font.color for a in fig.layout.annotations}
    assert titles["<b>level 2</b>"] == level_color(2)


def test_activations_figure_of_a_missing_block_says_so():
    fig = valid(level_activations_figure(activations_frame(), layer=5))
    assert not fig.data and "no CMS levels" in fig.layout.annotations[0].text


def test_contributions_figure_has_one_bar_series_per_level():
    rows = [(0, lv, pos, "x", 1.0 + lv, (1.0 + lv) / 6) for lv in range(3) for pos in range(2)]
    frame = pd.DataFrame(rows, columns=["layer", "level", "position", "token", "norm", "share"])
    fig = valid(level_contributions_figure(frame))
    assert [t.marker.color for t in fig.data] == [level_color(i) for i in range(3)]
    assert list(fig.data[1].y) == [2.0, 2.0] and list(fig.data[0].x) == ["0 x", "1 x"]


def test_memory_figure_has_a_row_per_gate_and_a_mean_over_heads():
    rows = [(0, h, pos, "w", metric, 0.1 * (h + 1)) for metric in ("surprise", "alpha", "eta")
            for h in range(2) for pos in range(3)]
    frame = pd.DataFrame(rows, columns=["layer", "head", "position", "token", "metric", "value"])
    fig = valid(memory_figure(frame, model="hope"))
    means = [t for t in fig.data if t.name == "mean over heads"]
    assert len(means) == 3 and list(means[0].y) == pytest.approx([0.15] * 3)
    assert all(t.line.color == arch_color("hope") for t in fig.data)
    assert {"<b>α retention</b>", "<b>η learning rate</b>"} <= {a.text for a in fig.layout.annotations}


def test_attention_figure_has_a_heatmap_per_head():
    rows = [(0, h, q, k, f"q{q}", f"k{k}", 1.0 / (q + 1) if k <= q else 0.0)
            for h in range(2) for q in range(3) for k in range(3)]
    frame = pd.DataFrame(rows, columns=["layer", "head", "query", "key", "query_token", "key_token", "weight"])
    fig = valid(attention_figure(frame))
    assert len(fig.data) == 2 and fig.data[1].xaxis == "x2"
    assert fig.data[0].z[2] == pytest.approx([1 / 3] * 3)


@pytest.mark.parametrize("builder", [memory_figure, attention_figure])
def test_probe_figures_of_a_model_without_that_part_say_so(builder):
    fig = valid(builder(pd.DataFrame(columns=["layer", "head", "metric", "position", "token", "value"])))
    assert not fig.data and fig.layout.annotations[0].text.startswith("This model has no")


def test_builders_draw_the_probes_of_real_models():
    """The frames lab.probes really produces fit the builders (a tiny model of each family)."""
    import torch

    from lab import probes
    from lab.models import build_model

    tokens = torch.randint(0, 30, (1, 6))
    for name in ("transformer", "titans", "hope"):
        model = build_model(name, "tiny", vocab_size=30)
        assert valid(level_activations_figure(probes.level_activations(model, tokens))).data
        assert valid(level_contributions_figure(probes.level_contributions(model, tokens))).data
        valid(memory_figure(probes.memory_traces(model, tokens), model=name))
        valid(attention_figure(probes.attention_maps(model, tokens)))


def test_nice_ceiling_rounds_up_to_a_round_number():
    from lab.viz.training import nice_ceiling
    assert [nice_ceiling(v) for v in (0.0, 0.07, 1.0, 1.2, 2.6, 4.4, 8.0, 12.0)] == \
           [1.0, 0.075, 1.0, 1.5, 3.0, 5.0, 10.0, 15.0]
    assert nice_ceiling(float("nan")) == 1.0


def test_live_figures_have_fixed_ranges_so_the_browser_redraws_only_data():
    fig = valid(loss_figure(training_records(), STREAM, "hope"))
    assert fig.layout.yaxis.range == (0, 4.0) and fig.layout.xaxis.automargin is False
    timeline = valid(update_timeline_figure(training_records(), STREAM, (1, 5)))
    assert (timeline.data[0].zmin, timeline.data[0].zmax) == (0.0, 2.0)
