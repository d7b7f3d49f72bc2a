"""A forgetting comparison as a list of training runs on the identical stream, advanced a few steps
at a time (`ComparisonJob`), and the two one-call forms of it (`compare`, `run_settings`). The page
(through `lab.sessions.forgetting`) and `python -m lab forget` both drive this job, which drives the
one engine (`lab.engine.Run`), so both give the same accuracy matrix for the same settings.

The identical stream: every model trains on the same tasks and the same batches in the same
order (a batch depends on the stream seed and the step only). Seed s sets both the stream's seed
and the models' initialisation, so seeds vary the tasks as well as the weights; for one seed,
every model and every method sees the very same data.

Joint reference (for intransigence, REFERENCE.md §7): for k = 1..T, a fresh model of the same
family and seed trained on a uniform mixture of tasks 1..k (`StreamConfig.joint`) for k × steps
per task steps, the number of steps the sequential run took to finish task k, then evaluated on
task k. Intransigence I_k = joint_k − R[k][k]. For k = 1 the joint stream is task 1 alone with
the same batches and initialisation as the sequential run's first phase, so the lab reuses
R[1][1] instead of training it again (tests/unit/test_forgetting.py checks that the two are equal).
Choice: the joint models train with naive batches (no replay), and one joint reference serves
both methods.

Divergence: a run that diverges stops the comparison with a `ComparisonError` that says which and
carries the accuracy matrices of the runs that finished before it (`partial`; with worker processes,
the runs not started yet are cancelled, not trained for nothing).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from lab.engine import RunConfig
from lab.forgetting.settings import DEFAULT_REPLAY, METHODS, ForgetSettings, joint_config, method_label, seeded
from lab.forgetting.store import Comparison
from lab.forgetting.summary import JOINT_COLUMNS, MATRIX_COLUMNS, build_summary
from lab.models import MODELS
from lab.viz.palette import model_label


class ComparisonError(RuntimeError):
    """A comparison that cannot finish (a run diverged); the message says which run and why, and
    `partial` holds the accuracy matrix rows (MATRIX_COLUMNS) of the runs that finished (may be empty)."""

    def __init__(self, message: str, partial: pd.DataFrame | None = None):
        super().__init__(message)
        self.partial = partial if partial is not None else pd.DataFrame(columns=MATRIX_COLUMNS)


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
        """The comparison the page's form and `python -m lab forget` describe."""
        return cls(settings.base_config(), list(settings.models), settings.seed_list(), list(settings.methods),
                   settings.replay, settings.joint, settings=settings.to_dict())

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
                raise self._diverged(run.diverged.message())
            if run.done:
                self._finish(run)
            if max_steps is not None and taken >= max_steps:
                break
            if budget_s is not None and time.perf_counter() - start >= budget_s:
                break
            if max_steps is None and budget_s is None:
                continue
        return taken

    def _diverged(self, message: str) -> ComparisonError:
        unit = self.units[self.index]
        return ComparisonError(f"{unit.label(self.replay)} diverged: {message}",
                               pd.DataFrame(self._matrix_rows, columns=MATRIX_COLUMNS))

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

    def run_to_end(self, progress: Callable[[float, str], None] | None = None, workers: int = 1) -> Comparison:
        """Every run to its end, then `result()`. workers > 1: the runs (independent: each has its own
        config and seed) go to a pool of processes, and their results are taken in the serial order,
        so the records are those of the serial run."""
        if workers > 1 and self.index == 0 and self._run is None:
            return self._run_pooled(workers, progress)
        while not self.done:
            self.advance(max_steps=self.chunk)
            if progress:
                progress(self.fraction, self.label)
        if progress:
            progress(1.0, "done")
        return self.result()

    def _run_pooled(self, workers: int, progress) -> Comparison:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")       # no fork of a process that holds torch threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(_train_unit, unit.config) for unit in self.units]
            for future in futures:                           # in the serial order
                outcome = future.result()
                if outcome["diverged"]:
                    pool.shutdown(wait=False, cancel_futures=True)    # the runs not started: never started
                    raise self._diverged(outcome["diverged"])
                if not self.task_names:
                    self.task_names, self.boundaries_tokens = outcome["task_names"], outcome["boundaries_tokens"]
                self._finish(_Finished(outcome))
                if progress:
                    progress(self.fraction, self.label)
        if progress:
            progress(1.0, "done")
        return self.result()

    def result(self) -> Comparison:
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


def _train_unit(config: RunConfig) -> dict:
    """One run of a comparison to its end, in a worker process: what `_finish` reads of it."""
    from lab.device import configure_threads
    from lab.engine import Run

    configure_threads()
    run = Run(config)
    while not run.done and not run.diverged:
        run.step(1000)
    return {"diverged": run.diverged.message() if run.diverged else None, "matrix": run.accuracy_matrix(),
            "records": run.records(), "last_eval": run.last_eval_accuracy(), "step_count": run.step_count,
            "task_names": list(run.stream.task_names), "boundaries_tokens": list(run.stream.boundaries_tokens())}


class _Finished:
    """A finished run as `ComparisonJob._finish` reads it, from a worker's `_train_unit` result."""

    def __init__(self, outcome: dict):
        self.outcome, self.step_count = outcome, outcome["step_count"]

    def accuracy_matrix(self):
        return self.outcome["matrix"]

    def records(self):
        return self.outcome["records"]

    def last_eval_accuracy(self):
        return self.outcome["last_eval"]


def compare(base: RunConfig, models: list[str], seeds: list[int],
            progress: Callable[[float, str], None] | None = None, chunk: int = 25,
            methods: list[str] = ("naive",), replay: int = DEFAULT_REPLAY, joint: bool = False,
            settings: dict | None = None) -> Comparison:
    """Train each model for each seed (and method) on the same stream; `progress(fraction, label)`
    is called after every chunk of steps."""
    return ComparisonJob(base, models, seeds, methods, replay, joint, settings, chunk).run_to_end(progress)


def run_settings(settings: ForgetSettings, progress: Callable[[float, str], None] | None = None,
                 workers: int = 1) -> Comparison:
    """The whole comparison `settings` describe, in one call (what `python -m lab forget` does);
    workers > 1 trains its runs in that many processes (the same records)."""
    return ComparisonJob.from_settings(settings).run_to_end(progress, workers=workers)


def rerun_job(comparison: Comparison, seeds: list[int] | None = None, methods: list[str] | None = None,
              joint: bool | None = None) -> ComparisonJob:
    """A job that reruns `comparison`'s exact configuration (its stored RunConfig), for some or all
    of its seeds and methods: the live check of a shipped result."""
    base = RunConfig.from_dict(comparison.summary["config"])
    seeds = comparison.seeds if seeds is None else list(seeds)
    methods = comparison.methods if methods is None else list(methods)
    bad = [s for s in seeds if s not in comparison.seeds] + [m for m in methods if m not in comparison.methods]
    if bad:
        raise ValueError(f"{bad[0]!r} is not part of this comparison")
    joint = comparison.summary.get("joint", False) if joint is None else joint
    return ComparisonJob(base, comparison.models, seeds, methods, comparison.summary.get("replay") or DEFAULT_REPLAY,
                         joint, settings=comparison.summary.get("settings"))
