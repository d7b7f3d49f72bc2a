"""Figure builders of the Forgetting page (lab.viz.forgetting), on hand-made frames: what each
figure draws, in which colours, and that plotly accepts it (validated construction)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lab.forgetting import differences
from lab.viz.forgetting import (accuracy_matrix_figure, difference_figure, forgetting_curves_figure, mean_matrix,
                                to_html)
from lab.viz.palette import ARCH_COLORS, TASK_COLORS

TASKS = ["lang1", "lang2", "lang3"]
BOUNDS = [0, 100, 200, 300]
MODELS = ["transformer", "titans", "hope"]


def valid(fig: go.Figure) -> dict:
    d = fig.to_dict()
    go.Figure(d)                       # raises on anything plotly does not accept
    return d


def records(seeds=(0, 1)) -> pd.DataFrame:
    """Accuracy of every task every 50 tokens: value = seed/10 + task/100 + model index/1000."""
    rows = []
    for s in seeds:
        for mi, model in enumerate(MODELS):
            for method in ("naive", "replay"):
                for tokens in range(0, 301, 50):
                    for t, task in enumerate(TASKS):
                        value = s / 10 + t / 100 + mi / 1000 + (0.5 if method == "replay" else 0)
                        rows.append((s, method, tokens // 10, tokens, "active", model, task, -1, "accuracy", value))
                        rows.append((s, method, tokens // 10, tokens, "active", model, task, -1, "eval_loss", 9.0))
    return pd.DataFrame(rows, columns=["seed", "method", "step", "tokens", "phase", "model", "task", "level",
                                       "metric", "value"])


def matrix(seeds=(0, 1)) -> pd.DataFrame:
    rows = []
    for s in seeds:
        for mi, model in enumerate(MODELS):
            for i in range(4):
                for j in range(1, 4):
                    acc = 0.05 if i < j else (0.9 if i == j else 0.5 - 0.1 * mi + 0.1 * s)
                    rows.append((model, "naive", s, i, j, acc))
    return pd.DataFrame(rows, columns=["model", "method", "seed", "after_task", "eval_task", "accuracy"])


def test_forgetting_curves_one_panel_per_model_on_shared_axes():
    d = valid(forgetting_curves_figure(records(), BOUNDS, TASKS, MODELS, "naive"))
    layout = d["layout"]
    assert layout["xaxis2"]["matches"] == "x" and layout["xaxis3"]["matches"] == "x"
    assert [layout[a]["range"] for a in ("xaxis", "xaxis2", "xaxis3")] == [[0, 300]] * 3
    assert layout["yaxis"]["range"] == [0, 1.12] and max(layout["yaxis"]["tickvals"]) == 1.0
    titles = {a["text"]: a["font"]["color"] for a in layout["annotations"] if a["text"].startswith("<b>") and
              a.get("xref") == "paper"}
    assert titles == {"<b>Transformer</b>": ARCH_COLORS["transformer"], "<b>Titans</b>": ARCH_COLORS["titans"],
                      "<b>HOPE</b>": ARCH_COLORS["hope"]}
    lines = [t for t in d["data"] if t.get("fill") != "toself"]
    bands = [t for t in d["data"] if t.get("fill") == "toself"]
    assert len(lines) == len(bands) == 9                      # 3 models × 3 tasks, two seeds: a band each
    by_panel = {}
    for t in lines:
        by_panel.setdefault(t["xaxis"], []).append(t)
        assert t["line"]["color"] == TASK_COLORS[TASKS.index(t["name"])]
    assert sorted(by_panel) == ["x", "x2", "x3"] and all(len(v) == 3 for v in by_panel.values())
    hope_lang2 = next(t for t in lines if t["xaxis"] == "x3" and t["name"] == "lang2")
    # mean over the two seeds: (0 + 0.1)/2 + 0.01 + 0.002, naive only
    assert hope_lang2["y"] == pytest.approx([0.05 + 0.01 + 0.002] * 7)
    assert list(hope_lang2["x"]) == list(range(0, 301, 50))
    assert sum(t["showlegend"] for t in lines) == 3           # each task once in the legend
    rects = [s for s in layout["shapes"] if s["type"] == "rect"]
    assert len(rects) == 9 and {s["fillcolor"] for s in rects} == set(TASK_COLORS[:3])
    assert sorted({(s["x0"], s["x1"]) for s in rects}) == [(0, 100), (100, 200), (200, 300)]


def test_forgetting_curves_other_method_one_seed_and_nothing():
    one = valid(forgetting_curves_figure(records(seeds=(0,)), BOUNDS, TASKS, ["hope"], "replay"))
    assert not [t for t in one["data"] if t.get("fill") == "toself"]      # one seed: no band
    assert one["data"][0]["y"][0] == pytest.approx(0.5 + 0.0 + 0.002)     # replay rows, hope is model index 2
    empty = valid(forgetting_curves_figure(records(), BOUNDS, TASKS, ["hope"], "ewc"))
    assert not empty["data"] and any("No accuracy" in a["text"] for a in empty["layout"]["annotations"])


def test_accuracy_matrix_heatmaps_are_the_mean_over_seeds():
    m = matrix()
    d = valid(accuracy_matrix_figure(m, TASKS, MODELS, "naive"))
    assert [t["type"] for t in d["data"]] == ["heatmap"] * 3
    assert [t["xaxis"] for t in d["data"]] == ["x", "x2", "x3"]
    hope = d["data"][2]
    assert hope["y"] == ["untrained", "after lang1", "after lang2", "after lang3"] and hope["x"] == TASKS
    z = np.array(hope["z"], dtype=float)
    assert z.shape == (4, 3) and z[3, 0] == pytest.approx(0.5 - 0.2 + 0.05) and z[1, 0] == 0.9
    np.testing.assert_allclose(z, mean_matrix(m, "hope", "naive"))
    assert (hope["zmin"], hope["zmax"]) == (0.0, 1.0)
    assert [t["showscale"] for t in d["data"]] == [False, False, True]      # one colour bar
    assert "mean of 2 seeds" in d["layout"]["title"]["text"]
    assert d["layout"]["yaxis"]["autorange"] == "reversed"
    none = valid(accuracy_matrix_figure(m, TASKS, MODELS, "replay"))
    assert not none["data"]


def test_difference_view_bars_are_paired_means_in_architecture_colours():
    diffs = differences(matrix(), "transformer")
    d = valid(difference_figure(diffs, TASKS, "forgetting", "naive", "transformer"))
    assert [t["name"] for t in d["data"]] == ["Titans − Transformer", "HOPE − Transformer"]
    assert [t["marker"]["color"] for t in d["data"]] == [ARCH_COLORS["titans"], ARCH_COLORS["hope"]]
    hope = d["data"][1]
    assert hope["x"] == ["lang1", "lang2"]                    # the last task cannot be forgotten: left out
    # forgetting of task 1: 0.9 − (0.5 − 0.1 m + 0.1 s); HOPE (m = 2) minus Transformer (m = 0) = +0.2
    assert hope["y"] == pytest.approx([0.2, 0.2])
    assert hope["error_y"]["array"] == pytest.approx([0.0, 0.0])
    final = valid(difference_figure(diffs, TASKS, "final"))
    assert final["data"][1]["x"] == TASKS and final["data"][1]["y"] == pytest.approx([-0.2, -0.2, 0.0])
    empty = valid(difference_figure(diffs.iloc[0:0], TASKS))
    assert not empty["data"] and any("Nothing to compare" in a["text"] for a in empty["layout"]["annotations"])


def test_figures_export_as_standalone_html():
    html = to_html(accuracy_matrix_figure(matrix(), TASKS, MODELS))
    assert html.lstrip().lower().startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert "heatmap" in html and len(html) > 1_000_000      # plotly.js itself is in the page
    assert '<script src="https://cdn.plot.ly' not in html     # the library is inlined: works offline
