"""lab.urlstate: a RunConfig survives the URL, and every bad value gets a message and its default."""
from __future__ import annotations

import pytest

from lab.config import ConfigError
from lab.engine import RunConfig
from lab.tasks.stream import StreamConfig
from lab.urlstate import MAX_LEVELS, PARAMS, from_params, key_of, reset_field, to_params, with_values

CUSTOM = RunConfig(model="titans", preset="tiny", optimizer="sgd", lr=0.02, seed=7, cms_chunk_tokens=(72, 288),
                   stream=StreamConfig(kind="recall", n_tasks=2, steps_per_task=40, batch_size=4, overlap=0.25,
                                       seed=3))


@pytest.mark.parametrize("config", [RunConfig(), CUSTOM])
def test_round_trip(config):
    params = to_params(config)
    assert all(isinstance(v, str) for v in params.values())
    back, problems = from_params(params)
    assert back == config and problems == []


def test_default_levels_stay_out_of_the_url():
    assert "chunks" not in to_params(RunConfig())
    assert to_params(CUSTOM)["chunks"] == "72,288"


def test_every_url_key_names_a_real_field():
    for key, path in PARAMS.items():
        owner = RunConfig() if len(path) == 1 else getattr(RunConfig(), path[0])
        assert hasattr(owner, path[-1]), key


@pytest.mark.parametrize("key,raw,field_name,allowed", [
    ("lr", "banana", "lr", "type float"),
    ("lr", "99", "lr", "between"),
    ("lr", "nan", "lr", "type float"),
    ("seed", "1.5", "seed", "type int"),
    ("model", "gpt", "model", "one of"),
    ("tasks", "99", "n_tasks", "between 1 and 20"),
    ("steps", "-3", "steps_per_task", "between"),
    ("chunks", "0,5", "cms_chunk_tokens", "between"),
    ("chunks", "a,b", "cms_chunk_tokens", "type int"),
    ("chunks", ",".join(["8"] * (MAX_LEVELS + 1)), "cms_chunk_tokens", f"at most {MAX_LEVELS}"),
])
def test_a_bad_value_gets_a_message_naming_field_value_and_range_and_keeps_the_default(key, raw, field_name,
                                                                                        allowed):
    config, problems = from_params({key: raw, "seed": "5"} if key != "seed" else {key: raw})
    assert len(problems) == 1
    message = problems[0]
    assert f"{key}={raw}" in message and field_name in message and allowed in message
    assert "default" in message
    expected = RunConfig() if key == "seed" else RunConfig(seed=5)
    assert config == expected


def test_a_value_that_only_fails_with_another_is_the_one_reported():
    config, problems = from_params({"stream": "two_languages", "tasks": "5"})
    assert config.stream.kind == "two_languages" and config.stream.n_tasks == 3
    assert len(problems) == 1 and "tasks=5" in problems[0]


def test_unknown_parameters_are_named_and_ignored():
    config, problems = from_params({"hack": "1", "model": "hope"})
    assert config == RunConfig(model="hope")
    assert len(problems) == 1 and "`hack`" in problems[0] and "model" in problems[0]


def test_repeated_parameters_use_the_last_value_and_empty_levels_mean_the_family_default():
    config, problems = from_params({"model": ["titans", "transformer"], "chunks": ""})
    assert config.model == "transformer" and config.cms_chunk_tokens == () and problems == []


def test_with_values_raises_config_errors_for_the_form():
    with pytest.raises(ConfigError) as err:
        with_values(RunConfig(), {"chunks": "128, -1"})
    assert err.value.field == "cms_chunk_tokens"
    assert with_values(RunConfig(), {"chunks": "128; 512"}).cms_chunk_tokens == (128, 512)


def test_reset_field_and_key_of_follow_config_errors():
    config = with_values(RunConfig(), {"steps": 40, "lr": 0.5})
    assert reset_field(config, "StreamConfig", "steps_per_task").stream.steps_per_task == RunConfig().stream.steps_per_task
    assert reset_field(config, "RunConfig", "lr").lr == RunConfig().lr
    assert key_of("StreamConfig", "steps_per_task") == "steps"
    assert key_of("RunConfig", "cms_chunk_tokens") == "chunks"
    assert key_of("RunConfig", "steps_per_task") is None
