"""What one trial of a sweep runs: an experiment's settings, named as a spec names them, seeded, run
on the lab's own code (the engine, the forgetting job, the deployment job: no loop of its own here),
and summarised as rows of numbers, one per (model, method).

    run      one `RunConfig` trained to the end; the numbers of its accuracy matrix
             (`lab.forgetting.run_metrics`: ACC, BWT, FWT, forgetting, learned, …) and final_loss,
             the training loss of its last step
    forget   a `ForgetSettings` comparison for one seed (`ComparisonJob`): the same numbers for every
             (method, model), as `python -m lab forget` computes them
    deploy   a `DeploySettings` comparison for one seed (`DeployJob`): ACC, BWT, forgetting, savings, …
             for every variant, as `python -m lab deploy` computes them

A setting is named by its field (`lr`), dotted for a nested one (`stream.steps_per_task`,
`online.lr`), or by the Playground's URL name (`chunks`, `steps`; `lab.urlstate.PARAMS`); a
forgetting comparison also takes the URL names `python -m lab forget --set` takes. The seeds are the
spec's own: the fields that hold a seed are not settings of a sweep.
"""
from __future__ import annotations

import math
import typing
from dataclasses import fields
from typing import Any, Callable

from lab.config import Config
from lab.deploy.settings import DeploySettings
from lab.forgetting.settings import ForgetSettings, seeded
from lab.run_config import RunConfig
from lab.urlstate import PARAMS

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


class Experiment:
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

    def seeded(self, settings: Config, seed: int) -> Config:
        raise NotImplementedError

    def run(self, settings: dict, seed: int, progress: Progress) -> list[dict]:
        """One trial: rows {"model", "method", metric: value, …}; raises on failure."""
        raise NotImplementedError


class RunExperiment(Experiment):
    def seeded(self, settings: RunConfig, seed: int) -> RunConfig:
        return seeded(settings, seed)          # the seed sets the stream and the initialisation, as a comparison's

    def run(self, settings: dict, seed: int, progress: Progress) -> list[dict]:
        from lab.engine import Run
        from lab.forgetting.summary import run_metrics

        config = RunConfig.from_dict(settings)
        run = Run(config)
        total = run.stream.total_steps
        while not run.done and not run.diverged:
            run.step(25)
            progress(run.step_count / total)
        if run.diverged:
            raise TrialError(f"{config.model}, seed {seed} diverged: {run.diverged.message()}")
        numbers = run_metrics(run.accuracy_matrix())
        losses = run.records().query("metric == 'loss'")["value"]
        numbers["final_loss"] = float(losses.iloc[-1]) if len(losses) else math.nan
        return [{"model": config.model, "method": "replay" if config.replay else "naive",
                 **{k: _clean(float(v)) for k, v in numbers.items()}}]


def _per_seed(summary: dict, skip: tuple[str, ...] = ()) -> list[dict]:
    return [{k: _clean(v) for k, v in row.items() if k not in ("seed",) + skip} for row in summary["per_seed"]]


class ForgetExperiment(Experiment):
    def seeded(self, settings: ForgetSettings, seed: int) -> ForgetSettings:
        return settings.replace(seeds=1)       # the trial's seed goes to the job itself

    def run(self, settings: dict, seed: int, progress: Progress) -> list[dict]:
        from lab.forgetting.job import ComparisonJob

        s = ForgetSettings.from_dict(settings)
        job = ComparisonJob(s.base_config(), list(s.models), [seed], list(s.methods), s.replay, s.joint,
                            settings=s.to_dict())
        return _per_seed(job.run_to_end(lambda fraction, _label: progress(fraction)).summary)


class DeployExperiment(Experiment):
    def seeded(self, settings: DeploySettings, seed: int) -> DeploySettings:
        return settings.replace(first_seed=seed, seeds=1)

    def run(self, settings: dict, seed: int, progress: Progress) -> list[dict]:
        from lab.deploy.job import DeployJob

        s = DeploySettings.from_dict(settings)
        result = DeployJob(s).run_to_end(lambda fraction, _label: progress(fraction))
        return _per_seed(result.summary, skip=("savings_detail",))


# the URL names `python -m lab forget --set` takes (lab.cli.FORGET_SETS), as paths of ForgetSettings
FORGET_ALIASES = {"chunks": ("cms_chunk_tokens",), "level_lr": ("level_lr_scale",), "steps": ("steps_per_task",),
                  "tasks": ("n_tasks",), "stream": ("kind",)}

EXPERIMENTS: dict[str, Experiment] = {
    "run": RunExperiment("run", RunConfig, dict(PARAMS), {("seed",), ("stream", "seed")},
                         "one RunConfig trained to the end; the numbers of its accuracy matrix"),
    "forget": ForgetExperiment("forget", ForgetSettings, FORGET_ALIASES, {("seeds",)},
                               "a forgetting comparison (ForgetSettings) for each seed"),
    "deploy": DeployExperiment("deploy", DeploySettings, {}, {("seeds",), ("first_seed",)},
                               "a deployment comparison (DeploySettings) for each seed"),
}


def run_trial(experiment: str, settings: dict, seed: int, progress: Progress | None = None) -> list[dict]:
    """One trial on the lab's own code, in this process: rows {"model", "method", metric: value}."""
    return EXPERIMENTS[experiment].run(settings, int(seed), progress or (lambda _fraction: None))
