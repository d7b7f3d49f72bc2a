"""Figure builders of the Sleep page (lab.viz.sleep), on hand-made frames: each figure draws the
numbers of its input, in the palette's colours, plotly accepts it, and empty input gives a note."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lab.viz import sleep as viz
from lab.viz.palette import LEVEL_COLORS, TASK_COLORS

TASKS = ["lang1", "lang2", "lang3"]


def valid(fig: go.Figure) -> dict:
    d = fig.to_dict()
    go.Figure(d)                       # raises on anything plotly does not accept
    return d


def knowledge(shift: float = 0.0) -> pd.DataFrame:
    """drop = level/10 - task/100 + shift; tasks given out of stream order."""
    rows = [(lv, t, lv / 10 - TASKS.index(t) / 100 + shift) for lv in range(3) for t in reversed(TASKS)]
    return pd.DataFrame(rows, columns=["level", "task", "drop"])


def close(z, want) -> bool:
    return np.allclose(np.asarray(z, dtype=float), np.asarray(want, dtype=float))


def expected(shift: float = 0.0) -> list[list[float]]:
    return [[lv / 10 - j / 100 + shift for j in range(3)] for lv in range(3)]


def test_knowledge_pair_shows_both_maps_on_one_zero_centred_scale():
    d = valid(viz.knowledge_pair_figure(knowledge(), knowledge(-0.5), TASKS))
    before, after = d["data"]
    assert before["x"] == TASKS and after["x"] == TASKS
    assert before["y"] == ["level 0", "level 1", "level 2"]
    assert close(before["z"], expected()) and close(after["z"], expected(-0.5))
    assert before["xaxis"] == "x" and after["xaxis"] == "x2"
    zmax = 0.52                          # the largest |drop| over both maps (level 0, lang3, after)
    for trace in (before, after):
        assert trace["zmid"] == 0 and trace["zmin"] == pytest.approx(-zmax) and trace["zmax"] == pytest.approx(zmax)


def test_knowledge_transition_has_two_frames_and_a_play_button():
    d = valid(viz.knowledge_transition_figure(knowledge(), knowledge(0.2), TASKS))
    assert [f["name"] for f in d["frames"]] == ["before sleep", "after sleep"]
    assert close(d["frames"][0]["data"][0]["z"], expected())
    assert close(d["frames"][1]["data"][0]["z"], expected(0.2))
    assert close(d["data"][0]["z"], expected())            # it opens on "before"
    assert d["layout"]["updatemenus"][0]["buttons"][0]["method"] == "animate"
    assert [s["label"] for s in d["layout"]["sliders"][0]["steps"]] == ["before sleep", "after sleep"]
    zmins = {f["data"][0]["zmin"] for f in d["frames"]}
    assert len(zmins) == 1                                              # same scale in both frames


def test_accuracy_bars_are_before_and_after_in_task_colours():
    frame = pd.DataFrame({"task": TASKS, "before": [0.5, 0.6, 0.7], "after": [0.4, 0.65, 0.2]})
    d = valid(viz.accuracy_before_after_figure(frame, TASKS))
    before, after = d["data"]
    assert before["name"] == "before sleep" and after["name"] == "after sleep"
    assert before["x"] == TASKS and before["y"] == [0.5, 0.6, 0.7] and after["y"] == [0.4, 0.65, 0.2]
    assert after["marker"]["color"] == TASK_COLORS[:3]
    assert d["layout"]["barmode"] == "group"


def test_params_events_and_step_chart():
    records = pd.DataFrame({
        "step": [10] * 4 + [20] * 2, "tokens": 0, "phase": "sleep", "model": "hope", "task": "",
        "level": [2, -1, -1, -1, -1, -1], "metric": ["params"] * 4 + ["params", "accuracy"],
        "value": [7.0, 100.0, 120.0, 100.0, 100.0, 0.5]})
    events = viz.params_events(records)
    assert list(events["params"]) == [100.0, 120.0, 100.0, 100.0]
    assert list(events["stage"]) == ["before", "grown", "after_prune", "before"]
    d = valid(viz.params_figure(events))
    (trace,) = d["data"]
    assert trace["y"] == [100.0, 120.0, 100.0, 100.0] and trace["line"]["shape"] == "hv"
    assert d["layout"]["xaxis"]["ticktext"][1] == "sleep 1 · grown"


def test_drift_one_line_per_level_in_level_colours():
    drift = pd.DataFrame({"iteration": [2, 2, 4, 4], "level": [0, 2, 0, 2], "drift": [0.1, 0.05, 0.1, 0.08]})
    d = valid(viz.drift_figure(drift))
    assert [t["name"] for t in d["data"]] == ["level 0", "level 2"]
    assert d["data"][1]["x"] == [2, 4] and d["data"][1]["y"] == [0.05, 0.08]
    assert [t["line"]["color"] for t in d["data"]] == [LEVEL_COLORS[0], LEVEL_COLORS[2]]


@pytest.mark.parametrize("build", [
    lambda: viz.knowledge_pair_figure(None, pd.DataFrame(columns=["level", "task", "drop"])),
    lambda: viz.knowledge_transition_figure(knowledge(), None),
    lambda: viz.accuracy_before_after_figure(None),
    lambda: viz.params_figure(viz.params_events(None)),
    lambda: viz.drift_figure(pd.DataFrame(columns=["iteration", "level", "drift"])),
])
def test_empty_input_gives_an_empty_figure_with_a_note(build):
    d = valid(build())
    assert d["data"] == []
    assert any("No " in a["text"] for a in d["layout"]["annotations"])


def test_summary_states_only_the_numbers():
    frame = pd.DataFrame({"task": TASKS, "before": [0.5, 0.6, 0.7], "after": [0.4, 0.7, 0.5]})
    text = viz.sleep_summary(frame, "lang3", {"reset": 0.2, "distilled": 0.1, "repaired": 0.05})
    assert "(lang3) changed by -0.200" in text
    assert "other tasks by +0.000 on average" in text
    assert "KL = 0.2;" in text and "KL = 0.05 (lower)" in text
    assert viz.sleep_summary(None, None, None) == ""
