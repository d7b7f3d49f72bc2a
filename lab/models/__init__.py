"""The model registry: every family built the same way, from a validated config.

    build_model("hope", vocab_size=60)             # defaults of the family, with overrides
    build_model(HopeConfig(vocab_size=60))         # or from a config
    default_config("titans", preset="tiny", vocab_size=60)

Presets scale the width of a family's default (tiny = ½, small = default, medium = 2×), so the
three families stay comparable in size at every preset.
"""
from __future__ import annotations

from dataclasses import fields

from lab.config import ConfigError
from lab.models.base import LabModel, ModelConfig
from lab.models.hope import Hope, HopeConfig
from lab.models.titans import Titans, TitansConfig
from lab.models.transformer import Transformer, TransformerConfig

MODELS: dict[str, tuple[type[ModelConfig], type[LabModel]]] = {
    "transformer": (TransformerConfig, Transformer),
    "titans": (TitansConfig, Titans),
    "hope": (HopeConfig, Hope),
}
PRESETS = {"tiny": 0.5, "small": 1.0, "medium": 2.0}


def check_name(name: str) -> None:
    if name not in MODELS:
        raise ConfigError("model", "name", name, f"must be one of {', '.join(MODELS)}")


def default_config(name: str, preset: str = "small", **overrides) -> ModelConfig:
    if preset not in PRESETS:
        check_name(name)
        raise ConfigError("model", "preset", preset, f"must be one of {', '.join(PRESETS)}")
    return scaled_config(name, PRESETS[preset], **overrides)


def scaled_config(name: str, scale: float, **overrides) -> ModelConfig:
    """The family's default with its width (d_model and every CMS level's hidden width) times
    `scale`, as the presets do it; the bench scans scales beyond the presets (`lab.bench.live_sizes`)."""
    check_name(name)
    if not scale > 0:
        raise ConfigError("model", "scale", scale, "must be positive")
    config_cls = MODELS[name][0]
    base = config_cls()
    scaled = {}
    if scale != 1.0:
        scaled = {"d_model": int(base.d_model * scale),
                  "cms_levels": base.with_widths(tuple(max(4, int(h * scale)) for h in base.cms_hidden)).cms_levels}
    return config_cls.from_dict(base.to_dict(), **{**scaled, **overrides})


def family_has(name: str, field_name: str) -> bool:
    """Whether the family's config has this field (an attention window, a memory's bound)."""
    return field_name in {f.name for f in fields(MODELS[name][0])} if name in MODELS else False


def build_model(name_or_config: str | ModelConfig, preset: str = "small", **overrides) -> LabModel:
    if isinstance(name_or_config, ModelConfig):
        config = name_or_config.replace(**overrides) if overrides else name_or_config
        for name, (config_cls, model_cls) in MODELS.items():
            if type(config) is config_cls:
                return model_cls(config)
        raise TypeError(f"no model family for config type {type(config).__name__}")
    config = default_config(name_or_config, preset, **overrides)
    return MODELS[name_or_config][1](config)


def family_of(config: ModelConfig) -> str:
    for name, (config_cls, _) in MODELS.items():
        if type(config) is config_cls:
            return name
    raise TypeError(f"no model family for config type {type(config).__name__}")


def model_table(vocab_size: int = 64, preset: str = "small") -> list[dict]:
    """Name, parameter count and shape of each family's default model, for the README and the app."""
    rows = []
    for name in MODELS:
        model = build_model(name, preset, vocab_size=vocab_size)
        c = model.config
        rows.append({"name": name, "params": model.n_params(), "d_model": c.d_model, "n_layers": c.n_layers,
                     "n_heads": c.n_heads, "cms_levels": c.n_levels, "cms_chunk_tokens": list(c.cms_chunk_tokens)})
    return rows
