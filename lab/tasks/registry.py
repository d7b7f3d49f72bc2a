"""The one registry of stream kinds: every task family registers its kind once, beside its builder,
and everything else reads it (`StreamConfig.kind`'s choices, `build_stream`, the CLI's `--task`
choices through `KINDS`, the forms' labels, the claims page's literature anchors):

    # lab/tasks/my_family.py: a new kind is this one file
    def _build(cfg):                      # cfg: a validated StreamConfig
        vocab = Vocab(0)
        ...
        return vocab, tasks              # (Vocab, list[Task]), len(tasks) == cfg.n_tasks

    register_kind("my_family", _build, label="my family (what it asks)", doc="one line for the help",
                  max_tasks=4, check=_check, order=70)

Modules are found, not listed: `discover()` imports every module of `lab.tasks` (lab.discovery), so a
new file registers itself. `lab.tasks.stream` runs `discover()` when it is imported, before it
defines `StreamConfig`, so `KINDS` there is complete. Hence one rule for task modules: never import
`lab.tasks.stream` at module level (discovery may run while it is half imported).

`check(cfg)` is the kind's own validation of a StreamConfig; it raises through
`cfg.fail(field, allowed)`, so a bad value names its field. The number of tasks is checked here
against `max_tasks`. `anchors` are published numbers to show beside the lab's own (REFERENCE.md
§7), each with its source; the lab never presents them as its measurements.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from lab.discovery import import_submodules

PACKAGE = "lab.tasks"
N_TASKS_MAX = 20                 # StreamConfig.n_tasks's upper bound: the largest max_tasks of any kind


@dataclass(frozen=True)
class Anchor:
    """A published number to show beside the lab's (never as the lab's own)."""

    benchmark: str               # e.g. "Permuted MNIST, 20 tasks"
    method: str                  # e.g. "naive fine-tuning", "EWC", "GEM"
    metric: str                  # "ACC" (final average accuracy) or "forgetting"
    value: float                 # as a fraction: 0.48 for 48 %
    source: str                  # where the lab has it from, and where that number is reported
    note: str = ""               # how the lab's setting differs (e.g. 8×8 digits, not MNIST)

    def as_row(self) -> dict:
        return {"benchmark": self.benchmark, "method": self.method, "metric": self.metric,
                "value": self.value, "source": self.source, "note": self.note}


@dataclass(frozen=True)
class StreamKind:
    """One task family, registered once (see the module docstring)."""

    name: str                                     # the value of StreamConfig.kind, the CLI's --task
    build: Callable                               # StreamConfig → (Vocab, list[Task])
    label: str                                    # how forms and legends name it
    doc: str                                      # one line: what a task of this kind asks
    max_tasks: int = 8                            # largest n_tasks it can build
    check: Callable | None = None                 # StreamConfig → None, raising through cfg.fail
    order: float = 100.0                          # place in KINDS and in the menus
    anchors: tuple[Anchor, ...] = ()              # published numbers for its benchmark (REFERENCE.md §7)
    fields: tuple[str, ...] = ()                  # the StreamConfig fields it reads besides the common ones

    def problems(self) -> list[str]:
        out = []
        if not self.name or not self.name.isidentifier():
            out.append(f"name {self.name!r} must be a Python identifier")
        if not callable(self.build):
            out.append("build must be callable: StreamConfig → (Vocab, list[Task])")
        if not self.label.strip() or not self.doc.strip():
            out.append("needs a label and a doc")
        if not 1 <= self.max_tasks <= N_TASKS_MAX:
            out.append(f"max_tasks must be between 1 and {N_TASKS_MAX}")
        if self.check is not None and not callable(self.check):
            out.append("check must be callable or None")
        return out


_KINDS: dict[str, StreamKind] = {}
_ORIGINS: dict[str, str] = {}
_discovered = False


def register_kind(name: str, build: Callable, label: str, doc: str, **options) -> StreamKind:
    """Register a stream kind (options: the other StreamKind fields). An incomplete entry is
    refused with what it lacks; two modules registering one name is an error; the same module
    registering again (a reload) replaces its entry."""
    kind = StreamKind(name, build, label, doc, **options)
    problems = kind.problems()
    if problems:
        raise ValueError(f"stream kind {name!r}: " + "; ".join(problems))
    caller = inspect.currentframe().f_back
    origin = caller.f_globals.get("__name__", "?") if caller is not None else "?"
    if name in _KINDS and _ORIGINS[name] != origin:
        raise RuntimeError(f"two stream kinds named {name!r}: {_ORIGINS[name]} and {origin}")
    _KINDS[name], _ORIGINS[name] = kind, origin
    return kind


def unregister_kind(name: str) -> None:
    """Remove a kind (tests that register a throwaway kind clean up with this)."""
    _KINDS.pop(name, None)
    _ORIGINS.pop(name, None)


def discover() -> None:
    """Import every module of lab.tasks so that each registers its kinds (safe to call again)."""
    global _discovered
    import_submodules(PACKAGE)
    _discovered = True


def kinds() -> list[StreamKind]:
    """Every registered kind, in menu order (`order`, then name)."""
    if not _discovered:
        discover()
    return sorted(_KINDS.values(), key=lambda k: (k.order, k.name))


def kind_names() -> tuple[str, ...]:
    return tuple(k.name for k in kinds())


def get_kind(name: str) -> StreamKind:
    for k in kinds():
        if k.name == name:
            return k
    raise KeyError(f"no stream kind named {name!r}; registered: {', '.join(kind_names())}")


def labels() -> dict[str, str]:
    """kind → label, for the forms' menus."""
    return {k.name: k.label for k in kinds()}


def anchors(name: str | None = None) -> list[dict]:
    """The literature anchors of one kind (or of every kind) as rows: kind, benchmark, method,
    metric, value, source, note. For a page that shows them beside the lab's own numbers."""
    return [{"kind": k.name, **a.as_row()} for k in kinds() if name in (None, k.name) for a in k.anchors]
