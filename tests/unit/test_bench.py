"""The bench's figures are measured, not assumed (no timing thresholds: only that each was taken)."""
from __future__ import annotations

import math

from lab.bench import class_sessions, playground_session


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
