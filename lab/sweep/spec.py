"""A sweep's spec: the experiment, its base settings, a grid and/or a random search over any of its
settings, and the seeds; validated whole before anything runs, and expanded into its trials.

    {"experiment": "run",
     "base": {"model": "hope", "preset": "tiny", "stream.n_tasks": 2, "steps": 40},
     "grid": {"chunks": ["8,32,128", "16,64,256"], "lr": [0.001, 0.003]},
     "search": {"online.lr": {"loguniform": [1e-4, 1e-2]}}, "samples": 4, "search_seed": 0,
     "seeds": [100, 101]}

A cell is one point of the grid crossed with one random draw; a trial is one (cell, seed). Cells run
in the grid's order (the first field varies slowest), each grid point with the same `samples` draws.

Choice: the random draws are the lab's, made here from `search_seed` (numpy), not Ray Tune's
samplers, so that every cell is known and validated before anything starts and a resumed sweep
has the very same trials. Ray Tune schedules and runs the trials (lab.sweep.runner).

On a whole-number field a uniform or log-uniform draw is rounded to the nearest whole number.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lab.config import ConfigError, shorten
from lab.sweep.experiments import Experiment, experiments

SPEC_KEYS = ("experiment", "base", "grid", "search", "samples", "search_seed", "seeds")
DISTRIBUTIONS = ("uniform", "loguniform", "choice")
MAX_TRIALS = 100_000
MAX_SEED = 2**31 - 1


class SweepError(ValueError):
    """A sweep that cannot start or resume for a reason that is no one field's (an unreadable spec
    file, a folder that holds another sweep)."""


class SpecError(ConfigError):
    """A bad entry of a spec: `where` names it (`grid.lr`, `search.online.lr`, `cells[3]`)."""

    def __init__(self, where: str, value: Any, allowed: str):
        super().__init__("SweepSpec", where, value, allowed)


def _why(err: ConfigError) -> str:
    return f"{err.config}.{err.field}: {err.allowed}"


@dataclass(frozen=True)
class Trial:
    """One (cell, seed): `settings` is the experiment's settings dict, seeded, as the trial runs it."""

    key: str
    cell: int
    fields: dict
    seed: int
    experiment: str
    settings: dict

    def to_dict(self) -> dict:
        return {"key": self.key, "cell": self.cell, "fields": self.fields, "seed": self.seed,
                "experiment": self.experiment, "settings": self.settings}


class SweepSpec:
    """A validated spec (`SweepSpec.from_dict`, `SweepSpec.load`): its cells and trials."""

    def __init__(self, data: dict, cells: list[dict], trials: list[Trial]):
        self.data, self.cells, self.trials = data, cells, trials

    @property
    def experiment(self) -> str:
        return self.data["experiment"]

    @property
    def seeds(self) -> list[int]:
        return list(self.data["seeds"])

    @property
    def field_names(self) -> list[str]:
        """The swept settings, as the spec names them: the grid's, then the search's."""
        return list(self.data["grid"]) + list(self.data["search"])

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self.data))

    @property
    def fingerprint(self) -> str:
        """A hash of the normalised spec (key order kept: it sets the order of the cells)."""
        return hashlib.sha256(json.dumps(self.data).encode()).hexdigest()[:16]

    @classmethod
    def load(cls, path: str | Path) -> "SweepSpec":
        try:
            data = json.loads(Path(path).read_text())
        except OSError as err:
            raise SweepError(f"cannot read the sweep spec {str(path)!r}: {err.strerror or err}") from err
        except json.JSONDecodeError as err:
            raise SweepError(f"the sweep spec {str(path)!r} is not valid JSON: {err}") from err
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> "SweepSpec":
        """Validate the whole spec and expand it; SpecError (naming the entry) or SweepError."""
        if isinstance(data, SweepSpec):
            return data
        if not isinstance(data, dict):
            raise SweepError(f"a sweep spec is a JSON object with the keys {', '.join(SPEC_KEYS)}, "
                             f"not {shorten(repr(data), 80)}")
        for key in data:
            if key not in SPEC_KEYS:
                raise SpecError(str(key), data[key], f"unknown key; a spec has {', '.join(SPEC_KEYS)}")
        name = data.get("experiment")
        known = experiments()
        if name not in known:
            raise SpecError("experiment", name, f"must be one of {', '.join(known)}")
        exp = known[name]
        seeds = _seeds(data.get("seeds"))
        base = _mapping(data, "base")
        base_changes = [(_resolve(exp, f"base.{k}", k, v), v) for k, v in base.items()]
        _build(exp, base_changes, "base", base, keys=list(base))
        grid, search = _mapping(data, "grid"), _mapping(data, "search")
        paths: dict[str, tuple[str, ...]] = {}       # swept name → path
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise SpecError(f"grid.{key}", values, "give a non-empty list of values")
            path = _claim(paths, exp, "grid", key, values[0])
            for value in values:
                _build(exp, base_changes + [(path, value)], f"grid.{key}", value)
        draws = []
        for key, dist in search.items():
            path = _claim(paths, exp, "search", key, None)
            draws.append((key, _check_distribution(exp, base_changes, key, dist, path)))
        samples, search_seed = _samples(data, bool(search))
        n_cells = math.prod(len(v) for v in grid.values()) * (samples if search else 1)
        if n_cells * len(seeds) > MAX_TRIALS:
            raise SpecError("grid", f"{n_cells} cells × {len(seeds)} seeds", f"at most {MAX_TRIALS:,} trials")
        rng = np.random.default_rng(search_seed)
        random_points = [{key: draw(rng) for key, draw in draws} for _ in range(samples if search else 1)]
        cells = [{**dict(zip(grid, combo)), **point}
                 for combo in itertools.product(*grid.values()) for point in random_points]
        trials = []
        for index, cell in enumerate(cells):
            changes = base_changes + [(paths[key], value) for key, value in cell.items()]
            settings = _build(exp, changes, f"cells[{index}]", cell)
            for seed in seeds:
                trials.append(Trial(f"c{index:04d}-s{seed}", index, cell, seed, name,
                                    json.loads(exp.seeded(settings, seed).to_json())))
        normal = {"experiment": name, "base": base, "grid": grid, "search": search, "seeds": seeds}
        if search:
            normal.update(samples=samples, search_seed=search_seed)
        return cls(json.loads(json.dumps(normal)), cells, trials)


def _mapping(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SpecError(key, value, "must be a JSON object of settings")
    return value


def _seeds(value: Any) -> list[int]:
    if value is None:
        raise SpecError("seeds", value, "give the seeds as a list, e.g. [100, 101]")
    if not isinstance(value, list) or not value:
        raise SpecError("seeds", value, "give a non-empty list of seeds, e.g. [100, 101]")
    for seed in value:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise SpecError("seeds", seed, f"each seed must be a whole number between 0 and {MAX_SEED}")
    if len(set(value)) != len(value):
        raise SpecError("seeds", value, "name each seed once")
    return list(value)


def _samples(data: dict, searching: bool) -> tuple[int, int]:
    samples, seed = data.get("samples"), data.get("search_seed", 0)
    if not searching:
        for key in ("samples", "search_seed"):
            if key in data:
                raise SpecError(key, data[key], "only with a \"search\" (random search)")
        return 1, 0
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= 10_000:
        raise SpecError("samples", samples, "a random search needs \"samples\": a whole number between 1 and 10000")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SpecError("search_seed", seed, f"must be a whole number between 0 and {MAX_SEED}")
    return samples, seed


def _resolve(exp: Experiment, where: str, key: Any, value: Any) -> tuple[str, ...]:
    try:
        return exp.resolve(key, value)
    except ValueError as err:
        raise SpecError(where, key, str(err)) from None


def _claim(swept: dict, exp: Experiment, part: str, key: str, value: Any) -> tuple[str, ...]:
    """The path of a swept setting; each setting is swept once (by one name, in one of grid / search)."""
    path = _resolve(exp, f"{part}.{key}", key, value)
    for other, known in swept.items():
        if known[:len(path)] == path or path[:len(known)] == known:
            raise SpecError(f"{part}.{key}", key, f"sets the same setting as {other!r}: sweep each setting once")
    swept[key] = path
    return path


def _build(exp: Experiment, changes: list, where: str, value: Any, keys: list[str] | None = None):
    try:
        return exp.build(changes)
    except ConfigError as err:
        if keys:                            # a base entry: name the one whose field failed, when it is clear
            hit = [k for k, (path, _) in zip(keys, changes) if path[-1] == err.field]
            if len(hit) == 1:
                where, value = f"{where}.{hit[0]}", changes[keys.index(hit[0])][1]
        raise SpecError(where, value, _why(err)) from None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_distribution(exp: Experiment, base: list, key: str, dist: Any, path: tuple[str, ...]):
    """A draw function rng → value for `dist`, after checking it against the field's range."""
    where = f"search.{key}"
    if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        raise SpecError(where, dist, "give one distribution: {\"uniform\": [lo, hi]}, {\"loguniform\": [lo, hi]} "
                                     "or {\"choice\": [values…]}")
    kind, args = next(iter(dist.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise SpecError(where, args, "choice needs a non-empty list of values")
        for value in args:
            _build(exp, base + [(path, value)], where, value)
        return lambda rng: args[int(rng.integers(len(args)))]
    typ = exp.number_type(path)
    if typ is None:
        raise SpecError(where, dist, f"{kind} draws one number, and this setting is not one number: use choice")
    if not isinstance(args, list) or len(args) != 2 or not all(_number(a) for a in args):
        raise SpecError(where, args, f"{kind} needs [lo, hi], two finite numbers")
    lo, hi = float(args[0]), float(args[1])
    if not lo < hi:
        raise SpecError(where, args, f"{kind} needs lo < hi")
    if kind == "loguniform" and lo <= 0:
        raise SpecError(where, args, "loguniform needs lo > 0")
    for end in (lo, hi):                    # the field's range holds the whole interval if it holds both ends
        _build(exp, base + [(path, round(end) if typ is int else end)], where, end)

    def draw(rng):
        x = float(rng.uniform(lo, hi)) if kind == "uniform" else math.exp(rng.uniform(math.log(lo), math.log(hi)))
        return int(round(x)) if typ is int else float(x)
    return draw
