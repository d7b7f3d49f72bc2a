"""The "Associative memory" page in Streamlit's AppTest: it renders every figure without a
traceback, its widgets drive the user's explorer session (lab.sessions.memory_explorer) and rerun
the figures, and bad combinations get a message, not an exception."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from app.components.sessions import session_key

torch.set_num_threads(1)
PAGE = Path(__file__).resolve().parents[2] / "app" / "views" / "associative_memory.py"
TIMEOUT = 120        # the first run warms torch's optimizers up; later runs hit the caches


@pytest.fixture(scope="module")
def page():
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    at.run()
    return at


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def test_page_opens_with_the_two_lines_and_every_figure(page):
    clean(page)
    assert page.title[0].value == "Associative memory"
    opening = next(m.value for m in page.markdown if not m.value.startswith("<style>"))    # the first text
    assert "What you are looking at" in opening and "How to use it" in opening
    assert [t.label for t in page.tabs] == ["The table", "Memories side by side", "Exact equivalences",
                                            "Optimizers are memories"]
    assert len(charts(page)) == 10
    table = next(m.value for m in page.markdown if m.value.startswith("| component"))
    assert "DeltaNet" in table and "M3" in table
    assert not page.error
    assert any("✓" in m.value for m in page.markdown)          # the equivalences are listed with their result


def test_sliders_rerun_the_memories_and_optimizers(page):
    page.slider(key="am_rho").set_value(0.6)
    page.slider(key="am_n").set_value(16)
    page.toggle(key="am_m3_v").set_value(True)
    page.selectbox(key="am_surface").set_value("rosenbrock")
    page.run()
    clean(page)
    assert len(charts(page)) == 10 and not page.error
    caption = next(c.value for c in page.caption if c.value.startswith("Measured mean cosine"))
    cosine = float(re.search(r"keys: (-?[0-9.]+)\.", caption).group(1))
    assert 0.45 < cosine < 0.75                                   # the keys follow the ρ slider
    settings = page.session_state[session_key("memory")].settings
    assert (settings.stream.correlation, settings.stream.n_pairs) == (0.6, 16)
    assert settings.m3.beta2 == 0.99 and settings.surface.surface == "rosenbrock"


def test_empty_choices_and_bad_combinations_get_messages(page):
    page.multiselect(key="am_memories").set_value([])
    page.multiselect(key="am_opts").set_value([])
    page.slider(key="am_t_n").set_value(3)
    page.number_input(key="am_t_follow").set_value(5)
    page.run()
    clean(page)
    infos = [i.value for i in page.info]
    assert "Pick at least one memory." in infos and "Pick at least one optimizer." in infos
    assert any("there are 3 tasks" in e.value for e in page.error)
