"""Configs are data (DESIGN.md principle 4): validation messages, coercion, round trips."""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, fields

import pytest

from lab.config import Config, ConfigError, bounded, choice, flag
from lab.engine import RunConfig
from lab.models.hope import HopeConfig
from lab.models.transformer import TransformerConfig
from lab.tasks.stream import StreamConfig
from lab.models.cms import levels


def _meta(cls, name):
    return {f.name: f.metadata for f in fields(cls)}[name]


def assert_names(err: ConfigError, config: str, field_name: str, value, *allowed_parts: str):
    """The message and the attributes name the config, the field, the value and the range."""
    msg = str(err)
    assert err.config == config and err.field == field_name
    assert err.value == value
    assert config in msg and field_name in msg and repr(value) in msg
    for part in allowed_parts:
        assert part in msg, (part, msg)
        assert part in err.allowed


# --- range and choice messages ----------------------------------------------------------------

@pytest.mark.parametrize("cls,field_name,value", [
    (RunConfig, "lr", 100.0),
    (RunConfig, "lr", 0.0),
    (RunConfig, "eval_every", 0),
    (RunConfig, "replay_fraction", 1.5),
    (StreamConfig, "batch_size", 0),
    (StreamConfig, "batch_size", 5000),
    (StreamConfig, "n_tasks", 9),
    (TransformerConfig, "d_model", 4),
    (TransformerConfig, "window", -1),
    (HopeConfig, "eta_max", 5.0),
    (HopeConfig, "memory_chunk", 0),
])
def test_out_of_range_names_class_field_value_and_range(cls, field_name, value):
    meta = _meta(cls, field_name)
    with pytest.raises(ConfigError) as info:
        cls(**{field_name: value})
    assert_names(info.value, cls.__name__, field_name, value, str(meta["lo"]), str(meta["hi"]))


def test_range_message_reads_as_a_sentence():
    with pytest.raises(ConfigError) as info:
        RunConfig(lr=100.0)
    assert str(info.value) == "RunConfig.lr = 100.0 is not allowed: must be between 1e-06 and 10.0"
    with pytest.raises(ConfigError) as info:
        StreamConfig(batch_size=0)
    assert "between 1 and 1024" in str(info.value)


def test_lower_bound_only_message():
    @dataclass(frozen=True)
    class Only(Config):
        x: int = bounded(3, 1, None)
        y: int = bounded(3, None, 5)

    with pytest.raises(ConfigError, match="at least 1"):
        Only(x=0)
    with pytest.raises(ConfigError, match="at most 5"):
        Only(y=6)
    assert Only(x=10**9, y=-(10**9)).x == 10**9


def test_choice_lists_the_options():
    with pytest.raises(ConfigError) as info:
        RunConfig(model="gpt")
    assert_names(info.value, "RunConfig", "model", "gpt", "transformer", "titans", "hope")
    with pytest.raises(ConfigError) as info:
        RunConfig(optimizer="adam")
    assert_names(info.value, "RunConfig", "optimizer", "adam", "adamw", "sgd")
    with pytest.raises(ConfigError) as info:
        TransformerConfig(cms_variant="nested")
    assert_names(info.value, "TransformerConfig", "cms_variant", "nested", "sequential", "independent")


def test_every_tuple_entry_is_range_checked():
    with pytest.raises(ConfigError) as info:
        RunConfig(cms_chunk_tokens=(4, 0, 8))
    assert info.value.field == "cms_chunk_tokens" and info.value.value == (4, 0, 8)
    with pytest.raises(ConfigError) as info:
        HopeConfig(cms_levels=levels((1, 2, 3), (96, 2, 96)))
    assert info.value.field == "hidden" and info.value.value == 2
    with pytest.raises(ConfigError):
        RunConfig(level_lr_scale=(1.0, 101.0))


def test_cross_field_checks():
    with pytest.raises(ConfigError) as info:
        TransformerConfig(d_model=30, n_heads=4)
    assert info.value.field == "n_heads" and "30" in str(info.value)
    with pytest.raises(ConfigError) as info:
        HopeConfig(cms_levels=())
    assert info.value.field == "cms_levels" and "at least one" in str(info.value)
    with pytest.raises(ValueError):                   # a level is one spec: chunks and widths pair up
        levels((1, 2, 3), (8, 8))
    with pytest.raises(ConfigError) as info:
        TransformerConfig(cms_levels=levels((1,) * 7, (8,) * 7))
    assert info.value.field == "cms_levels" and "at most 6" in str(info.value)
    with pytest.raises(ConfigError) as info:
        RunConfig(cms_chunk_tokens=(1, 2), level_lr_scale=(1.0, 1.0, 1.0))
    assert info.value.field == "level_lr_scale"
    with pytest.raises(ConfigError) as info:
        StreamConfig(n_tasks=2, schedule=(0, 2))
    assert info.value.field == "schedule"


# --- nested configs ---------------------------------------------------------------------------

def test_nested_stream_dict_is_validated_by_its_own_class():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"stream": {"batch_size": 0}})
    assert_names(info.value, "StreamConfig", "batch_size", 0, "between 1 and 1024")
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"stream": {"kind": "poems"}})
    assert_names(info.value, "StreamConfig", "kind", "poems", "languages", "recall")
    cfg = RunConfig.from_dict({"stream": {"batch_size": "4", "n_tasks": 2}})
    assert isinstance(cfg.stream, StreamConfig)
    assert cfg.stream.batch_size == 4 and cfg.stream.n_tasks == 2


def test_nested_unknown_key_lists_stream_fields():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"stream": {"batchsize": 4}})
    assert info.value.config == "StreamConfig" and info.value.field == "batchsize"
    for f in fields(StreamConfig):
        assert f.name in str(info.value)


def test_a_nested_field_given_directly_must_be_a_config():
    with pytest.raises(ConfigError) as info:
        RunConfig(stream={"batch_size": 0})
    assert info.value.config == "StreamConfig" and info.value.field == "batch_size"
    cfg = RunConfig(stream={"batch_size": 3})
    assert isinstance(cfg.stream, StreamConfig) and cfg.stream.batch_size == 3
    with pytest.raises(ConfigError) as info:
        RunConfig(stream="not a stream")
    assert info.value.config == "RunConfig" and info.value.field == "stream"


# --- unknown keys, coercion -------------------------------------------------------------------

def test_unknown_key_lists_the_known_fields():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"learning_rate": 0.1})
    err = info.value
    assert err.config == "RunConfig" and err.field == "learning_rate" and err.value == 0.1
    assert "unknown" in str(err)
    for f in fields(RunConfig):
        assert f.name in err.allowed
    with pytest.raises(ConfigError) as info:
        TransformerConfig.from_dict({"width": 3})
    assert "d_model" in str(info.value) and "window" in str(info.value)


@dataclass(frozen=True)
class Demo(Config):
    n: int = bounded(8, 1, 100)
    x: float = bounded(0.5, 0.0, 1.0)
    on: bool = flag(False)
    mode: str = choice("a", ("a", "b"))
    sizes: tuple[int, ...] = bounded((1,), 1, 1000)
    scales: tuple[float, ...] = bounded((), 0.0, 10.0)
    maybe: typing.Optional[int] = bounded(None, 0, 9)


@dataclass(frozen=True)
class DemoPipe(Config):
    maybe: int | None = bounded(None, 0, 9)


def test_string_coercion_from_url_values():
    d = Demo.from_dict({"n": "64", "x": "0.25", "on": "true", "mode": "b", "sizes": "3,4",
                        "scales": "0.5;2", "maybe": "7"})
    assert d.n == 64 and type(d.n) is int
    assert d.x == 0.25 and type(d.x) is float
    assert d.on is True
    assert d.sizes == (3, 4) and all(type(s) is int for s in d.sizes)
    assert d.scales == (0.5, 2.0) and all(type(s) is float for s in d.scales)
    assert d.maybe == 7
    assert Demo.from_dict({"sizes": " 5 , 6 ,"}).sizes == (5, 6)
    assert Demo.from_dict({"maybe": "none"}).maybe is None
    assert Demo.from_dict({"x": 1}).x == 1.0 and type(Demo.from_dict({"x": 1}).x) is float
    assert Demo.from_dict({"n": 3.0}).n == 3


@pytest.mark.parametrize("text,expected", [("true", True), ("True", True), ("1", True), ("yes", True),
                                           ("on", True), ("false", False), ("0", False), ("no", False),
                                           ("OFF", False)])
def test_bool_coercion(text, expected):
    assert Demo.from_dict({"on": text}).on is expected


@pytest.mark.parametrize("name,value", [("on", "maybe"), ("on", 2), ("n", "abc"), ("n", 2.5), ("n", True),
                                        ("x", "nan"), ("x", "inf"), ("x", True), ("mode", 3),
                                        ("sizes", "3,x"), ("maybe", "seven")])
def test_bad_types_raise_config_error_naming_the_type(name, value):
    with pytest.raises(ConfigError) as info:
        Demo.from_dict({name: value})
    assert info.value.config == "Demo" and info.value.field == name
    assert "type" in str(info.value)


def test_coerced_value_is_still_range_checked():
    with pytest.raises(ConfigError) as info:
        Demo.from_dict({"n": "1000"})
    assert "between 1 and 100" in str(info.value)
    with pytest.raises(ConfigError):
        Demo.from_dict({"sizes": "3,0"})
    with pytest.raises(ConfigError):
        Demo.from_dict({"maybe": "10"})


def test_run_config_from_url_values():
    cfg = RunConfig.from_dict({"eval_every": "64", "lr": "0.01", "cms_chunk_tokens": "3,4",
                               "level_lr_scale": "1,0.5", "model": "titans"})
    assert cfg.eval_every == 64 and cfg.lr == 0.01
    assert cfg.cms_chunk_tokens == (3, 4) and cfg.level_lr_scale == (1.0, 0.5)


def test_pipe_optional_fields_are_coerced_like_optional():
    assert DemoPipe.from_dict({"maybe": "7"}).maybe == 7
    assert DemoPipe.from_dict({"maybe": "none"}).maybe is None
    assert DemoPipe.from_dict({"maybe": ""}).maybe is None
    with pytest.raises(ConfigError):
        DemoPipe.from_dict({"maybe": "10"})


# --- round trips, immutability, replace -------------------------------------------------------

def test_to_dict_from_dict_round_trip():
    cfg = RunConfig(model="transformer", preset="tiny", lr=0.02, cms_chunk_tokens=(10, 20),
                    level_lr_scale=(1.0, 0.5), replay=16, seed=5,
                    stream=StreamConfig(n_tasks=2, steps_per_task=7, batch_size=3, schedule=(0, 1, 0)))
    d = cfg.to_dict()
    assert isinstance(d["stream"], dict) and d["stream"]["schedule"] == [0, 1, 0]
    assert d["cms_chunk_tokens"] == [10, 20]
    assert RunConfig.from_dict(d) == cfg
    assert RunConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert json.loads(cfg.to_json()) == json.loads(json.dumps(d))
    assert RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()
    h = HopeConfig(vocab_size=30, memory_chunk=2, cms_levels=levels((1, 4), (8, 8), (1.0, 0.5)))
    assert HopeConfig.from_dict(h.to_dict()) == h


def test_frozen_and_replace():
    cfg = RunConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0
    new = cfg.replace(lr=0.5, stream={"batch_size": 2})
    assert new.lr == 0.5 and new.stream.batch_size == 2 and cfg.lr == RunConfig().lr
    assert new.stream.n_tasks == cfg.stream.n_tasks
    with pytest.raises(ConfigError):
        cfg.replace(lr=-1.0)
    with pytest.raises(ConfigError):
        cfg.replace(nonsense=1)


def test_field_specs_describe_ranges_and_choices():
    specs = {s["name"]: s for s in RunConfig.field_specs()}
    assert set(specs) == {f.name for f in fields(RunConfig)}
    assert specs["lr"]["lo"] == 1e-6 and specs["lr"]["hi"] == 10.0 and specs["lr"]["default"] == RunConfig().lr
    assert specs["eval_every"]["default"] == 10 and specs["eval_every"]["lo"] == 1
    assert set(specs["model"]["choices"]) == {"transformer", "titans", "hope"}
    assert specs["lr"]["doc"]
