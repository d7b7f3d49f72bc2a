"""Every registered page, started from main.py: it renders its two-line header, raises nothing,
and every figure on it has data."""
from __future__ import annotations

import pytest

from app.components.registry import PAGES
from tests.app.helpers import FAST, assert_healthy, charts, open_page


@pytest.mark.parametrize("spec", PAGES, ids=[p.url_path for p in PAGES])
def test_page_renders_with_its_header_and_no_exception(spec):
    at = open_page(spec, FAST)
    assert_healthy(at)
    assert at.title and at.title[0].value
    assert any("What you are looking at" in m.value for m in at.markdown)
    for key, figure in charts(at).items():
        assert "layout" in figure, key


@pytest.mark.parametrize("spec", [p for p in PAGES if p.live], ids=[p.url_path for p in PAGES if p.live])
def test_live_page_step_changes_the_figures(spec):
    at = open_page(spec, FAST)
    before = charts(at)
    step = next(b for b in at.button if b.label == "Step")
    step.click().run()
    assert_healthy(at)
    after = charts(at)
    assert before.keys() == after.keys() and before
    changed = [k for k in after if after[k]["data"] != before[k]["data"]]
    assert changed, "no figure changed after Step"


def test_the_sidebar_shows_the_device_and_the_colours():
    from app.components.shell import device_label
    from lab.device import describe
    from lab.viz.palette import ARCH_COLORS, LEVEL_COLORS

    at = open_page("home")
    sidebar = " ".join(m.value for m in at.sidebar.markdown)
    assert f"**Device:** {device_label(describe())}" in sidebar
    assert all(color in sidebar for color in [*ARCH_COLORS.values(), LEVEL_COLORS[0]])
