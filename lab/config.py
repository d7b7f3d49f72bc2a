"""Configs are data: frozen dataclasses with validation, to and from plain dicts.

Every field that takes a number or a choice declares its allowed range with `bounded(...)`
or `choice(...)`. Validation runs in `__post_init__`, so an invalid config can never exist;
the error names the config, the field, the value and the allowed range (DESIGN.md, principle 4).

    @dataclass(frozen=True)
    class MyConfig(Config):
        d_model: int = bounded(64, 8, 1024, "width of the residual stream")
        variant: str = choice("mac", ("mac", "mag"), "how memory and attention combine")

`MyConfig.from_dict({"d_model": "64"})` coerces strings (URL query parameters) to the
field's type; unknown keys are an error that lists the known ones.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any


ECHO_LIMIT = 200            # characters of a user's value repeated in a message, at most


def shorten(text: Any, limit: int = ECHO_LIMIT) -> str:
    """A user's value as text for a message, cut to `limit` characters: a 100 KB value stays 100 KB
    where it is, never in an alert box."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"


class ConfigError(ValueError):
    """A config value outside its allowed range or of the wrong type.

    Attributes name the config class, the field, the offending value and what is allowed,
    so that a UI can show the message next to the right widget. The message repeats the value
    cut short (`shorten`).
    """

    def __init__(self, config: str, field_name: str, value: Any, allowed: str):
        self.config, self.field, self.value, self.allowed = config, field_name, value, allowed
        super().__init__(f"{config}.{shorten(field_name, 80)} = {shorten(repr(value))} is not allowed: {allowed}")


def bounded(default, lo=None, hi=None, doc: str = ""):
    """A numeric field (or a tuple of numbers, each checked) with an inclusive range [lo, hi]."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "doc": doc})


def choice(default, options: tuple, doc: str = ""):
    """A field whose value must be one of `options`."""
    return field(default=default, metadata={"choices": tuple(options), "doc": doc})


def flag(default: bool, doc: str = ""):
    return field(default=default, metadata={"doc": doc})


def _range_text(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"between {lo} and {hi}"
    if lo is not None:
        return f"at least {lo}"
    if hi is not None:
        return f"at most {hi}"
    return "any value"


def _coerce(cls_name: str, name: str, value: Any, typ: Any) -> Any:
    """Turn a JSON or URL value into the declared type, or raise ConfigError."""
    origin = typing.get_origin(typ)
    if isinstance(typ, type) and issubclass(typ, Config):      # a nested config, given as a dict
        if isinstance(value, typ):
            return value
        if isinstance(value, dict):
            return typ.from_dict(value)
        raise ConfigError(cls_name, name, value, f"must be a {typ.__name__} or a dict of its fields")
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
                return False
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if typ is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
            return out
        if typ is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if origin is tuple:
            (inner, *_rest) = typing.get_args(typ)
            if isinstance(value, str):
                value = [v for v in value.replace(";", ",").split(",") if v.strip()]
            return tuple(_coerce(cls_name, name, v, inner) for v in value)
        if origin is typing.Union or origin is types.UnionType:  # Optional[X]
            args = [a for a in typing.get_args(typ) if a is not type(None)]
            if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
                return None
            return _coerce(cls_name, name, value, args[0])
    except ConfigError:
        raise
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ConfigError(cls_name, name, value, f"must be of type {getattr(typ, '__name__', typ)}")


@dataclass(frozen=True)
class Config:
    """Base of every config: validation on construction, dict round-trip, `replace`."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            coerced = _coerce(type(self).__name__, f.name, value, hints[f.name])
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)
            self._check_field(f, coerced)
        self.check()

    def _check_field(self, f: dataclasses.Field, value: Any) -> None:
        meta = f.metadata
        name = type(self).__name__
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(name, f.name, value, f"must be one of {', '.join(map(str, meta['choices']))}")
        lo, hi = meta.get("lo"), meta.get("hi")
        if lo is None and hi is None:
            return
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if v is None:
                continue
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ConfigError(name, f.name, value, f"must be {_range_text(lo, hi)}")

    def check(self) -> None:
        """Cross-field checks; subclasses override and raise ConfigError."""

    def fail(self, field_name: str, allowed: str):
        raise ConfigError(type(self).__name__, field_name, getattr(self, field_name), allowed)

    # --- round trips -------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Config):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = [x.to_dict() if isinstance(x, Config) else x for x in v]
            out[f.name] = v
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict | None = None, **overrides):
        data = dict(data or {}, **overrides)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(cls.__name__, unknown[0], data[unknown[0]],
                              f"unknown field; known fields are {', '.join(sorted(names))}")
        return cls(**data)

    def replace(self, **changes):
        return type(self).from_dict(self.to_dict(), **changes)

    @classmethod
    def field_specs(cls) -> list[dict]:
        """Each field's name, default, range or choices and doc: for UIs and the README."""
        out = []
        for f in fields(cls):
            spec = {"name": f.name, "default": f.default, "doc": f.metadata.get("doc", "")}
            for key in ("lo", "hi", "choices"):
                if f.metadata.get(key) is not None:
                    spec[key] = f.metadata[key]
            out.append(spec)
        return out
