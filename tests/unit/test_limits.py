"""What a server lets a session cost (lab.limits), and the sessions that keep to it."""
from __future__ import annotations

import pytest

from lab.config import ConfigError
from lab.engine import RunConfig
from lab.limits import ENV, Limits
from lab.sessions.forgetting import ForgettingSession
from lab.sessions.playground import PlaygroundSession
from lab.sessions.sleep import SleepSession
from lab.tasks.stream import StreamConfig


def test_limits_come_from_the_environment():
    limits = Limits.from_env({"NLL_MAX_TRAINERS": "5", "NLL_MAX_PRESET": "small", "NLL_IDLE_TIMEOUT_S": "2.5"})
    assert (limits.max_trainers, limits.max_preset, limits.idle_timeout_s) == (5, "small", 2.5)
    assert Limits.from_env({}) == Limits()
    assert set(ENV) == {f for f in Limits.__dataclass_fields__}


@pytest.mark.parametrize("name, value", [("NLL_MAX_TRAINERS", "many"), ("NLL_MAX_TRAINERS", "0"),
                                         ("NLL_MAX_PRESET", "huge"), ("NLL_MAX_STEP_COST", "-1")])
def test_a_malformed_limit_names_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        Limits.from_env({name: value})


def test_the_shared_link_that_cost_two_gigabytes_is_refused_before_building():
    config = RunConfig(preset="medium", stream=StreamConfig(n_tasks=8, batch_size=1024))
    with pytest.raises(ConfigError, match="512× the default step"):
        Limits().check_run(config)
    Limits().check_run(RunConfig(preset="medium"))                 # 4×: allowed by default
    with pytest.raises(ConfigError, match="sizes up to small"):
        Limits(max_preset="small").check_run(RunConfig(preset="medium"))
    with pytest.raises(ConfigError, match="would take 1500 steps"):
        Limits(max_total_steps=1000).check_run(RunConfig(stream=StreamConfig(n_tasks=6)))


def test_a_url_over_the_limit_gives_a_notice_and_the_default_setup():
    session = PlaygroundSession.from_params({"preset": "medium", "tasks": "8", "batch": "1024"})
    assert session.config.stream.batch_size == StreamConfig().batch_size
    text = " ".join(t for _, t in session.notices.pop())
    assert "512×" in text and "NLL_MAX_STEP_COST" in text


def test_sessions_refuse_settings_over_the_limit_and_keep_what_they_had():
    playground = PlaygroundSession(RunConfig(preset="tiny", stream=StreamConfig(steps_per_task=5)))
    playground.limits = Limits(max_preset="tiny")
    before = playground.config
    assert not playground.configure(preset="small")
    assert playground.config == before
    assert "sizes up to tiny" in playground.notices.pop()[0][1]

    sleep = SleepSession()
    sleep.limits = Limits(max_preset="tiny")
    assert not sleep.configure(preset="small")
    forgetting = ForgettingSession()
    forgetting.limits = Limits(max_step_cost=0.5)
    assert not forgetting.configure(preset="small") and not forgetting.busy


def test_a_run_pauses_at_the_record_limit_with_a_notice():
    session = PlaygroundSession(RunConfig(preset="tiny", stream=StreamConfig(steps_per_task=50)))
    session.limits = Limits(max_record_rows=50)
    session.play()
    while session.busy:
        session.advance(0.05)
    assert session.run.step_count < session.run.stream.total_steps
    assert any("NLL_MAX_RECORD_ROWS" in t for _, t in session.notices.pop())
