"""A phase of the engine's one loop (`lab.engine.Run`): what a step trains on, and how a run that
diverges says so."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Divergence:
    step: int
    loss: float
    reason: str
    phase: str = "active"

    def message(self) -> str:
        where = f"Training stopped at step {self.step}" if self.phase == "active" else \
            f"The {self.phase} phase stopped at its iteration {self.step}"
        return (f"{where}: {self.reason} (loss = {self.loss:.4g}). "
                "The model keeps its parameters from the last good step; lower the learning rate or reset.")


@dataclass
class Phase:
    """What one step of the loop trains on: the batch source, the loss and the optimizers due.

    name        the rows' phase ("active", "sleep")
    batch       iteration (from 1) → a batch
    loss        (model, batch) → a scalar tensor to minimise
    due         iteration → [(key, optimizer)] to step after the backward pass; a key that is a
                CMS level index gets "update_norm" and "grad_norm" rows
    grad_clip   clip each due optimizer's gradient norm (0 = off)
    loss_ceiling  a loss above this stops the run (as a non-finite loss or gradient does)
    before_update  called after the backward pass (e.g. masks the gradients of frozen units)
    after_update   called with (iteration, loss value, {level: (update norm, gradient norm)})
                   after the optimizers stepped: what the phase records and does next
    """

    name: str
    batch: Callable[[int], object]
    loss: Callable[[nn.Module, object], torch.Tensor]
    due: Callable[[int], list]
    grad_clip: float = 0.0
    loss_ceiling: float = math.inf
    before_update: Callable[[], None] | None = None
    after_update: Callable[[int, float, dict], None] | None = None
