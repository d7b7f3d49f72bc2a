"""The table of REFERENCE.md §1 as data: every component as an associative memory.

Each row names its keys → values, its memory, its inner objective, how that objective is
solved, its update rule (LaTeX), how often its parameters change, and, where the lab can run it
on a key/value stream, the explorer name it runs under. The rows are not typed here: each is
registered once beside its code (`lab.memory.registry`; the optimizer rows in
`lab.optim.catalog`), and this module lays them out in §1 order. The app renders the result.
"""
from __future__ import annotations

import re

import pandas as pd

from lab.memory.registry import MemoryEntry, catalogued

COLUMNS = {"component": "component", "keys_values": "keys → values", "memory": "memory",
           "objective": "inner objective", "solved_by": "how it is solved", "update": "update rule",
           "frequency": "frequency"}
FRAME_COLUMNS = ["key", *COLUMNS, "runnable", "note"]
LATEX = {"keys_values", "objective", "update"}


def catalog_entries() -> list[MemoryEntry]:
    """The registered entries that have a §1 row, in the table's order."""
    return catalogued()


def catalog_frame() -> pd.DataFrame:
    """One row per component: key, the row's fields, runnable (the key if the explorer can run it,
    else None) and note."""
    rows = [{"key": e.key, **{c: getattr(e.row, c) for c in COLUMNS}, "runnable": e.key if e.runnable else None,
             "note": e.row.note} for e in catalog_entries()]
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def _cell(text: str, latex: bool) -> str:
    plain = re.fullmatch(r"\\text\{([^\\{}]*)\}", text)      # a LaTeX cell that is only words
    if plain:
        return plain.group(1).replace("|", "/")
    text = text.replace("|", r"\vert ") if latex else text.replace("|", "/")
    return f"${text}$" if latex else text


def catalog_markdown(keys: list[str] | None = None) -> str:
    """The table as Markdown with inline LaTeX ($…$), for a page to render as it is."""
    by_key = {e.key: e for e in catalog_entries()}
    rows = [by_key[k].row for k in keys] if keys is not None else [e.row for e in catalog_entries()]
    head = "| " + " | ".join(COLUMNS.values()) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(_cell(getattr(r, c), c in LATEX) for c in COLUMNS) + " |\n" for r in rows)
    return head + body
