"""Optimizers compared on the same task: one RunConfig and seed, only the optimizer differs.

Every run starts from the same initial weights (the run's seed) and sees the same batches in the
same order (a batch depends on the stream seed and the step only), so the first recorded loss is
the same for every optimizer and the curves part only through the updates.
"""
from __future__ import annotations

from typing import Callable, Sequence

import pandas as pd

from lab.engine import Run, RunConfig
from lab.optim import OPTIMIZERS

COLUMNS = ["optimizer", "step", "tokens", "task", "metric", "value"]


def race(config: RunConfig, optimizers: Sequence[str], steps: int,
         progress: Callable[[float, str], None] | None = None) -> pd.DataFrame:
    """Train `config` for `steps` steps with each optimizer; loss and accuracy rows (COLUMNS).
    A run that diverges stops there; its rows so far are kept and a "diverged" row says when."""
    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    if unknown or not optimizers:
        raise ValueError(f"optimizer {unknown[0] if unknown else '(none)'!r}: choose from {', '.join(OPTIMIZERS)}")
    if not 1 <= steps <= 10_000:
        raise ValueError(f"steps = {steps!r}: must be between 1 and 10000")
    frames = []
    for index, name in enumerate(optimizers):
        run = Run(config.replace(optimizer=name))
        while run.step_count < min(steps, run.stream.total_steps) and not run.diverged and not run.done:
            run.step(min(25, steps - run.step_count))
            if progress:
                progress((index + run.step_count / steps) / len(optimizers), f"{name}: step {run.step_count}/{steps}")
        rows = run.records()
        rows = rows[rows.metric.isin(["loss", "accuracy", "diverged"])]
        frames.append(rows.assign(optimizer=name)[COLUMNS])
    return pd.concat(frames, ignore_index=True)
