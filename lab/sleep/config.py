"""What a sleep phase is told (SleepConfig), what it reports (SleepReport), and its error."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

from lab.config import Config, bounded, choice, flag

STAGES = ("dream", "grow", "distill", "reset", "prune")


class SleepError(ValueError):
    """The model cannot sleep as configured (e.g. it has a single CMS level)."""


@dataclass(frozen=True)
class SleepConfig(Config):
    dream: bool = flag(True, "stage 1: dream sequences from the model itself")
    grow: bool = flag(True, "stage 2: add hidden units to the slow level (zero contribution)")
    distill: bool = flag(True, "stage 3: train the slow level to match the teacher with the fast level reset")
    reset: bool = flag(True, "stage 4: leave the fast level at its reference state")
    prune: bool = flag(True, "stage 5: prune the slow level back to the budget")
    dream_samples: int = bounded(256, 1, 65536, "dreamed sequences")
    dream_len: int = bounded(10, 2, 8192, "tokens per dreamed sequence (prompt included)")
    temperature: float = bounded(1.0, 0.05, 10.0, "sampling temperature of the dreams")
    prompts: str = choice("random", ("random", "tags"), "how a dream starts: a given prompt token "
                                                      "(e.g. a language tag) or a uniformly random token")
    explore: float = bounded(0.5, 0.0, 1.0, "share of dreamed tokens drawn uniformly instead of from the model")
    distill_steps: int = bounded(200, 0, 100_000, "distillation steps")
    distill_lr: float = bounded(1e-3, 1e-6, 1.0, "Adam learning rate of the distillation")
    distill_batch: int = bounded(32, 1, 4096, "dreams per distillation step")
    distill_params: str = choice("slow", ("slow", "new"), "train the whole slow level, or only its new units")
    grow_units: int = bounded(32, 1, 16384, "hidden units added to the slow level of each block")
    prune_budget: int = bounded(0, 0, 16384, "hidden units of the slow level after pruning "
                                             "(0 = its size before growing)")
    importance: str = choice("weight", ("weight", "activation"), "pruning importance of a hidden unit")
    repair_steps: int = bounded(50, 0, 100_000, "distillation steps after pruning (0 = none)")
    fast_level: int = bounded(0, 0, 5, "the CMS level that is consolidated and reset")
    slow_level: int = bounded(-1, -1, 5, "the CMS level that receives the knowledge (-1 = the last)")
    knowledge_mode: str = choice("reset", ("reset", "bypass"), "how the knowledge map removes a level")
    record_every: int = bounded(20, 1, 100_000, "record per-level drift every K distillation steps")
    seed: int = bounded(0, 0, 2**31 - 1, "seed of the dreams, the new units and the mini-batches")

    def check(self):
        if self.distill and not self.dream:
            self.fail("distill", "distillation needs dreams: turn dream on or distill off")
        if self.prune and self.importance == "activation" and not self.dream:
            self.fail("importance", "'activation' importance is measured on dreams: turn dream on or use 'weight'")
        if self.distill and self.distill_params == "new" and not self.grow:
            self.fail("distill_params", "'new' trains the units grown in this sleep: turn grow on or use 'slow'")


@dataclass
class SleepReport:
    config: SleepConfig
    step: int
    tokens: int
    fast_level: int
    slow_level: int
    dreams: torch.Tensor | None                 # LongTensor[n, dream_len] on the CPU, or None
    distill: pd.DataFrame                       # iteration, kl
    drift: pd.DataFrame                         # iteration, level, drift
    params: pd.DataFrame                        # stage, level (-1 = whole model), params
    kl: dict = field(default_factory=dict)      # reset / distilled / pruned → KL(teacher ‖ model) on dreams
    pruned_units: int = 0                       # hidden units removed per block

    def param_counts(self) -> dict[str, int]:
        """Whole-model parameter counts: before, grown, after_prune."""
        whole = self.params[self.params.level == -1]
        return {row.stage: int(row.params) for row in whole.itertuples()}
