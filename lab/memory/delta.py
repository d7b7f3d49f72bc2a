"""DeltaNet: a matrix memory written by the delta rule (REFERENCE.md §1, row 3)."""
from __future__ import annotations

import torch

from lab.config import ConfigError
from lab.memory.base import AssociativeMemory


class DeltaRuleMemory(AssociativeMemory):
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

    # --- state --------------------------------------------------------------------------
    def reset(self, batch, heads, d_key, d_value, device=None, dtype=torch.float32):
        self.M = torch.zeros(batch, heads, d_value, d_key, device=device, dtype=dtype)

    def state(self) -> dict[str, torch.Tensor]:
        return {"M": self.M}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Set the matrix directly: {"M": (B, H, d_value, d_key)} (e.g. a learned initial state)."""
        M = state["M"]
        if M.dim() != 4:
            raise ValueError(f"M must have shape (B, H, d_value, d_key), got {tuple(M.shape)}")
        self.M = M

    def _gate(self, beta, k: torch.Tensor) -> torch.Tensor:
        """Per-token write rate β, (B, H, N), from the gate tensor or the constructor's float."""
        if beta is None:
            return k.new_full(k.shape[:3], self.beta)
        if beta.shape != k.shape[:3]:
            raise ValueError(f"beta gate must have shape (B, H, N) = {tuple(k.shape[:3])}, "
                             f"got {tuple(beta.shape)}")
        if not bool(((beta > 0) & (beta < 2)).all()):
            raise ValueError(f"beta gate values must be in (0, 2), got min "
                             f"{beta.min().item():.4g}, max {beta.max().item():.4g}")
        return beta

    def _check(self, k: torch.Tensor, v: torch.Tensor) -> None:
        if k.dim() != 4 or v.dim() != 4 or k.shape[:3] != v.shape[:3]:
            raise ValueError(f"k (B, H, N, d_key) and v (B, H, N, d_value) must be 4-d and agree "
                             f"on (B, H, N), got k {tuple(k.shape)}, v {tuple(v.shape)}")
        if self.M is None:
            self.reset(k.shape[0], k.shape[1], k.shape[-1], v.shape[-1], k.device, k.dtype)
        B, H, dv, dk = self.M.shape
        if k.shape[:2] != (B, H) or k.shape[-1] != dk or v.shape[-1] != dv:
            raise ValueError(f"k and v must have shapes ({B}, {H}, N, {dk}) and ({B}, {H}, N, "
                             f"{dv}) to match the memory, got {tuple(k.shape)}, {tuple(v.shape)}")

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
