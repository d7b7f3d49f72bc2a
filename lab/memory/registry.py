"""The one registry of associative memories (REFERENCE.md §1): every memory is registered once,
beside its code, and everything else reads it.

An entry says all the lab knows about one memory: its name, its label and colour, its class, its
row of the §1 table, the explorer knobs it responds to, and how the explorer builds it on a
key/value stream (or why it cannot run on pairs). The §1 table (`lab.assoc.catalog`), the
explorer (`lab.assoc.experiments`, `lab.sessions.memory_explorer`), the figures' colours
(`lab.viz.memory_view`), the page and `python -m lab info` all read `entries()`:

    # lab/memory/gated_delta.py: a new memory is this one file
    class GatedDeltaMemory(MatrixMemory): ...

    register(MemoryEntry(
        key="gated_delta", label="Gated DeltaNet", color=TASK_COLORS[5], order=35, cls=GatedDeltaMemory,
        row=CatalogRow(component="Gated DeltaNet", keys_values=r"k_t \\to v_t", ...),
        knobs=("decay", "write_strength"),
        build=lambda stream, p: GatedDeltaMemory(beta=p.write_strength, decay=p.decay)))

Modules are found, not listed: `discover()` imports every module of `PACKAGES` (lab.discovery), so a
new file in `lab/memory/` (or, for a row that is an optimizer, in `lab/optim/`) registers itself.
Rows that are not `lab.memory` classes (a linear layer, momentum, Adam, Muon, M3) are registered
the same way in `lab.optim.catalog`.

The explorer's two configs live here because they are the contract between an entry and the
explorer: `build(stream: KVStream, params: MemoryParams)` returns an empty memory to write the
stream into; `knobs` name the `MemoryParams` fields it responds to (their ranges and help are on
the fields).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from typing import Callable

from lab.config import Config, bounded
from lab.discovery import import_submodules
from lab.viz.palette import ARCH_COLORS, LEVEL_COLORS, OPTIMIZER_COLORS, TASK_COLORS

PACKAGES = ("lab.memory", "lab.optim")       # where entries are registered, beside their code
SAFE_COLORS = frozenset([*ARCH_COLORS.values(), *LEVEL_COLORS, *TASK_COLORS, *OPTIMIZER_COLORS.values()])


@dataclass(frozen=True)
class KVStream(Config):
    n_pairs: int = bounded(64, 1, 1024, "key/value pairs written (N)")
    d_key: int = bounded(32, 2, 256, "key dimension")
    d_value: int = bounded(32, 1, 256, "value dimension")
    correlation: float = bounded(0.0, 0.0, 0.99, "cosine between two keys (ρ)")
    seed: int = bounded(0, 0, 2**31 - 1, "seed of the keys and values")


@dataclass(frozen=True)
class MemoryParams(Config):
    decay: float = bounded(1.0, 0.5, 1.0, "retention per write (Hebbian α; Titans forgets 1 − this)")
    momentum: float = bounded(0.0, 0.0, 0.99, "Titans momentum of surprise η (0 = off)")
    write_strength: float = bounded(1.0, 0.01, 1.99, "DeltaNet β (Titans θ = β/2)")
    sharpness: float | None = bounded(None, 0.1, 1000.0, "softmax inverse temperature on unit keys (empty = √d)")
    window: int = bounded(0, 0, 100_000, "softmax sliding window in pairs (0 = the whole context)")


KNOBS = tuple(f.name for f in fields(MemoryParams))


@dataclass(frozen=True)
class CatalogRow:
    """A row of the REFERENCE.md §1 table. LaTeX in keys_values, objective and update."""

    component: str
    keys_values: str
    memory: str
    objective: str
    solved_by: str
    update: str          # the update rule
    frequency: str       # how often its parameters change
    note: str = ""


@dataclass(frozen=True)
class MemoryEntry:
    """One associative memory, registered once (see the module docstring)."""

    key: str                          # one name everywhere: recall frames, colours, settings, URLs
    label: str                        # how the explorer and the legends name it
    color: str                        # one of SAFE_COLORS (colour-blind safe, lab.viz.palette)
    order: float                      # place in the §1 table and in the explorer's menu
    row: CatalogRow | None = None     # its row of the §1 table, or None: then `described_by` says where it is
    described_by: str = ""            # the key of the entry whose row covers it, or a REFERENCE section
    cls: type | None = None           # its lab.memory class (None for the optimizer rows)
    knobs: tuple[str, ...] = ()       # the MemoryParams fields it responds to
    build: Callable[[KVStream, MemoryParams], object] | None = None   # an empty memory for the explorer
    not_runnable: str = ""            # when build is None: why it cannot run on key/value pairs

    @property
    def runnable(self) -> bool:
        return self.build is not None

    def problems(self) -> list[str]:
        """What is missing or wrong in this entry (empty: it is complete)."""
        out = []
        if not self.key or not self.key.isidentifier():
            out.append(f"key {self.key!r} must be a Python identifier")
        if not self.label.strip():
            out.append("a label is missing")
        if self.color not in SAFE_COLORS:
            out.append(f"colour {self.color!r} is not one of lab.viz.palette's colour-blind-safe colours")
        if self.row is None and not self.described_by.strip():
            out.append("needs a §1 row, or `described_by` naming what describes it")
        if self.row is not None:
            out += [f"row field {f.name!r} is empty" for f in fields(CatalogRow)
                    if f.name != "note" and not str(getattr(self.row, f.name)).strip()]
        out += [f"knob {k!r} is not a MemoryParams field ({', '.join(KNOBS)})" for k in self.knobs if k not in KNOBS]
        if self.build is None and not self.not_runnable.strip():
            out.append("needs `build`, or `not_runnable` saying why it cannot run on key/value pairs")
        if self.build is None and self.knobs:
            out.append("knobs without `build`: nothing would turn them")
        return out


_ENTRIES: dict[str, MemoryEntry] = {}
_ORIGINS: dict[str, str] = {}                # key → the module that registered it
_discovered = False


def register(entry: MemoryEntry) -> MemoryEntry:
    """Add `entry` (one key, one entry); an incomplete entry is refused with what it lacks. The
    same module registering the same key again (a module reloaded by Streamlit) replaces it."""
    problems = entry.problems()
    if problems:
        raise ValueError(f"memory entry {entry.key!r}: " + "; ".join(problems))
    caller = inspect.currentframe().f_back
    origin = caller.f_globals.get("__name__", "?") if caller is not None else "?"
    if entry.key in _ENTRIES and _ORIGINS[entry.key] != origin:
        raise RuntimeError(f"two memory entries named {entry.key!r}: {_ORIGINS[entry.key]} and {origin}")
    _ENTRIES[entry.key], _ORIGINS[entry.key] = entry, origin
    return entry


def unregister(key: str) -> None:
    """Remove an entry (tests that register a throwaway memory clean up with this)."""
    _ENTRIES.pop(key, None)
    _ORIGINS.pop(key, None)


def discover() -> None:
    """Import every module of PACKAGES, so that each registers its entries (safe to call again:
    a module is imported once, a new one is found)."""
    global _discovered
    for name in PACKAGES:
        import_submodules(name)
    _discovered = True


def entries() -> list[MemoryEntry]:
    """Every registered entry, in REFERENCE.md §1 order (`order`, then key)."""
    if not _discovered:
        discover()
    return sorted(_ENTRIES.values(), key=lambda e: (e.order, e.key))


def entry(key: str) -> MemoryEntry:
    for e in entries():
        if e.key == key:
            return e
    raise KeyError(f"no memory named {key!r}; registered: {', '.join(e.key for e in entries())}")


def catalogued() -> list[MemoryEntry]:
    """The entries with a row of the §1 table, in its order."""
    return [e for e in entries() if e.row is not None]


def runnable() -> dict[str, MemoryEntry]:
    """The explorer's choices: entries that can run on a key/value stream, by key, in order."""
    return {e.key: e for e in entries() if e.runnable}


def memory_classes() -> dict[str, type]:
    """Entries that are `lab.memory` classes: key → class."""
    return {e.key: e.cls for e in entries() if e.cls is not None}
