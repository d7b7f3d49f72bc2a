"""Titans: attention as short-term memory, a neural memory written at test time as long-term memory.

REFERENCE.md §2. Every block is pre-norm, h = LN(x), and combines the two memories in one of
two ways (`TitansConfig.variant`):

    MAG (memory as gate)      a = SWA(h | persistent)              sliding-window attention
                              m = LN(M(h))                         memory written and read causally
                              o = g ⊙ a + (1 − g) ⊙ m,  g = σ(W_g h)   (per feature, g: (B, T, D))
    MAC (memory as context)   for each segment s of `segment` tokens:
                                r = M_{s−1}(q(h_s))                read the memory of earlier segments
                                y = Attn(h_s | persistent ∥ LN(r) ∥ h_s)   causal inside the segment
                                u = h_s + y                        the stream after attention
                                z_t = M_t(q(u_t)), writing k(u), v(u) into M as it goes
                              o = y + LN(z)                        (additive form of y ⊗ M*(y))
    both:                     x ← x + W_O o;   x ← CMS(x)          (the CMS ends every block, §3)

The memory is `lab.memory.neural.NeuralMemory`: S_t = η_t S_{t−1} − θ_t ∇ℓ, M_t = (1 − α_t) M_{t−1} + S_t,
with the gates α, η, θ given per head and token by the block. "chunk" mode takes the gradients of a
chunk at the chunk-start memory (parallel training), "token" mode runs the exact per-token rule.

Choices the paper leaves open, made here:
* q, k, v = short causal depthwise conv (kernel `conv_kernel`, no bias) of SiLU(W x); q and k are
  ℓ2-normalised per head and, by default, v too (`normalize_values`), which bounds the inner loss.
* Gates are sigmoids of one bias-free linear map of h plus a learned bias (a separate parameter, so
  `finish_init` leaves it alone), initialised to α = alpha_init, η = eta_init:
      α_t = σ(a_t),  η_t = σ(e_t),  θ_t = theta_max · σ(w_t) · (1 − η_t)     all (B, H, T) in (0, 1)
  The factor (1 − η_t) makes the momentum an exponential average of the gradients, so the step
  per token is at most theta_max whatever η is. Stability: in chunk mode the stale gradients of a
  chunk add up, and with identical keys the inner descent diverges unless roughly
  θ · memory_chunk / (1 − η) < 1 for plain momentum; the EMA form turns this into
  theta_max · memory_chunk ≲ 1 (measured: plain momentum with θ = 0.05, η = 0.9 diverged in
  training, the EMA form with theta_max = 0.1–0.2 did not). Token mode is stable up to θ ≈ 1.
  In MAC the gates come from the block input h_t, computed once for the whole sequence.
* Persistent memory: `n_persistent` learned d_model vectors (init N(0, 1), the scale of LN outputs)
  prepended to the keys/values of every attention and visible to every query; they have no query
  and so no output position. Sliding windows and causal masks apply to sequence keys only.
* MAG's gate g is per feature; the memory output is LayerNormed before the mix; the mixed branch
  goes through one output projection W_O.
* MAC attends within the segment only (earlier segments reach it through the memory). r_j (from
  x_j) is visible to query t only for j ≤ t, so the model stays causal. The memory is written with
  u = h + y (attention output, heads concatenated, before W_O, plus the block input): writing y
  alone stores near-identical keys at initialisation (attention is near-uniform) and the model did
  not learn to recall; the conv of u restarts at each segment. The output read is causal too:
  z_t = M_t(q(u_t)) sees the writes of tokens ≤ t only (read-after-write).
  o_t = y_t + LN(z_t) replaces the paper's y_t ⊗ M*_t(y_t) by the additive form.
* In MAC the hook points `hook_attn`, `memory.hook_out`, `memory.hook_surprise`, `memory.hook_loss` are called once on
  the whole sequence after the segment loop: an intervention there changes o, not the memory writes.
* The memory's initial weights are learned by the outer optimizer; gradients flow through the writes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lab.config import bounded, choice, flag
from lab.hooks import HookPoint
from lab.memory.fast_weights import mlp_apply
from lab.memory.neural import NeuralMemory
from lab.models.base import LabModel, ModelConfig, levels_field
from lab.models.cms import LevelSpec
from lab.models.transformer import causal_mask


BANDED_FROM = 4          # MAG uses banded window attention when T > BANDED_FROM · window (same outputs to
                         # rounding; shorter sequences keep the full masked product, bit for bit as before)


@dataclass(frozen=True)
class TitansConfig(ModelConfig):
    cms_levels: tuple[LevelSpec, ...] = levels_field((LevelSpec(1, 96),))
    variant: str = choice("mag", ("mag", "mac"), "how memory and attention combine: gate or context")
    n_persistent: int = bounded(4, 0, 64, "learned persistent-memory tokens seen by every query")
    window: int = bounded(8, 1, 8192, "MAG: sliding-window attention size in tokens")
    segment: int = bounded(8, 1, 8192, "MAC: segment length in tokens")
    memory_depth: int = bounded(2, 1, 4, "layers of the memory MLP")
    memory_mode: str = choice("chunk", ("chunk", "token"), "memory update: chunked-parallel or per token")
    memory_chunk: int = bounded(8, 1, 1024, "chunk mode: tokens whose gradients share the chunk-start memory")
    theta_max: float = bounded(0.1, 0.0, 1.0, "largest write strength: θ = theta_max · σ(·) · (1 − η)")
    alpha_init: float = bounded(0.01, 1e-4, 0.5, "forgetting gate α at initialisation")
    eta_init: float = bounded(0.9, 1e-3, 0.999, "momentum gate η at initialisation")
    conv_kernel: int = bounded(4, 1, 16, "short causal convolution on q, k, v (1 = none)")
    normalize_values: bool = flag(True, "ℓ2-normalise the memory's values per head (stability)")


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    B, T, D = x.shape                                               # (B, T, D) → (B, H, T, D/H)
    return x.view(B, T, n_heads, D // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    B, H, T, d = x.shape                                            # (B, H, T, d) → (B, T, H·d)
    return x.transpose(1, 2).reshape(B, T, H * d)


class ShortConv(nn.Module):
    """Depthwise causal convolution over time: output t sees inputs t − kernel + 1 … t."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, groups=channels, padding=kernel - 1, bias=False)

    def forward(self, x):                                           # (B, T, C) → (B, T, C)
        T = x.shape[1]
        return self.conv(x.transpose(1, 2))[..., :T].transpose(1, 2)


class MemoryInputs(nn.Module):
    """q, k, v of the neural memory: SiLU(W x) → short causal conv → ℓ2-norm per head."""

    def __init__(self, d_model: int, n_heads: int, kernel: int, normalize_values: bool):
        super().__init__()
        self.n_heads, self.normalize_values = n_heads, normalize_values
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.conv = ShortConv(3 * d_model, kernel)

    def forward(self, x):                                           # (B, T, D) → 3 × (B, H, T, D/H)
        q, k, v = self.conv(F.silu(self.qkv(x))).chunk(3, dim=-1)
        q, k, v = (split_heads(t, self.n_heads) for t in (q, k, v))
        return F.normalize(q, dim=-1), F.normalize(k, dim=-1), (F.normalize(v, dim=-1) if self.normalize_values else v)


class PersistentAttention(nn.Module):
    """Multi-head softmax attention whose keys and values begin with learned persistent tokens."""

    def __init__(self, d_model: int, n_heads: int, n_persistent: int):
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.persistent = nn.Parameter(torch.randn(n_persistent, d_model))   # (P, D)

    def forward(self, x, context, allowed):
        """x: (B, Tq, D) queries; context: (B, Tc, D) keys/values after the persistent tokens;
        allowed: (Tq, Tc) bool, True where query t may see context token s.
        Returns (B, Tq, D), heads concatenated, before any output projection."""
        B = x.shape[0]
        P = self.persistent.shape[0]
        memory = torch.cat([self.persistent.unsqueeze(0).expand(B, -1, -1), context], 1)  # (B, P+Tc, D)
        q = split_heads(self.q(x), self.n_heads)                                   # (B, H, Tq, d)
        k, v = (split_heads(t, self.n_heads) for t in self.kv(memory).chunk(2, dim=-1))  # (B, H, P+Tc, d)
        allowed = torch.cat([allowed.new_ones(allowed.shape[0], P), allowed], 1)   # (Tq, P+Tc)
        return merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=allowed))

    def windowed(self, x, window: int):
        """Causal sliding-window self-attention in bands (REFERENCE.md §2, MAG's SWA): equal to
        `forward(x, x, causal_mask(T, window))` up to rounding, in O(T · window) instead of O(T²).
        Query block j (`window` tokens) attends to the persistent tokens and key blocks j − 1 and j."""
        B, T, _ = x.shape
        W, H, P = window, self.n_heads, self.persistent.shape[0]
        nb = -(-T // W)
        q = split_heads(self.q(x), H)                                              # (B, H, T, d)
        k, v = (split_heads(t, H) for t in self.kv(x).chunk(2, dim=-1))
        pk, pv = (split_heads(t, H) for t in self.kv(self.persistent.unsqueeze(0)).chunk(2, dim=-1))  # (1, H, P, d)
        d = q.shape[-1]
        q = F.pad(q, (0, 0, 0, nb * W - T)).view(B, H, nb, W, d)

        def bands(t, p):                                                           # (B, H, nb, P + 2W, d)
            t = F.pad(t, (0, 0, W, nb * W - T)).view(B, H, nb + 1, W, d)           # block −1 is padding
            return torch.cat([p.unsqueeze(2).expand(B, H, nb, P, d), t[:, :, :-1], t[:, :, 1:]], 3)
        i = torch.arange(W, device=x.device)[:, None]                              # query offset in its block
        o = torch.arange(2 * W, device=x.device)[None, :]                          # key offset from block j − 1
        allowed = (o <= W + i) & (o > i)                                           # s ≤ t and t − s < W
        first = allowed & (o >= W)                                                 # block 0: no block −1
        allowed = torch.stack([first] + [allowed] * (nb - 1))                      # (nb, W, 2W)
        allowed = torch.cat([allowed.new_ones(nb, W, P), allowed], 2)              # (nb, W, P + 2W)
        y = F.scaled_dot_product_attention(q, bands(k, pk), bands(v, pv), attn_mask=allowed)
        return merge_heads(y.reshape(B, H, nb * W, d)[:, :, :T])


class TitansBlock(nn.Module):
    """x ← x + W_O o(LN(x)), then the CMS; o from `mag` or `mac` (module docstring, REFERENCE.md §2)."""

    def __init__(self, config: TitansConfig, cms: nn.Module):
        super().__init__()
        D, H = config.d_model, config.n_heads
        self.variant, self.n_heads = config.variant, H
        self.window, self.segment, self.theta_max = config.window, config.segment, config.theta_max
        self.norm = nn.LayerNorm(D)
        self.attn = PersistentAttention(D, H, config.n_persistent)
        self.mem_inputs = MemoryInputs(D, H, config.conv_kernel, config.normalize_values)
        self.gate_proj = nn.Linear(D, 3 * H, bias=False)            # → logits of α, η, θ per head
        logit = lambda p: math.log(p / (1 - p))
        self.gate_bias = nn.Parameter(torch.tensor(
            [logit(config.alpha_init)] * H + [logit(config.eta_init)] * H + [0.0] * H))
        self.memory = NeuralMemory(D // H, heads=H, depth=config.memory_depth,
                                   mode=config.memory_mode, chunk_size=config.memory_chunk)
        self.mem_norm = nn.LayerNorm(D)
        if config.variant == "mag":
            self.mix = nn.Linear(D, D)                              # g = σ(W_g h)
            self.hook_mix = HookPoint()                             # (B, T, D) g, share of attention
        else:
            self.read_norm = nn.LayerNorm(D)                        # LN of the retrieved r
        self.proj = nn.Linear(D, D)
        self.cms = cms
        self.hook_alpha = HookPoint()                               # (B, H, T) forgetting
        self.hook_eta = HookPoint()                                 # (B, H, T) momentum
        self.hook_theta = HookPoint()                               # (B, H, T) write strength
        self.hook_attn = HookPoint()                                # (B, T, D) attention branch
        self.hook_mem = HookPoint()                                 # (B, T, D) memory branch, after LN
        self.hook_resid = HookPoint()                               # (B, T, D) after the block

    def gates(self, h):
        """α, η, θ, each (B, H, T), from the (normed) block input h: (B, T, D)."""
        B, T, _ = h.shape
        logits = (self.gate_proj(h) + self.gate_bias).view(B, T, 3, self.n_heads).permute(2, 0, 3, 1)
        alpha = self.hook_alpha(torch.sigmoid(logits[0]))
        eta = self.hook_eta(torch.sigmoid(logits[1]))
        theta = self.hook_theta(self.theta_max * torch.sigmoid(logits[2]) * (1 - eta))   # EMA-style momentum
        return alpha, eta, theta

    def mag(self, h):                                               # (B, T, D) → (B, T, D)
        T = h.shape[1]
        if T > BANDED_FROM * self.window:                           # long sequences: banded, O(T · window)
            a = self.hook_attn(self.attn.windowed(h, self.window))
        else:                                                       # short ones (the default stream): one masked T × T
            a = self.hook_attn(self.attn(h, h, causal_mask(T, self.window, h.device)))
        q, k, v = self.mem_inputs(h)                                # (B, H, T, d)
        alpha, eta, theta = self.gates(h)
        m = self.memory(q, k, v, theta=theta, eta=eta, alpha=alpha)  # (B, H, T, d), causal
        m = self.hook_mem(self.mem_norm(merge_heads(m)))
        g = self.hook_mix(torch.sigmoid(self.mix(h)))
        return g * a + (1 - g) * m

    def mac(self, h):                                               # (B, T, D) → (B, T, D)
        B, T, _ = h.shape
        q_x = self.mem_inputs(h)[0]                                 # (B, H, T, d) retrieval queries
        alpha, eta, theta = self.gates(h)
        state, stats = self.memory.start(B), self.memory.stats_wanted()
        ys, zs, surprises, losses = [], [], [], []
        for start in range(0, T, self.segment):
            s = slice(start, min(T, start + self.segment))
            n = s.stop - s.start
            r = mlp_apply(state.weights, q_x[:, :, s], self.memory.residual)[0]  # M_{s−1}(q): (B, H, n, d)
            context = torch.cat([self.read_norm(merge_heads(r)), h[:, s]], 1)   # (B, 2n, D)
            causal = causal_mask(n, 0, h.device)
            y = self.attn(h[:, s], context, torch.cat([causal, causal], 1))     # (B, n, D)
            q, k, v = self.mem_inputs(h[:, s] + y)                  # write the stream after attention
            z, state, surprise, loss = self.memory.scan(state, q, k, v, theta[:, :, s], eta[:, :, s], alpha[:, :, s],
                                                        stats=stats)
            ys.append(y)
            zs.append(z)
            surprises.append(surprise)
            losses.append(loss)
        self.memory.keep_state(state)                               # as NeuralMemory.forward does: for memory.state()
        if stats:
            self.memory.hook_surprise(torch.cat(surprises, 2))
            self.memory.hook_loss(torch.cat(losses, 2))
        y = self.hook_attn(torch.cat(ys, 1))                        # (B, T, D)
        z = self.memory.hook_out(torch.cat(zs, 2))                  # (B, H, T, d)
        return y + self.hook_mem(self.mem_norm(merge_heads(z)))

    def forward(self, x):                                           # (B, T, D) → (B, T, D)
        h = self.norm(x)
        o = self.mag(h) if self.variant == "mag" else self.mac(h)
        x = x + self.proj(o)
        return self.hook_resid(self.cms(x))


class Titans(LabModel):
    """Embedding → n_layers Titans blocks → LN → tied head; forward(tokens (B, T)) → logits (B, T, V)."""

    family = "titans"

    def __init__(self, config: TitansConfig):
        super().__init__(config)
        self.blocks = nn.ModuleList(TitansBlock(config, self.make_cms()) for _ in range(config.n_layers))
        self.finish_init()
