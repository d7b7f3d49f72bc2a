"""Experience replay, the classical continual-learning baseline any architecture can use."""
from __future__ import annotations

import torch


class ReplayBuffer:
    """Experience replay (the classical baseline): a reservoir of past training sequences.

    Each step, a `fraction` of the batch is replaced by sequences drawn from the buffer that
    belong to other tasks than the current one (none while there are none), and `extra` more such
    sequences are appended to it (what replay can do for a batch of one document, where half a
    batch rounds to nothing). Reservoir sampling keeps a uniform sample of everything seen, within
    `capacity` sequences.
    """

    def __init__(self, capacity: int, seed: int):
        self.capacity = capacity
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.inputs: torch.Tensor | None = None
        self.targets: torch.Tensor | None = None
        self.tasks: torch.Tensor | None = None
        self.seen = 0

    def add(self, inputs, targets, task: int) -> None:
        for i in range(inputs.shape[0]):
            row = (inputs[i:i + 1], targets[i:i + 1], torch.tensor([task]))
            if self.inputs is None:
                self.inputs, self.targets, self.tasks = row
            elif self.inputs.shape[0] < self.capacity:
                self.inputs = torch.cat([self.inputs, row[0]])
                self.targets = torch.cat([self.targets, row[1]])
                self.tasks = torch.cat([self.tasks, row[2]])
            else:
                j = int(torch.randint(self.seen + 1, (1,), generator=self.generator))
                if j < self.capacity:
                    self.inputs[j], self.targets[j], self.tasks[j] = row[0][0], row[1][0], task
            self.seen += 1

    def mix(self, inputs, targets, task: int, fraction: float, extra: int = 0):
        if self.inputs is None:
            return inputs, targets
        others = (self.tasks != task).nonzero().flatten()
        n = min(int(round(fraction * inputs.shape[0])), len(others))
        if n:
            pick = others[torch.randperm(len(others), generator=self.generator)[:n]]
            inputs, targets = inputs.clone(), targets.clone()
            inputs[-n:], targets[-n:] = self.inputs[pick], self.targets[pick]
        k = min(extra, len(others))
        if k:
            pick = others[torch.randperm(len(others), generator=self.generator)[:k]]
            inputs, targets = torch.cat([inputs, self.inputs[pick]]), torch.cat([targets, self.targets[pick]])
        return inputs, targets

    def state(self) -> dict:
        return {"inputs": self.inputs, "targets": self.targets, "tasks": self.tasks, "seen": self.seen,
                "generator": self.generator.get_state()}

    def load(self, state: dict) -> None:
        self.inputs, self.targets, self.tasks = state["inputs"], state["targets"], state["tasks"]
        self.seen = state["seen"]
        self.generator.set_state(state["generator"])
