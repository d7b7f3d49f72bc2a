"""The bench's figures are measured, not assumed (no timing thresholds: only that each was taken)."""
from __future__ import annotations

import math

import torch

from lab.bench import class_sessions, live_sizes, playground_session
from lab.models import MODELS


def test_the_playground_session_figure_trains_in_the_pool_while_a_page_redraws():
    figure = playground_session(seconds=0.5, redraw_s=0.05)
    assert figure["model"] == "hope"
    assert figure["in_pool_steps_per_s"] > 0 and figure["bare_steps_per_s"] > 0
    assert math.isclose(figure["in_pool_over_bare"], figure["in_pool_steps_per_s"] / figure["bare_steps_per_s"])
    assert figure["redraws_per_s"] > 0                       # the page drew while the pool trained


def test_the_class_figure_trains_every_session_while_their_pages_draw():
    figure = class_sessions(students=3, seconds=0.6, redraw_s=0.05)
    assert figure["students"] == 3
    assert figure["steps_per_s_together"] > 0 and figure["redraws_per_s_each"] > 0
    assert 0 <= figure["lock_wait_ms_median"] <= figure["lock_wait_ms_p90"]


def test_the_size_scan_measures_each_width_until_one_is_too_slow():
    cpu = torch.device("cpu")
    every = live_sizes(cpu, scales=(0.5, 1), seconds=0.05, floor=0.0)             # nothing is too slow
    assert every["floor_steps_per_s"] == 0.0 and set(every["families"]) == set(MODELS)
    for name, rows in every["families"].items():
        assert [(r["scale"], r["preset"]) for r in rows] == [(0.5, "tiny"), (1, "small")]
        assert rows[1]["d_model"] == 2 * rows[0]["d_model"] and rows[1]["params"] > rows[0]["params"]
        assert all(r["steps_per_s"] > 0 for r in rows)
        assert every["largest_live"][name] == rows[1]
    none = live_sizes(cpu, scales=(0.5, 1), seconds=0.05, floor=float("inf"))    # the first is too slow
    assert all(len(rows) == 1 for rows in none["families"].values())
    assert all(largest is None for largest in none["largest_live"].values())
