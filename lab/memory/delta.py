"""DeltaNet: a matrix memory written by the delta rule (REFERENCE.md §1, row 3)."""
from __future__ import annotations

import torch

from lab.config import ConfigError
from lab.memory.base import MatrixMemory, token_gate
from lab.memory.registry import CatalogRow, MemoryEntry, register
from lab.viz.palette import TASK_COLORS


class DeltaRuleMemory(MatrixMemory):
    """The delta rule = one GD step per token on the squared recall error.

    REFERENCE.md §1, row "DeltaNet": pairs k_t -> v_t, matrix memory M (B, H, d_value, d_key),
    inner objective ℓ(M) = ½‖M k_t − v_t‖², gradient ∇ = (M k_t − v_t) k_tᵀ. One GD step with
    learning rate β,  M_t = M_{t−1} − β ∇ = M_{t−1}(I − β k_t k_tᵀ) + β v_t k_tᵀ,  is the write.
    Read: y = M q (no feature map).

    Choices made here: β is the constructor's `beta` unless `write`/`forward` get a per-token gate
    `beta` (B, H, N), which then replaces it. β must lie in (0, 2): for unit-norm keys the factor
    (1 − β‖k‖²) along k then has magnitude < 1, so a write never amplifies what is stored (DeltaNet
    itself uses β = sigmoid(·) in (0, 1)). Keys are used as given; ℓ2-normalise them upstream
    for that guarantee. `forward` is read-after-write and loops over tokens (the rule is
    sequential), vectorised over B and H.
    """

    name = "delta"

    def __init__(self, beta: float = 0.5):
        super().__init__()
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 < beta < 2:
            raise ConfigError(type(self).__name__, "beta", beta, "must be in (0, 2)")
        self.beta = float(beta)
        self.M: torch.Tensor | None = None   # (B, H, d_value, d_key)

    def _gate(self, beta, k: torch.Tensor) -> torch.Tensor:
        """Per-token write rate β, (B, H, N), from the gate tensor or the constructor's float."""
        return token_gate("beta", beta, self.beta, k, lambda g: (g > 0) & (g < 2), "(0, 2)")

    # --- write / read / inner loss ------------------------------------------------------
    @staticmethod
    def _step(M, k_t, v_t, beta_t):
        """One delta-rule step. M (B,H,dv,dk), k_t (B,H,dk), v_t (B,H,dv), beta_t (B,H)."""
        err = torch.einsum("bhvk,bhk->bhv", M, k_t) - v_t               # M k_t − v_t, (B,H,dv)
        return M - beta_t[..., None, None] * err[..., :, None] * k_t[..., None, :]

    def write(self, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor | None = None) -> None:
        """Token by token: M_t = M_{t−1} − β_t (M_{t−1} k_t − v_t) k_tᵀ."""
        self._check(k, v)
        b = self._gate(beta, k)
        M = self.M
        for t in range(k.shape[2]):
            M = self._step(M, k[:, :, t], v[:, :, t], b[:, :, t])
        self.M = M

    def read(self, q: torch.Tensor) -> torch.Tensor:
        if self.M is None:
            raise RuntimeError("DeltaRuleMemory: call reset(...) or write(...) first")
        B, H, _, dk = self.M.shape
        if q.dim() != 4 or q.shape[:2] != (B, H) or q.shape[-1] != dk:
            raise ValueError(f"q must have shape ({B}, {H}, M, {dk}), got {tuple(q.shape)}")
        return torch.einsum("bhvk,bhmk->bhmv", self.M, q)               # (B, H, M, d_value)

    def inner_loss(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """½‖M k_i − v_i‖² per pair, (B, H, N)."""
        return 0.5 * (self.read(k) - v).pow(2).sum(-1)

    # --- causal pass --------------------------------------------------------------------
    def forward(self, q, k, v, beta: torch.Tensor | None = None) -> torch.Tensor:
        """From an empty memory, y_t = M_t q_t (read-after-write); q, k (B,H,T,dk), v (B,H,T,dv).
        Inputs are checked once, then one step per token; leaves M = M_T."""
        self.M = None
        self._check(k, v)
        if q.shape != k.shape:
            raise ValueError(f"q must have the shape of k {tuple(k.shape)}, got {tuple(q.shape)}")
        b, M, outs = self._gate(beta, k), self.M, []
        for t in range(k.shape[2]):
            M = self._step(M, k[:, :, t], v[:, :, t], b[:, :, t])
            outs.append(torch.einsum("bhvk,bhk->bhv", M, q[:, :, t]))   # (B, H, d_value)
        self.M = M
        return torch.stack(outs, dim=2)                                  # (B, H, T, d_value)


register(MemoryEntry(
    key="delta", label="DeltaNet (delta rule)", color=TASK_COLORS[2], order=30, cls=DeltaRuleMemory,
    knobs=("write_strength",), build=lambda stream, params: DeltaRuleMemory(beta=params.write_strength),
    row=CatalogRow(
        component="DeltaNet", keys_values=r"k_t \to v_t", memory="matrix M",
        objective=r"\tfrac12\lVert M k_t - v_t\rVert^2", solved_by="one GD step, rate β",
        update=r"M_t = M_{t-1}(I - \beta k_t k_t^\top) + \beta v_t k_t^\top", frequency="every token",
        note="the delta rule")))
