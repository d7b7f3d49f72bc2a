"""Sleep: consolidation from a fast CMS level into a slow one (REFERENCE.md §6).

    report = sleep(run, SleepConfig(), prompt_tokens=tags)   # run: anything with the attributes below
    report.dreams            # LongTensor[n, L]: the dreamed sequences (decode with the stream's vocab)
    report.distill           # DataFrame: iteration, kl
    report.params            # DataFrame: stage (before / grown / after_prune), level, params

A sleep phase sees no task data. It touches only `run.model`, `run.recorder`, `run.step_count`,
`run.tokens_seen`, `run.initial_state` and `run.rebuild_optimizers()`, plus the token ids it is
given explicitly (`prompt_tokens`, `exclude_tokens`; the vocabulary size is the model's).
Five stages, each of which can be turned off:

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

import copy
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from lab.config import Config, bounded, choice, flag
from lab.models.cms import CMSLevel, ContinuumMemory
from lab.tasks.vocab import PAD

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


# --- the levels of a model -----------------------------------------------------------------------

def cms_blocks(model: nn.Module) -> list[tuple[str, ContinuumMemory]]:
    """(module path, ContinuumMemory) of every block, in order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, ContinuumMemory)]


def resolve_levels(model: nn.Module, config: SleepConfig) -> tuple[int, int]:
    """(fast, slow) level indices, or a SleepError that says why this model cannot sleep."""
    blocks = cms_blocks(model)
    n = min((len(cms.levels) for _, cms in blocks), default=0)
    family = getattr(model, "family", type(model).__name__)
    if n < 2:
        raise SleepError(f"sleep moves knowledge from a fast CMS level into a slower one, but this {family} model "
                         f"has {n} CMS level{'s' if n != 1 else ''}: use HOPE (3 levels) or a model with at least 2 "
                         "(RunConfig.cms_chunk_tokens)")
    slow = n - 1 if config.slow_level == -1 else config.slow_level
    fast = config.fast_level
    for name, value in (("fast_level", fast), ("slow_level", slow)):
        if value >= n:
            raise SleepError(f"SleepConfig.{name} = {value}: this model has CMS levels 0..{n - 1}")
    if fast == slow:
        raise SleepError(f"SleepConfig.fast_level and slow_level are both {fast}: they must differ")
    return fast, slow


def level_params(model: nn.Module, level: int) -> int:
    return sum(p.numel() for _, cms in cms_blocks(model) for p in cms.levels[level].parameters())


def hidden_size(level: CMSLevel) -> int:
    return level.up.out_features


def _set_config_hidden(model: nn.Module) -> None:
    """Keep `model.config.cms_hidden` equal to the actual widths (all blocks share them)."""
    blocks = cms_blocks(model)
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "cms_hidden") or not blocks:
        return
    widths = tuple(hidden_size(level) for level in blocks[0][1].levels)
    if widths != tuple(config.cms_hidden):
        model.config = config.replace(cms_hidden=widths)


def _linear(in_features: int, out_features: int, like: nn.Linear) -> nn.Linear:
    return nn.Linear(in_features, out_features, bias=like.bias is not None,
                     device=like.weight.device, dtype=like.weight.dtype)


@torch.no_grad()
def grow_level(level: CMSLevel, units: int, generator: torch.Generator | None = None, std: float = 0.02) -> None:
    """Append `units` hidden units: new up rows ~ N(0, std²), new up biases 0, new down columns 0."""
    h, d = level.up.out_features, level.up.in_features
    up, down = _linear(d, h + units, level.up), _linear(h + units, d, level.down)
    new_rows = torch.randn(units, d, generator=generator) * std
    up.weight.copy_(torch.cat([level.up.weight, new_rows.to(level.up.weight)]))
    up.bias.copy_(torch.cat([level.up.bias, level.up.bias.new_zeros(units)]))
    down.weight.copy_(torch.cat([level.down.weight, level.down.weight.new_zeros(d, units)], dim=1))
    down.bias.copy_(level.down.bias)
    level.up, level.down = up, down


@torch.no_grad()
def keep_units(level: CMSLevel, keep: torch.Tensor) -> None:
    """Keep only the hidden units `keep` (indices, in the order given)."""
    keep = keep.to(level.up.weight.device)
    d = level.up.in_features
    up, down = _linear(d, len(keep), level.up), _linear(len(keep), d, level.down)
    up.weight.copy_(level.up.weight[keep])
    up.bias.copy_(level.up.bias[keep])
    down.weight.copy_(level.down.weight[:, keep])
    down.bias.copy_(level.down.bias)
    level.up, level.down = up, down


def resize_level(level: CMSLevel, hidden: int) -> None:
    """Give a level `hidden` units (contents are to be overwritten, e.g. by load_state_dict)."""
    if hidden_size(level) == hidden:
        return
    d = level.up.in_features
    level.up, level.down = _linear(d, hidden, level.up), _linear(hidden, d, level.down)


def match_shapes(model: nn.Module, state: dict) -> bool:
    """Resize every CMS level of `model` to the widths in `state` (a state_dict), so that
    `model.load_state_dict(state)` works after a sleep changed them. True if anything changed."""
    changed = False
    for prefix, cms in cms_blocks(model):
        for index, level in enumerate(cms.levels):
            key = f"{prefix}.levels.{index}.up.weight"
            if key in state and state[key].shape[0] != hidden_size(level):
                resize_level(level, state[key].shape[0])
                changed = True
    if changed:
        _set_config_hidden(model)
    return changed


def reference_level(level: CMSLevel, prefix: str, reference_state: dict) -> CMSLevel:
    """A new CMSLevel holding the reference parameters stored under `prefix` (any width)."""
    hidden = reference_state[f"{prefix}.up.weight"].shape[0]
    d = level.up.in_features
    fresh = CMSLevel(d, hidden).to(device=level.up.weight.device, dtype=level.up.weight.dtype)
    fresh.load_state_dict({k[len(prefix) + 1:]: v for k, v in reference_state.items() if k.startswith(prefix + ".")})
    return fresh


@torch.no_grad()
def reset_level(model: nn.Module, level: int, reference_state: dict) -> None:
    """Set CMS level `level` of every block to its reference state (resizing it if needed)."""
    for prefix, cms in cms_blocks(model):
        path = f"{prefix}.levels.{level}"
        current = cms.levels[level]
        if reference_state[f"{path}.up.weight"].shape[0] != hidden_size(current):
            resize_level(current, reference_state[f"{path}.up.weight"].shape[0])
        for name, p in current.named_parameters():
            p.copy_(reference_state[f"{path}.{name}"])
    _set_config_hidden(model)


# --- the stages ----------------------------------------------------------------------------------

@torch.no_grad()
def dream(model: nn.Module, config: SleepConfig, prompt_tokens=(), exclude_tokens=(PAD,),
          generator: torch.Generator | None = None) -> torch.Tensor:
    """`dream_samples` sequences sampled from the model: LongTensor[n, dream_len] on the CPU.

    Position 0 is a prompt token (cycled through `prompt_tokens`) or a uniformly random allowed
    token; every later token is sampled from the model's next-token distribution at the given
    temperature, or with probability `explore` drawn uniformly. Tokens in `exclude_tokens`
    are never produced (except as given prompts)."""
    vocab_size = model.config.vocab_size
    device = next(model.parameters()).device
    g = generator or torch.Generator().manual_seed(config.seed)
    allowed = torch.ones(vocab_size, dtype=torch.bool)
    allowed[[int(t) for t in exclude_tokens]] = False
    pool = allowed.nonzero().flatten()
    n, length = config.dream_samples, min(config.dream_len, model.config.max_len)
    if config.prompts == "tags":
        if not len(prompt_tokens):
            raise SleepError("SleepConfig.prompts = 'tags' needs prompt_tokens (e.g. the language tags); "
                             "give them, or use prompts = 'random'")
        prompts = torch.as_tensor(list(prompt_tokens), dtype=torch.long)
        start = prompts[torch.arange(n) % len(prompts)]
    else:
        start = pool[torch.randint(len(pool), (n,), generator=g)]
    seqs = start.view(n, 1)
    was_training = model.training
    model.eval()
    try:
        for _ in range(length - 1):
            logits = model(seqs.to(device))[:, -1].float().cpu()
            logits[:, ~allowed] = float("-inf")
            probs = torch.softmax(logits / config.temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=g).flatten()
            uniform = pool[torch.randint(len(pool), (n,), generator=g)]
            explore = torch.rand(n, generator=g) < config.explore
            nxt = torch.where(explore, uniform, nxt)
            seqs = torch.cat([seqs, nxt.view(n, 1)], dim=1)
    finally:
        model.train(was_training)
    return seqs


@torch.no_grad()
def teacher_log_probs(model: nn.Module, dreams: torch.Tensor, batch: int = 256) -> torch.Tensor:
    device = next(model.parameters()).device
    out = [torch.log_softmax(model(dreams[i:i + batch].to(device)).float(), -1) for i in range(0, len(dreams), batch)]
    return torch.cat(out)


def kl_to_teacher(model: nn.Module, dreams: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """KL(teacher ‖ model), mean over every position of every dream (teacher: log-probs)."""
    logp = torch.log_softmax(model(dreams.to(teacher.device)).float(), -1)
    return (teacher.exp() * (teacher - logp)).sum(-1).mean()


@torch.no_grad()
def mean_kl(model, dreams, teacher, batch: int = 256) -> float:
    total = sum(float(kl_to_teacher(model, dreams[i:i + batch], teacher[i:i + batch])) * len(dreams[i:i + batch])
                for i in range(0, len(dreams), batch))
    return total / len(dreams)


@torch.no_grad()
def unit_importance(level: CMSLevel, mode: str = "weight", inputs: torch.Tensor | None = None) -> torch.Tensor:
    """Importance of each hidden unit, FloatTensor[hidden] (see the module docstring).

    `inputs` (…, d_model): the residual stream entering the level, needed for "activation"."""
    out_norm = level.down.weight.norm(dim=0)                         # ‖down[:, i]‖
    if mode == "weight":
        return out_norm * level.up.weight.norm(dim=1)                # · ‖up[i, :]‖
    if inputs is None:
        raise ValueError("'activation' importance needs the level's inputs")
    act = level.act(level.up(level.norm(inputs)))
    return out_norm * act.abs().reshape(-1, act.shape[-1]).mean(0)


def _level_inputs(model, level: int, dreams: torch.Tensor) -> dict[str, torch.Tensor]:
    """The residual stream entering CMS level `level` of every block, on the dreams."""
    cache, handles = {}, []
    for prefix, cms in cms_blocks(model):
        def keep(_module, args, prefix=prefix):
            cache[prefix] = args[0].detach()
        handles.append(cms.levels[level].register_forward_pre_hook(keep))
    try:
        with torch.no_grad():
            model(dreams.to(next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return cache


def _drift(model, level: int, before: dict[str, list[torch.Tensor]]) -> float:
    """‖θ − θ_pre‖ / ‖θ_pre‖ over the units a level had before the sleep."""
    num = den = 0.0
    for prefix, cms in cms_blocks(model):
        lv, (up_w, up_b, down_w, down_b) = cms.levels[level], before[prefix]
        h = min(up_w.shape[0], hidden_size(lv))
        now = (lv.up.weight[:h], lv.up.bias[:h], lv.down.weight[:, :h], lv.down.bias)
        for a, b in zip(now, (up_w[:h], up_b[:h], down_w[:, :h], down_b)):
            num += float(((a.detach() - b) ** 2).sum())
            den += float((b ** 2).sum())
    return (num / den) ** 0.5 if den > 0 else 0.0


def _level_snapshot(model, level: int) -> dict[str, list[torch.Tensor]]:
    out = {}
    for prefix, cms in cms_blocks(model):
        lv = cms.levels[level]
        out[prefix] = [t.detach().clone() for t in (lv.up.weight, lv.up.bias, lv.down.weight, lv.down.bias)]
    return out


# --- the sleep phase -----------------------------------------------------------------------------

def sleep(run, config: SleepConfig | None = None, *, prompt_tokens=(), exclude_tokens=(PAD,)) -> SleepReport:
    """One sleep phase on `run` (a lab.engine.Run, or anything with the attributes in the module
    docstring). Changes `run.model` in place, records rows with phase "sleep", calls
    `run.rebuild_optimizers()` at the end, and returns a SleepReport."""
    config = config or SleepConfig()
    model = run.model
    fast, slow = resolve_levels(model, config)
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
    hidden_before = hidden_size(cms_blocks(model)[0][1].levels[slow])
    before = {lv: _level_snapshot(model, lv) for lv in (fast, slow)}
    fast_before = {f"{prefix}.levels.{fast}": copy.deepcopy(cms.levels[fast].state_dict())
                   for prefix, cms in cms_blocks(model)}
    for p in model.parameters():
        p.grad = None

    dreams = teacher = None
    if config.dream:
        dreams = dream(model, config, prompt_tokens, exclude_tokens, g)
        teacher = teacher_log_probs(model, dreams)

    if config.grow:
        for _, cms in cms_blocks(model):
            grow_level(cms.levels[slow], config.grow_units, g)
        _set_config_hidden(model)
    count("grown")

    distill_rows, drift_rows, kl = [], [], {}

    def log_drift(iteration):
        for lv in (fast, slow):
            value = _drift(model, lv, before[lv])
            drift_rows.append((iteration, lv, value))
            add("drift", value, lv)

    if config.distill or config.reset:
        reset_level(model, fast, run.initial_state)
    old_units = [hidden_before if config.grow else 0] * len(cms_blocks(model))
    if config.distill:
        kl["reset"] = mean_kl(model, dreams, teacher)
        add("kl_reset", kl["reset"])
        trained = _distill_parameters(model, slow, old_units, config.distill_params)
        _train_slow(model, trained, dreams, teacher, config, config.distill_steps, g, "distill",
                    distill_rows, add, log_drift)
        kl["distilled"] = mean_kl(model, dreams, teacher)
        add("kl_distilled", kl["distilled"])
    log_drift(config.distill_steps if config.distill else 0)

    pruned = 0
    if config.prune:
        budget = config.prune_budget or hidden_before
        inputs = _level_inputs(model, slow, dreams) if config.importance == "activation" else {}
        for b, (prefix, cms) in enumerate(cms_blocks(model)):
            level = cms.levels[slow]
            if hidden_size(level) <= budget:
                continue
            score = unit_importance(level, config.importance, inputs.get(prefix))
            keep = score.topk(budget).indices.sort().values
            pruned = hidden_size(level) - budget
            old_units[b] = int((keep < old_units[b]).sum())      # kept old units stay in front
            keep_units(level, keep)
        _set_config_hidden(model)
        if config.distill:
            kl["pruned"] = mean_kl(model, dreams, teacher)
            add("kl_pruned", kl["pruned"])
            if config.repair_steps:
                trained = _distill_parameters(model, slow, old_units, config.distill_params)
                _train_slow(model, trained, dreams, teacher, config, config.repair_steps, g, "repair",
                            distill_rows, add, None)
                kl["repaired"] = mean_kl(model, dreams, teacher)
                add("kl_repaired", kl["repaired"])
    count("after_prune")

    if not config.reset:                                   # the fast level gets its pre-sleep state back
        with torch.no_grad():
            for prefix, cms in cms_blocks(model):
                cms.levels[fast].load_state_dict(fast_before[f"{prefix}.levels.{fast}"])
        drift_rows.append((config.distill_steps if config.distill else 0, fast, 0.0))
        add("drift", 0.0, fast)

    model.to(device)
    run.rebuild_optimizers()
    return SleepReport(config, step, tokens, fast, slow, dreams,
                       pd.DataFrame(distill_rows, columns=["stage", "iteration", "kl"]),
                       pd.DataFrame(drift_rows, columns=["iteration", "level", "drift"]),
                       pd.DataFrame(params_rows, columns=["stage", "level", "params"]), kl, pruned)


def _train_slow(model, trained, dreams, teacher, config, steps, g, stage, rows, add, log_drift) -> None:
    """Adam on `trained` (parameter, gradient mask) to minimise KL(teacher ‖ model) on dream mini-batches;
    every other parameter is frozen meanwhile."""
    requires = {p: p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p, _ in trained:
        p.requires_grad_(True)
    opt = torch.optim.Adam([p for p, _ in trained], lr=config.distill_lr)
    was_training = model.training
    model.train()
    try:
        for it in range(1, steps + 1):
            idx = torch.randint(len(dreams), (min(config.distill_batch, len(dreams)),), generator=g)
            loss = kl_to_teacher(model, dreams[idx], teacher[idx.to(teacher.device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for p, mask in trained:
                if mask is not None:
                    p.grad.mul_(mask)
            opt.step()
            value = float(loss.detach())
            rows.append((stage, it, value))
            add("distill_kl" if stage == "distill" else "repair_kl", value)
            if log_drift is not None and it % config.record_every == 0:
                log_drift(it)
    finally:
        model.train(was_training)
        for p, flag_ in requires.items():
            p.requires_grad_(flag_)
            p.grad = None


def _distill_parameters(model, slow: int, old_units: list[int], which: str):
    """(parameter, gradient mask or None) of the slow level of every block.

    which = "new": only the units past `old_units[block]` (rows of up, columns of down) learn;
    the down bias stays."""
    out = []
    for (_, cms), old in zip(cms_blocks(model), old_units):
        level = cms.levels[slow]
        if which == "slow":
            out += [(p, None) for p in level.parameters()]
            continue
        row = (torch.arange(hidden_size(level), device=level.up.weight.device) >= old).float()
        out += [(level.up.weight, row[:, None]), (level.up.bias, row), (level.down.weight, row[None, :])]
    return out
