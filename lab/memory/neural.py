"""Titans neural long-term memory (REFERENCE.md §2).

An MLP memory M (depth ≥ 1) written at test time by gradient steps on ‖M(k_t) − v_t‖²,
with momentum of surprise and forgetting:

    S_t = η_t S_{t−1} − θ_t ∇ℓ(M_{t−1}; k_t, v_t)        (η: how long surprise lasts, θ: write strength)
    M_t = (1 − α_t) M_{t−1} + S_t                          (α: forgetting)
    y_t = M_t(q_t)                                         (retrieval, no update)

Gates are given per token, shape (B, H, T), by the model (sigmoids of linear maps of x_t); when
absent the constructor's constants are used. Two modes: `"token"` runs the rule token by token,
`"chunk"` takes every gradient of a chunk of `chunk_size` tokens at the chunk-start memory
(Titans' parallel training, see `lab.memory.fast_weights`). `mode_difference` measures how far the
two modes disagree on the same input: a teaching point, not something to hide.

Choices left open by the paper: the memory's initial weights are learned by the outer optimizer
(shared across the batch); depth-2 memories have hidden width `hidden` (default 2·d_key) and SiLU;
read-after-write; no residual connection inside the memory.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lab.hooks import HookPoint
from lab.memory.base import AssociativeMemory
from lab.memory.fast_weights import (CarriesState, FastWeights, listened, mlp_apply, scan_chunks, scan_tokens,
                                     token_grads)
from lab.memory.registry import CatalogRow, MemoryEntry, register
from lab.viz.palette import ARCH_COLORS, TASK_COLORS


def _check_gate(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):
        raise ValueError(f"{name} = {value!r} is not allowed: must be between {lo} and {hi}")


class NeuralMemory(CarriesState, AssociativeMemory):
    name = "titans"

    def __init__(self, d_key: int, d_value: int | None = None, heads: int = 1, depth: int = 2,
                 hidden: int | None = None, mode: str = "chunk", chunk_size: int = 16,
                 momentum: bool = True, theta: float = 0.1, eta: float = 0.9, alpha: float = 0.01,
                 residual: bool = False):
        super().__init__()
        d_value = d_value or d_key
        if depth < 1:
            raise ValueError(f"depth = {depth!r} is not allowed: must be at least 1")
        if mode not in ("token", "chunk"):
            raise ValueError(f"mode = {mode!r} is not allowed: must be 'token' or 'chunk'")
        if chunk_size < 1:
            raise ValueError(f"chunk_size = {chunk_size!r} is not allowed: must be at least 1")
        _check_gate("theta", theta, 0.0, 10.0)
        _check_gate("eta", eta, 0.0, 1.0)
        _check_gate("alpha", alpha, 0.0, 1.0)
        self.d_key, self.d_value, self.heads, self.depth = d_key, d_value, heads, depth
        self.mode, self.chunk_size, self.use_momentum = mode, chunk_size, momentum
        self.theta, self.eta, self.alpha, self.residual = theta, eta, alpha, residual
        if residual and d_key != d_value:
            raise ValueError("residual memories need d_key == d_value")
        hidden = hidden or 2 * d_key
        dims = [d_key] + [hidden] * (depth - 1) + [d_value]
        self.init_weights = nn.ParameterList(
            nn.Parameter(torch.randn(heads, dims[i + 1], dims[i]) / math.sqrt(dims[i]))
            for i in range(depth))
        self.hook_surprise = HookPoint()   # ‖∇ℓ‖ per token, (B, H, T)
        self.hook_loss = HookPoint()       # ℓ per token before its update, (B, H, T)
        self.hook_out = HookPoint()        # reads, (B, H, T, d_value)
        self._state: FastWeights | None = None

    # --- state ---------------------------------------------------------------------------
    def initial_state(self, batch: int) -> FastWeights:
        weights = [w.unsqueeze(0).expand(batch, *w.shape) for w in self.init_weights]
        momentum = [torch.zeros_like(w) for w in weights] if self.use_momentum else None
        return FastWeights(weights, momentum)

    def reset(self, batch, heads=None, d_key=None, d_value=None, device=None, dtype=torch.float32):
        if heads not in (None, self.heads) or d_key not in (None, self.d_key) or d_value not in (None, self.d_value):
            raise ValueError(f"this memory was built for heads={self.heads}, d_key={self.d_key}, "
                             f"d_value={self.d_value}; got heads={heads}, d_key={d_key}, d_value={d_value}")
        self._state = self.initial_state(batch)

    def keep_state(self, state: FastWeights) -> None:
        """Hold `state` (detached) as the memory's current state, e.g. after a model ran `scan`
        itself segment by segment; `state()` then shows it."""
        self._state = state.detach()

    def state(self) -> dict[str, torch.Tensor]:
        if self._state is None:
            raise RuntimeError("the memory is empty: call reset(batch) first")
        out = {f"W{l + 1}": w for l, w in enumerate(self._state.weights)}
        if self._state.momentum is not None:
            out.update({f"S{l + 1}": s for l, s in enumerate(self._state.momentum)})
        return out

    # --- the interface -------------------------------------------------------------------
    def _gates(self, k, theta, eta, alpha):
        B, H, T, _ = k.shape

        def full(g, const):
            return torch.full((B, H, T), const, dtype=k.dtype, device=k.device) if g is None else g
        return full(theta, self.theta), full(eta, self.eta), 1 - full(alpha, self.alpha)

    def _check(self, x: torch.Tensor, d: int, what: str) -> None:
        if x.dim() != 4 or x.shape[1] != self.heads or x.shape[-1] != d:
            raise ValueError(f"{what} must have shape (B, {self.heads}, T, {d}); got {tuple(x.shape)}")

    def scan(self, state: FastWeights, q, k, v, theta=None, eta=None, alpha=None, mode=None, stats=True):
        """Run the update over a sequence from `state`. Returns (y, new_state, surprise, loss); with
        stats=False (chunk mode) the surprise and the loss are skipped and returned as None."""
        self._check(k, self.d_key, "k")
        self._check(v, self.d_value, "v")
        th, et, ret = self._gates(k, theta, eta, alpha)
        et = et if self.use_momentum else None
        mode = mode or self.mode
        if mode == "token":
            return scan_tokens(state, k, v, q, th, ret, et, residual=self.residual)
        return scan_chunks(state, k, v, q, th, ret, et, chunk_size=self.chunk_size, residual=self.residual,
                           stats=stats)

    def write(self, k, v, theta=None, eta=None, alpha=None) -> None:
        if self._state is None:
            self.reset(k.shape[0])
        stats = self.stats_wanted()
        _, self._state, surprise, loss = self.scan(self._state, None, k, v, theta, eta, alpha, stats=stats)
        self._record(surprise, loss)

    def read(self, q):
        self._check(q, self.d_key, "q")
        if self._state is None:
            self.reset(q.shape[0])
        return mlp_apply(self._state.weights, q, self.residual)[0]

    def inner_loss(self, k, v):
        return token_grads(self._state.weights, k, v, self.residual, 0.0)[2]

    def forward(self, q, k, v, theta=None, eta=None, alpha=None):
        """Causal pass over a fresh memory: y_t = M_t(q_t). Shapes (B, H, T, d)."""
        self._check(q, self.d_key, "q")
        y, state, surprise, loss = self.scan(self.start(k.shape[0]), q, k, v, theta, eta, alpha,
                                             stats=self.stats_wanted())
        self.keep_state(state)                # keep the final state, not the autograd graph
        self._record(surprise, loss)
        return self.hook_out(y)

    def stats_wanted(self) -> bool:
        """Whether a probe listens to the surprise or the inner loss (else they are not computed)."""
        return listened(self.hook_surprise, self.hook_loss)

    def _record(self, surprise, loss) -> None:
        if surprise is not None:
            self.hook_surprise(surprise)
            self.hook_loss(loss)

    @torch.no_grad()
    def mode_difference(self, q, k, v, theta=None, eta=None, alpha=None, chunk_size=None) -> dict:
        """Largest |y_token − y_chunk| and its size relative to the outputs, on the same input."""
        state = self.initial_state(k.shape[0])
        y_tok = self.scan(state, q, k, v, theta, eta, alpha, mode="token")[0]
        saved = self.chunk_size
        self.chunk_size = chunk_size or saved
        try:
            y_chunk = self.scan(state, q, k, v, theta, eta, alpha, mode="chunk")[0]
        finally:
            self.chunk_size = saved
        diff = (y_tok - y_chunk).abs().max().item()
        return {"chunk_size": chunk_size or saved, "max_abs_diff": diff,
                "relative": diff / max(y_tok.abs().max().item(), 1e-12)}


def _explorer_memory(depth: int):
    """How the explorer builds a Titans memory of `depth` layers on a key/value stream: token by
    token, θ = β/2 (Titans' loss has no ½, so one layer without momentum or decay is exactly
    DeltaNet), η = the momentum knob (0 = off), α = 1 − decay. One layer starts empty (a zero
    matrix, like the matrix memories); two layers start from the initial weights NeuralMemory
    draws, seeded by the stream's seed (an all-zero MLP has no gradient)."""
    def build(stream, params) -> NeuralMemory:
        with torch.random.fork_rng(devices=[]):               # seeded, and the global RNG untouched
            torch.manual_seed(stream.seed)
            memory = NeuralMemory(stream.d_key, stream.d_value, heads=1, depth=depth, mode="token",
                                  momentum=params.momentum > 0, theta=params.write_strength / 2,
                                  eta=params.momentum, alpha=1.0 - params.decay)
        if depth == 1:
            with torch.no_grad():
                memory.init_weights[0].zero_()
        return memory
    return build


TITANS_KNOBS = ("decay", "momentum", "write_strength")
register(MemoryEntry(
    key="titans", label="Titans memory, 1 layer", color=ARCH_COLORS["titans"], order=40, cls=NeuralMemory,
    knobs=TITANS_KNOBS, build=_explorer_memory(1),
    row=CatalogRow(
        component="Titans neural memory", keys_values=r"k_t \to v_t", memory="MLP, L_M ≥ 1 layers",
        objective=r"\lVert M(k_t) - v_t\rVert^2", solved_by="GD with momentum and weight decay",
        update=r"S_t = \eta S_{t-1} - \theta \nabla\ell(M_{t-1}; k_t, v_t),\quad M_t = (1-\alpha) M_{t-1} + S_t",
        frequency="every token (or every chunk of b tokens, gradients at the chunk start)")))
register(MemoryEntry(
    key="titans_mlp", label="Titans memory, 2-layer MLP", color=TASK_COLORS[4], order=41, cls=NeuralMemory,
    knobs=TITANS_KNOBS, build=_explorer_memory(2), described_by="titans"))
