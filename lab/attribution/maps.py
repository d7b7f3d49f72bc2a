"""Attributions aggregated over a task's held-out set (the attribution map, level × task), beside the
lesion knowledge map (lab.knowledge) on the very same held-out sets, and their agreement.

    comparison = compare_run(run)          # run.eval_sets: the held-out sets of the accuracy matrix
    comparison.attribution                 # level, task, attribution, delta, n
    comparison.lesion                      # level, task, full, ablated, drop   (lab.knowledge.knowledge_matrix)
    comparison.agreement                   # Spearman rank correlation over the levels × tasks cells

Per example, F is the mean over its scored positions of log p(answer) (token accuracy scores the same
positions); a level's attribution is integrated gradients of F with that level's output in every
block going from zero to its value, summed over blocks, positions and features, then averaged over
the task's held-out examples. By completeness it equals, per example, F(model) − F(model with the
level adding nothing) within captum's convergence delta: the log-probability the level carries.

`level_trajectory` follows one example's level attributions through a Playground run's recorded
checkpoints; `SleepAttributions` keeps the parameters around each sleep of a run so that the maps
before and after it can be drawn on demand.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from lab.attribution.core import (DEFAULT_BASELINE, MAP_N_STEPS, AttributionError, check_position, check_request,
                                  component_groups, evaluating, group_attributions)
from lab.knowledge import knowledge_matrix
from lab.tasks.vocab import IGNORE

MAP_COLUMNS = ["level", "task", "attribution", "delta", "n"]
INTERNAL_BATCH = 2048                 # sequences per forward pass inside captum (memory stays small)


def answer_weights(targets: torch.Tensor) -> torch.Tensor:
    """(B, T) weights: 1 / (scored positions of the row) at each scored position, else 0."""
    scored = (targets != IGNORE).float()
    return scored / scored.sum(-1, keepdim=True).clamp_min(1.0)


def attribution_map(model: nn.Module, eval_sets, task_names: Sequence[str], target: str = "logprob",
                    n_steps: int = MAP_N_STEPS, chunk: int = 64,
                    progress: Callable[[float, str], None] | None = None) -> pd.DataFrame:
    """Columns level, task, attribution (mean over the held-out examples), delta (largest
    |convergence delta| of an example), n (examples): one row per (CMS level, task)."""
    check_request(DEFAULT_BASELINE, target, n_steps)
    if len(eval_sets) != len(task_names):
        raise AttributionError(f"{len(eval_sets)} held-out sets for {len(task_names)} task names")
    groups = component_groups(model, per_block=False)
    device = next(model.parameters()).device
    rows = []
    with evaluating(model):
        for j, (name, (inputs, targets)) in enumerate(zip(task_names, eval_sets)):
            inputs, targets = inputs.to(device), targets.to(device)
            sums, worst = torch.zeros(len(groups)), 0.0
            for start in range(0, inputs.shape[0], chunk):
                x, y = inputs[start:start + chunk], targets[start:start + chunk]
                attr, delta, _ = group_attributions(model, groups, x, answer_weights(y), y.clamp_min(0), target,
                                                    n_steps, internal_batch_size=max(INTERNAL_BATCH, x.shape[0] * len(groups)))
                sums += attr.sum(dim=(2, 3, 4)).sum(0).cpu()
                worst = max(worst, float(delta.abs().max()))
            n = inputs.shape[0]
            rows += [(g.level, name, float(s) / n, worst, n) for g, s in zip(groups, sums)]
            if progress:
                progress((j + 1) / len(task_names), f"attribution map: {name}")
    return pd.DataFrame(rows, columns=MAP_COLUMNS)


def rank_agreement(attribution: pd.DataFrame, lesion: pd.DataFrame) -> float:
    """Spearman rank correlation of attribution and lesion drop over the (level, task) cells both
    maps have; NaN with fewer than three cells or when either map is constant."""
    both = attribution.merge(lesion, on=["level", "task"])
    if len(both) < 3:
        return float("nan")
    a, b = both["attribution"].rank().to_numpy(), both["drop"].rank().to_numpy()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


@dataclass
class MapComparison:
    attribution: pd.DataFrame
    lesion: pd.DataFrame
    agreement: float
    mode: str

    def to_dict(self) -> dict:
        return {"agreement_spearman": None if np.isnan(self.agreement) else self.agreement, "lesion_mode": self.mode,
                "attribution_map": self.attribution.to_dict(orient="records"),
                "lesion_map": self.lesion.to_dict(orient="records")}


def compare_maps(model: nn.Module, eval_sets, task_names: Sequence[str], reference_state: dict | None,
                 mode: str = "reset", **kwargs) -> MapComparison:
    """The attribution map and the lesion knowledge map of `model` on the same held-out sets."""
    attribution = attribution_map(model, eval_sets, task_names, **kwargs)
    lesion = knowledge_matrix(model, eval_sets, task_names, reference_state, mode)
    return MapComparison(attribution, lesion, rank_agreement(attribution, lesion), mode)


def compare_run(run, model: nn.Module | None = None, mode: str = "reset", **kwargs) -> MapComparison:
    """`compare_maps` on a Run's held-out sets (`run.eval_sets`, the accuracy matrix's) and reference
    state; `model`: another model of the run (a checkpoint of it), by default the run's own."""
    return compare_maps(model if model is not None else run.model, run.eval_sets, run.stream.task_names,
                        run.initial_state, mode, **kwargs)


def level_trajectory(history, steps: Sequence[int], inputs: torch.Tensor, targets: torch.Tensor,
                     position: int | None = None, target: str = "logprob",
                     n_steps: int = MAP_N_STEPS) -> pd.DataFrame:
    """One example's attribution to each CMS level (in every block) at recorded checkpoints of a
    Playground run (`history.model_at(step)`). Columns step, level, attribution, value (F)."""
    check_request(DEFAULT_BASELINE, target, n_steps)
    position = check_position(targets.reshape(1, -1), position)
    rows = []
    for step in steps:
        saved, model = history.model_at(step)
        device = next(model.parameters()).device
        tokens, answers = inputs.reshape(1, -1).to(device), targets.reshape(1, -1).to(device)
        weights = torch.zeros_like(tokens, dtype=torch.float32)
        weights[0, position] = 1.0
        groups = component_groups(model, per_block=False)
        with evaluating(model):
            attr, _, off = group_attributions(model, groups, tokens, weights, answers.clamp_min(0), target, n_steps)
        totals = attr[0].sum(dim=(1, 2, 3))
        rows += [(saved, g.level, float(a)) for g, a in zip(groups, totals)]
    return pd.DataFrame(rows, columns=["step", "level", "attribution"]).drop_duplicates(["step", "level"])


def checkpoints(history, until: int, count: int = 8) -> list[int]:
    """Up to `count` recorded steps ≤ `until`, evenly spread, the first and the last included."""
    steps = [s for s in history.states if s <= until] or [min(history.states)]
    if len(steps) <= count:
        return steps
    picks = np.linspace(0, len(steps) - 1, count).round().astype(int)
    return [steps[i] for i in sorted(set(picks))]


class SleepAttributions:
    """The parameters of a run just before and just after each sleep, and the attribution maps of
    both on demand (cached). It listens to the run's evaluations: a sleep (lab.sleep.sleep_and_map,
    as the Sleep session runs it) is preceded by an "active" evaluation and followed by a "sleep" one.
    Only sleeps after it was attached are known."""

    def __init__(self, run, keep: int = 6):
        self.run, self.keep = run, keep
        self.pairs: list[dict] = []          # {"step", "before": state, "after": state, "maps": {…}}
        self._last_active: dict | None = None
        run.add_callback("on_eval_end", self._evaluated)

    def _evaluated(self, run) -> None:
        rows = run.recorder.rows()
        phase = rows[-1][2] if rows else "active"
        state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
        if phase != "sleep":
            self._last_active = state
        elif self._last_active is not None:
            self.pairs.append({"step": run.step_count, "before": self._last_active, "after": state, "maps": {}})
            self.pairs = self.pairs[-self.keep:]

    def pair_at(self, step: int) -> dict | None:
        """The latest sleep seen at `step`, or None."""
        return next((p for p in reversed(self.pairs) if p["step"] == step), None)

    def model_of(self, state: dict) -> nn.Module:
        model = copy.deepcopy(self.run.model)
        model.match_shapes(state)
        model.load_state_dict(state)
        return model

    def maps(self, step: int, which: str, **kwargs) -> pd.DataFrame | None:
        """The attribution map of the model just `which` ("before" / "after") the sleep at `step`, on
        the run's held-out sets; None when that sleep was not seen."""
        pair = self.pair_at(step)
        if pair is None:
            return None
        if which not in pair["maps"]:
            pair["maps"][which] = attribution_map(self.model_of(pair[which]), self.run.eval_sets,
                                                  self.run.stream.task_names, **kwargs)
        return pair["maps"][which]
