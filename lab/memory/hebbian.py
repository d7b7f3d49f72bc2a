"""Linear attention as a Hebbian matrix memory (REFERENCE.md §1, row 2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lab.config import ConfigError
from lab.memory.base import MatrixMemory, token_gate
from lab.memory.registry import CatalogRow, MemoryEntry, register
from lab.viz.palette import TASK_COLORS

FEATURE_MAPS = {
    "identity": lambda x: x,
    "elu1": lambda x: F.elu(x) + 1.0,   # positive features (Katharopoulos et al. 2020)
}


class HebbianMemory(MatrixMemory):
    """Linear attention = one GD step per token on a linear (Hebbian) objective.

    REFERENCE.md §1, row "linear attention": pairs φ(k_t) -> v_t, matrix memory
    M (B, H, d_value, d_key), inner objective ℓ(M) = −⟨M φ(k_t), v_t⟩ whose gradient is
    ∇ = −v_t φ(k_t)ᵀ. The write  M_t = α M_{t−1} + v_t φ(k_t)ᵀ  is exactly
    - for α = 1: one GD step with learning rate 1 on ℓ:  M_t = M_{t−1} − ∇;
    - for α < 1: α M_{t−1} − ∇, i.e. one GD step with learning rate 1 on
      ℓ(M) + (1−α)/2 ‖M‖²_F (decay = weight decay of the fast weights).
    Read: y = M φ(q).

    Choices made here: α is the constructor's `decay` unless `write`/`forward` get a per-token
    gate `decay` (B, H, N), which then replaces it; values must lie in (0, 1]. The decay is
    applied before the new pair is added (as in the formula). `forward` is read-after-write and
    computes y_t = Σ_{i≤t} (Π_{j=i+1..t} α_j) v_i (φ(k_i)·φ(q_t)) in parallel.
    """

    name = "hebbian"

    def __init__(self, decay: float = 1.0, feature_map: str = "identity"):
        super().__init__()
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay <= 1:
            raise ConfigError(type(self).__name__, "decay", decay, "must be in (0, 1]")
        if feature_map not in FEATURE_MAPS:
            raise ConfigError(type(self).__name__, "feature_map", feature_map,
                              f"must be one of {', '.join(FEATURE_MAPS)}")
        self.decay, self.feature_map = float(decay), feature_map
        self.phi = FEATURE_MAPS[feature_map]
        self.M: torch.Tensor | None = None   # (B, H, d_value, d_key)

    def _gate(self, decay, k: torch.Tensor) -> torch.Tensor:
        """Per-token decay α, (B, H, N), from the gate tensor or the constructor's float."""
        return token_gate("decay", decay, self.decay, k, lambda g: (g > 0) & (g <= 1), "(0, 1]")

    def _check_q(self, q: torch.Tensor) -> None:
        if self.M is None:
            raise RuntimeError("HebbianMemory: call reset(...) or write(...) first")
        B, H, _, dk = self.M.shape
        if q.dim() != 4 or q.shape[:2] != (B, H) or q.shape[-1] != dk:
            raise ValueError(f"q must have shape ({B}, {H}, M, {dk}), got {tuple(q.shape)}")

    # --- write / read / inner loss ------------------------------------------------------
    def write(self, k: torch.Tensor, v: torch.Tensor, decay: torch.Tensor | None = None) -> None:
        """Token by token: M_t = α_t M_{t−1} + v_t φ(k_t)ᵀ. k (B,H,N,dk), v (B,H,N,dv)."""
        self._check(k, v)
        alpha, fk = self._gate(decay, k), self.phi(k)
        M = self.M
        for t in range(k.shape[2]):
            outer = v[:, :, t, :, None] * fk[:, :, t, None, :]          # (B, H, dv, dk)
            M = alpha[:, :, t, None, None] * M + outer
        self.M = M

    def read(self, q: torch.Tensor) -> torch.Tensor:
        self._check_q(q)
        return torch.einsum("bhvk,bhmk->bhmv", self.M, self.phi(q))      # (B, H, M, d_value)

    def inner_loss(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """−⟨M φ(k_i), v_i⟩ per pair, (B, H, N)."""
        return -(self.read(k) * v).sum(-1)

    # --- parallel causal pass -----------------------------------------------------------
    def forward(self, q, k, v, decay: torch.Tensor | None = None) -> torch.Tensor:
        """y_t = Σ_{i≤t} exp(L_t − L_i) v_i (φ(k_i)·φ(q_t)), L_t = Σ_{j≤t} log α_j, from an empty
        memory; q, k (B,H,T,dk), v (B,H,T,dv). Leaves M = the state after writing all T pairs."""
        self.M = None
        self._check(k, v)
        if q.shape != k.shape:
            raise ValueError(f"q must have the shape of k {tuple(k.shape)}, got {tuple(q.shape)}")
        T = k.shape[2]
        fq, fk = self.phi(q), self.phi(k)
        L = torch.cumsum(torch.log(self._gate(decay, k)), dim=-1)       # (B, H, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=k.device).tril()
        log_d = (L[..., :, None] - L[..., None, :]).masked_fill(~causal, float("-inf"))
        weights = (fq @ fk.transpose(-1, -2)) * log_d.exp()              # (B, H, T, T)
        last = (L[..., -1:] - L).exp()                                   # (B, H, T): Π_{j>i} α_j
        self.M = torch.einsum("bhi,bhiv,bhik->bhvk", last, v, fk)        # (B, H, dv, dk)
        return weights @ v                                               # (B, H, T, d_value)


register(MemoryEntry(
    key="hebbian", label="linear attention (Hebbian)", color=TASK_COLORS[1], order=20, cls=HebbianMemory,
    knobs=("decay",), build=lambda stream, params: HebbianMemory(decay=params.decay),
    row=CatalogRow(
        component="linear attention", keys_values=r"\phi(k_t) \to v_t", memory="matrix M",
        objective=r"-\langle M\phi(k_t), v_t\rangle", solved_by="one GD step (rate 1) with decay α",
        update=r"M_t = \alpha M_{t-1} + v_t\,\phi(k_t)^\top,\quad y = M q", frequency="every token",
        note="Hebbian; α < 1 is weight decay (1−α)/2‖M‖² on the fast weights")))
