"""Sleep: consolidation from a fast CMS level into a slow one (REFERENCE.md §6).

    report = sleep(run, SleepConfig(), prompt_tokens=tags)   # run: anything with the attributes below
    report.dreams            # LongTensor[n, L]: the dreamed sequences (decode with the stream's vocab)
    report.distill           # DataFrame: iteration, kl
    report.params            # DataFrame: stage (before / grown / after_prune), level, params

A sleep phase sees no task data. It touches only `run.model`, `run.recorder`, `run.step_count`,
`run.tokens_seen`, `run.initial_state`, `run.train(phase, n)` and `run.rebuild_optimizers()`, plus
the token ids it is given explicitly (`prompt_tokens`, `exclude_tokens`; the vocabulary size is the
model's). This module holds the science of each stage; the distillation steps run in the engine's
one loop (`lab.engine.Run.train` with the `Phase` that `distill_phase` builds: dreamed batches, the
KL to the teacher as the loss, Adam on the slow level). The surgery on a level (grow, keep units,
resize, reset) is `lab.models.cms.CMSLevel`'s. Five stages, each of which can be turned off:

1. Dream: sample `dream_samples` sequences of `dream_len` tokens from the model itself, starting
   from `prompt_tokens` (prompts="tags", e.g. the language tags) or from uniformly random tokens
   (prompts="random"); each next token is drawn from softmax(logits / temperature), or, with
   probability `explore`, uniformly (exploration noise). The full model's output distributions
   on the dreams are the teacher's targets.
2. Grow: `grow_units` hidden units are appended to the slow level of every block: new rows of
   `up` ~ N(0, 0.02²) with zero bias, new columns of `down` exactly zero, so the model's
   function is unchanged at that moment.
3. Distill: the fast level is set to its reference state (`run.initial_state`), and the slow
   level (all of it, or only its new units: `distill_params`) is trained with Adam for
   `distill_steps` steps on mini-batches of the dreams so that this student matches the
   teacher: KL(teacher ‖ student), averaged over every position of every dream.
4. Reset: the fast level stays at its reference state (with reset off, the fast level gets its
   pre-sleep parameters back after distillation).
5. Prune: the slow level of every block is cut back to `prune_budget` hidden units (0 = its size
   before growing) by importance, least important first. Importance of unit i, stated:
   "weight": ‖down[:, i]‖₂ · ‖up[i, :]‖₂;  "activation": ‖down[:, i]‖₂ · mean |GELU(up_i · LN(x) + b_i)|
   over the dreams (what the unit actually adds to the residual stream). Optionally
   `repair_steps` more distillation steps follow on the pruned level (same student, same loss).

Choices the papers leave open, made here: the fast and slow levels are CMS levels (every block's
level `fast_level` and `slow_level`), the rest of the model is frozen during sleep; the KL is
taken at temperature 1 over all positions (the model has no notion of which are scored); a
sleep ends with `run.rebuild_optimizers()` (fresh optimizer state, accumulated gradients
dropped), also when no shape changed.

Records (phase "sleep", task "", all at the step and tokens of the moment of sleep, in this
order): "params" (level = slow level, and -1 = whole model) before, after growing and after
pruning (three rows each, in that order); "distill_kl" once per distillation step ("repair_kl"
per repair step); "drift" of the fast and slow level (‖θ − θ_pre-sleep‖ / ‖θ_pre-sleep‖ over the
units the level had before the sleep) every `record_every` steps and after distillation;
KL(teacher ‖ model) on all dreams as "kl_reset" (fast level reset, before distillation),
"kl_distilled", "kl_pruned", "kl_repaired". The SleepReport holds the same as DataFrames.
"""
from __future__ import annotations

from lab.sleep.config import STAGES, SleepConfig, SleepError, SleepReport
from lab.sleep.experiment import ALL_ARMS, ARMS, WHEN, SleepExperiment, sleep_and_map, sleep_experiment
from lab.sleep.phase import sleep
from lab.sleep.stages import (distill_phase, dream, kl_to_teacher, level_params, mean_kl, sleep_levels,
                              teacher_log_probs, training_only, unit_importance)

__all__ = ["STAGES", "SleepConfig", "SleepError", "SleepReport", "sleep", "sleep_levels", "dream",
           "teacher_log_probs", "kl_to_teacher", "mean_kl", "unit_importance", "distill_phase", "training_only",
           "level_params", "sleep_and_map", "sleep_experiment", "SleepExperiment", "ARMS", "ALL_ARMS", "WHEN"]
