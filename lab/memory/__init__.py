"""Associative memories, one interface (`lab.memory.base.AssociativeMemory`), by name."""
from lab.memory.base import AssociativeMemory
from lab.memory.delta import DeltaRuleMemory
from lab.memory.hebbian import HebbianMemory
from lab.memory.neural import NeuralMemory
from lab.memory.self_modifying import SelfModifyingMemory
from lab.memory.softmax import SoftmaxAttentionMemory

MEMORIES: dict[str, type[AssociativeMemory]] = {
    cls.name: cls for cls in (SoftmaxAttentionMemory, HebbianMemory, DeltaRuleMemory, NeuralMemory,
                              SelfModifyingMemory)
}

__all__ = ["MEMORIES", "AssociativeMemory", "SoftmaxAttentionMemory", "HebbianMemory", "DeltaRuleMemory",
           "NeuralMemory", "SelfModifyingMemory"]
