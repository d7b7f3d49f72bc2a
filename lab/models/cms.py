"""Continuum Memory System: a chain of MLP levels, each with its own update frequency (REFERENCE.md §3).

    y_t = MLP^(f_K)(… MLP^(f_1)(x_t))        sequential variant (each level residual, pre-norm)
    y_t = x_t + Σ_ℓ w_ℓ MLP^(ℓ)(x_t)          independent variant (learned softmax weights w)

Level ℓ has chunk size C^(ℓ). Its parameters change only when the step counter i is a multiple
of C^(ℓ), by the error accumulated over that chunk:

    θ^(ℓ)_{i+1} = θ^(ℓ)_i − Σ_{t=i−C^(ℓ)}^{i} η^(ℓ)_t ∇ℓ(θ_t; x_t)   if i ≡ 0 (mod C^(ℓ)), else unchanged.

Levels are data: a `LevelSpec` (chunk in tokens, hidden width, learning-rate scale) per level,
fastest first. Everything about a list of levels lives in this file: the checks and the level cap
(`check_levels`, MAX_LEVELS), the re-split of a family's width over other chunk sizes
(`resolve_levels`, what `RunConfig.cms_chunk_tokens` and the URL's `chunks=` do), the schedule
(`LevelSchedule`, which the engine asks which levels are due after each step) and the surgery a
sleep phase does on a level (`CMSLevel.grow`, `keep`, `resize`; `ContinuumMemory` per block).

The modules themselves are an ordinary forward computation. Gradients of a level that is not
due are kept (summed in `.grad`) until it is: that sum is the accumulated error above.

Choices the paper leaves open, made here: chunk sizes are given in tokens of the stream and
converted to optimizer steps by Python's round (halves to even: 2.5 → 2; at least one step); the accumulated gradient is the
plain sum over the chunk's steps (not the mean); each level is a 2-layer GELU MLP with its own
pre-LayerNorm; the independent variant aggregates with a learned softmax-weighted sum; re-split
levels share the family's total hidden width equally (at least 4 units each).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lab.config import Config, ConfigError, bounded
from lab.hooks import HookPoint

MAX_LEVELS = 6                 # one colour each on every page (lab.viz.palette.LEVEL_COLORS)
MIN_HIDDEN = 4


@dataclass(frozen=True)
class LevelSpec(Config):
    """One CMS level: how often it updates, how wide it is, how fast it learns."""

    chunk_tokens: int = bounded(1, 1, 10_000_000, "tokens of the stream between two updates of the level")
    hidden: int = bounded(256, MIN_HIDDEN, 16384, "hidden width of the level's MLP")
    lr_scale: float = bounded(1.0, 0.0, 100.0, "multiplier of the outer learning rate for this level")


def levels(chunks, hidden, lr_scales=None) -> tuple[LevelSpec, ...]:
    """Specs from parallel lists: levels((128, 512), (96, 96)) → two levels."""
    lr_scales = lr_scales or (1.0,) * len(chunks)
    return tuple(LevelSpec(c, h, s) for c, h, s in zip(chunks, hidden, lr_scales, strict=True))


def check_levels(specs: tuple[LevelSpec, ...], owner: str = "ModelConfig", field: str = "cms_levels") -> None:
    """At least one level and at most MAX_LEVELS; a ConfigError that names the field otherwise."""
    if not specs:
        raise ConfigError(owner, field, specs, "needs at least one CMS level")
    if len(specs) > MAX_LEVELS:
        raise ConfigError(owner, field, specs, f"at most {MAX_LEVELS} CMS levels (one colour each)")


def resolve_levels(family: tuple[LevelSpec, ...], chunk_tokens: tuple[int, ...] = (),
                   lr_scales: tuple[float, ...] = (), owner: str = "RunConfig") -> tuple[LevelSpec, ...]:
    """The levels a run uses: the family's own, or new chunk sizes with the family's total hidden
    width re-split equally over them (the parameter count stays put), then per-level learning-rate
    scales if given (one per level). Errors name `owner`'s fields cms_chunk_tokens / level_lr_scale."""
    specs = family
    if chunk_tokens:
        check_levels(tuple(chunk_tokens), owner, "cms_chunk_tokens")
        width = max(MIN_HIDDEN, sum(s.hidden for s in family) // len(chunk_tokens))
        specs = tuple(LevelSpec(c, width) for c in chunk_tokens)
    if lr_scales:
        if len(lr_scales) != len(specs):
            raise ConfigError(owner, "level_lr_scale", lr_scales, f"needs one entry per CMS level ({len(specs)})")
        specs = tuple(s.replace(lr_scale=x) for s, x in zip(specs, lr_scales))
    return specs


def check_schedule(specs: tuple[LevelSpec, ...], total_tokens: int, owner: str = "RunConfig") -> None:
    """Every level must update at least once in a stream of `total_tokens` tokens."""
    chunks = tuple(s.chunk_tokens for s in specs)
    if any(c > total_tokens for c in chunks):
        raise ConfigError(owner, "cms_chunk_tokens", chunks,
                          f"each chunk must be at most the stream's {total_tokens} tokens, or that level never updates")


class CMSLevel(nn.Module):
    """x ↦ down(GELU(up(LN(x)))): what the level adds to the residual stream. (B, T, D) → (B, T, D).

    Online (`lab.online`): while `fast` holds per-row weight changes Δ (each a (B, *parameter
    shape) tensor, keyed like the state_dict), row b computes with θ + Δ_b: each row of the batch
    is a stream with fast weights of its own. With `fast` None (the default) the level is the
    plain module above, untouched.
    """

    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.up = nn.Linear(d_model, hidden)
        self.down = nn.Linear(hidden, d_model)
        self.act = nn.GELU()
        self.hook_hidden = HookPoint()   # (B, T, hidden): the level's unit activations
        self.hook_out = HookPoint()      # (B, T, d_model): what the level adds to the stream
        self.fast: dict[str, torch.Tensor] | None = None

    def forward(self, x):
        if self.fast is not None:
            return self._forward_fast(x)
        return self.hook_out(self.down(self.hook_hidden(self.act(self.up(self.norm(x))))))

    def _forward_fast(self, x):
        """The same computation with θ + Δ_b for row b. x: (B, T, D)."""
        w = {name: p + self.fast[name] for name, p in self.named_parameters()}      # each (B, *shape)
        h = F.layer_norm(x, x.shape[-1:], eps=self.norm.eps) * w["norm.weight"][:, None] + w["norm.bias"][:, None]
        a = self.act(torch.einsum("btd,bhd->bth", h, w["up.weight"]) + w["up.bias"][:, None])   # (B, T, hidden)
        out = torch.einsum("bth,bdh->btd", self.hook_hidden(a), w["down.weight"]) + w["down.bias"][:, None]
        return self.hook_out(out)

    # --- surgery (a sleep phase grows, prunes and resets levels) ------------------------------
    @property
    def hidden_size(self) -> int:
        return self.up.out_features

    def _linear(self, in_features: int, out_features: int, like: nn.Linear) -> nn.Linear:
        return nn.Linear(in_features, out_features, bias=like.bias is not None,
                         device=like.weight.device, dtype=like.weight.dtype)

    @torch.no_grad()
    def grow(self, units: int, generator: torch.Generator | None = None, std: float = 0.02) -> None:
        """Append `units` hidden units: new up rows ~ N(0, std²), new up biases 0, new down columns 0,
        so the level computes exactly what it computed before."""
        h, d = self.hidden_size, self.up.in_features
        up, down = self._linear(d, h + units, self.up), self._linear(h + units, d, self.down)
        new_rows = torch.randn(units, d, generator=generator) * std
        up.weight.copy_(torch.cat([self.up.weight, new_rows.to(self.up.weight)]))
        up.bias.copy_(torch.cat([self.up.bias, self.up.bias.new_zeros(units)]))
        down.weight.copy_(torch.cat([self.down.weight, self.down.weight.new_zeros(d, units)], dim=1))
        down.bias.copy_(self.down.bias)
        self.up, self.down = up, down

    @torch.no_grad()
    def keep(self, units: torch.Tensor) -> None:
        """Keep only the hidden units `units` (indices, in the order given)."""
        units = units.to(self.up.weight.device)
        d = self.up.in_features
        up, down = self._linear(d, len(units), self.up), self._linear(len(units), d, self.down)
        up.weight.copy_(self.up.weight[units])
        up.bias.copy_(self.up.bias[units])
        down.weight.copy_(self.down.weight[:, units])
        down.bias.copy_(self.down.bias)
        self.up, self.down = up, down

    def resize(self, hidden: int) -> None:
        """Give the level `hidden` units (contents to be overwritten, e.g. by `load_state_dict`)."""
        if self.hidden_size != hidden:
            d = self.up.in_features
            self.up, self.down = self._linear(d, hidden, self.up), self._linear(hidden, d, self.down)

    @torch.no_grad()
    def load_from(self, state: dict[str, torch.Tensor]) -> None:
        """Take the parameters in `state` (keys as in this level's state_dict), resizing first."""
        self.resize(state["up.weight"].shape[0])
        self.load_state_dict(state)

    def copy_of(self, state: dict[str, torch.Tensor]) -> "CMSLevel":
        """A new level like this one holding `state` (any width), on the same device."""
        fresh = CMSLevel(self.up.in_features, state["up.weight"].shape[0])
        fresh = fresh.to(device=self.up.weight.device, dtype=self.up.weight.dtype)
        fresh.load_state_dict(state)
        return fresh


class ContinuumMemory(nn.Module):
    def __init__(self, d_model: int, hidden: tuple[int, ...], variant: str = "sequential"):
        super().__init__()
        if variant not in ("sequential", "independent"):
            raise ValueError(f"variant = {variant!r} is not allowed: must be 'sequential' or 'independent'")
        if len(hidden) < 1:
            raise ValueError("a CMS needs at least one level")
        self.variant = variant
        self.levels = nn.ModuleList(CMSLevel(d_model, h) for h in hidden)
        if variant == "independent":
            self.mix_logits = nn.Parameter(torch.zeros(len(hidden)))
        self.hook_out = HookPoint()      # (B, T, d_model) after the whole chain

    def forward(self, x):
        if self.variant == "sequential":
            for level in self.levels:
                x = x + level(x)
        else:
            weights = torch.softmax(self.mix_logits, 0)
            x = x + sum(w * level(x) for w, level in zip(weights, self.levels))
        return self.hook_out(x)

    def widths(self) -> tuple[int, ...]:
        return tuple(level.hidden_size for level in self.levels)


def level_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of a model state_dict under `prefix` (e.g. "blocks.0.cms.levels.2"), keys relative."""
    return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def level_of_parameter(name: str) -> int | None:
    """CMS level index of a parameter from its name (`….cms.levels.2.up.weight` → 2), else None.

    Parameters outside any level (embeddings, attention, memories, the independent variant's
    mixing weights) have no level: they are updated at every step.
    """
    parts = name.split(".")
    for i in range(len(parts) - 2):
        if parts[i] == "cms" and parts[i + 1] == "levels":
            return int(parts[i + 2])
    return None


@dataclass(frozen=True)
class LevelSchedule:
    """When each CMS level updates: level ℓ every `chunk_steps[ℓ]` optimizer steps."""

    chunk_steps: tuple[int, ...]

    def __post_init__(self):
        if not self.chunk_steps or any(int(c) < 1 for c in self.chunk_steps):
            raise ValueError(f"chunk_steps = {self.chunk_steps!r} is not allowed: each must be at least 1")

    @classmethod
    def from_tokens(cls, chunk_tokens: tuple[int, ...], tokens_per_step: int) -> "LevelSchedule":
        if tokens_per_step < 1:
            raise ValueError(f"tokens_per_step = {tokens_per_step!r} must be at least 1")
        return cls(tuple(max(1, round(c / tokens_per_step)) for c in chunk_tokens))

    def due(self, step: int) -> list[int]:
        """Levels whose parameters change at the end of step `step` (steps count from 1)."""
        if step < 1:
            raise ValueError(f"step = {step!r}: steps count from 1")
        return [level for level, c in enumerate(self.chunk_steps) if step % c == 0]

    def is_due(self, level: int, step: int) -> bool:
        return step % self.chunk_steps[level] == 0

    def describe(self, tokens_per_step: int) -> list[dict]:
        return [{"level": level, "chunk_steps": c, "chunk_tokens": c * tokens_per_step}
                for level, c in enumerate(self.chunk_steps)]
