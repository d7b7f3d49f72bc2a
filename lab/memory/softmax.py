"""Softmax attention as a non-parametric associative memory (REFERENCE.md §1, row 1)."""
from __future__ import annotations

import math

import torch

from lab.config import ConfigError
from lab.memory.base import AssociativeMemory
from lab.memory.registry import CatalogRow, MemoryEntry, register
from lab.viz.palette import ARCH_COLORS


class SoftmaxAttentionMemory(AssociativeMemory):
    """Softmax attention = the closed-form solution of a weighted regression.

    REFERENCE.md §1, row "softmax attention": keys k_i -> values v_i over the context, no
    parameters; inner objective  L(m; q) = Σ_i s(k_i, q)·‖v_i − m‖²,  s = exp(q·k_i·scale),
    solved in closed form by m* = Σ_i softmax(q·k·scale)_i v_i (Nadaraya–Watson).

    Choices made here (not fixed by the papers):
    - `scale` defaults to 1/sqrt(d_key), fixed at the first `reset`/`write`.
    - `window=c`: a read sums over the last c stored pairs only. Older pairs can never be
      read again, so `write` drops them from the state (the state holds ≤ c pairs).
    - `forward` is read-after-write: y_t attends to tokens max(0, t−c+1) … t, including t.
    - Reading an empty memory returns zeros (the minimiser of an empty objective is undefined).
    - `regression_objective` uses the raw, unshifted exp(q·k·scale), as in the formula; it can
      overflow for large scores (use float64 or small inputs when inspecting it).
    """

    name = "softmax"

    def __init__(self, window: int | None = None, scale: float | None = None):
        super().__init__()
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window < 1):
            raise ConfigError(type(self).__name__, "window", window,
                              "must be None (full context) or an integer of at least 1")
        if scale is not None and not (isinstance(scale, (int, float)) and math.isfinite(scale)
                                      and scale > 0):
            raise ConfigError(type(self).__name__, "scale", scale,
                              "must be None (1/sqrt(d_key)) or a finite number > 0")
        self.window, self._scale = window, scale
        self.keys: torch.Tensor | None = None     # (B, H, N, d_key)
        self.values: torch.Tensor | None = None   # (B, H, N, d_value)

    # --- state --------------------------------------------------------------------------
    def reset(self, batch, heads, d_key, d_value, device=None, dtype=torch.float32):
        self.keys = torch.zeros(batch, heads, 0, d_key, device=device, dtype=dtype)
        self.values = torch.zeros(batch, heads, 0, d_value, device=device, dtype=dtype)

    def state(self) -> dict[str, torch.Tensor]:
        return {"keys": self.keys, "values": self.values}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Set stored pairs directly, e.g. {"keys": (B,H,N,dk), "values": (B,H,N,dv)}."""
        self.reset(*state["keys"].shape[:2], state["keys"].shape[-1],
                   state["values"].shape[-1], state["keys"].device, state["keys"].dtype)
        self.write(state["keys"], state["values"])

    def scale_for(self, d_key: int) -> float:
        return self._scale if self._scale is not None else 1.0 / math.sqrt(d_key)

    # --- write / read -------------------------------------------------------------------
    def write(self, k: torch.Tensor, v: torch.Tensor, **gates: torch.Tensor) -> None:
        if gates:
            raise ValueError(f"SoftmaxAttentionMemory.write takes no gates, got {sorted(gates)}")
        _check_pairs(k, v)
        if self.keys is None:
            self.reset(k.shape[0], k.shape[1], k.shape[-1], v.shape[-1], k.device, k.dtype)
        _check_matches("k", k, self.keys)
        _check_matches("v", v, self.values)
        keys = torch.cat([self.keys, k], dim=2)            # (B, H, N_old + N, d_key)
        values = torch.cat([self.values, v], dim=2)        # (B, H, N_old + N, d_value)
        if self.window is not None:
            keys, values = keys[:, :, -self.window:], values[:, :, -self.window:]
        self.keys, self.values = keys, values

    def _scores(self, q: torch.Tensor) -> torch.Tensor:
        """q·k_i·scale for every query and stored key: (B, H, M, N)."""
        if self.keys is None:
            raise RuntimeError("SoftmaxAttentionMemory: call reset(...) or write(...) first")
        _check_matches("q", q, self.keys)
        return q @ self.keys.transpose(-1, -2) * self.scale_for(q.shape[-1])

    def attention_weights(self, q: torch.Tensor) -> torch.Tensor:
        """softmax over stored pairs for each query, (B, H, M, N); for attention-map plots."""
        return torch.softmax(self._scores(q), dim=-1)

    def read(self, q: torch.Tensor) -> torch.Tensor:
        if self.keys is not None and self.keys.shape[2] == 0:
            _check_matches("q", q, self.keys)
            return q.new_zeros(*q.shape[:3], self.values.shape[-1])
        return self.attention_weights(q) @ self.values      # (B, H, M, d_value)

    # --- the regression view ------------------------------------------------------------
    def regression_objective(self, q: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """Σ_i exp(q·k_i·scale)·‖v_i − m‖² for each query; q (B,H,M,dk), m (B,H,M,dv) -> (B,H,M)."""
        s = self._scores(q).exp()                                        # (B, H, M, N)
        sq_err = (self.values.unsqueeze(2) - m.unsqueeze(3)).pow(2).sum(-1)  # (B, H, M, N)
        return (s * sq_err).sum(-1)

    def closed_form_minimiser(self, q: torch.Tensor) -> torch.Tensor:
        """argmin_m of `regression_objective`: setting ∇_m = −2 Σ_i s_i (v_i − m) to zero gives
        m* = Σ_i s_i v_i / Σ_i s_i. Computed from the weights directly (shifted by the max score
        for stability; the ratio is unchanged), not through `read`. (B, H, M, d_value)."""
        scores = self._scores(q)
        s = (scores - scores.amax(-1, keepdim=True)).exp()               # (B, H, M, N)
        return (s @ self.values) / s.sum(-1, keepdim=True)

    # --- parallel causal pass -----------------------------------------------------------
    def causal_mask(self, T: int, device=None) -> torch.Tensor:
        """(T, T) bool, True where query t may attend key i: i ≤ t and i > t − window."""
        t = torch.arange(T, device=device)
        allowed = t[None, :] <= t[:, None]
        if self.window is not None:
            allowed &= t[None, :] > t[:, None] - self.window
        return allowed

    def forward(self, q, k, v, **gates) -> torch.Tensor:
        """Read-after-write over a sequence in one masked matmul; q, k (B,H,T,dk), v (B,H,T,dv).
        Leaves the memory holding the pairs it would hold after writing the whole sequence."""
        _check_pairs(k, v)
        if q.shape[:3] != k.shape[:3] or q.shape[-1] != k.shape[-1]:
            raise ValueError(f"q must have shape (B, H, T, d_key) = {tuple(k.shape)}, "
                             f"got {tuple(q.shape)}")
        self.reset(k.shape[0], k.shape[1], k.shape[-1], v.shape[-1], k.device, k.dtype)
        self.write(k, v, **gates)
        scores = q @ k.transpose(-1, -2) * self.scale_for(k.shape[-1])  # (B, H, T, T)
        scores = scores.masked_fill(~self.causal_mask(k.shape[2], k.device), float("-inf"))
        return torch.softmax(scores, dim=-1) @ v                         # (B, H, T, d_value)


def _check_pairs(k: torch.Tensor, v: torch.Tensor) -> None:
    if k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"k and v must be 4-d (B, H, N, d), got k {tuple(k.shape)}, "
                         f"v {tuple(v.shape)}")
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must agree on (B, H, N)")


def _check_matches(arg: str, x: torch.Tensor, ref: torch.Tensor) -> None:
    """x (B, H, *, d) must agree with the stored ref (B, H, *, d) on B, H and d."""
    if x.dim() != 4 or x.shape[:2] != ref.shape[:2] or x.shape[-1] != ref.shape[-1]:
        raise ValueError(f"{arg} must have shape ({ref.shape[0]}, {ref.shape[1]}, *, "
                         f"{ref.shape[-1]}) to match the memory, got {tuple(x.shape)}")


def _explorer_memory(stream, params) -> SoftmaxAttentionMemory:
    """The explorer's softmax attention: unit keys read with inverse temperature `sharpness`
    (default √d_key, what standard attention gives keys of norm √d_key) over the last `window`
    pairs (0 = all)."""
    return SoftmaxAttentionMemory(window=params.window or None, scale=params.sharpness or math.sqrt(stream.d_key))


register(MemoryEntry(
    key="softmax", label="softmax attention", color=ARCH_COLORS["transformer"], order=10,
    cls=SoftmaxAttentionMemory, knobs=("sharpness", "window"), build=_explorer_memory,
    row=CatalogRow(
        component="softmax attention", keys_values=r"k_i \to v_i \text{ over the context}",
        memory="none (non-parametric)",
        objective=r"\sum_i s(k_i,q)\,\lVert v_i - m\rVert^2,\; s = e^{q\cdot k_i/\sqrt d}",
        solved_by="closed form (Nadaraya–Watson)",
        update=r"y = \sum_i \mathrm{softmax}(q\cdot k/\sqrt d)_i\, v_i",
        frequency="every token (the context grows); a sliding window keeps the last c pairs")))
