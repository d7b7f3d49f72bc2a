"""What every kind of sweep experiment shares (`Experiment`): how a spec names its settings, how they
are built and validated, seeded and run as one trial. The kinds are registered in
`lab.sweep.experiments.EXPERIMENTS` (the lab's own: run, forget, deploy) and by the modules of
`lab.benchmarks` (each defines `EXPERIMENT`)."""
from __future__ import annotations

import abc
import math
import typing
from dataclasses import fields
from typing import Any, Callable

from lab.config import Config

Progress = Callable[[float], None]


class TrialError(RuntimeError):
    """A trial that ran but cannot be summarised (its run diverged)."""


def _is_config(typ: Any) -> bool:
    return isinstance(typ, type) and issubclass(typ, Config)


def _hints(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _numeric(typ: Any) -> type | None:
    """int or float for a field of that type (or Optional of it), else None."""
    if typ in (int, float):
        return typ
    args = [a for a in typing.get_args(typ) if a is not type(None)]
    return args[0] if len(args) == 1 and args[0] in (int, float) else None


def _clean(value: Any) -> Any:
    """A number for JSON: floats as they are, non-finite ones as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


class Experiment(abc.ABC):
    """One kind of experiment a sweep can run: how its settings are named, built, seeded and run."""

    def __init__(self, name: str, settings: type[Config], aliases: dict[str, tuple[str, ...]],
                 reserved: set[tuple[str, ...]], doc: str):
        self.name, self.settings, self.aliases, self.reserved, self.doc = name, settings, aliases, reserved, doc

    def names(self) -> list[str]:
        """Every name a spec may use for a setting (fields, dotted nested fields, aliases)."""
        out = []
        for name, typ in _hints(self.settings).items():
            out += [f"{name}.{sub}" for sub in _hints(typ)] if _is_config(typ) else [name]
        return sorted(set(out) | set(self.aliases))

    def resolve(self, key: str, value: Any = None) -> tuple[str, ...]:
        """The path of the field a spec's name sets; ValueError (what is allowed) for an unknown name
        or a field that holds a seed."""
        hints = _hints(self.settings)
        if not isinstance(key, str) or not key:
            raise ValueError("a setting's name must be a non-empty string")
        if key in hints and _is_config(hints[key]) and (isinstance(value, dict) or key not in self.aliases):
            path = (key,)                                      # a nested config given as a dict of its fields
        elif key in self.aliases:
            path = self.aliases[key]
        elif key in hints:
            path = (key,)
        elif "." in key and key.split(".", 1)[0] in hints and _is_config(hints[key.split(".", 1)[0]]):
            head, rest = key.split(".", 1)
            sub = _hints(hints[head])
            if rest not in sub:
                raise ValueError(f"unknown field of {head}; its fields are {', '.join(sub)}")
            path = (head, rest)
        else:
            extra = f"; or a URL name: {', '.join(self.aliases)}" if self.aliases else ""
            raise ValueError(f"unknown setting of a {self.name} sweep; use a field of {self.settings.__name__} "
                             f"({', '.join(hints)}), dotted for a nested one (e.g. stream.steps_per_task){extra}")
        inner = {r[1] for r in self.reserved if len(r) == 2 and len(path) == 1 and r[0] == path[0]}
        if path in self.reserved or (isinstance(value, dict) and inner & set(value)):
            raise ValueError("holds a seed: the seeds are the spec's own \"seeds\"")
        return path

    def number_type(self, path: tuple[str, ...]) -> type | None:
        """int or float when the field at `path` holds one number, else None."""
        cls: type = self.settings
        for name in path[:-1]:
            cls = _hints(cls)[name]
        return _numeric(_hints(cls)[path[-1]])

    def build(self, changes: list[tuple[tuple[str, ...], Any]]) -> Config:
        """The settings with `changes` (path, value) applied in order over the defaults; ConfigError
        (naming the config and field) for a bad value."""
        data: dict[str, Any] = {}
        for path, value in changes:
            head = path[0]
            if len(path) == 2:
                data[head] = {**(data.get(head) if isinstance(data.get(head), dict) else {}), path[1]: value}
            elif isinstance(value, dict) and isinstance(data.get(head), dict):
                data[head] = {**data[head], **value}
            else:
                data[head] = value
        return self.settings.from_dict(data)

    @abc.abstractmethod
    def seeded(self, settings: Config, seed: int) -> Config:
        """`settings` as the trial with seed `seed` runs them."""

    @abc.abstractmethod
    def run(self, settings: dict, seed: int, progress: Progress) -> list[dict]:
        """One trial: rows {"model", "method", metric: value, …}; raises on failure."""
