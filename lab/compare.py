"""Architectures side by side on one continual stream: the code behind `python -m lab forget`
and the Forgetting page, so that both give the same accuracy matrix for the same settings.

Every model trains on the identical stream (same tasks, same batches in the same order: a
batch depends on the stream seed and the step only). Seed s sets both the stream's seed and
the models' initialisation, so seeds vary the tasks as well as the weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from lab import metrics
from lab.engine import Run, RunConfig

MATRIX_COLUMNS = ["model", "seed", "after_task", "eval_task", "accuracy"]
FORGETTING_FORM = "max form (Chaudhry et al. 2018): max_{l<k} R[l][j] − R[k][j], averaged over j<k"


@dataclass
class Comparison:
    matrix: pd.DataFrame            # MATRIX_COLUMNS, after_task 0 = untrained, eval_task 1..T
    records: pd.DataFrame           # tidy records of every run, with a seed column
    summary: dict                   # per model: ACC, BWT, FWT, forgetting as {"mean", "std"}; n_seeds
    task_names: list[str]
    boundaries_tokens: list[int]

    def matrices(self) -> dict[tuple[str, int], list[list[float]]]:
        out = {}
        for (model, seed), df in self.matrix.groupby(["model", "seed"], sort=False):
            out[(model, seed)] = metrics.matrix_from_frame(df).tolist()
        return out


def seeded(config: RunConfig, seed: int) -> RunConfig:
    return config.replace(seed=seed, stream=config.stream.replace(seed=seed).to_dict())


def compare(base: RunConfig, models: list[str], seeds: list[int],
            progress: Callable[[float, str], None] | None = None, chunk: int = 25) -> Comparison:
    """Train each model for each seed on the same stream; `progress(fraction, label)` is called often."""
    matrix_rows, record_frames, per_model = [], [], {m: [] for m in models}
    jobs = [(m, s) for s in seeds for m in models]
    task_names, boundaries = [], []
    for index, (model, seed) in enumerate(jobs):
        run = Run(seeded(base.replace(model=model), seed))
        task_names = [t.name for t in run.stream.tasks]
        boundaries = run.stream.boundaries_tokens()
        while not run.done and not run.diverged:
            run.step(chunk)
            if progress:
                progress((index + run.step_count / run.stream.total_steps) / len(jobs),
                         f"{model}, seed {seed}: step {run.step_count}/{run.stream.total_steps}")
        if run.diverged:
            raise RuntimeError(f"{model} (seed {seed}) diverged: {run.diverged.message()}")
        R = run.accuracy_matrix()
        for after, row in enumerate(R):
            for j, acc in enumerate(row):
                matrix_rows.append((model, seed, after, j + 1, acc))
        per_model[model].append(metrics.summarize(R))
        frame = run.records().copy()
        frame.insert(0, "seed", seed)
        record_frames.append(frame)
    summary = {}
    for model, results in per_model.items():
        ms = metrics.mean_std(results)
        summary[model] = {"ACC": ms["ACC"], "BWT": ms["BWT"], "FWT": ms["FWT"],
                          "forgetting": ms["forgetting_max"], "forgetting_final": ms["forgetting_final"],
                          "forgetting_form": FORGETTING_FORM}
    summary["n_seeds"] = len(seeds)
    if progress:
        progress(1.0, "done")
    return Comparison(pd.DataFrame(matrix_rows, columns=MATRIX_COLUMNS),
                      pd.concat(record_frames, ignore_index=True), summary, task_names, boundaries)
