"""The attribution panels (app.panels.attribution, issue 14) where they are placed: the Playground's
"Attributions" tab (one example's attributions, the maps on demand, bad input as a message) and the
Sleep page (the attribution maps beside the lesion map, waiting for a sleep)."""
from __future__ import annotations

import pytest

from tests.app.helpers import FAST, assert_healthy, charts, errors, open_page, session


@pytest.fixture(scope="module", autouse=True)
def eager():
    from lab.memory.compiled import set_compile

    set_compile(False)                     # no compiler in a test (lab.memory.compiled)
    yield
    set_compile(None)


@pytest.fixture(scope="module")
def tab():
    at = open_page("playground", FAST)
    at.button(key="pg_step10").click().run()
    assert "Attributions" in [t.label for t in at.tabs]
    at.session_state["pg_view"] = "Attributions"
    return at.run()


def test_the_attributions_tab_draws_one_examples_tokens_levels_and_stream(tab):
    assert_healthy(tab)
    assert not errors(tab)
    figures = charts(tab)
    flow, parts = figures["pg_attr_flow"], figures["pg_attr_components"]
    rows = flow["data"][0]["y"]
    # the Transformer: input tokens, then per block its attention, its one CMS level and the stream after it
    assert rows == ["input tokens", "block 0 · attention", "block 0 · level 0", "block 0 · stream after",
                    "block 1 · attention", "block 1 · level 0", "block 1 · stream after"]
    assert all(len(r) == len(flow["data"][0]["x"]) for r in flow["data"][0]["z"])
    assert "level 0" in parts["data"][0]["y"] and any(v != 0 for v in parts["data"][0]["x"])
    caption = " ".join(c.value for c in tab.caption)
    assert "as it was at step 10" in caption and "convergence delta" in caption
    assert "pg_attr_map" not in figures                        # the maps wait for their button


def test_the_maps_are_computed_on_demand_beside_each_other(tab):
    tab.button(key="pg_attr_maps").click().run()
    assert_healthy(tab)
    figure = charts(tab)["pg_attr_map"]
    assert len(figure["data"]) == 2 and all(t["z"] for t in figure["data"])     # lesion map, attribution map
    assert [t["x"] for t in figure["data"]] == [list(session(tab).run.stream.task_names)] * 2
    title = figure["layout"]["title"]["text"]
    assert "rank agreement" in title or "agreement: n/a" in title


def test_a_baseline_change_redraws_with_another_baseline_value(tab):
    before = charts(tab)["pg_attr_flow"]["layout"]["title"]["text"]
    tab.radio(key="pg_attr_baseline").set_value("zero").run()
    assert_healthy(tab)
    after = charts(tab)["pg_attr_flow"]["layout"]["title"]["text"]
    assert "pad baseline" in before and "zero baseline" in after


def test_bad_input_set_from_outside_is_a_message_and_the_panel_still_draws(tab):
    """Values a lesson preset or a stale link could put in the panel's keys before it draws (the
    widgets themselves cannot send them)."""
    tab.session_state["pg_view"] = "Drift"                     # the panel's widgets go away
    tab.run()
    tab.session_state["pg_view"] = "Attributions"
    for name, value in (("pg_attr_task", 7), ("pg_attr_example", 999), ("pg_attr_baseline", "noise")):
        tab.session_state[name] = value
    tab.run()
    assert not tab.exception
    shown = errors(tab)
    assert len(shown) == 3, shown
    assert "Task 7 is not in this stream" in shown[0] and "lang1, lang2" in shown[0]
    assert "Example 999" in shown[1] and "examples 0…" in shown[1]
    assert "Baseline 'noise'" in shown[2] and "pad, zero, mean" in shown[2]
    assert charts(tab)["pg_attr_flow"]["data"][0]["z"]          # drawn for the values it fell back to
    assert (tab.session_state["pg_attr_task"], tab.session_state["pg_attr_example"]) == (0, 0)
    tab.run()
    assert not errors(tab)                                      # the fallback is kept: no message twice


def test_the_sleep_page_holds_the_attribution_maps_until_a_sleep():
    at = open_page("sleep")
    assert_healthy(at)
    assert any("attribution map" in c.value and "beside the lesion map" in c.value for c in at.caption)
    assert "sl_attr_before" not in charts(at)
