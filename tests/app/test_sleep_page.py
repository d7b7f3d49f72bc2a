"""The Sleep page in AppTest: train one task of a tiny HOPE run, press "Sleep now" with a tiny
sleep, and every figure has data, the knowledge maps for both before and after."""
from __future__ import annotations

import pytest

from tests.app.helpers import assert_healthy, charts, errors, finish, open_page, session


def setup_tiny(at):
    at.radio(key="sl_preset").set_value("tiny")
    at.number_input(key="sl_steps").set_value(4)
    at.number_input(key="sl_eval").set_value(8)
    at.number_input(key="sl_distill").set_value(3)
    at.number_input(key="sl_dreams").set_value(8)
    at.number_input(key="sl_repair").set_value(1)
    return at.run()


@pytest.fixture(scope="module")
def slept():
    at = setup_tiny(open_page("sleep"))
    finish(at.button(key="sl_train").click().run(), "sleep")
    assert_healthy(at)
    state = session(at, "sleep")
    assert state.run.step_count == 4 and state.sleeps == []
    finish(at.button(key="sl_sleep").click().run(), "sleep")
    return at


def test_sleep_now_fills_the_knowledge_maps_before_and_after(slept):
    assert_healthy(slept)
    assert not errors(slept)
    figs = charts(slept)
    pair = figs["sl_knowledge"]
    assert len(pair["data"]) == 2 and all(t["z"] for t in pair["data"])      # before and after
    transition = figs["sl_transition"]
    assert [f["name"] for f in transition["frames"]] == ["before sleep", "after sleep"]
    assert all(f["data"][0]["z"] for f in transition["frames"])
    for key in ("sl_accuracy", "sl_params", "sl_drift"):
        assert figs[key]["data"], key
    state = session(slept, "sleep")
    assert len(state.sleeps) == 1 and len(state.sleeps[0]["dreams"]) == 5
    assert any("After this sleep" in m.value for m in slept.markdown)
    assert slept.get("code") and slept.get("code")[0].value.strip()


def test_a_bad_sleep_config_is_an_error_message_and_the_state_is_kept(slept, monkeypatch):
    import lab.sessions.sleep

    def refuse(run, config=None, **kwargs):
        from lab.sleep import SleepError
        raise SleepError("this model cannot sleep")

    monkeypatch.setattr(lab.sessions.sleep, "sleep_and_map", refuse)
    finish(slept.button(key="sl_sleep").click().run(), "sleep")
    assert not slept.exception
    assert any("cannot sleep" in e for e in errors(slept))
    state = session(slept, "sleep")
    assert state.run.step_count == 4 and len(state.sleeps) == 1


def test_sleep_after_each_task_sleeps_at_the_boundary():
    at = setup_tiny(open_page("sleep"))
    at.checkbox(key="sl_auto").check().run()
    finish(at.button(key="sl_train").click().run(), "sleep")
    assert_healthy(at)
    state = session(at, "sleep")
    assert state.run.step_count == 4
    assert [s["step"] for s in state.sleeps] == [4] and state.sleeps[0]["task"] == "lang1"
    assert len(charts(at)["sl_knowledge"]["data"]) == 2
