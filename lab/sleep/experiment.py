"""The controlled sleep experiment behind `python -m lab sleep`: arms on the identical stream (same
tasks, same batches, same initialisation):

    sleep        train; at every sleep point, sleep (SleepConfig as given)
    reset_only   train; at every sleep point, only reset the fast level (every other stage off)
    optimizer_reset  (optional) train; at every sleep point, only rebuild the optimizers: a sleep
                 with every stage off, which separates the effect of fresh optimizer state (every
                 sleep ends with one) from the effect of the reset and the distillation
    no_sleep     train, nothing else

Sleep points: after every phase (when="boundaries") or only after the last (when="end"). Around
each sleep the knowledge map (`lab.knowledge`) is recorded before (phase "active") and after
(phase "sleep").
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import torch

from lab import metrics
from lab.engine import Run
from lab.knowledge import accuracies, level_removed, matrix_dict, record_accuracy, record_knowledge
from lab.sleep.config import SleepConfig, SleepReport
from lab.sleep.phase import sleep
from lab.sleep.stages import sleep_levels

ARMS = ("sleep", "reset_only", "no_sleep")
ALL_ARMS = ARMS + ("optimizer_reset",)
WHEN = ("boundaries", "end")


RESET_ONLY = dict(dream=False, grow=False, distill=False, reset=True, prune=False)
STAGES_OFF = dict(RESET_ONLY, reset=False)


@dataclass
class SleepExperiment:
    summary: dict
    records: pd.DataFrame            # tidy records of every arm, with an "arm" column
    knowledge: pd.DataFrame          # arm, step, when (before / after), level, task, full, ablated, drop
    reports: list[SleepReport] = field(default_factory=list)
    dreams: torch.Tensor | None = None


def sleep_and_map(run: Run, config: SleepConfig | None = None, **kwargs) -> SleepReport:
    """A sleep phase now, with the knowledge map recorded before (phase "active") and after it
    (phase "sleep") and an evaluation after it; the dreams start from the language tags unless
    `prompt_tokens` is given. What the Sleep page's "Sleep now" does."""
    config = config or SleepConfig()
    kwargs.setdefault("prompt_tokens", _tags(run.stream))
    record_knowledge(run, config.knowledge_mode, "active")
    report = sleep(run, config, **kwargs)
    run.evaluate(phase="sleep")
    record_knowledge(run, config.knowledge_mode, "sleep")
    return report


def _tags(stream) -> list[int]:
    vocab = stream.vocab
    return [vocab.tag(i) for i in range(getattr(vocab, "n_languages", 0))]


def sleep_experiment(base, sleep_config: SleepConfig | None = None, when: str = "boundaries",
                     arms=ARMS, device: torch.device | None = None,
                     progress: Callable[[float, str], None] | None = None) -> SleepExperiment:
    """Run the arms on the stream of `base` (a RunConfig); see the module docstring."""
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
        sleep_levels(shared.model, sleep_config)            # a clear error before any training
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
                acc_before = dict(zip(names, accuracies(run.model, run.eval_sets)))
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
        arm_out["final"] = dict(zip(names, accuracies(run.model, run.eval_sets)))
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
    fast, _ = sleep_levels(run.model, config)
    model = copy.deepcopy(run.model)
    with level_removed(model, fast, "reset", run.initial_state):
        return dict(zip(names, accuracies(model, run.eval_sets)))


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
