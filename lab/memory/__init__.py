"""Associative memories, one interface (`lab.memory.base.AssociativeMemory`), each registered once
beside its class (`lab.memory.registry`): read `registry.entries()` for all of them.

`MEMORIES` (key → class) is read from the registry when asked for, so a memory added as a new
module of this package is in it without an edit here.
"""
from lab.memory.base import AssociativeMemory
from lab.memory.delta import DeltaRuleMemory
from lab.memory.hebbian import HebbianMemory
from lab.memory.neural import NeuralMemory
from lab.memory.registry import memory_classes
from lab.memory.self_modifying import SelfModifyingMemory
from lab.memory.softmax import SoftmaxAttentionMemory


def __getattr__(name: str):
    if name == "MEMORIES":
        return memory_classes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MEMORIES", "AssociativeMemory", "SoftmaxAttentionMemory", "HebbianMemory", "DeltaRuleMemory",
           "NeuralMemory", "SelfModifyingMemory"]
