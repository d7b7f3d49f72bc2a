"""HOPE: self-modifying Titans followed by a Continuum Memory System (REFERENCE.md §4, §3).

    u ← LN(x);  c = CausalConv4(u)                    local convolution of window 4
    q = c W_q   (the only fixed projection)           per head, ℓ2-normalised in the memory
    y = SelfModifyingMemory(q; keys/values generated from c by their own memories)
        y_t = M_{t−1}(q_t) (read, then write: the paper's order) or M_t(q_t), `memory_read`
    x ← x + W_o y
    x ← CMS(x)                                        K levels, each with its own update frequency

The default has three CMS levels whose chunk sizes are 128, 512 and 2,048 tokens of the
stream (REFERENCE §3's seed example; the papers' language-model chunk sizes are not stated).

Read order (REFERENCE §4, "Read order"): the equations write the output o_t = M_{t−1}(q_t), with
the memory's state before token t's own write. `memory_read` offers it ("before_write") and the
read-after-write y_t = M_t(q_t) ("after_write") the lab used before; the default is the paper's.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from lab.config import bounded, choice
from lab.hooks import HookPoint
from lab.memory.self_modifying import BOUNDS, SelfModifyingMemory
from lab.models.base import LabModel, ModelConfig, levels_field
from lab.models.cms import LevelSpec, levels


@dataclass(frozen=True)
class HopeConfig(ModelConfig):
    cms_levels: tuple[LevelSpec, ...] = levels_field(levels((128, 512, 2048), (96, 96, 96)))
    memory_chunk: int = bounded(8, 1, 512, "tokens per chunk of the self-modifying memory (1 = exact recurrence)")
    memory_hidden: int = bounded(16, 4, 1024, "hidden width of each self-modifying memory's MLP")
    eta_max: float = bounded(0.5, 0.01, 2.0, "largest inner learning rate η_t")
    memory_read: str = choice("before_write", ("before_write", "after_write"),
                              "read the memory before token t's own write (o_t = M_{t−1}(q_t), "
                              "the paper's) or after it (y_t = M_t(q_t))")
    memory_bound: str = choice("bounded", BOUNDS, "the self-modifying memory bounded (unit-length generated "
                                                  "values, every fast-weight matrix within a ball: no overflow or "
                                                  "runaway on runs of identical tokens) or as the equations are "
                                                  "written (none)")


class CausalConv(nn.Module):
    """Depthwise causal convolution: output t sees inputs t−k+1..t. (B, T, D) → (B, T, D)."""

    def __init__(self, d: int, kernel: int = 4):
        super().__init__()
        self.conv = nn.Conv1d(d, d, kernel, groups=d, padding=kernel - 1)

    def forward(self, x):
        return self.conv(x.transpose(1, 2))[..., : x.shape[1]].transpose(1, 2)


class SelfModifyingTitans(nn.Module):
    def __init__(self, config: HopeConfig):
        super().__init__()
        self.n_heads = config.n_heads
        d_head = config.d_model // config.n_heads
        self.conv = CausalConv(config.d_model)
        self.w_q = nn.Linear(config.d_model, config.d_model, bias=False)
        self.memory = SelfModifyingMemory(d_head, config.n_heads, config.memory_hidden,
                                          config.memory_chunk, config.eta_max, config.memory_read,
                                          config.memory_bound)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.hook_out = HookPoint()        # (B, T, d_model)

    def split(self, x):                    # (B, T, D) → (B, H, T, D/H)
        B, T, D = x.shape
        return x.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2)

    def forward(self, x):
        c = self.conv(x)
        q, c = self.split(self.w_q(c)), self.split(c)
        y = self.memory(q, c, c)                               # (B, H, T, D/H)
        y = y.transpose(1, 2).reshape(x.shape)
        return self.hook_out(self.proj(y))


class HopeBlock(nn.Module):
    def __init__(self, config: HopeConfig, cms: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(config.d_model)
        self.titans = SelfModifyingTitans(config)
        self.cms = cms
        self.hook_resid = HookPoint()      # (B, T, d_model)

    def forward(self, x):
        x = x + self.titans(self.norm(x))
        return self.hook_resid(self.cms(x))


class Hope(LabModel):
    family = "hope"

    def __init__(self, config: HopeConfig):
        super().__init__(config)
        self.blocks = nn.ModuleList(HopeBlock(config, self.make_cms()) for _ in range(config.n_layers))
        self.finish_init()
