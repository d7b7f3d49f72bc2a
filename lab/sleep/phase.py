"""One sleep phase on a run: dream → grow → distill → reset → prune (REFERENCE.md §6), in order,
each stage switchable (the module docstring of `lab.sleep` says what each does and records)."""
from __future__ import annotations

import copy

import pandas as pd
import torch

from lab.sleep.config import SleepConfig, SleepReport
from lab.sleep.stages import (distill_parameters, dream, level_drift, level_inputs, level_params, level_snapshot,
                              mean_kl, sleep_levels, teacher_log_probs, train_slow, unit_importance)
from lab.tasks.vocab import PAD


# --- the sleep phase -----------------------------------------------------------------------------

def sleep(run, config: SleepConfig | None = None, *, prompt_tokens=(), exclude_tokens=(PAD,)) -> SleepReport:
    """One sleep phase on `run` (a lab.engine.Run, or anything with the attributes in the module
    docstring). Changes `run.model` in place, records rows with phase "sleep", calls
    `run.rebuild_optimizers()` at the end, and returns a SleepReport."""
    config = config or SleepConfig()
    model = run.model
    fast, slow = sleep_levels(model, config)
    step, tokens = int(run.step_count), int(run.tokens_seen)
    rec = run.recorder

    def add(metric, value, level=-1, task=""):
        rec.add(step, tokens, metric, value, task, level, phase="sleep")

    g = torch.Generator().manual_seed(config.seed)
    device = next(model.parameters()).device
    params_rows = []

    def count(stage):
        for level, value in ((slow, level_params(model, slow)), (-1, sum(p.numel() for p in model.parameters()))):
            params_rows.append((stage, level, value))
            add("params", value, level)

    count("before")
    hidden_before = model.cms_blocks()[0][1].levels[slow].hidden_size
    before = {lv: level_snapshot(model, lv) for lv in (fast, slow)}
    fast_before = {f"{prefix}.levels.{fast}": copy.deepcopy(cms.levels[fast].state_dict())
                   for prefix, cms in model.cms_blocks()}
    for p in model.parameters():
        p.grad = None

    dreams = teacher = None
    if config.dream:
        dreams = dream(model, config, prompt_tokens, exclude_tokens, g)
        teacher = teacher_log_probs(model, dreams)

    if config.grow:
        for _, cms in model.cms_blocks():
            cms.levels[slow].grow(config.grow_units, g)
        model.sync_level_widths()
    count("grown")

    distill_rows, drift_rows, kl = [], [], {}

    def log_drift(iteration):
        for lv in (fast, slow):
            value = level_drift(model, lv, before[lv])
            drift_rows.append((iteration, lv, value))
            add("drift", value, lv)

    if config.distill or config.reset:
        model.reset_level(fast, run.initial_state)
    old_units = [hidden_before if config.grow else 0] * len(model.cms_blocks())
    if config.distill:
        kl["reset"] = mean_kl(model, dreams, teacher)
        add("kl_reset", kl["reset"])
        trained = distill_parameters(model, slow, old_units, config.distill_params)
        train_slow(run, trained, dreams, teacher, config, config.distill_steps, g, "distill",
                   distill_rows, add, log_drift)
        kl["distilled"] = mean_kl(model, dreams, teacher)
        add("kl_distilled", kl["distilled"])
    log_drift(config.distill_steps if config.distill else 0)

    pruned = 0
    if config.prune:
        budget = config.prune_budget or hidden_before
        inputs = level_inputs(model, slow, dreams) if config.importance == "activation" else {}
        for b, (prefix, cms) in enumerate(model.cms_blocks()):
            level = cms.levels[slow]
            if level.hidden_size <= budget:
                continue
            score = unit_importance(level, config.importance, inputs.get(prefix))
            keep = score.topk(budget).indices.sort().values
            pruned = level.hidden_size - budget
            old_units[b] = int((keep < old_units[b]).sum())      # kept old units stay in front
            level.keep(keep)
        model.sync_level_widths()
        if config.distill:
            kl["pruned"] = mean_kl(model, dreams, teacher)
            add("kl_pruned", kl["pruned"])
            if config.repair_steps:
                trained = distill_parameters(model, slow, old_units, config.distill_params)
                train_slow(run, trained, dreams, teacher, config, config.repair_steps, g, "repair",
                           distill_rows, add, None)
                kl["repaired"] = mean_kl(model, dreams, teacher)
                add("kl_repaired", kl["repaired"])
    count("after_prune")

    if not config.reset:                                   # the fast level gets its pre-sleep state back
        with torch.no_grad():
            for prefix, cms in model.cms_blocks():
                cms.levels[fast].load_state_dict(fast_before[f"{prefix}.levels.{fast}"])
        drift_rows.append((config.distill_steps if config.distill else 0, fast, 0.0))
        add("drift", 0.0, fast)

    model.to(device)
    run.rebuild_optimizers()
    return SleepReport(config, step, tokens, fast, slow, dreams,
                       pd.DataFrame(distill_rows, columns=["stage", "iteration", "kl"]),
                       pd.DataFrame(drift_rows, columns=["iteration", "level", "drift"]),
                       pd.DataFrame(params_rows, columns=["stage", "level", "params"]), kl, pruned)
