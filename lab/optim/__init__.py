"""Optimizers by name: the one switch the engine, the CLI and the app use.

`make_optimizer(name, named_params, lr, weight_decay, beta2)` returns something that behaves
like one torch optimizer (`step`, `zero_grad`, `param_groups`, `state_dict`, `load_state_dict`):

* "adamw": `torch.optim.AdamW`, betas (0.9, beta2).
* "sgd": plain `torch.optim.SGD`.
* "muon": `torch.optim.Muon` (momentum 0.95, Nesterov, its bfloat16 Newton–Schulz) on the
  hidden-layer weight matrices, AdamW on the rest, as one `HybridOptimizer`.
* "m3": `lab.optim.M3` on the matrices (REFERENCE.md §5), AdamW on the rest, likewise.

Which parameters are matrices: `lab.optim.hybrid.is_matrix` (2-D "...weight" tensors that
are not embeddings). Both parts get the same `lr` and `weight_decay`; the matrix part scales
its step by 0.2·√max(rows, cols) ("match_rms_adamw", Moonshot's rule) so that the engine's
AdamW rate (`RunConfig.lr`) is also a sensible Muon/M3 rate. M3 keeps its second moment off here (`M3_ENGINE`): dividing an orthogonalised step by √V makes its
size inversely proportional to the gradient's, which no AdamW rate fits (see the reply on the
associative-memory page); M3 itself takes `beta2=...` to turn it on.
"""
from __future__ import annotations

import torch

from lab.config import ConfigError
from lab.optim.hybrid import HybridOptimizer, is_matrix, split_matrices
from lab.optim.m3 import M3, newton_schulz

OPTIMIZERS = ("adamw", "sgd", "muon", "m3")
MUON_ENGINE = dict(momentum=0.95, nesterov=True, adjust_lr_fn="match_rms_adamw")
M3_ENGINE = dict(momentum=0.95, slow_momentum=0.9, slow_every=10, alpha=0.5, beta2=None,
                 adjust_lr_fn="match_rms_adamw")


def make_optimizer(name: str, named_params: list[tuple[str, torch.nn.Parameter]], lr: float,
                   weight_decay: float = 0.0, beta2: float = 0.99):
    named_params = list(named_params)
    params = [p for _, p in named_params]
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, beta2), weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name in ("muon", "m3"):
        matrices, others = split_matrices(named_params)
        parts = []
        if matrices:
            if name == "muon":
                parts.append(("muon", torch.optim.Muon(matrices, lr=lr, weight_decay=weight_decay, **MUON_ENGINE)))
            else:
                parts.append(("m3", M3(matrices, lr=lr, weight_decay=weight_decay, **M3_ENGINE)))
        if others:
            parts.append(("adamw", torch.optim.AdamW(others, lr=lr, betas=(0.9, beta2),
                                                     weight_decay=weight_decay)))
        if not parts:
            raise ValueError("make_optimizer: no parameters to optimize")
        return HybridOptimizer(parts)
    raise ConfigError("optimizer", "name", name, f"must be one of {', '.join(OPTIMIZERS)}")


__all__ = ["OPTIMIZERS", "make_optimizer", "M3", "HybridOptimizer", "newton_schulz", "is_matrix",
           "split_matrices"]
