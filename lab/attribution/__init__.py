"""Which level answered? Attributions with captum, beside the lesion knowledge map (issue 14).

The knowledge map (lab.knowledge) asks where a task lives by removing a level and measuring the
accuracy lost. Attribution asks, for one answer, how much of the prediction flows through each CMS
level, each branch (attention, memory), the residual stream of each block, and each input token.

    result = attribute_example(model, inputs, targets, baseline="pad", decode=stream.decode)
    result.frame          # part (token | component | residual), group, block, component, level, position, token, attribution
    result.summary        # F(input), F(baseline), the convergence deltas, the methods
    comparison = compare_run(run)          # attribution map and lesion map on run.eval_sets, and their agreement

What is attributed: F = log p(answer) at one scored position of a held-out example (`target="logit"`:
the answer's logit instead). The log-probability is what training raises and what accuracy thresholds;
it is comparable across examples, which a logit is not (the tied head can shift every logit alike).
Integration uses captum's Gauss–Legendre rule (the papers leave all of this open). One example uses
N_STEPS = 32 points: on the default HOPE (preset "small", trained on the default stream, seed 0) 16
points left a convergence delta of up to 7 % of the difference for the self-modifying memory branch
(its path from zero is the most curved), 32 points at most 0.2 %; the tests check < 1 % on all three
families. The maps and the trajectory integrate CMS levels only, whose paths are nearly straight:
MAP_N_STEPS = 16 points give deltas near 1e-6 there, at half the cost.

Three parts, each exact up to captum's convergence delta (completeness):

* tokens: `IntegratedGradients` on the token embeddings, position embeddings left as they are.
  Σ_tokens = F(input) − F(baseline input).
* residual stream, per block: `LayerIntegratedGradients` on `blocks.N.hook_resid`, with the stream
  computed on the baseline input as the layer's baseline. Everything after block N reads only that
  stream, so every block's row sums to the same F(input) − F(baseline) as the tokens: one
  conserved quantity, shown position by position as it moves from the tokens to the answer.
* components: each CMS level's output (`blocks.N.cms.levels.L.hook_out`) and each branch's
  (Transformer `attn.hook_out`; Titans `hook_attn`, `hook_mem`; HOPE `titans.hook_out`), one at a
  time, and each level in every block at once (the unit a lesion removes): integrated gradients
  of F as that output goes from zero (the component adds nothing) to its value, with everything
  downstream recomputed, so a level's effect through later blocks counts. Σ = F(model) −
  F(model with that component adding nothing). This is LayerIntegratedGradients with a zero layer
  baseline; captum's class takes its baseline in input space only, so it runs as captum's
  `IntegratedGradients` on the hook point's activation (`group_forward`). One batch holds every
  component's path. The zero baseline is the "bypass" lesion; a level's reset state (init std
  0.02, zero biases) adds almost nothing too. A level whose output is zero gets exactly zero.

Baselines for the tokens (`BASELINES`, a visible choice in the app and the CLI):

* "pad" (the default): every token replaced by the padding token. It is an input the model can
  actually read, so F(baseline) is the model's answer when it has read nothing, and the
  embedding's scale is one LayerNorm has seen.
* "zero": the zero vector; the first LayerNorm then scales the position embeddings alone up to
  unit size: an input unlike any the model was trained on.
* "mean": the mean embedding of the vocabulary; it contains a share of the answer token itself
  (78 tokens by default), so part of the answer is already in the baseline.

The attribution map (`attribution_map`, level × task) averages, over a task's held-out set, each
level's attribution (in every block) to the mean log p of the example's scored answers: the
log-probability that level carries. By completeness each cell equals the bypass lesion's effect on
log p, split by IG across blocks and positions; the lesion map measures accuracy after a *reset*
instead. `compare_maps` / `compare_run` compute both on the same held-out sets (`run.eval_sets`, the
accuracy matrix's) and their Spearman rank correlation over the levels × tasks cells.

Titans and HOPE run gradient steps of their memories inside the forward pass; those steps are
closed-form, differentiable tensor code (lab.memory.fast_weights), so integrated gradients go
through them with no special case. In Titans MAC the hook points `hook_attn` and `hook_mem` are
called after the segment loop, so their attributions are the branches' direct path into the block's
output, not their effect on the memory's writes. Nothing else breaks.
"""
from __future__ import annotations

from lab.attribution.core import (BASELINES, DEFAULT_BASELINE, MAP_N_STEPS, METHODS, N_STEPS, RULE, TARGETS,
                                  AttributionError, ExampleAttribution, Group, attribute_example, check_position,
                                  check_request, component_groups, group_attributions, residual_points,
                                  scored_positions)
from lab.attribution.maps import (MapComparison, SleepAttributions, attribution_map, checkpoints, compare_maps,
                                  compare_run, level_trajectory, rank_agreement)

__all__ = ["BASELINES", "DEFAULT_BASELINE", "MAP_N_STEPS", "METHODS", "N_STEPS", "RULE", "TARGETS",
           "AttributionError", "ExampleAttribution", "Group", "attribute_example", "check_position", "check_request",
           "component_groups", "group_attributions", "residual_points", "scored_positions", "MapComparison",
           "SleepAttributions", "attribution_map", "checkpoints", "compare_maps", "compare_run", "level_trajectory",
           "rank_agreement"]
