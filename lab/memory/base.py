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
