"""Continuum Memory System: a chain of MLP levels, each with its own update frequency (REFERENCE.md §3).

    y_t = MLP^(f_K)(… MLP^(f_1)(x_t))        sequential variant (each level residual, pre-norm)
    y_t = x_t + Σ_ℓ w_ℓ MLP^(ℓ)(x_t)          independent variant (learned softmax weights w)

Level ℓ has chunk size C^(ℓ). Its parameters change only when the step counter i is a multiple
of C^(ℓ), by the error accumulated over that chunk:

    θ^(ℓ)_{i+1} = θ^(ℓ)_i − Σ_{t=i−C^(ℓ)}^{i} η^(ℓ)_t ∇ℓ(θ_t; x_t)   if i ≡ 0 (mod C^(ℓ)), else unchanged.

The module itself is an ordinary forward computation; the schedule lives in `LevelSchedule`,
which the engine asks which levels are due after each step. Gradients of a level that is not
due are kept (summed in `.grad`) until it is: that sum is the accumulated error above.

Choices the paper leaves open, made here: chunk sizes are given in tokens of the stream and
converted to optimizer steps by Python's round (halves to even: 2.5 → 2; at least one step); the accumulated gradient is the
plain sum over the chunk's steps (not the mean); each level is a 2-layer GELU MLP with its own
pre-LayerNorm; the independent variant aggregates with a learned softmax-weighted sum.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lab.hooks import HookPoint


class CMSLevel(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.up = nn.Linear(d_model, hidden)
        self.down = nn.Linear(hidden, d_model)
        self.act = nn.GELU()
        self.hook_hidden = HookPoint()   # (B, T, hidden): the level's unit activations
        self.hook_out = HookPoint()      # (B, T, d_model): what the level adds to the stream

    def forward(self, x):
        return self.hook_out(self.down(self.hook_hidden(self.act(self.up(self.norm(x))))))


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
