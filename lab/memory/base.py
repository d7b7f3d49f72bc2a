"""One interface for every associative memory (REFERENCE.md §1).

A memory maps keys to values by (approximately) solving an inner objective over what it was
written. All memories here are batched over a batch dimension B and a head dimension H:

    keys    k: (B, H, N, d_key)      values v: (B, H, N, d_value)
    queries q: (B, H, M, d_key)      reads  y: (B, H, M, d_value)

`write(k, v, ...)` stores N pairs in order (token by token for the recurrent ones),
`read(q)` retrieves without changing the state, `inner_loss(k, v)` evaluates the memory's own
inner objective on pairs at the current state, `state()` returns the tensors that make up the
memory, `reset(...)` empties it. `forward(q, k, v)` runs a causal sequence: at each position
t it writes (k_t, v_t) and then reads q_t (read-after-write, so y_t sees token t).

Memories are torch modules so that models can hold learnable initial states and gates; the
state itself is plain tensors (fast weights), differentiable for the outer optimizer.
"""
from __future__ import annotations

import abc
from typing import ClassVar

import torch
from torch import nn


class AssociativeMemory(nn.Module, abc.ABC):
    #: registry name, e.g. "delta"
    name: ClassVar[str] = ""

    @abc.abstractmethod
    def reset(self, batch: int, heads: int, d_key: int, d_value: int,
              device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> None:
        """Empty the memory for a new batch of sequences."""

    @abc.abstractmethod
    def write(self, k: torch.Tensor, v: torch.Tensor, **gates: torch.Tensor) -> None:
        ...

    @abc.abstractmethod
    def read(self, q: torch.Tensor) -> torch.Tensor:
        ...

    @abc.abstractmethod
    def state(self) -> dict[str, torch.Tensor]:
        ...

    def inner_loss(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Default: squared recall error per pair, (B, H, N). Memories override with their own."""
        return (self.read(k) - v).pow(2).sum(-1)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **gates) -> torch.Tensor:
        """Causal pass: y_t = read_after_writing(k_<=t, v_<=t)(q_t). Slow generic loop;
        memories with a parallel form override it."""
        B, H, T, dk = k.shape
        self.reset(B, H, dk, v.shape[-1], device=k.device, dtype=k.dtype)
        outs = []
        for t in range(T):
            step_gates = {name: g[:, :, t:t + 1] for name, g in gates.items()}
            self.write(k[:, :, t:t + 1], v[:, :, t:t + 1], **step_gates)
            outs.append(self.read(q[:, :, t:t + 1]))
        return torch.cat(outs, dim=2)


class MatrixMemory(AssociativeMemory):
    """A memory whose whole state is one matrix M: (B, H, d_value, d_key) (Hebbian, delta rule)."""

    M: torch.Tensor | None = None

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


def token_gate(name: str, gate: torch.Tensor | None, default: float, k: torch.Tensor,
               valid, allowed: str) -> torch.Tensor:
    """A per-token gate (B, H, N) from a tensor, or the constant `default`; checked with `valid`."""
    if gate is None:
        return k.new_full(k.shape[:3], default)
    if gate.shape != k.shape[:3]:
        raise ValueError(f"{name} gate must have shape (B, H, N) = {tuple(k.shape[:3])}, got {tuple(gate.shape)}")
    if not bool(valid(gate).all()):
        raise ValueError(f"{name} gate values must be in {allowed}, got min "
                         f"{gate.min().item():.4g}, max {gate.max().item():.4g}")
    return gate
