"""The associative-memory view of nested learning (REFERENCE.md §1): the table as a registry
(`catalog`), memories run side by side on one key/value stream (`experiments`) and the exact
equivalences computed live (`equivalences`). The optimizer toys live in `lab.optim.toys`."""
from lab.assoc.catalog import CATALOG, ROWS, MemoryRow, catalog_frame, catalog_markdown
from lab.assoc.equivalences import all_equivalences
from lab.assoc.experiments import RUNNABLE, KVStream, MemoryParams, recall, sweep

__all__ = ["CATALOG", "ROWS", "MemoryRow", "catalog_frame", "catalog_markdown", "all_equivalences", "RUNNABLE",
           "KVStream", "MemoryParams", "recall", "sweep"]
