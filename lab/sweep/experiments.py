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

from lab.deploy.settings import DeploySettings
from lab.discovery import import_submodules
from lab.forgetting.settings import ForgetSettings, seeded
from lab.run_config import RunConfig
from lab.sweep.base import Experiment, Progress, TrialError, _clean
from lab.urlstate import PARAMS

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


def _benchmarks() -> None:
    """Add the experiments of lab.benchmarks (each of its modules that defines `EXPERIMENT`)."""
    for module in import_submodules("lab.benchmarks"):
        experiment = getattr(module, "EXPERIMENT", None)
        if experiment is not None and EXPERIMENTS.get(experiment.name) is not experiment:
            if experiment.name in EXPERIMENTS:
                raise RuntimeError(f"two sweep experiments named {experiment.name!r}")
            EXPERIMENTS[experiment.name] = experiment


def experiments() -> dict[str, Experiment]:
    """Every sweep experiment, looked up when asked: a benchmark module imported before this one is
    still half-made when `_benchmarks` first runs (it imports lab.sweep, which imports this), so its
    experiment is added here, at the first lookup after."""
    _benchmarks()
    return EXPERIMENTS


_benchmarks()


def run_trial(experiment: str, settings: dict, seed: int, progress: Progress | None = None) -> list[dict]:
    """One trial on the lab's own code, in this process: rows {"model", "method", metric: value}."""
    return experiments()[experiment].run(settings, int(seed), progress or (lambda _fraction: None))
