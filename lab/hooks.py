"""Hook points, TransformerLens style: an identity module at every activation worth seeing.

A model places `HookPoint()` modules where a probe may want to look (`self.hook_out(x)`),
and `name_hook_points(model)` gives each one its path in the module tree, exactly as PyTorch
names it (`blocks.0.cms.levels.2.hook_out`, `blocks.1.memory.hook_surprise`, ...): a hook point, a
parameter (`blocks.0.cms.levels.2.up.weight`) and a captured activation are named alike, as in
TransformerLens. Probes attach forward hooks to them by name (`lab.probes`); the model code
knows nothing of who listens.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable

import torch
from torch import nn


class HookPoint(nn.Module):
    """Identity. Its name is its path in the model, set by `name_hook_points`."""

    def __init__(self):
        super().__init__()
        self.name: str = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @property
    def listened(self) -> bool:
        """Whether a probe listens here, by a forward hook or pre-hook (a model may then compute what
        it otherwise skips; global module hooks of torch are not seen, and the lab uses none)."""
        return bool(self._forward_hooks or self._forward_pre_hooks)

    def extra_repr(self) -> str:
        return self.name


def name_hook_points(model: nn.Module) -> list[str]:
    """Name every HookPoint by its module path (`blocks.0.cms.levels.1.hook_out`)."""
    names = []
    for path, module in model.named_modules():
        if isinstance(module, HookPoint):
            module.name = path
            names.append(path)
    return names


def hook_points(model: nn.Module) -> dict[str, HookPoint]:
    return {m.name: m for m in model.modules() if isinstance(m, HookPoint) and m.name}


@contextmanager
def capture(model: nn.Module, names: Iterable[str] | Callable[[str], bool] | None = None):
    """Record the output of hook points during the forward passes inside the block.

        with capture(model, ["blocks.0.cms.levels.0.hook_out"]) as cache:
            model(tokens)
        cache["blocks.0.cms.levels.0.hook_out"]  # detached tensor

    `names` may be a list, a predicate on the name, or None for every hook point.
    Unknown names raise KeyError listing the known ones.
    """
    points = hook_points(model)
    if names is None:
        chosen = list(points)
    elif callable(names):
        chosen = [n for n in points if names(n)]
    else:
        chosen = list(names)
        missing = [n for n in chosen if n not in points]
        if missing:
            raise KeyError(f"unknown hook point {missing[0]!r}; known: {', '.join(sorted(points))}")
    cache: dict[str, torch.Tensor] = {}
    handles = []
    for name in chosen:
        def record(_module, _inputs, output, name=name):
            cache[name] = output.detach()
        handles.append(points[name].register_forward_hook(record))
    try:
        yield cache
    finally:
        for h in handles:
            h.remove()
