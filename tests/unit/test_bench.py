"""The bench's figures are measured, not assumed (no timing thresholds: only that each was taken)."""
from __future__ import annotations

import math

from lab.bench import playground_session


def test_the_playground_session_figure_trains_in_the_pool_while_a_page_redraws():
    figure = playground_session(seconds=0.5, redraw_s=0.05)
    assert figure["model"] == "hope"
    assert figure["in_pool_steps_per_s"] > 0 and figure["bare_steps_per_s"] > 0
    assert math.isclose(figure["in_pool_over_bare"], figure["in_pool_steps_per_s"] / figure["bare_steps_per_s"])
    assert figure["redraws_per_s"] > 0                       # the page drew while the pool trained
