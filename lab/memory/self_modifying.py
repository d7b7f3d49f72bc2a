"""Self-modifying Titans memory, the sequence mixer of HOPE (REFERENCE.md §4).

Only the query projection is fixed (the model computes q_t = x_t W_q). Keys, values, the
learning rate and the retention gate come from memories of their own, each a fast-weight
2-layer residual MLP  M(x) = x + W_1 σ(W_2 x):

    k_t = M_k(x_t)      v_t = M_v(x_t)      η_t = η_max·sigmoid(w_ηᵀ M_η(x_t))      α_t = sigmoid(w_αᵀ M_α(x_t))

and every memory □ ∈ {k, v, η, α, memory} generates its own target v̂_□ = M_□(v_t) and is
updated by delta gradient descent with retention, layer by layer (input in, output-gradient δ):

    W ← W (α_t I − η_t in inᵀ) − η_t δ inᵀ        with L = ‖M(k_t) − v̂_□‖²

The output reads M_memory, in one of two orders (`read_order`):

    "before_write"   o_t = M_memory,t−1(q_t)   read, then write: the paper's order (§4, "Read order")
    "after_write"    y_t = M_memory,t(q_t)     write, then read: token t sees its own write

The process is sequential; chunked training takes every quantity of a chunk (k, v, η, α,
targets, gradients) at the chunk-start state of the memories, and reads M_memory inside the
chunk at the state after the writes of the tokens before t ("before_write") or up to and
including t ("after_write") (`lab.memory.fast_weights.scan_chunks`). With chunk_size = 1 it is
the exact token-by-token recurrence, in either order.

Choices the paper leaves open, made here: the read order is a knob, by default the paper's
"before_write" (HOPE passes `HopeConfig.memory_read`); q and k are ℓ2-normalised per head, and so are
the inputs x fed to the memories (without it the inner steps diverge within a few tokens); η and α are
scalars per head and token, read out by learned vectors w_η, w_α (biases start α near 0.98 and
η near 0.1·η_max); the generator memories' own update uses the same k, η, α; the initial
fast weights of all five memories are learned by the outer optimizer; no momentum.

Bounds (`bound`), a choice the paper leaves open: "none" (this class's default: the equations above
as written) or "bounded" (HOPE's default, `HopeConfig.memory_bound`, with which every shipped HOPE
result is made): the generated values ℓ2-normalised
like the keys, v_t = M_v(x_t)/‖M_v(x_t)‖, and after each chunk every fast-weight matrix scaled
back into the ball ‖W‖_F ≤ `radius` (RADIUS = 8: twice an initial W_2's norm; only a runaway
reaches it). Why: the targets v̂_□ = M_□(v_t) are the memories' own outputs, so a value longer than
its key asks every memory to grow, and a longer memory makes longer values. On runs of identical
tokens (a digit's background pixels, a context's padding) a chunk takes all their steps in one
direction: on Split-Digits (seed 100) ‖v‖ went 1.9 → 961 → inf in three chunks of one sequence.
Unit values alone delay it (Split-Digits seed 0: step 360 instead of 156; two languages in
context, seed 100: step 534), as the outer optimizer raises η until the chunk's summed steps
overshoot; the ball stops that too. On the default stream the fast weights can run away without
the loss noticing (seed 0, "none": ‖W‖_F from 4 to 1.1·10⁶ by its last step, 750).

Interface: `write(k, v)` takes the token representations fed to M_k (and M_η, M_α) and to M_v;
HOPE passes the same x for both. The keys and values the memory stores are generated inside.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lab.hooks import HookPoint
from lab.memory.base import AssociativeMemory
from lab.memory.compiled import Compiled
from lab.memory.fast_weights import READ_ORDERS, CarriesState, FastWeights, chunk_step, listened, mlp_apply
from lab.memory.registry import MemoryEntry, register
from lab.viz.palette import ARCH_COLORS

MEMORIES = ("key", "value", "eta", "alpha", "memory")
BOUNDS = ("none", "bounded")      # as the paper writes it, or unit-length values and a ball for the state
RADIUS = 8.0                      # ball of "bounded": twice an initial W_2's norm (√hidden) at hidden = 16


class SelfModifyingMemory(CarriesState, AssociativeMemory):
    name = "self_modifying"

    def __init__(self, d: int, heads: int = 1, hidden: int | None = None, chunk_size: int = 16,
                 eta_max: float = 0.5, read_order: str = "before_write", bound: str = "none",
                 radius: float = RADIUS):
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"chunk_size = {chunk_size!r} is not allowed: must be at least 1")
        if not 0 < eta_max <= 2:
            raise ValueError(f"eta_max = {eta_max!r} is not allowed: must be in (0, 2]")
        if read_order not in READ_ORDERS:
            raise ValueError(f"read_order = {read_order!r} is not allowed: must be one of {', '.join(READ_ORDERS)}")
        if bound not in BOUNDS:
            raise ValueError(f"bound = {bound!r} is not allowed: must be one of {', '.join(BOUNDS)}")
        if not radius > 0:
            raise ValueError(f"radius = {radius!r} is not allowed: must be positive")
        self.d, self.heads, self.chunk_size, self.eta_max = d, heads, chunk_size, eta_max
        self.read_order = read_order       # "before_write": o_t = M_{t−1}(q_t); "after_write": y_t = M_t(q_t)
        self.bound = bound                 # "bounded": v_t = M_v(x_t)/‖M_v(x_t)‖ and ‖W‖_F ≤ radius per chunk
        self.radius = radius
        hidden = hidden or d
        # Each memory: weights [W_2: (hidden, d), W_1: (d, hidden)] per head, learned initial state.
        n = len(MEMORIES)
        self.init_weights = nn.ParameterList([                     # [W_2: (5, H, hidden, d), W_1: (5, H, d, hidden)]
            nn.Parameter(torch.randn(n, heads, hidden, d) / math.sqrt(d)),
            nn.Parameter(torch.randn(n, heads, d, hidden) * (0.1 / math.sqrt(hidden))),
        ])
        self.eta_readout = nn.Parameter(torch.zeros(heads, d))
        self.eta_bias = nn.Parameter(torch.full((heads,), -2.2))      # η ≈ 0.1·η_max at start
        self.alpha_readout = nn.Parameter(torch.zeros(heads, d))
        self.alpha_bias = nn.Parameter(torch.full((heads,), 4.0))     # α ≈ 0.98 at start
        self.hook_eta = HookPoint()        # (B, H, T)
        self.hook_alpha = HookPoint()      # (B, H, T)
        self.hook_surprise = HookPoint()   # ‖(δ + W·in) inᵀ‖ of the output memory per token, (B, H, T)
        self.hook_out = HookPoint()        # (B, H, T, d)
        self._state: FastWeights | None = None

    # The five memories are stacked along the head axis, in the order of MEMORIES:
    # fast weights (B, 5·H, out, in), so that one batched scan updates all of them at once.
    def initial_state(self, batch: int) -> FastWeights:
        return FastWeights([w.reshape(-1, *w.shape[2:]).unsqueeze(0).expand(batch, -1, -1, -1)
                            for w in self.init_weights])

    def reset(self, batch, heads=None, d_key=None, d_value=None, device=None, dtype=torch.float32):
        if heads not in (None, self.heads) or d_key not in (None, self.d) or d_value not in (None, self.d):
            raise ValueError(f"this memory was built for heads={self.heads}, d={self.d}")
        self._state = self.initial_state(batch)

    def state(self) -> dict[str, torch.Tensor]:
        if self._state is None:
            raise RuntimeError("the memory is empty: call reset(batch) first")
        out = {}
        for l, w in zip((2, 1), self._state.weights):             # applied first: W_2, then W_1
            for name, part in zip(MEMORIES, w.chunk(len(MEMORIES), dim=1)):
                out[f"{name}.W{l}"] = part
        return out

    def _check(self, x, what):
        if x.dim() != 4 or x.shape[1] != self.heads or x.shape[-1] != self.d:
            raise ValueError(f"{what} must have shape (B, {self.heads}, T, {self.d}); got {tuple(x.shape)}")

    def scan(self, state: FastWeights, q, xk, xv, stats: bool = True):
        """Process a sequence from `state`, chunk by chunk (`hope_chunk`, compiled in training steps
        when `lab.memory.compiled` allows it). Returns (y or None, new_state, extras); with stats=False
        the extras hold no surprise (nobody listens)."""
        self._check(xk, "k")
        self._check(xv, "v")
        if q is not None:
            self._check(q, "q")
            q = F.normalize(q, dim=-1)
        xk, xv = F.normalize(xk, dim=-1), F.normalize(xv, dim=-1)    # keeps the inner steps stable
        T = xk.shape[2]
        gates = (self.eta_readout, self.eta_bias, self.alpha_readout, self.alpha_bias)
        weights = list(state.weights)
        ys, etas, alphas, surprises = [], [], [], []
        for start in range(0, T, self.chunk_size):
            sl = slice(start, min(T, start + self.chunk_size))
            y, weights, eta, alpha, surprise = compiled_hope_chunk(
                weights, xk[:, :, sl], xv[:, :, sl], None if q is None else q[:, :, sl], gates, self.eta_max,
                self.read_order, self.radius if self.bound == "bounded" else 0.0, stats)
            etas.append(eta)
            alphas.append(alpha)
            surprises.append(surprise)
            if y is not None:
                ys.append(y)
        extras = {"eta": torch.cat(etas, 2), "alpha": torch.cat(alphas, 2)}
        if stats:
            extras["surprise"] = torch.cat(surprises, 2)
        return (torch.cat(ys, 2) if ys else None), FastWeights(weights), extras

    def _record(self, extras):
        self.hook_eta(extras["eta"])
        self.hook_alpha(extras["alpha"])
        if "surprise" in extras:
            self.hook_surprise(extras["surprise"])

    def write(self, k, v) -> None:
        if self._state is None:
            self.reset(k.shape[0])
        _, self._state, extras = self.scan(self._state, None, k, v, stats=listened(self.hook_surprise))
        self._record(extras)

    def read(self, q):
        """M_memory(q) at the current state (after every write so far), whatever `read_order` is."""
        self._check(q, "q")
        if self._state is None:
            self.reset(q.shape[0])
        weights = [w[:, -self.heads:] for w in self._state.weights]     # the output memory
        return mlp_apply(weights, F.normalize(q, dim=-1), residual=True)[0]

    def forward(self, q, k, v):
        """Causal pass over fresh memories; q, k, v: (B, H, T, d) with k, v the inputs x."""
        y, state, extras = self.scan(self.start(k.shape[0]), q, k, v, stats=listened(self.hook_surprise))
        self._state = state.detach()          # keep the final state, not the autograd graph
        self._record(extras)
        return self.hook_out(y)


def hope_chunk(weights: list, xk, xv, q, gates: tuple, eta_max: float, read_order: str, radius: float,
               stats: bool):
    """One chunk of `SelfModifyingMemory.scan`, every quantity at the chunk-start memories.

    weights: [W_2, W_1] of the five memories stacked along the head axis (B, 5·H, out, in), in the
    order of MEMORIES; xk, xv: the normalised inputs (B, H, b, d); q: normalised queries or None;
    gates: (w_η, b_η, w_α, b_α); radius > 0: "bounded" (v ℓ2-normalised like k, and each fast-weight
    matrix scaled back into the ball ‖W‖_F ≤ radius after the chunk), 0: unbounded. k, v, η, α come
    from the first four memories (the output memory's own read of x is never used, so it is not
    computed); every memory □ writes its target v̂_□ = M_□(v) by `chunk_step` with λ = 1 (delta
    gradient descent with retention, REFERENCE.md §4)
    and the output memory is read. Returns (y or None, new weights, η, α, surprise of the output
    memory or None).
    """
    eta_readout, eta_bias, alpha_readout, alpha_bias = gates
    n, heads = len(MEMORIES), xk.shape[1]
    generators = [w[:, :-heads] for w in weights]                 # M_k, M_v, M_η, M_α
    key, value, eta, alpha = mlp_apply(generators, torch.cat((xk, xv, xk, xk), 1), residual=True)[0].chunk(n - 1, 1)
    k = F.normalize(key, dim=-1)
    if radius:
        value = F.normalize(value, dim=-1)
    eta = eta_max * torch.sigmoid((eta * eta_readout[:, None]).sum(-1) + eta_bias[:, None])
    alpha = torch.sigmoid((alpha * alpha_readout[:, None]).sum(-1) + alpha_bias[:, None])
    targets = mlp_apply(weights, torch.cat([value] * n, 1), residual=True)[0]    # v̂_□ = M_□(v)
    y, weights, _, surprise, _ = chunk_step(
        weights, None, torch.cat([k] * n, 1), targets, q, torch.cat([eta] * n, 1), torch.cat([alpha] * n, 1), None,
        True, 1.0, read_order, heads if stats else 0)
    if radius:                                                    # the ball: ‖W‖_F ≤ radius, each matrix
        weights = [w * (radius / w.flatten(-2).norm(dim=-1).clamp_min(radius))[..., None, None] for w in weights]
    return y, weights, eta, alpha, surprise


compiled_hope_chunk = Compiled(hope_chunk, "self_modifying.hope_chunk")


register(MemoryEntry(
    key="self_modifying", label="self-modifying Titans (HOPE)", color=ARCH_COLORS["hope"], order=45,
    cls=SelfModifyingMemory, described_by="REFERENCE.md §4 (HOPE's sequence mixer), not a row of the §1 table",
    not_runnable="it generates its own keys and values from each token (REFERENCE.md §4), so it cannot be "
                 "handed key/value pairs; it runs inside HOPE (lab.models.hope)"))
