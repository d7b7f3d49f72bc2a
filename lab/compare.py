"""Architectures side by side on one continual stream: the code behind `python -m lab forget`
and the Forgetting page, so that both give the same accuracy matrix for the same settings.

    settings = ForgetSettings(models=("transformer", "hope"), methods=("naive", "replay"), joint=True)
    result = run_settings(settings, progress)          # what the CLI does
    job = ComparisonJob.from_settings(settings)        # what the page does, a few steps at a time
    while not job.done:
        job.advance(budget_s=0.25)
    result = job.result()
    print(describe_comparison(result.summary))

Both paths drive the same `ComparisonJob`, which drives the one engine (`lab.engine.Run`).

The identical stream: every model trains on the same tasks and the same batches in the same
order (a batch depends on the stream seed and the step only). Seed s sets both the stream's seed
and the models' initialisation, so seeds vary the tasks as well as the weights; for one seed,
every model and every method sees the very same data.

Methods (the reference scale for "less forgetting"):

- `naive`: plain sequential training, one task after another (the default);
- `replay`: experience replay, the classical baseline any architecture can use: a reservoir of
  `replay` past sequences, half of each batch drawn from earlier tasks (`RunConfig.replay`,
  `replay_fraction`; see `lab.engine.ReplayBuffer`).

Joint reference (for intransigence, REFERENCE.md §7): for k = 1..T, a fresh model of the same
family and seed trained on a uniform mixture of tasks 1..k (`StreamConfig.joint`) for k × steps
per task steps, the number of steps the sequential run took to finish task k, then evaluated on
task k. Intransigence I_k = joint_k − R[k][k]. For k = 1 the joint stream is task 1 alone with
the same batches and initialisation as the sequential run's first phase, so the lab reuses
R[1][1] instead of training it again (tests/unit/test_compare.py checks that the two are equal).
Choice: the joint models train with naive batches (no replay), and one joint reference serves
both methods.

Divergence: a run that diverges stops the comparison with a `ComparisonError` that says which.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from lab import metrics
from lab.config import Config, ConfigError, bounded, choice, flag
from lab.engine import RunConfig
from lab.models import MODELS, PRESETS
from lab.optim import OPTIMIZERS
from lab.tasks.stream import KINDS, StreamConfig

METHODS = ("naive", "replay")
DEFAULT_REPLAY = 64                 # sequences: about 1 % of the default stream's 6,000
MATRIX_COLUMNS = ["model", "method", "seed", "after_task", "eval_task", "accuracy"]
JOINT_COLUMNS = ["model", "seed", "k", "accuracy", "steps", "source"]
FORGETTING_FORM = "max form (Chaudhry et al. 2018): max_{l<k} R[l][j] − R[k][j], averaged over j<k"
FORGETTING_FINAL_FORM = "final form (Avalanche): R[j][j] − R[k][j], averaged over j<k"
# Differences below MARGIN are within the noise of one accuracy: the default held-out set scores
# 64 sequences × 4 answer words = 256 tokens, whose standard error is at most √(0.25/256) ≈ 0.031.
MARGIN = 0.03
LEARNED_ENOUGH = 0.1                # below this gain over the untrained model, nothing much was learned
MODEL_LABELS = {"transformer": "Transformer", "titans": "Titans", "hope": "HOPE"}
METRIC_KEYS = ("ACC", "BWT", "FWT", "forgetting", "forgetting_final", "learned", "old_acc", "untrained_old",
               "untrained")
FILES = {"matrix": "accuracy_matrix.csv", "records": "records.csv", "joint": "joint.csv", "summary": "summary.json"}
_STREAM = StreamConfig()


class ComparisonError(RuntimeError):
    """A comparison that cannot finish (a run diverged); the message says which run and why."""


def method_label(method: str, replay: int | None = None) -> str:
    if method == "replay":
        return f"experience replay (buffer of {replay} sequences)" if replay else "experience replay"
    return "naive sequential training"


def model_label(model: str) -> str:
    return MODEL_LABELS.get(model, model)


def _the(model: str) -> str:
    """"the Transformer", but "Titans" and "HOPE" (names of models, no article)."""
    return "the Transformer" if model == "transformer" else model_label(model)


# --- settings ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ForgetSettings(Config):
    """What a forgetting comparison runs: the page's form and `python -m lab forget`'s options."""

    models: tuple[str, ...] = field(default=tuple(MODELS), metadata={
        "doc": f"architectures to compare, any of {', '.join(MODELS)}"})
    methods: tuple[str, ...] = field(default=("naive",), metadata={
        "doc": "naive (sequential training) and/or replay (experience replay)"})
    kind: str = choice(_STREAM.kind, KINDS, "task family of the stream")
    n_tasks: int = bounded(_STREAM.n_tasks, 2, 8, "number of tasks in the stream (at least 2 to forget anything)")
    steps_per_task: int = bounded(_STREAM.steps_per_task, 1, 100_000, "training steps of each task")
    overlap: float = bounded(_STREAM.overlap, 0.0, 1.0, "shared source words: 0 disjoint vocabularies, "
                                                        "1 the same words with conflicting translations")
    seeds: int = bounded(1, 1, 10, "number of seeds, 0..seeds-1")
    replay: int = bounded(DEFAULT_REPLAY, 1, 100_000, "replay buffer in sequences (the replay method only)")
    joint: bool = flag(False, "also train the joint reference (for intransigence)")
    preset: str = choice("small", tuple(PRESETS), "model size")
    optimizer: str = choice("adamw", OPTIMIZERS, "outer optimizer")
    lr: float | None = bounded(None, 1e-6, 10.0, "learning rate (none = the RunConfig default)")
    eval_every: int | None = bounded(None, 1, 100_000, "evaluate every K steps (none = the RunConfig default)")
    eval_size: int | None = bounded(None, 1, 4096, "held-out sequences per task (none = the RunConfig default)")

    def check(self) -> None:
        if not self.models:
            self.fail("models", f"choose at least one of {', '.join(MODELS)}")
        bad = [m for m in self.models if m not in MODELS]
        if bad:
            self.fail("models", f"each model must be one of {', '.join(MODELS)}")
        if len(set(self.models)) != len(self.models):
            self.fail("models", "name each model once")
        if not self.methods:
            self.fail("methods", f"choose at least one of {', '.join(METHODS)}")
        if [m for m in self.methods if m not in METHODS] or len(set(self.methods)) != len(self.methods):
            self.fail("methods", f"each method must be one of {', '.join(METHODS)}, named once")
        self.stream_config()                          # the stream's own checks (e.g. two_languages ≤ 3)

    def stream_config(self) -> StreamConfig:
        return StreamConfig(kind=self.kind, n_tasks=self.n_tasks, steps_per_task=self.steps_per_task,
                            overlap=self.overlap)

    def base_config(self) -> RunConfig:
        """The RunConfig every run starts from (model, replay and seeds are set per run)."""
        run = {"model": self.models[0], "preset": self.preset, "optimizer": self.optimizer,
               "stream": self.stream_config().to_dict()}
        for name in ("lr", "eval_every", "eval_size"):
            if getattr(self, name) is not None:
                run[name] = getattr(self, name)
        return RunConfig.from_dict(run)

    def seed_list(self) -> list[int]:
        return list(range(self.seeds))

    def job(self) -> "ComparisonJob":
        return ComparisonJob(self.base_config(), list(self.models), self.seed_list(), list(self.methods),
                             self.replay, self.joint, settings=self.to_dict())


def seeded(config: RunConfig, seed: int) -> RunConfig:
    return config.replace(seed=seed, stream=config.stream.replace(seed=seed).to_dict())


def joint_config(base: RunConfig, model: str, k: int, seed: int) -> RunConfig:
    """A fresh model trained on a uniform mixture of tasks 1..k for k × steps_per_task steps."""
    steps = k * base.stream.steps_per_task
    stream = base.stream.replace(joint=True, schedule=tuple(range(k)))
    return seeded(base.replace(model=model, replay=0, eval_every=min(100_000, steps), stream=stream.to_dict()), seed)


# --- the job -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Unit:
    """One training run of a comparison: a sequential run (k None) or a joint reference on 1..k."""

    model: str
    method: str
    seed: int
    k: int | None
    config: RunConfig

    @property
    def steps(self) -> int:
        return self.config.stream.steps_per_task * len(self.config.stream.schedule or range(self.config.stream.n_tasks))

    def label(self, replay: int) -> str:
        who = f"{model_label(self.model)}, seed {self.seed}"
        if self.k is None:
            return f"{who}, {method_label(self.method, replay)}"
        return f"{who}, joint reference on tasks 1..{self.k}"


class ComparisonJob:
    """A comparison as a list of runs, advanced a few steps at a time (so a page can show
    progress and keep a half-done comparison in the session); `result()` once `done`."""

    def __init__(self, base: RunConfig, models: list[str], seeds: list[int], methods: list[str] = ("naive",),
                 replay: int = DEFAULT_REPLAY, joint: bool = False, settings: dict | None = None, chunk: int = 25):
        models, seeds, methods = list(models), [int(s) for s in seeds], list(methods)
        if not models or [m for m in models if m not in MODELS] or len(set(models)) != len(models):
            raise ValueError(f"models must be distinct names from {', '.join(MODELS)}, got {models}")
        if not methods or [m for m in methods if m not in METHODS] or len(set(methods)) != len(methods):
            raise ValueError(f"methods must be distinct names from {', '.join(METHODS)}, got {methods}")
        if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
            raise ValueError(f"seeds must be distinct non-negative integers, got {seeds}")
        if "replay" in methods and replay < 1:
            raise ValueError("the replay method needs a buffer of at least 1 sequence")
        plain = tuple(range(base.stream.n_tasks))
        if joint and base.stream.schedule not in ((), plain):
            raise ValueError("the joint reference needs the plain task order 1..T (no custom schedule)")
        if base.stream.joint:
            raise ValueError("the base stream must be sequential (joint=False); joint=True adds the joint reference")
        self.base, self.models, self.seeds, self.methods = base, models, seeds, methods
        self.replay = int(replay) if "replay" in methods else None
        self.joint, self.settings, self.chunk = bool(joint), settings, int(chunk)
        self.units: list[Unit] = []
        for seed in seeds:
            for method in methods:
                for model in models:
                    replay_size = self.replay if method == "replay" else 0
                    self.units.append(Unit(model, method, seed, None,
                                           seeded(base.replace(model=model, replay=replay_size), seed)))
        if joint:
            for seed in seeds:
                for model in models:
                    for k in range(2, base.stream.n_tasks + 1):
                        self.units.append(Unit(model, "joint", seed, k, joint_config(base, model, k, seed)))
        self.total_steps = sum(u.steps for u in self.units)
        self.index = 0
        self.steps_done = 0
        self.started = time.perf_counter()
        self._run = None
        self._matrix_rows: list[tuple] = []
        self._record_frames: list[pd.DataFrame] = []
        self._joint_rows: list[tuple] = []
        self.task_names: list[str] = []
        self.boundaries_tokens: list[int] = []

    @classmethod
    def from_settings(cls, settings: ForgetSettings) -> "ComparisonJob":
        return settings.job()

    @property
    def done(self) -> bool:
        return self.index >= len(self.units)

    @property
    def fraction(self) -> float:
        if self.done or not self.total_steps:
            return 1.0
        current = self._run.step_count if self._run is not None else 0
        return min(1.0, (self.steps_done + current) / self.total_steps)

    @property
    def label(self) -> str:
        if self.done:
            return "done"
        unit = self.units[self.index]
        step = self._run.step_count if self._run is not None else 0
        return f"run {self.index + 1} of {len(self.units)}: {unit.label(self.replay)}: step {step}/{unit.steps}"

    def advance(self, max_steps: int | None = None, budget_s: float | None = None) -> int:
        """Train up to `max_steps` steps and/or for about `budget_s` seconds (at least one chunk
        of work), moving on to the next run whenever one ends. Returns the steps taken."""
        from lab.engine import Run

        start, taken = time.perf_counter(), 0
        while not self.done:
            if self._run is None:
                self._run = Run(self.units[self.index].config)
                if not self.task_names:
                    self.task_names = list(self._run.stream.task_names)
                    self.boundaries_tokens = list(self._run.stream.boundaries_tokens())
            run = self._run
            n = self.chunk if max_steps is None else max(1, min(self.chunk, max_steps - taken))
            before = run.step_count
            run.step(n)
            taken += run.step_count - before
            if run.diverged:
                unit = self.units[self.index]
                raise ComparisonError(f"{unit.label(self.replay)} diverged: {run.diverged.message()}")
            if run.done:
                self._finish(run)
            if max_steps is not None and taken >= max_steps:
                break
            if budget_s is not None and time.perf_counter() - start >= budget_s:
                break
            if max_steps is None and budget_s is None:
                continue
        return taken

    def _finish(self, run) -> None:
        unit = self.units[self.index]
        if unit.k is None:
            for after, row in enumerate(run.accuracy_matrix()):
                for j, acc in enumerate(row):
                    self._matrix_rows.append((unit.model, unit.method, unit.seed, after, j + 1, float(acc)))
            frame = run.records().copy()
            frame.insert(0, "method", unit.method)
            frame.insert(0, "seed", unit.seed)
            self._record_frames.append(frame)
        else:
            self._joint_rows.append((unit.model, unit.seed, unit.k, float(run.last_eval_accuracy()[unit.k - 1]),
                                     run.step_count, "joint run"))
        self.steps_done += unit.steps
        self.index += 1
        self._run = None

    def run_to_end(self, progress: Callable[[float, str], None] | None = None) -> "Comparison":
        while not self.done:
            self.advance(max_steps=self.chunk)
            if progress:
                progress(self.fraction, self.label)
        if progress:
            progress(1.0, "done")
        return self.result()

    def result(self) -> "Comparison":
        if not self.done:
            raise RuntimeError(f"the comparison is not finished ({100 * self.fraction:.0f} % done)")
        matrix = pd.DataFrame(self._matrix_rows, columns=MATRIX_COLUMNS)
        joint = pd.DataFrame(self._joint_rows, columns=JOINT_COLUMNS)
        if self.joint:
            first = self.methods[0]
            ones = matrix[(matrix.method == first) & (matrix.after_task == 1) & (matrix.eval_task == 1)]
            reused = pd.DataFrame([(r.model, r.seed, 1, r.accuracy, self.base.stream.steps_per_task,
                                    f"R[1][1] of the {first} run (identical to a joint run on task 1)")
                                   for r in ones.itertuples()], columns=JOINT_COLUMNS)
            joint = pd.concat([reused, joint], ignore_index=True).sort_values(["model", "seed", "k"], kind="stable")
            joint = joint.reset_index(drop=True)
        records = pd.concat(self._record_frames, ignore_index=True)
        summary = build_summary(matrix, joint if self.joint else None, self.models, self.methods, self.seeds,
                                self.replay, self.task_names)
        summary.update(config=self.base.to_dict(), settings=self.settings,
                       wall_seconds=time.perf_counter() - self.started, boundaries_tokens=self.boundaries_tokens)
        return Comparison(matrix, records, summary, self.task_names, self.boundaries_tokens,
                          joint if self.joint else None)


def compare(base: RunConfig, models: list[str], seeds: list[int],
            progress: Callable[[float, str], None] | None = None, chunk: int = 25,
            methods: list[str] = ("naive",), replay: int = DEFAULT_REPLAY, joint: bool = False,
            settings: dict | None = None) -> "Comparison":
    """Train each model for each seed (and method) on the same stream; `progress(fraction, label)`
    is called after every chunk of steps."""
    return ComparisonJob(base, models, seeds, methods, replay, joint, settings, chunk).run_to_end(progress)


def run_settings(settings: ForgetSettings, progress: Callable[[float, str], None] | None = None) -> "Comparison":
    return settings.job().run_to_end(progress)


# --- measurements ------------------------------------------------------------------------------

def run_metrics(R, joint_acc: dict[int, float] | None = None) -> dict:
    """§7's numbers of one accuracy matrix, plus what reading them honestly needs:

    learned        mean_j R[j][j]: accuracy on each task right after training on it
    old_acc        mean_{j<T} R[T][j]: what is left of the earlier tasks at the end
    untrained_old  mean_{j<T} R[0][j]: the same tasks before any training (the floor)
    untrained      mean_j R[0][j]: every task before any training
    intransigence  mean_k (joint_k − R[k][k]), when a joint reference is given
    """
    R = np.asarray(R, dtype=float)
    s = metrics.summarize(R)
    T = R.shape[1]
    out = {"ACC": s["ACC"], "BWT": s["BWT"], "FWT": s["FWT"], "forgetting": s["forgetting_max"],
           "forgetting_final": s["forgetting_final"],
           "learned": float(np.mean([R[j, j - 1] for j in range(1, T + 1)])),
           "old_acc": float(R[T, :T - 1].mean()) if T > 1 else math.nan,
           "untrained_old": float(R[0, :T - 1].mean()) if T > 1 else math.nan,
           "untrained": float(R[0].mean())}
    if joint_acc is not None:
        out["intransigence"] = metrics.intransigence(R, joint_acc)["mean"]
    return out


def build_summary(matrix: pd.DataFrame, joint: pd.DataFrame | None, models: list[str], methods: list[str],
                  seeds: list[int], replay: int | None, task_names: list[str]) -> dict:
    per_seed = []
    for method in methods:
        for model in models:
            for seed in seeds:
                cells = matrix[(matrix.model == model) & (matrix.method == method) & (matrix.seed == seed)]
                joint_acc = None
                if joint is not None:
                    rows = joint[(joint.model == model) & (joint.seed == seed)]
                    joint_acc = {int(r.k): float(r.accuracy) for r in rows.itertuples()}
                per_seed.append({"model": model, "method": method, "seed": int(seed),
                                 **run_metrics(metrics.matrix_from_frame(cells), joint_acc)})
    results = {}
    for method in methods:
        results[method] = {}
        for model in models:
            rows = [{k: v for k, v in r.items() if k not in ("model", "method", "seed")}
                    for r in per_seed if r["model"] == model and r["method"] == method]
            results[method][model] = metrics.mean_std(rows)
    return {"n_seeds": len(seeds), "seeds": [int(s) for s in seeds], "models": list(models),
            "methods": list(methods), "replay": replay, "joint": joint is not None, "tasks": list(task_names),
            "forgetting_form": FORGETTING_FORM, "forgetting_final_form": FORGETTING_FINAL_FORM,
            "results": results, "per_seed": per_seed}


def per_task(matrix: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method, seed, task j): learned R[j][j], final R[T][j], and forgetting
    of task j after the last task in the max form, max_{l<T} R[l][j] − R[T][j] (nan for j = T)."""
    rows = []
    for (model, method, seed), cells in matrix.groupby(["model", "method", "seed"], sort=False):
        R = metrics.matrix_from_frame(cells)
        T = R.shape[1]
        for j in range(1, T + 1):
            forgetting = float(R[1:T, j - 1].max() - R[T, j - 1]) if j < T else math.nan
            rows.append((model, method, seed, j, float(R[j, j - 1]), float(R[T, j - 1]), forgetting))
    return pd.DataFrame(rows, columns=["model", "method", "seed", "task", "learned", "final", "forgetting"])


def differences(matrix: pd.DataFrame, reference: str = "transformer") -> pd.DataFrame:
    """Per task, paired by seed: each other model's learned / final / forgetting minus the
    reference model's, on the same stream. Columns model, method, seed, task, metric, value."""
    table = per_task(matrix)
    if reference not in set(table.model):
        raise ValueError(f"the reference model {reference!r} is not in the comparison")
    ref = table[table.model == reference].drop(columns="model")
    out = []
    for model in [m for m in table.model.unique() if m != reference]:
        mine = table[table.model == model].drop(columns="model")
        both = mine.merge(ref, on=["method", "seed", "task"], suffixes=("", "_ref"))
        for metric in ("learned", "final", "forgetting"):
            frame = both[["method", "seed", "task"]].copy()
            frame.insert(0, "model", model)
            frame["metric"] = metric
            frame["value"] = both[metric] - both[f"{metric}_ref"]
            out.append(frame)
    if not out:
        return pd.DataFrame(columns=["model", "method", "seed", "task", "metric", "value"])
    return pd.concat(out, ignore_index=True)


def matrix_agreement(reference: pd.DataFrame, other: pd.DataFrame) -> dict:
    """How far `other`'s accuracy matrix is from `reference`'s on the cells they share.

    Returns cells (shared), missing (cells of `other` the reference does not have), max_abs_diff,
    identical (every shared cell exactly equal and none missing) and worst (the cell of the max).
    """
    keys = ["model", "method", "seed", "after_task", "eval_task"]
    both = other[keys + ["accuracy"]].merge(reference[keys + ["accuracy"]], on=keys, how="left",
                                            suffixes=("", "_ref"))
    missing = int(both["accuracy_ref"].isna().sum())
    shared = both.dropna(subset=["accuracy_ref"])
    diff = (shared["accuracy"] - shared["accuracy_ref"]).abs()
    worst = None
    if len(shared) and float(diff.max()) > 0:
        row = shared.loc[diff.idxmax()]
        worst = {k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in keys}
        worst.update(live=float(row["accuracy"]), shipped=float(row["accuracy_ref"]))
    max_diff = float(diff.max()) if len(shared) else math.nan
    return {"cells": int(len(shared)), "missing": missing, "max_abs_diff": max_diff,
            "identical": bool(len(shared) > 0 and missing == 0 and max_diff == 0.0), "worst": worst}


# --- reading it --------------------------------------------------------------------------------

def _fmt(cell: dict, digits: int = 3) -> str:
    mean, std = cell["mean"], cell["std"]
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if math.isfinite(std) else f"{mean:.{digits}f}"


TABLE_COLUMNS = {"ACC": "ACC", "BWT": "BWT", "FWT": "FWT", "forgetting": "forgetting (max form)",
                 "forgetting_final": "forgetting (final form)", "learned": "learned (mean R[j][j])",
                 "intransigence": "intransigence"}


def summary_table(summary: dict, numeric: bool = False) -> pd.DataFrame:
    """One row per (method, model): ACC, BWT, FWT, forgetting in both forms, learned accuracy and,
    with a joint reference, intransigence; "mean ± std over n seeds" strings (or numbers). The
    method is named short ("naive", "replay (64 seq.)"), so that the table fits a projector."""
    rows = []
    for method in summary["methods"]:
        for model in summary["models"]:
            cells = summary["results"][method][model]
            short = f"replay ({summary.get('replay')} seq.)" if method == "replay" else method
            row = {"method": short, "model": model_label(model)}
            for key, title in TABLE_COLUMNS.items():
                if key not in cells:
                    continue
                if numeric:
                    row[f"{title} mean"], row[f"{title} std"] = cells[key]["mean"], cells[key]["std"]
                else:
                    row[title] = _fmt(cells[key])
            rows.append(row)
    return pd.DataFrame(rows)


def _paired(summary: dict, method: str, model: str, reference: str, key: str) -> tuple[float, int, int, int]:
    """(mean difference model − reference, seeds where it is lower, higher, pairs) for one metric."""
    by = {(r["model"], r["seed"]): r[key] for r in summary["per_seed"] if r["method"] == method}
    diffs = [by[(model, s)] - by[(reference, s)] for s in summary["seeds"]
             if (model, s) in by and (reference, s) in by and math.isfinite(by[(model, s)] - by[(reference, s)])]
    if not diffs:
        return math.nan, 0, 0, 0
    return float(np.mean(diffs)), sum(d < 0 for d in diffs), sum(d > 0 for d in diffs), len(diffs)


def describe_comparison(summary: dict, reference: str = "transformer", margin: float = MARGIN) -> str:
    """What the numbers show, in plain sentences (Markdown), generated from `summary` alone.

    For each method: every model's forgetting; for each other model against the reference (the
    Transformer), paired by seed on the identical stream: "forgets less" only when it does so by
    at least `margin` on average and on every seed, "forgets more" likewise, otherwise "no clear
    difference" (said as: does not forget clearly less). A model that learned each task less well
    than the reference gets a caution: less learned is less to forget. Then replay's effect and
    intransigence when they were run, and the scale and seed caveats.
    """
    n, models, methods = summary["n_seeds"], summary["models"], summary["methods"]
    results, replay = summary["results"], summary.get("replay")
    seeds_text = f"{n} seed{'s' if n != 1 else ''}"
    lines = []
    for method in methods:
        r = results[method]
        numbers = ", ".join(f"{model_label(m)} {_fmt(r[m]['forgetting'])}" for m in models)
        accs = ", ".join(f"{model_label(m)} {_fmt(r[m]['ACC'])}" for m in models)
        lines.append(f"**{method_label(method, replay).capitalize()}**, {seeds_text}: forgetting (max form, "
                     f"0 = nothing forgotten) {numbers}; final average accuracy ACC {accs}.")
        gains = {m: r[m]["learned"]["mean"] - r[m]["untrained"]["mean"] for m in models if "untrained" in r[m]}
        if gains and max(gains.values()) < LEARNED_ENOUGH:
            lines.append(f"- Caution: no architecture learned the tasks much here (at best "
                         f"{max(gains.values()):+.3f} above the untrained model right after training on a task), "
                         "so there was little to forget: train for more steps per task before reading the forgetting "
                         "numbers.")
        if reference not in models:
            continue
        ref, the_ref = model_label(reference), _the(reference)
        for m in models:
            if m == reference:
                continue
            diff, lower, higher, pairs = _paired(summary, method, m, reference, "forgetting")
            if not pairs:
                continue
            name = model_label(m)
            if diff <= -margin and lower == pairs:
                lines.append(f"- {name} forgets less than {the_ref}: by {-diff:.3f} on average, and on "
                             f"{'every seed' if pairs > 1 else 'the one seed run'}.")
            elif diff >= margin and higher == pairs:
                lines.append(f"- {name} does **not** forget less than {the_ref} at this scale: it forgets more, "
                             f"by {diff:.3f} on average ({'on every seed' if pairs > 1 else 'one seed'}).")
            else:
                why = (f"the average difference, {diff:+.3f}, is smaller than {margin:.2f}, about the noise of one "
                       "accuracy measurement" if abs(diff) < margin else
                       f"the difference is {diff:+.3f} on average but it forgets less on only {lower} of {pairs} seeds")
                lines.append(f"- {name} does **not** forget clearly less than {the_ref} at this scale: {why}.")
            learned, learned_ref = r[m]["learned"]["mean"], r[reference]["learned"]["mean"]
            if abs(learned - learned_ref) > margin:
                less, more = (_the(m), the_ref) if learned < learned_ref else (the_ref, _the(m))
                low, high = min(learned, learned_ref), max(learned, learned_ref)
                old, old_ref, floor = r[m]["old_acc"]["mean"], r[reference]["old_acc"]["mean"], \
                    r[reference]["untrained_old"]["mean"]
                lines.append(f"  Caution: {less} learned each task less well while training on it than "
                             f"{more} (learned {low:.3f} against {high:.3f}), so it had less to forget. What is left "
                             f"of the earlier tasks at the end: {name} {old:.3f}, {ref} {old_ref:.3f}, untrained "
                             f"{floor:.3f}.")
    if "naive" in methods and "replay" in methods:
        parts = []
        for m in models:
            a, b = results["naive"][m], results["replay"][m]
            parts.append(f"{model_label(m)} {a['forgetting']['mean']:.3f} → {b['forgetting']['mean']:.3f} "
                         f"(ACC {a['ACC']['mean']:.3f} → {b['ACC']['mean']:.3f})")
        lines.append(f"**Experience replay** (buffer of {replay} sequences) against naive training, forgetting: "
                     + "; ".join(parts) + ".")
    if summary.get("joint"):
        parts = []
        for method in methods:
            cells = ", ".join(f"{model_label(m)} {_fmt(results[method][m]['intransigence'])}" for m in models
                              if "intransigence" in results[method][m])
            parts.append(f"{method}: {cells}")
        lines.append("**Intransigence** (accuracy of the joint reference on task k minus R[k][k], averaged over k; "
                     "above 0 = learning tasks one after another learns the new task less well than learning them "
                     "together; below 0 = the joint model, which shares the same steps among k tasks, is worse on "
                     "task k than the sequential model right after training on it): " + "; ".join(parts) + ".")
    caveat = "One seed: there is no spread, so treat every difference as anecdotal. " if n == 1 else ""
    config = summary.get("config") or {}
    stream = config.get("stream") or {}
    scale = (f"small models (preset {config.get('preset', '?')}), {stream.get('steps_per_task', '?')} steps per "
             f"task on a synthetic stream") if config else "small models on a synthetic stream"
    lines.append(f"*{caveat}These are {scale}: they say nothing about the papers' large-scale results.*")
    return "\n\n".join(lines)


# --- the result --------------------------------------------------------------------------------

def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False,
                       na_values={c: ["", "nan", "NaN"] for c in ("value", "accuracy")})


@dataclass
class Comparison:
    matrix: pd.DataFrame            # MATRIX_COLUMNS, after_task 0 = untrained, eval_task 1..T
    records: pd.DataFrame           # tidy records of every sequential run, with seed and method columns
    summary: dict                   # see build_summary; summary["results"][method][model][metric] = {mean, std}
    task_names: list[str]
    boundaries_tokens: list[int]
    joint: pd.DataFrame | None = None   # JOINT_COLUMNS, when the joint reference was run

    @property
    def models(self) -> list[str]:
        return list(self.summary["models"])

    @property
    def methods(self) -> list[str]:
        return list(self.summary["methods"])

    @property
    def seeds(self) -> list[int]:
        return list(self.summary["seeds"])

    def matrices(self) -> dict[tuple[str, str, int], list[list[float]]]:
        out = {}
        for (model, method, seed), df in self.matrix.groupby(["model", "method", "seed"], sort=False):
            out[(model, method, int(seed))] = metrics.matrix_from_frame(df).tolist()
        return out

    def describe(self) -> str:
        return describe_comparison(self.summary)

    def save(self, out: str | Path, keep_metrics: list[str] | None = None, **extra) -> list[Path]:
        """Write accuracy_matrix.csv, records.csv (only `keep_metrics` rows, if given), joint.csv
        (with a joint reference) and summary.json (the summary plus task names, boundaries and
        `extra`). Returns the paths written."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / FILES["matrix"], out / FILES["records"], out / FILES["summary"]]
        self.matrix.to_csv(paths[0], index=False)
        records = self.records if not keep_metrics else self.records[self.records.metric.isin(keep_metrics)]
        records.to_csv(paths[1], index=False)
        if self.joint is not None:
            paths.append(out / FILES["joint"])
            self.joint.to_csv(paths[-1], index=False)
        elif (out / FILES["joint"]).exists():
            (out / FILES["joint"]).unlink()
        summary = dict(self.summary, tasks=self.task_names, boundaries_tokens=self.boundaries_tokens,
                       records_metrics=sorted(set(records.metric)), **extra)
        # The flat form `python -m lab forget` documents: each model's ACC, BWT, FWT and forgetting
        # as {"mean", "std"}, for the first method (naive unless only replay was run).
        first = next(iter(self.summary["results"]))
        summary.update({model: metrics for model, metrics in self.summary["results"][first].items()},
                       flat_method=first)
        paths[2].write_text(json.dumps(summary, indent=2))
        return paths

    @classmethod
    def load(cls, folder: str | Path) -> "Comparison":
        """A comparison written by `save` (or `python -m lab forget`). Raises ValueError with the
        reason when a file is missing or unreadable."""
        folder = Path(folder)
        try:
            summary = json.loads((folder / FILES["summary"]).read_text())
            matrix = _read_csv(folder / FILES["matrix"])
            records = _read_csv(folder / FILES["records"])
            joint = _read_csv(folder / FILES["joint"]) if summary.get("joint") else None
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read the comparison in {folder}: {err}") from err
        missing = set(MATRIX_COLUMNS) - set(matrix.columns)
        if missing or "results" not in summary:
            raise ValueError(f"{folder} does not hold a comparison of this version of the lab "
                             f"(missing {', '.join(sorted(missing)) or 'summary results'})")
        return cls(matrix, records, summary, list(summary.get("tasks", [])),
                   [int(t) for t in summary.get("boundaries_tokens", [])], joint)

    def rerun_job(self, seeds: list[int] | None = None, methods: list[str] | None = None,
                  joint: bool | None = None) -> ComparisonJob:
        """A job that reruns this comparison's exact configuration (its stored RunConfig), for
        some or all of its seeds and methods: the live check of a shipped result."""
        base = RunConfig.from_dict(self.summary["config"])
        seeds = self.seeds if seeds is None else list(seeds)
        methods = self.methods if methods is None else list(methods)
        bad = [s for s in seeds if s not in self.seeds] + [m for m in methods if m not in self.methods]
        if bad:
            raise ValueError(f"{bad[0]!r} is not part of this comparison")
        joint = self.summary.get("joint", False) if joint is None else joint
        return ComparisonJob(base, self.models, seeds, methods, self.summary.get("replay") or DEFAULT_REPLAY,
                             joint, settings=self.summary.get("settings"))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = tuple(v) if isinstance(v, list) else v
    return out


def config_changes(old: dict, new: dict) -> list[str]:
    """Fields of two RunConfig dicts that differ, as "field: old → new" (nested fields dotted)."""
    a, b = _flat(old), _flat(new)
    return [f"{k}: {a.get(k, '(absent)')!r} → {b.get(k, '(absent)')!r}" for k in sorted(set(a) | set(b))
            if a.get(k, "(absent)") != b.get(k, "(absent)")]


def drift_from_defaults(comparison: Comparison) -> list[str]:
    """How the stored RunConfig of `comparison` differs from what today's defaults would build
    for the same stored settings (e.g. a default learning rate changed since it was made)."""
    settings = comparison.summary.get("settings")
    if not settings or not comparison.summary.get("config"):
        return []
    try:
        today = ForgetSettings.from_dict(settings).base_config().to_dict()
    except ConfigError as err:
        return [f"the stored settings are no longer valid: {err}"]
    return config_changes(comparison.summary["config"], today)


def check_agreement(shipped: Comparison, live: Comparison) -> dict:
    """`matrix_agreement` of a live rerun against the shipped result, plus the joint reference's."""
    out = matrix_agreement(shipped.matrix, live.matrix)
    if live.joint is not None and shipped.joint is not None:
        keys = ["model", "seed", "k"]
        both = live.joint[keys + ["accuracy"]].merge(shipped.joint[keys + ["accuracy"]], on=keys, suffixes=("", "_ref"))
        out["joint_max_abs_diff"] = float((both.accuracy - both.accuracy_ref).abs().max()) if len(both) else math.nan
    return out


__all__ = ["ForgetSettings", "ComparisonJob", "Comparison", "ComparisonError", "compare", "run_settings",
           "describe_comparison", "summary_table", "per_task", "differences", "matrix_agreement",
           "check_agreement", "config_changes", "drift_from_defaults", "run_metrics", "METHODS", "DEFAULT_REPLAY",
           "FORGETTING_FORM"]
