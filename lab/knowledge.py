"""Where knowledge lives, and whether sleep moved it (REFERENCE.md §6, §7).

Knowledge location: for each CMS level ℓ and task j,

    drop[ℓ, j] = accuracy_j(full model) − accuracy_j(model with level ℓ removed)

where "removed" is mode "reset" (level ℓ of every block set to its reference state, the
parameters it had at initialisation, `run.initial_state`) or mode "bypass" (level ℓ of every
block adds nothing to the residual stream). Accuracy is the token accuracy of the engine's
held-out sets. A large drop says task j needs what level ℓ holds now.

    frame = knowledge_matrix(model, eval_sets, task_names, reference_state)   # level, task, full, ablated, drop
    record_knowledge(run, phase="active")     # the same, also as tidy rows (metric "knowledge_drop")

Convention for the rows around a sleep (the step does not advance during a sleep): rows with
phase "active" at a sleep's step are measured just before it, rows with phase "sleep" just after.

The controlled sleep experiment (sleep against its controls) that records these maps is
`lab.sleep.experiment`.
"""
from __future__ import annotations

from contextlib import contextmanager

import pandas as pd
import torch
from torch import nn

from lab.models.cms import level_state
from lab.tasks import score

KNOWLEDGE_COLUMNS = ["level", "task", "full", "ablated", "drop"]


class _Bypass(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


@contextmanager
def level_removed(model: nn.Module, level: int, mode: str, reference_state: dict | None = None):
    """Inside the block, CMS level `level` of every block is reset to its reference state
    (mode "reset") or contributes zero (mode "bypass"); the model is restored on exit."""
    if mode not in ("reset", "bypass"):
        raise ValueError(f"mode = {mode!r}: use 'reset' or 'bypass'")
    if mode == "reset" and reference_state is None:
        raise ValueError("mode 'reset' needs the reference state (run.initial_state)")
    swapped = []
    for prefix, cms in model.cms_blocks():
        original = cms.levels[level]
        replacement = (_Bypass() if mode == "bypass"
                       else original.copy_of(level_state(reference_state, f"{prefix}.levels.{level}")))
        cms.levels[level] = replacement
        swapped.append((cms, original))
    try:
        yield model
    finally:
        for cms, original in swapped:
            cms.levels[level] = original


@torch.no_grad()
def accuracies(model: nn.Module, eval_sets) -> list[float]:
    """Token accuracy on each (inputs, targets) held-out set."""
    was_training = model.training
    model.eval()
    try:
        return [score(model(inputs), targets)["token_acc"] for inputs, targets in eval_sets]
    finally:
        model.train(was_training)


def knowledge_matrix(model: nn.Module, eval_sets, task_names, reference_state: dict | None = None,
                     mode: str = "reset", levels=None) -> pd.DataFrame:
    """Columns level, task, full, ablated, drop: one row per (CMS level, task)."""
    blocks = model.cms_blocks()
    n_levels = min((len(cms.levels) for _, cms in blocks), default=0)
    levels = range(n_levels) if levels is None else levels
    full = accuracies(model, eval_sets)
    rows = []
    for level in levels:
        with level_removed(model, level, mode, reference_state):
            ablated = accuracies(model, eval_sets)
        rows += [(level, task, f, a, f - a) for task, f, a in zip(task_names, full, ablated)]
    return pd.DataFrame(rows, columns=KNOWLEDGE_COLUMNS)


def record_knowledge(run, mode: str = "reset", phase: str = "active") -> pd.DataFrame:
    """knowledge_matrix of a Run on its held-out sets; rows metric "knowledge_drop" into its recorder."""
    frame = knowledge_matrix(run.model, run.eval_sets, run.stream.task_names, run.initial_state, mode)
    for row in frame.itertuples():
        run.recorder.add(run.step_count, run.tokens_seen, "knowledge_drop", row.drop, row.task, int(row.level), phase)
    return frame


def record_accuracy(run, phase: str = "sleep") -> dict[str, float]:
    """Token accuracy per task on the Run's held-out sets, recorded as "accuracy" rows of `phase`."""
    accs = dict(zip(run.stream.task_names, accuracies(run.model, run.eval_sets)))
    for task, value in accs.items():
        run.recorder.add(run.step_count, run.tokens_seen, "accuracy", value, task, -1, phase)
    return accs


def matrix_dict(frame: pd.DataFrame) -> dict:
    """A knowledge frame as {"levels", "tasks", "drop": levels × tasks nested list}."""
    table = frame.pivot(index="level", columns="task", values="drop")
    tasks = list(dict.fromkeys(frame.task))
    table = table[tasks]
    return {"levels": [int(x) for x in table.index], "tasks": tasks, "drop": table.to_numpy().tolist()}


def track_knowledge(run, mode: str = "reset", every: int = 1) -> None:
    """Record the knowledge matrix after every `every`-th evaluation of the Run (a callback)."""
    state = {"n": 0}

    def callback(r):
        state["n"] += 1
        if state["n"] % every == 0:
            record_knowledge(r, mode)
    run.add_callback("on_eval_end", callback)
