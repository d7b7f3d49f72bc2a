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

`sleep_experiment` is the controlled comparison behind `python -m lab sleep`: three arms on the
identical stream (same tasks, same batches, same initialisation):

    sleep        train; at every sleep point, sleep (SleepConfig as given)
    reset_only   train; at every sleep point, only reset the fast level (every other stage off)
    optimizer_reset  (optional) train; at every sleep point, only rebuild the optimizers: a sleep
                 with every stage off, which separates the effect of fresh optimizer state (every
                 sleep ends with one) from the effect of the reset and the distillation
    no_sleep     train, nothing else

Sleep points: after every phase (when="boundaries") or only after the last (when="end").
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import torch
from torch import nn

from lab import metrics
from lab.sleep import SleepConfig, SleepReport, cms_blocks, reference_level, resolve_levels, sleep
from lab.tasks import score

KNOWLEDGE_COLUMNS = ["level", "task", "full", "ablated", "drop"]
ARMS = ("sleep", "reset_only", "no_sleep")
ALL_ARMS = ARMS + ("optimizer_reset",)
WHEN = ("boundaries", "end")


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
    for prefix, cms in cms_blocks(model):
        original = cms.levels[level]
        replacement = (_Bypass() if mode == "bypass"
                       else reference_level(original, f"{prefix}.levels.{level}", reference_state))
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
    blocks = cms_blocks(model)
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
    frame = knowledge_matrix(run.model, run._eval_sets, run.stream.task_names, run.initial_state, mode)
    for row in frame.itertuples():
        run.recorder.add(run.step_count, run.tokens_seen, "knowledge_drop", row.drop, row.task, int(row.level), phase)
    return frame


def record_accuracy(run, phase: str = "sleep") -> dict[str, float]:
    """Token accuracy per task on the Run's held-out sets, recorded as "accuracy" rows of `phase`."""
    accs = dict(zip(run.stream.task_names, accuracies(run.model, run._eval_sets)))
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


# --- the controlled experiment -------------------------------------------------------------------

RESET_ONLY = dict(dream=False, grow=False, distill=False, reset=True, prune=False)
STAGES_OFF = dict(RESET_ONLY, reset=False)


@dataclass
class SleepExperiment:
    summary: dict
    records: pd.DataFrame            # tidy records of every arm, with an "arm" column
    knowledge: pd.DataFrame          # arm, step, when (before / after), level, task, full, ablated, drop
    reports: list[SleepReport] = field(default_factory=list)
    dreams: torch.Tensor | None = None


def _tags(stream) -> list[int]:
    vocab = stream.vocab
    return [vocab.tag(i) for i in range(getattr(vocab, "n_languages", 0))]


def sleep_experiment(base, sleep_config: SleepConfig | None = None, when: str = "boundaries",
                     arms=ARMS, device: torch.device | None = None,
                     progress: Callable[[float, str], None] | None = None) -> SleepExperiment:
    """Run the arms on the stream of `base` (a RunConfig); see the module docstring."""
    from lab.engine import Run

    if when not in WHEN:
        raise ValueError(f"when = {when!r}: use one of {', '.join(WHEN)}")
    sleep_config = sleep_config or SleepConfig()
    bad = [a for a in arms if a not in ALL_ARMS]
    if bad or not arms:
        raise ValueError(f"arm {bad[0] if bad else '(none)'!r}: use some of {', '.join(ALL_ARMS)}")
    arm_configs = {"sleep": sleep_config, "reset_only": sleep_config.replace(**RESET_ONLY),
                   "optimizer_reset": sleep_config.replace(**STAGES_OFF)}
    results, frames, knowledge, reports = {}, [], [], []
    dreams = None
    shared = Run(base, device)
    if any(arm != "no_sleep" for arm in arms):
        resolve_levels(shared.model, sleep_config)            # a clear error before any training
    bounds = shared.stream.boundaries_steps()[1:]
    points = bounds if when == "boundaries" else bounds[-1:]
    tags = _tags(shared.stream)
    names = shared.stream.task_names
    total = shared.stream.total_steps
    work = points[0] + len(arms) * (total - points[0])         # the arms share the steps up to the first sleep

    def advance(run, target, done_before, label):
        while run.step_count < target and not run.diverged:
            run.step(min(25, target - run.step_count))
            if progress:
                progress(min(1.0, (done_before + run.step_count) / work), f"{label}: step {run.step_count}/{total}")
        if run.diverged:
            raise RuntimeError(f"{base.model} ({label}) diverged: {run.diverged.message()}")

    advance(shared, points[0], 0, "all arms")
    for index, arm in enumerate(arms):
        run = shared if index == len(arms) - 1 else copy.deepcopy(shared)
        offset = index * (total - points[0])                  # progress: the arms before this one
        rows_after = run.accuracy_matrix()
        rows_after = rows_after[:1] + rows_after[1:len([b for b in bounds if b < points[0]]) + 1]
        arm_out = {}
        for phase_end in bounds:
            if phase_end < points[0]:
                continue
            advance(run, phase_end, offset, arm)
            if arm != "no_sleep" and phase_end in points:
                final = phase_end == points[-1]
                before = record_knowledge(run, sleep_config.knowledge_mode, "active")
                knowledge.append(before.assign(arm=arm, step=run.step_count, when="before"))
                acc_before = dict(zip(names, accuracies(run.model, run._eval_sets)))
                if final and arm == "sleep":
                    arm_out["reset_only_now"] = _reset_now(run, sleep_config, names)
                report = sleep(run, arm_configs[arm], prompt_tokens=tags)
                acc_after = record_accuracy(run, "sleep")
                after = record_knowledge(run, sleep_config.knowledge_mode, "sleep")
                knowledge.append(after.assign(arm=arm, step=run.step_count, when="after"))
                if arm == "sleep":
                    reports.append(report)
                    dreams = report.dreams
                if final:
                    arm_out.update(before=acc_before, after=acc_after, knowledge_before=matrix_dict(before),
                                   knowledge_after=matrix_dict(after), params=report.param_counts(),
                                   kl=report.kl)
                rows_after.append(list(acc_after.values()))
            else:
                rows_after.append(run.accuracy_matrix()[-1])
        arm_out["final"] = dict(zip(names, accuracies(run.model, run._eval_sets)))
        arm_out["R"] = rows_after if len(rows_after) == len(names) + 1 else None
        results[arm] = arm_out
        frame = run.records().copy()
        frame.insert(0, "arm", arm)
        frames.append(frame)
    if progress:
        progress(1.0, "done")
    summary = _summary(results, names, base, sleep_config, when, reports)
    return SleepExperiment(summary, pd.concat(frames, ignore_index=True),
                           pd.concat(knowledge, ignore_index=True) if knowledge else pd.DataFrame(),
                           reports, dreams)


def _reset_now(run, config: SleepConfig, names) -> dict[str, float]:
    """Accuracy of a copy of the model with only the fast level reset (the run is untouched)."""
    fast, _ = resolve_levels(run.model, config)
    model = copy.deepcopy(run.model)
    with level_removed(model, fast, "reset", run.initial_state):
        return dict(zip(names, accuracies(model, run._eval_sets)))


def _summary(results, names, base, sleep_config, when, reports) -> dict:
    out = {"tasks": names, "when": when, "n_sleeps": len(reports)}
    if "sleep" in results:
        s = results["sleep"]
        out.update(before_sleep=s["before"], after_sleep=s["after"], reset_only_now=s["reset_only_now"],
                   knowledge_before=s["knowledge_before"], knowledge_after=s["knowledge_after"],
                   params=s["params"], sleep_kl=s["kl"])
    if "no_sleep" in results:
        out["control_no_sleep"] = results["no_sleep"]["final"]
    if "reset_only" in results:
        out["control_reset_only"] = results["reset_only"]["final"]
        out["knowledge_reset_only"] = results["reset_only"].get("knowledge_after")
    if "optimizer_reset" in results:
        out["control_optimizer_reset"] = results["optimizer_reset"]["final"]
    keys = {"sleep": "after_sleep", "no_sleep": "control_no_sleep", "reset_only": "control_reset_only",
            "optimizer_reset": "control_optimizer_reset"}
    out["old_tasks_mean"] = {}
    for key in ("before_sleep", "after_sleep", "reset_only_now", "control_no_sleep", "control_reset_only",
                "control_optimizer_reset"):
        if key in out and len(names) > 1:
            out["old_tasks_mean"][key] = sum(out[key][t] for t in names[:-1]) / (len(names) - 1)
    out["cl_metrics"] = {}
    for arm, key in keys.items():
        R = results.get(arm, {}).get("R")
        if R is not None:
            out["cl_metrics"][key] = dict(metrics.summarize(R), R=R)
    out["sleep_config"] = sleep_config.to_dict()
    out["config"] = base.to_dict()
    return out
