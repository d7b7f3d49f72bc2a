"""The science of each stage of a sleep (REFERENCE.md §6): which levels, dreams, the teacher, the
distillation objective and its phase of the engine's loop, unit importance for pruning, drift.
The surgery on a level (grow, keep units, resize, reset) is `lab.models.cms.CMSLevel`'s."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from lab.phase import Phase
from lab.models.cms import CMSLevel
from lab.sleep.config import SleepConfig, SleepError
from lab.tasks.vocab import PAD


# --- the levels of a model -----------------------------------------------------------------------

def sleep_levels(model: nn.Module, config: SleepConfig) -> tuple[int, int]:
    """(fast, slow) level indices, or a SleepError that says why this model cannot sleep."""
    blocks = model.cms_blocks()
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
    return sum(p.numel() for _, cms in model.cms_blocks() for p in cms.levels[level].parameters())


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


def level_inputs(model, level: int, dreams: torch.Tensor) -> dict[str, torch.Tensor]:
    """The residual stream entering CMS level `level` of every block, on the dreams."""
    cache, handles = {}, []
    for prefix, cms in model.cms_blocks():
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


def level_drift(model, level: int, before: dict[str, list[torch.Tensor]]) -> float:
    """‖θ − θ_pre‖ / ‖θ_pre‖ over the units a level had before the sleep."""
    num = den = 0.0
    for prefix, cms in model.cms_blocks():
        lv, (up_w, up_b, down_w, down_b) = cms.levels[level], before[prefix]
        h = min(up_w.shape[0], lv.hidden_size)
        now = (lv.up.weight[:h], lv.up.bias[:h], lv.down.weight[:, :h], lv.down.bias)
        for a, b in zip(now, (up_w[:h], up_b[:h], down_w[:, :h], down_b)):
            num += float(((a.detach() - b) ** 2).sum())
            den += float((b ** 2).sum())
    return (num / den) ** 0.5 if den > 0 else 0.0


def level_snapshot(model, level: int) -> dict[str, list[torch.Tensor]]:
    out = {}
    for prefix, cms in model.cms_blocks():
        lv = cms.levels[level]
        out[prefix] = [t.detach().clone() for t in (lv.up.weight, lv.up.bias, lv.down.weight, lv.down.bias)]
    return out


@contextmanager
def training_only(model: nn.Module, trained: list):
    """Inside the block, only the parameters in `trained` ((parameter, mask) pairs) require
    gradients and the model is in training mode; everything is put back on exit."""
    requires = {p: p.requires_grad for p in model.parameters()}
    was_training = model.training
    for p in model.parameters():
        p.requires_grad_(False)
    for p, _ in trained:
        p.requires_grad_(True)
    try:
        yield
    finally:
        model.train(was_training)
        for p, flag_ in requires.items():
            p.requires_grad_(flag_)
            p.grad = None


def distill_phase(trained: list, dreams: torch.Tensor, teacher: torch.Tensor, config: SleepConfig,
                  g: torch.Generator, stage: str, rows: list, add, log_drift) -> Phase:
    """The distillation as a phase of the engine's loop: each iteration draws `distill_batch`
    dreams (with `g`), its loss is KL(teacher ‖ model) on them, Adam steps the `trained`
    parameters (gradients masked where a mask is given). Records "distill_kl" (or "repair_kl" for
    stage "repair") per iteration and, every `record_every` iterations, the levels' drift."""
    optimizer = torch.optim.Adam([p for p, _ in trained], lr=config.distill_lr)
    metric = "distill_kl" if stage == "distill" else "repair_kl"

    def batch(_iteration):
        idx = torch.randint(len(dreams), (min(config.distill_batch, len(dreams)),), generator=g)
        return dreams[idx], teacher[idx.to(teacher.device)]

    def mask_gradients():
        for p, mask in trained:
            if mask is not None:
                p.grad.mul_(mask)

    def after_update(iteration, value, _level_norms):
        rows.append((stage, iteration, value))
        add(metric, value)
        if log_drift is not None and iteration % config.record_every == 0:
            log_drift(iteration)

    return Phase("sleep", batch, lambda model, b: kl_to_teacher(model, *b), lambda _it: [(stage, optimizer)],
                 before_update=mask_gradients, after_update=after_update)


def train_slow(run, trained, dreams, teacher, config, steps, g, stage, rows, add, log_drift) -> None:
    """`steps` iterations of the distillation phase in the engine's loop, every other parameter frozen."""
    with training_only(run.model, trained):
        run.train(distill_phase(trained, dreams, teacher, config, g, stage, rows, add, log_drift), steps)


def distill_parameters(model, slow: int, old_units: list[int], which: str):
    """(parameter, gradient mask or None) of the slow level of every block.

    which = "new": only the units past `old_units[block]` (rows of up, columns of down) learn;
    the down bias stays."""
    out = []
    for (_, cms), old in zip(model.cms_blocks(), old_units):
        level = cms.levels[slow]
        if which == "slow":
            out += [(p, None) for p in level.parameters()]
            continue
        row = (torch.arange(level.hidden_size, device=level.up.weight.device) >= old).float()
        out += [(level.up.weight, row[:, None]), (level.up.bias, row), (level.down.weight, row[None, :])]
    return out
