"""A deployment comparison as a list of runs on the one engine, advanced a little at a time.

Per seed: each architecture is pretrained once (`DeploySettings.pretrain_config`); every variant of
it then starts from those weights (`Run(..., start_from=…)`) and reads the deployment stream
(`deploy_config`). All variants of one seed read the very same documents in the same order.

After every deployment task the knowledge map is recorded: for each CMS level, the accuracy lost
on each language when the level goes back to where it stood at the start of deployment (for the
online variants: when its fast-weight change Δ is dropped). The +sleep variants sleep there too:
the stream's fast weights are folded into the model first, since a sleep works on the model's
parameters (lab.sleep), and the fast level is reset to its pretrained state.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from lab.deploy.settings import VARIANTS, DeploySettings, variant_label
from lab.deploy.summary import MATRIX_COLUMNS, Deployment, build_summary
from lab.engine import Run
from lab.forgetting import ComparisonError
from lab.knowledge import KNOWLEDGE_COLUMNS, accuracies, knowledge_matrix
from lab.sleep import sleep_and_map

METHOD = "deploy"
KEEP_METRICS = ("accuracy", "online_update_norm", "update_norm", "knowledge_drop", "loss")


class DeployError(ComparisonError):
    """A deployment that cannot finish (a run diverged); the message says which run and why."""


@dataclass(frozen=True)
class Unit:
    kind: str           # "pretrain" or "deploy"
    name: str           # the architecture (pretrain) or the variant (deploy)
    seed: int
    steps: int

    def label(self) -> str:
        what = f"pretraining {self.name}" if self.kind == "pretrain" else variant_label(self.name)
        return f"{what}, seed {self.seed}"


def online_knowledge(run: Run) -> pd.DataFrame:
    """The knowledge map of an online run: accuracy lost per level and language when the level's
    fast-weight change is dropped, mean over the streams."""
    reader, names = run.online, run.stream.task_names
    rows, full = [], None
    size = run.eval_sets[0][0].shape[0]                          # every language's held-out set has this many
    for level in [None, *range(run.model.config.n_levels)]:
        accs = []
        for s in range(reader.streams):
            with reader.stream(s, size, without_level=level):
                accs.append(accuracies(run.model, run.eval_sets))
        mean = [sum(a[j] for a in accs) / len(accs) for j in range(len(names))]
        if level is None:
            full = mean
            continue
        rows += [(level, task, f, a, f - a) for task, f, a in zip(names, full, mean)]
    return pd.DataFrame(rows, columns=KNOWLEDGE_COLUMNS)


class DeployJob:
    """Pretraining and deployment runs of `settings`, advanced a few steps at a time; `result()`
    once `done`."""

    def __init__(self, settings: DeploySettings, seeds: list[int] | None = None, chunk: int = 25,
                 pretrained: dict | None = None):
        """`pretrained`: a dict shared between jobs that keeps pretrained weights by their
        RunConfig (a sweep over deployment settings then pretrains each model once)."""
        self.settings, self.chunk = settings, int(chunk)
        self._shared = pretrained
        self.seeds = settings.seed_list() if seeds is None else [int(s) for s in seeds]
        self.units: list[Unit] = []
        deploy_steps = settings.deploy_steps * settings.new_tasks * settings.rounds
        for seed in self.seeds:
            for arch in settings.archs:
                self.units.append(Unit("pretrain", arch, seed, settings.pretrain_config(arch, seed).stream.steps_per_task
                                       * settings.base_tasks))
                self.units += [Unit("deploy", v, seed, deploy_steps) for v in settings.variants if VARIANTS[v].arch == arch]
        self.total_steps = sum(u.steps for u in self.units)
        self.index = self.steps_done = 0
        self.started = time.perf_counter()
        self._run: Run | None = None
        self._pretrained: dict[str, dict] = {}
        self._matrix: list[tuple] = []
        self._records: list[pd.DataFrame] = []
        self._knowledge: list[pd.DataFrame] = []
        self.task_names: list[str] = []
        self.boundaries_tokens: list[int] = []
        self.boundaries_steps: list[int] = []
        self.phase_tasks: list[int] = []

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
        return f"run {self.index + 1} of {len(self.units)}: {unit.label()}: step {step}/{unit.steps}"

    def _start(self, unit: Unit) -> Run | None:
        s = self.settings
        if unit.kind == "pretrain":
            key = s.pretrain_config(unit.name, unit.seed).to_json()
            if self._shared is not None and key in self._shared:
                self._pretrained[unit.name] = self._shared[key]
                return None
            return Run(s.pretrain_config(unit.name, unit.seed))
        run = Run(s.deploy_config(unit.name, unit.seed), start_from=self._pretrained[VARIANTS[unit.name].arch])
        if not self.task_names:
            self.task_names = list(run.stream.task_names)
            self.boundaries_tokens = list(run.stream.boundaries_tokens())
            self.boundaries_steps = list(run.stream.boundaries_steps())
            self.phase_tasks = [task for task, _ in run.stream.phases]
        run.add_callback("on_phase_end", lambda r, unit=unit: self._after_task(r, unit))
        return run

    def _after_task(self, run: Run, unit: Unit) -> None:
        frame = online_knowledge(run) if run.online is not None else \
            knowledge_matrix(run.model, run.eval_sets, run.stream.task_names, run.initial_state)
        for row in frame.itertuples():
            run.recorder.add(run.step_count, run.tokens_seen, "knowledge_drop", row.drop, row.task, int(row.level))
        self._knowledge.append(frame.assign(model=unit.name, seed=unit.seed, step=run.step_count))
        if VARIANTS[unit.name].sleep and not run.done:
            run.online.fold_into_model()
            sleep_and_map(run, self.settings.sleep_config())

    def advance(self, max_steps: int | None = None, budget_s: float | None = None) -> int:
        """Train up to `max_steps` steps and/or for about `budget_s` seconds (at least one chunk),
        moving on to the next run whenever one ends. Returns the steps taken."""
        start, taken = time.perf_counter(), 0
        while not self.done:
            unit = self.units[self.index]
            if self._run is None:
                self._run = self._start(unit)
                if self._run is None:                     # pretrained weights shared by an earlier job
                    self.steps_done += unit.steps
                    self.index += 1
                    continue
            run = self._run
            before = run.step_count
            run.step(self.chunk if max_steps is None else max(1, min(self.chunk, max_steps - taken)))
            taken += run.step_count - before
            if run.diverged:
                raise DeployError(f"{unit.label()} diverged: {run.diverged.message()}")
            if run.done:
                self._finish(run, unit)
            if (max_steps is not None and taken >= max_steps) or \
                    (budget_s is not None and time.perf_counter() - start >= budget_s):
                break
        return taken

    def _finish(self, run: Run, unit: Unit) -> None:
        if unit.kind == "pretrain":
            self._pretrained[unit.name] = copy.deepcopy(run.model.state_dict())
            if self._shared is not None:
                self._shared[run.config.to_json()] = self._pretrained[unit.name]
        else:
            for after, row in enumerate(run.accuracy_matrix()):
                for j, acc in enumerate(row):
                    phase = "pretrain" if after == 0 else METHOD
                    self._matrix.append((unit.name, METHOD, unit.seed, after, j + 1, float(acc), phase))
            frame = run.records()
            frame = frame[frame.metric.isin(KEEP_METRICS)].copy()
            frame["model"] = unit.name
            frame.insert(0, "method", METHOD)
            frame.insert(0, "seed", unit.seed)
            self._records.append(frame)
            last_of_arch = all(VARIANTS[u.name].arch != VARIANTS[unit.name].arch or u.seed != unit.seed
                               for u in self.units[self.index + 1:] if u.kind == "deploy")
            if last_of_arch:
                self._pretrained.pop(VARIANTS[unit.name].arch, None)
        self.steps_done += unit.steps
        self.index += 1
        self._run = None

    def run_to_end(self, progress: Callable[[float, str], None] | None = None) -> Deployment:
        while not self.done:
            self.advance(max_steps=self.chunk)
            if progress:
                progress(self.fraction, self.label)
        if progress:
            progress(1.0, "done")
        return self.result()

    def result(self) -> Deployment:
        if not self.done:
            raise RuntimeError(f"the deployment is not finished ({100 * self.fraction:.0f} % done)")
        matrix = pd.DataFrame(self._matrix, columns=MATRIX_COLUMNS)
        records = pd.concat(self._records, ignore_index=True)
        knowledge = pd.concat(self._knowledge, ignore_index=True) if self._knowledge else pd.DataFrame()
        s = self.settings
        summary = build_summary(matrix, records, list(s.variants), self.seeds, self.task_names, s.base_tasks,
                                self.boundaries_steps, self.phase_tasks)
        summary.update(settings=s.to_dict(), wall_seconds=time.perf_counter() - self.started,
                       config=s.deploy_config(s.variants[0], self.seeds[0]).to_dict(),
                       boundaries_steps=self.boundaries_steps)
        return Deployment(matrix, records, summary, self.task_names, self.boundaries_tokens, None, knowledge,
                          self.phase_tasks)
