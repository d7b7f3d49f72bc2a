"""One example's attributions: to every input token, every CMS level and branch, and the residual
stream of every block (the package docstring says what each number means and why).

    result = attribute_example(model, inputs, targets, decode=stream.decode)   # inputs, targets: (T,)
    result.frame                     # part, group, block, component, level, position, token, attribution
    result.summary                   # F(input), F(baseline), each part's convergence delta, the methods

Hook points are found by their module path *now* (`model.named_modules()`), not by the name a hook
point was given when the model was built, so a level moved to another slot is read where it is.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pandas as pd
import torch
from captum.attr import IntegratedGradients, LayerIntegratedGradients
from torch import nn

from lab.hooks import HookPoint
from lab.memory.compiled import eager
from lab.tasks.vocab import IGNORE, PAD

BASELINES = ("pad", "zero", "mean")
DEFAULT_BASELINE = "pad"
TARGETS = ("logprob", "logit")
N_STEPS = 32                       # Gauss–Legendre points for one example (see the package docstring)
MAP_N_STEPS = 16                   # … for the maps, which integrate CMS levels only
RULE = "gausslegendre"
EMBED = "tok_emb"                  # the token embedding (positions are added after it and never attributed)
FRAME_COLUMNS = ["part", "group", "block", "component", "level", "position", "token", "attribution"]
METHODS = {
    "token": "captum IntegratedGradients on the token embeddings (the position embeddings stay as they are)",
    "component": "captum IntegratedGradients on the hook point's output, from zero (the component adds nothing) "
                 "to its value: LayerIntegratedGradients with a zero layer baseline; one path per component, "
                 "everything downstream recomputed",
    "residual": "captum LayerIntegratedGradients on blocks.N.hook_resid, baseline = the stream on the baseline input",
}

LEVEL_RE = re.compile(r"^blocks\.(\d+)\.cms\.levels\.(\d+)\.hook_out$")
BRANCH_RES = ((re.compile(r"^blocks\.(\d+)\.attn\.hook_out$"), "attention"),      # Transformer
              (re.compile(r"^blocks\.(\d+)\.hook_attn$"), "attention"),           # Titans
              (re.compile(r"^blocks\.(\d+)\.hook_mem$"), "memory"),               # Titans
              (re.compile(r"^blocks\.(\d+)\.titans\.hook_out$"), "memory"))       # HOPE's self-modifying Titans
RESID_RE = re.compile(r"^blocks\.(\d+)\.hook_resid$")


class AttributionError(ValueError):
    """A request that cannot be answered (no scored position, an unknown baseline …)."""


@dataclass(frozen=True)
class Group:
    """Hook points whose outputs go from zero to their value together: one component of one block
    (`blocks.0.cms.levels.2.hook_out`), or a CMS level in every block (what a lesion removes)."""

    name: str                       # "block 0 · level 2", "level 2", "block 1 · memory"
    paths: tuple[str, ...]
    component: str                  # "level", "attention" or "memory"
    level: int = -1                 # the CMS level, or -1
    block: int = -1                 # the block, or -1 for a level in every block


def _points(model: nn.Module) -> list[str]:
    return [path for path, module in model.named_modules() if isinstance(module, HookPoint)]


def component_groups(model: nn.Module, per_block: bool = True, levels_everywhere: bool = True) -> list[Group]:
    """Every block's CMS levels and branches (one group each, `per_block`), then each level in every
    block at once (`levels_everywhere`)."""
    groups, by_level = [], {}
    for path in _points(model):
        if match := LEVEL_RE.match(path):
            block, level = int(match[1]), int(match[2])
            by_level.setdefault(level, []).append(path)
            if per_block:
                groups.append(Group(f"block {block} · level {level}", (path,), "level", level, block))
            continue
        for pattern, kind in BRANCH_RES:
            if (match := pattern.match(path)) and per_block:
                groups.append(Group(f"block {int(match[1])} · {kind}", (path,), kind, -1, int(match[1])))
    groups.sort(key=lambda g: (g.block, g.component == "level", g.level, g.component))   # computation order
    if levels_everywhere:
        groups += [Group(f"level {level}", tuple(paths), "level", level) for level, paths in sorted(by_level.items())]
    return groups


def residual_points(model: nn.Module) -> list[tuple[int, str]]:
    return sorted((int(m[1]), path) for path in _points(model) if (m := RESID_RE.match(path)))


@contextmanager
def patched(model: nn.Module, replace: dict[str, Callable[[torch.Tensor], torch.Tensor]]):
    """Inside the block, the output of each module path goes through its function first."""
    handles = [model.get_submodule(path).register_forward_hook(lambda _m, _i, out, fn=fn: fn(out))
               for path, fn in replace.items()]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def objective(logits: torch.Tensor, weights: torch.Tensor, answers: torch.Tensor, target: str) -> torch.Tensor:
    """F per row: Σ_t weights[t] · score of the answer token at t, score = log-softmax or logit."""
    scores = logits.log_softmax(-1) if target == "logprob" else logits
    picked = scores.gather(-1, answers.clamp_min(0).unsqueeze(-1)).squeeze(-1)          # (N, T)
    return (picked * weights).sum(-1)


def baseline_embeddings(model: nn.Module, tokens: torch.Tensor, baseline: str) -> torch.Tensor:
    """The token embeddings of the baseline input (B, T, D): every token a padding token ("pad"),
    the zero vector ("zero") or the mean of the vocabulary's embeddings ("mean")."""
    if baseline not in BASELINES:
        raise AttributionError(f"baseline = {baseline!r}: use one of {', '.join(BASELINES)}")
    embed = model.get_submodule(EMBED)
    with torch.no_grad():
        if baseline == "pad":
            return embed(torch.full_like(tokens, PAD)).detach()
        if baseline == "zero":
            return torch.zeros(*tokens.shape, embed.weight.shape[1], device=tokens.device, dtype=embed.weight.dtype)
        return embed.weight.mean(0).expand(*tokens.shape, -1).clone()


def check_target(target: str) -> None:
    if target not in TARGETS:
        raise AttributionError(f"target = {target!r}: use one of {', '.join(TARGETS)}")


def check_request(baseline: str = DEFAULT_BASELINE, target: str = "logprob", n_steps: int = N_STEPS) -> None:
    """Refuse an unknown baseline or target and a number of integration points outside 2…512 (one
    point cannot integrate; past 512 a request only costs time), naming the value and the range."""
    if baseline not in BASELINES:
        raise AttributionError(f"baseline = {baseline!r}: use one of {', '.join(BASELINES)}")
    check_target(target)
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or not 2 <= n_steps <= 512:
        raise AttributionError(f"n_steps = {n_steps!r}: use a whole number of integration points in 2…512")


def check_position(targets: torch.Tensor, position: int | None) -> int:
    """The scored position to attribute (default: the first), or an error that lists the scored ones."""
    scored = scored_positions(targets)
    if not scored:
        raise AttributionError("this example has no scored position: nothing to attribute")
    if position is None:
        return scored[0]
    if isinstance(position, bool) or int(position) != position or int(position) not in scored:
        raise AttributionError(f"position = {position}: choose a scored position ({', '.join(map(str, scored))})")
    return int(position)


def embedding_forward(model: nn.Module, target: str):
    """F(token embeddings, tokens, weights, answers): the model with its token embeddings replaced."""
    def forward(embeds, tokens, weights, answers):
        with patched(model, {EMBED: lambda _out: embeds}):
            return objective(model(tokens), weights, answers, target)
    return forward


def group_forward(model: nn.Module, groups: Sequence[Group], target: str):
    """F(values, which, tokens, weights, answers): row r replaces the outputs of group which[r]'s
    hook points by values[r, slot] (slot = the hook's place in its group); other rows run as they are.
    values: (R, G, T, D). Every row is one path of integrated gradients."""
    slots: dict[str, list[tuple[int, int]]] = {}
    for index, group in enumerate(groups):
        for slot, path in enumerate(group.paths):
            slots.setdefault(path, []).append((index, slot))

    def forward(values, which, tokens, weights, answers):
        def replace(out, uses):
            for index, slot in uses:
                out = torch.where((which == index)[:, None, None], values[:, slot], out)
            return out
        with patched(model, {path: (lambda out, uses=uses: replace(out, uses)) for path, uses in slots.items()}):
            return objective(model(tokens), weights, answers, target)
    return forward


@contextmanager
def evaluating(model: nn.Module):
    """The model in eval mode, and the memories' chunk bodies eager (lab.memory.compiled): integrated
    gradients record autograd at batch shapes no training step has, and each new shape would compile."""
    was = model.training
    model.eval()
    try:
        with eager():
            yield model
    finally:
        model.train(was)


def group_attributions(model: nn.Module, groups: Sequence[Group], tokens: torch.Tensor, weights: torch.Tensor,
                       answers: torch.Tensor, target: str = "logprob", n_steps: int = N_STEPS,
                       internal_batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integrated gradients of every group on every row of `tokens` (B, T): each group's hook outputs
    from zero to their values, one path per (row, group). Returns (attributions (B, K, G, T, D)
    summed over nothing yet, deltas (B, K), F with the group off (B, K))."""
    B, K = tokens.shape[0], len(groups)
    G = max(len(g.paths) for g in groups)
    points = sorted({p for g in groups for p in g.paths})
    with torch.no_grad(), _capturing(model, points) as cache:
        model(tokens)
    D = next(iter(cache.values())).shape[-1]
    values = tokens.new_zeros((B, K, G, tokens.shape[1], D), dtype=torch.float32)
    for k, group in enumerate(groups):
        for slot, path in enumerate(group.paths):
            values[:, k, slot] = cache[path].float()
    rows = lambda t: t.repeat_interleave(K, 0)                                  # (B·K, …): row b·K + k
    which = torch.arange(K, device=tokens.device).repeat(B)
    args = (which, rows(tokens), rows(weights), rows(answers))
    forward = group_forward(model, groups, target)
    flat = values.reshape(B * K, G, *values.shape[3:])
    zero = torch.zeros_like(flat)
    attr, delta = IntegratedGradients(forward).attribute(
        flat, baselines=zero, additional_forward_args=args, n_steps=n_steps, method=RULE,
        internal_batch_size=internal_batch_size, return_convergence_delta=True)
    with torch.no_grad():
        off = forward(zero, *args)
    return attr.reshape(values.shape), delta.reshape(B, K), off.reshape(B, K)


@contextmanager
def _capturing(model: nn.Module, paths: Sequence[str]):
    cache: dict[str, torch.Tensor] = {}

    def keep(path):
        def fn(out):
            cache[path] = out.detach()
            return out
        return fn
    with patched(model, {p: keep(p) for p in paths}):
        yield cache


@dataclass
class ExampleAttribution:
    """One example's attributions (`frame`, tidy rows) and what they decompose (`summary`)."""

    frame: pd.DataFrame
    summary: dict = field(default_factory=dict)

    def totals(self, part: str = "component") -> pd.DataFrame:
        """Each group's attribution summed over positions (part "component" or "residual")."""
        rows = self.frame[self.frame.part == part]
        return rows.groupby(["group", "block", "component", "level"], sort=False, as_index=False)["attribution"].sum()

    def to_dict(self) -> dict:
        f = self.frame
        tokens = f[f.part == "token"]
        comp = self.totals("component")
        resid = f[f.part == "residual"]
        return {**self.summary,
                "tokens": [{"position": int(r.position), "token": r.token, "attribution": float(r.attribution)}
                           for r in tokens.itertuples()],
                "components": [{"group": r.group, "block": int(r.block), "component": r.component,
                                "level": int(r.level), "attribution": float(r.attribution)} for r in comp.itertuples()],
                "levels": {str(int(r.level)): float(r.attribution) for r in comp.itertuples()
                           if r.block == -1 and r.component == "level"},
                "residual": [{"block": int(r.block), "position": int(r.position), "token": r.token,
                              "attribution": float(r.attribution)} for r in resid.itertuples()]}


def _words(decode, tokens: torch.Tensor) -> list[str]:
    out = []
    for t in tokens.tolist():
        try:
            out.append(decode([int(t)], skip_pad=False))
        except TypeError:
            out.append(decode([int(t)]))
    return out


def scored_positions(targets: torch.Tensor) -> list[int]:
    return [int(i) for i in (targets.reshape(-1) != IGNORE).nonzero().flatten()]


def attribute_example(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, position: int | None = None,
                      baseline: str = DEFAULT_BASELINE, n_steps: int = N_STEPS, target: str = "logprob",
                      decode: Callable = str, parts: Sequence[str] = ("token", "component", "residual"),
                      ) -> ExampleAttribution:
    """Attributions of one held-out example (`inputs`, `targets`: (T,) or (1, T)) for the answer at
    `position` (a scored position; default: the first): F = log p(answer) (or its logit)."""
    check_request(baseline, target, n_steps)
    unknown = set(parts) - set(METHODS)
    if unknown or not parts:
        raise AttributionError(f"parts = {tuple(parts)!r}: use some of {', '.join(METHODS)}")
    device = next(model.parameters()).device
    tokens = inputs.reshape(1, -1).to(device)
    targets = targets.reshape(1, -1).to(device)
    if tokens.shape != targets.shape:
        raise AttributionError(f"inputs {tuple(tokens.shape)} and targets {tuple(targets.shape)} differ in length")
    position = check_position(targets, position)
    weights = torch.zeros_like(tokens, dtype=torch.float32)
    weights[0, position] = 1.0
    answers = targets.clamp_min(0)
    words = _words(decode, tokens[0])
    args = (tokens, weights, answers)
    rows, summary = [], {"position": position, "answer": _words(decode, targets[0, position:position + 1])[0],
                         "tokens_text": words, "baseline": baseline, "target": target, "n_steps": n_steps,
                         "rule": RULE, "methods": {p: METHODS[p] for p in parts}, "delta": {}}
    with evaluating(model):
        embeds = model.get_submodule(EMBED)(tokens).detach()
        base = baseline_embeddings(model, tokens, baseline)
        forward = embedding_forward(model, target)
        with torch.no_grad():
            summary["value"] = float(forward(embeds, *args)[0])
            summary["baseline_value"] = float(forward(base, *args)[0])
        if "token" in parts:
            attr, delta = IntegratedGradients(forward).attribute(
                embeds, baselines=base, additional_forward_args=args, n_steps=n_steps, method=RULE,
                return_convergence_delta=True)
            summary["delta"]["token"] = float(delta[0])
            rows += [("token", "tokens", -1, "token", -1, t, words[t], float(a)) for t, a in enumerate(attr[0].sum(-1))]
        if "component" in parts:
            groups = component_groups(model)
            attr, delta, off = group_attributions(model, groups, tokens, weights, answers, target, n_steps)
            per_position = attr[0].sum(dim=(1, 3))                                   # (K, T)
            summary["delta"]["component"] = {g.name: float(d) for g, d in zip(groups, delta[0])}
            summary["value_without"] = {g.name: float(v) for g, v in zip(groups, off[0])}
            for g, values in zip(groups, per_position):
                rows += [("component", g.name, g.block, g.component, g.level, t, words[t], float(a))
                         for t, a in enumerate(values)]
        if "residual" in parts:
            summary["delta"]["residual"] = {}
            for block, path in residual_points(model):
                lig = LayerIntegratedGradients(forward, model.get_submodule(path))
                attr, delta = lig.attribute(embeds, baselines=base, additional_forward_args=args, n_steps=n_steps,
                                            method=RULE, return_convergence_delta=True)
                summary["delta"]["residual"][block] = float(delta[0])
                rows += [("residual", f"block {block}", block, "residual", -1, t, words[t], float(a))
                         for t, a in enumerate(attr[0].sum(-1))]
    return ExampleAttribution(pd.DataFrame(rows, columns=FRAME_COLUMNS), summary)
