"""A causal pre-norm Transformer: the baseline, and the one-level special case of a CMS.

    x ← x + Attention(LN(x))         softmax attention, causal, optional sliding window
    x ← CMS(x)                       one MLP level updated every step (REFERENCE.md §3)

Attention is the non-parametric associative memory of REFERENCE.md §1 in its closed form.
The attention pattern is only materialised when a probe listens to `blocks.N.attn.hook_pattern`;
otherwise `scaled_dot_product_attention` computes the same output faster.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lab.config import bounded
from lab.hooks import HookPoint
from lab.models.base import LabModel, ModelConfig


@dataclass(frozen=True)
class TransformerConfig(ModelConfig):
    window: int = bounded(0, 0, 8192, "sliding-window size in tokens (0 = full causal attention)")


def causal_mask(T: int, window: int, device) -> torch.Tensor:
    """(T, T) boolean, True where query t may attend to key s: s ≤ t and t − s < window."""
    i = torch.arange(T, device=device)
    allowed = i[None, :] <= i[:, None]
    if window:
        allowed &= (i[:, None] - i[None, :]) < window
    return allowed


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, window: int = 0):
        super().__init__()
        self.n_heads, self.window = n_heads, window
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.hook_pattern = HookPoint()   # (B, H, T, T) attention weights, only when listened to
        self.hook_out = HookPoint()       # (B, T, d_model)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        mask = causal_mask(T, self.window, x.device)
        if self.hook_pattern.listened:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            pattern = self.hook_pattern(scores.masked_fill(~mask, float("-inf")).softmax(-1))
            y = pattern @ v
        elif self.window:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, D)               # (B, T, D)
        return self.hook_out(self.proj(y))


class TransformerBlock(nn.Module):
    def __init__(self, config: TransformerConfig, cms: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config.d_model, config.n_heads, config.window)
        self.cms = cms
        self.hook_resid = HookPoint()     # (B, T, d_model) after the block

    def forward(self, x):
        x = x + self.attn(self.norm(x))
        return self.hook_resid(self.cms(x))


class Transformer(LabModel):
    family = "transformer"

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self.blocks = nn.ModuleList(TransformerBlock(config, self.make_cms()) for _ in range(config.n_layers))
        self.finish_init()
