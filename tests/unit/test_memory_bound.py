"""HOPE's bounded self-modifying memory as a setting: it reaches the memory from every door (the run,
the address bar, a forgetting comparison, the in-context benchmark), and a family without the
memory refuses it with a message that says why."""
from __future__ import annotations

import pytest

from lab.benchmarks.incontext import InContextSettings
from lab.config import ConfigError
from lab.engine import Run, RunConfig
from lab.forgetting import ForgetSettings
from lab.urlstate import from_params, to_params

TINY = {"preset": "tiny", "stream": {"n_tasks": 2, "steps_per_task": 2, "seed": 0}, "eval_size": 4}


def test_a_run_builds_the_memory_it_asks_for():
    for bound, expected in (("", "bounded"), ("none", "none"), ("bounded", "bounded")):
        run = Run(RunConfig.from_dict({**TINY, "model": "hope", "memory_bound": bound}))
        memories = [m for m in run.model.modules() if hasattr(m, "radius")]
        assert memories and {m.bound for m in memories} == {expected}


def test_a_family_without_the_memory_refuses_it():
    with pytest.raises(ConfigError, match="has no self-modifying memory"):
        RunConfig(model="transformer", memory_bound="bounded")
    with pytest.raises(ConfigError, match="memory_bound"):
        RunConfig(model="hope", memory_bound="unit")


def test_the_address_bar_carries_it_and_says_when_it_is_refused():
    config, problems = from_params({"model": "hope", "memory": "bounded"})
    assert not problems and config.memory_bound == "bounded"
    assert to_params(config)["memory"] == "bounded"
    assert "memory" not in to_params(RunConfig())           # the family's own: left out of the address
    config, problems = from_params({"model": "titans", "memory": "bounded"})
    assert config.memory_bound == "" and len(problems) == 1 and "memory=bounded" in problems[0]


def test_a_forgetting_comparison_bounds_hope_alone():
    settings = ForgetSettings(models=("hope",), memory_bound="bounded")
    assert settings.base_config().memory_bound == "bounded"
    with pytest.raises(ConfigError, match="compare HOPE alone"):
        ForgetSettings(models=("transformer", "hope"), memory_bound="bounded")


def test_the_in_context_benchmark_bounds_only_its_hope_arms():
    for arch in ("hope", "hope1", "hope_online"):
        assert InContextSettings(arch=arch).run_config().model_config(64, 64).memory_bound == "bounded"  # HOPE's own
        assert InContextSettings(arch=arch, memory="none").run_config().memory_bound == "none"
    for arch in ("transformer", "transformer_window", "titans"):
        assert InContextSettings(arch=arch, memory="none").run_config().memory_bound == ""
