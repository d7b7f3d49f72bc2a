"""Several torch optimizers behind one optimizer's interface.

Muon and M3 are defined for weight matrices only. `make_optimizer("muon" | "m3", ...)` splits
the parameters (`split_matrices`) and returns one `HybridOptimizer` whose parts are the matrix
optimizer and an AdamW for everything else. To the engine it is one optimizer:

* `param_groups` is the list of every part's groups (the same dicts, so changing a group's
  "lr" there changes it in the part), each tagged with "part" (e.g. "m3", "adamw");
* `step`, `zero_grad`, `state` work on all parts;
* `state_dict()` is {"parts": [names], "state_dicts": [one per part]} and `load_state_dict`
  checks the parts match before loading each one.

Which parameters count as matrices (the choice torch.optim.Muon leaves to the user): 2-D
parameters named "...weight", except embeddings (a name containing "emb"): Muon is for hidden
layers; an embedding (here tied to the output head) is a lookup table, and its rows should not
be orthogonalised against each other. Stacked per-head tensors (3-D and 4-D memory initial
states), per-head read-out vectors, learned tokens, biases and norms all go to AdamW.
"""
from __future__ import annotations

from collections import ChainMap

import torch


def is_matrix(name: str, p: torch.nn.Parameter) -> bool:
    """True for a hidden-layer weight matrix that Muon/M3 should update."""
    leaf = name.rsplit(".", 1)[-1]
    return p.dim() == 2 and leaf == "weight" and "emb" not in name


def split_matrices(named_params) -> tuple[list, list]:
    """(matrices, others), each a list of parameters, in the order given."""
    matrices, others = [], []
    for name, p in named_params:
        (matrices if is_matrix(name, p) else others).append(p)
    return matrices, others


class HybridOptimizer:
    """One optimizer made of named parts, e.g. [("muon", Muon(...)), ("adamw", AdamW(...))]."""

    def __init__(self, parts: list[tuple[str, torch.optim.Optimizer]]):
        if not parts:
            raise ValueError("HybridOptimizer needs at least one part")
        names = [n for n, _ in parts]
        if len(set(names)) != len(names):
            raise ValueError(f"part names must be distinct, got {names}")
        self.parts = list(parts)
        for name, opt in self.parts:
            for group in opt.param_groups:
                group["part"] = name

    @property
    def param_groups(self) -> list[dict]:
        return [g for _, opt in self.parts for g in opt.param_groups]

    @property
    def state(self):
        """Per-parameter state of every part (parameters are in exactly one part)."""
        return ChainMap(*(opt.state for _, opt in self.parts))

    @property
    def defaults(self) -> dict:
        return {name: opt.defaults for name, opt in self.parts}

    def part(self, name: str) -> torch.optim.Optimizer:
        for n, opt in self.parts:
            if n == name:
                return opt
        raise KeyError(f"no part {name!r}; parts are {[n for n, _ in self.parts]}")

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for _, opt in self.parts:
            opt.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for _, opt in self.parts:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"parts": [n for n, _ in self.parts], "state_dicts": [opt.state_dict() for _, opt in self.parts]}

    def load_state_dict(self, state_dict: dict) -> None:
        names = [n for n, _ in self.parts]
        if state_dict.get("parts") != names:
            raise ValueError(f"this optimizer has parts {names}, the state dict has {state_dict.get('parts')}")
        for (_, opt), sd in zip(self.parts, state_dict["state_dicts"]):
            opt.load_state_dict(sd)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}: {type(o).__name__} ({sum(len(g['params']) for g in o.param_groups)} tensors)"
                          for n, o in self.parts)
        return f"HybridOptimizer({inner})"
