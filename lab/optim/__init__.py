"""Optimizers by name: the one switch the engine, the CLI and the app use.

`make_optimizer(name, named_params, lr, weight_decay)` returns a torch optimizer.
"""
from __future__ import annotations

import torch

from lab.config import ConfigError

OPTIMIZERS = ("adamw", "sgd")


def make_optimizer(name: str, named_params: list[tuple[str, torch.nn.Parameter]], lr: float,
                   weight_decay: float = 0.0, beta2: float = 0.99) -> torch.optim.Optimizer:
    params = [p for _, p in named_params]
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, beta2), weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    raise ConfigError("optimizer", "name", name, f"must be one of {', '.join(OPTIMIZERS)}")
