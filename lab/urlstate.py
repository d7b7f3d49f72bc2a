"""A RunConfig as a flat dict of URL query parameters, and back, with a message for each bad value.

    params = to_params(config)                 # {"model": "hope", "lr": "0.003", ...}
    config, problems = from_params(params)     # problems: one readable sentence per rejected value

`from_params` never raises on user input: a value that is unknown, of the wrong type or out of
range is dropped, its field keeps the default, and the reason (the ConfigError's text, which
names the field, the value and the allowed range) is returned for the page to show.
The same seed and the same parameters give the same run (the engine is deterministic).
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping

from lab.config import ConfigError, shorten
from lab.engine import RunConfig
from lab.models.cms import MAX_LEVELS

# query key -> path of the field inside RunConfig (one level of nesting: the stream)
PARAMS: dict[str, tuple[str, ...]] = {
    "model": ("model",),
    "preset": ("preset",),
    "stream": ("stream", "kind"),
    "tasks": ("stream", "n_tasks"),
    "steps": ("stream", "steps_per_task"),
    "batch": ("stream", "batch_size"),
    "overlap": ("stream", "overlap"),
    "data_seed": ("stream", "seed"),
    "chunks": ("cms_chunk_tokens",),
    "level_lr": ("level_lr_scale",),
    "optimizer": ("optimizer",),
    "lr": ("lr",),
    "seed": ("seed",),
    "trainable": ("trainable",),
    "memory": ("memory_bound",),
    "online": ("online", "enabled"),
    "online_lr": ("online", "lr"),
}
NESTED = {"stream": "StreamConfig", "online": "OnlineConfig"}      # the nested configs of a RunConfig
__all__ = ["PARAMS", "MAX_LEVELS", "to_params", "from_params", "with_values", "key_of", "reset_field",
           "describe_problem"]


def _get(config: RunConfig, path: tuple[str, ...]) -> Any:
    value: Any = config
    for name in path:
        value = getattr(value, name)
    return value


def _format(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(_format(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def to_params(config: RunConfig) -> dict[str, str]:
    """Every URL field of `config` as a string; fields left to the family's default (no CMS
    chunks, no learning rate) are left out."""
    out = {}
    for key, path in PARAMS.items():
        value = _get(config, path)
        if value is None or value in ((), ""):
            continue
        out[key] = _format(value)
    return out


def key_of(config_name: str, field_name: str) -> str | None:
    """The URL key of a field named by a ConfigError (config class name, field name), if any."""
    for key, path in PARAMS.items():
        owner = NESTED[path[0]] if len(path) == 2 else "RunConfig"
        if path[-1] == field_name and owner == config_name:
            return key
    return None


def with_values(config: RunConfig, changes: Mapping[str, Any]) -> RunConfig:
    """`config` with URL keys set to new (raw or typed) values; raises ConfigError if invalid."""
    data = config.to_dict()
    for key, value in changes.items():
        path = PARAMS[key]
        if len(path) == 1:
            data[path[0]] = value
        else:
            data[path[0]] = {**data[path[0]], path[1]: value}
    return RunConfig.from_dict(data)


def reset_field(config: RunConfig, config_name: str, field_name: str) -> RunConfig:
    """`config` with one field (named as in a ConfigError) back to its default."""
    default = RunConfig()
    for name, owner in NESTED.items():
        nested = getattr(default, name)
        if config_name == owner and field_name in {f.name for f in fields(nested)}:
            return config.replace(**{name: getattr(config, name).replace(**{field_name: getattr(nested, field_name)})})
    if field_name in {f.name for f in fields(RunConfig)}:
        return config.replace(**{field_name: getattr(default, field_name)})
    return default


def _single(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return str(value[-1]) if value else ""
    return str(value)


def describe_problem(key: str, raw: str, err: ConfigError) -> str:
    return f"URL parameter `{shorten(key, 40)}={shorten(raw)}` was ignored: {str(err).rstrip('.')}. The default is used instead."


def from_params(params: Mapping[str, Any], base: RunConfig | None = None) -> tuple[RunConfig, list[str]]:
    """Read a config from query parameters; bad values fall back to `base` (default: defaults).

    Parameters are applied one at a time in the order of PARAMS, so a value that only fails
    together with an earlier one (e.g. tasks=5 with stream=two_languages) is the one reported.
    """
    config = base or RunConfig()
    problems = []
    unknown = sorted(set(params) - set(PARAMS))
    for key in unknown:
        problems.append(f"URL parameter `{shorten(key, 40)}` is not known and was ignored; known parameters are "
                        f"{', '.join(PARAMS)}.")
    for key in PARAMS:
        if key not in params:
            continue
        raw = _single(params[key]).strip()
        if key in ("chunks", "level_lr", "lr") and raw == "":
            continue                                   # empty = the family's own levels / rate
        try:
            config = with_values(config, {key: raw})
        except ConfigError as err:
            problems.append(describe_problem(key, raw, err))
    return config, problems
