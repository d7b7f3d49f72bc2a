"""The associative-memory view of nested learning (REFERENCE.md §1): the table read from the
registry of memories (`catalog`; each memory is registered once beside its class, see
`lab.memory.registry`), memories run side by side on one key/value stream (`experiments`) and the
exact equivalences computed live (`equivalences`). The optimizer toys live in `lab.optim.toys`."""
from lab.assoc.catalog import catalog_entries, catalog_frame, catalog_markdown
from lab.assoc.equivalences import all_equivalences
from lab.assoc.experiments import KVStream, MemoryParams, recall, sweep
from lab.memory.registry import runnable

__all__ = ["catalog_entries", "catalog_frame", "catalog_markdown", "all_equivalences", "runnable", "KVStream",
           "MemoryParams", "recall", "sweep"]
