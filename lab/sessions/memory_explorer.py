"""The associative-memory explorer as a session (REFERENCE.md §1 and §5): memories run side by side
on one key/value stream, the exact equivalences, and the optimizers measured as memories.

    session = MemoryExplorerSession()
    session.configure(memories=("delta", "titans"), stream={"n_pairs": 16, "correlation": 0.6})
    while session.busy:
        session.advance(budget_s=0.25)     # computes what the settings ask for, one result at a time
    session.recall()                       # DataFrames (lab.assoc / lab.optim.toys); None = not computed yet
    session.sweep("n_pairs"); session.equivalences(); session.buffer_weights(); session.trajectories()
    session.records()                      # the recall rows, tidy (lab.records.COLUMNS + memory columns)

What it holds: its settings, and the results computed for them in a bounded cache keyed by the
part of the settings each result depends on (least recently used out first, CACHE_SIZE results):
moving a memory slider recomputes the recall curve and the sweeps (not the sweep of that very
field, which sets it itself), never the optimizer toys, and moving it back is instant. Every result
is a pure function of its key, so a snapshot shares it: treat the frames as read-only. Reading
methods never compute; a page that is not live calls `finish()` and then reads.

One Settings for both halves of the page (the memories and the optimizer toys), as nested configs
(`stream`, `params`, `buffers`, `tasks`, `surface`, `adam`, `muon`, `m3`): a lesson preset, a URL or a
snapshot is one dict, each panel configures only its own part (a bad value there refuses that
change alone), and the cache keys keep the parts from recomputing each other.

Pending work is derived, not queued: it is whatever the current settings ask for that the cache
does not hold (`pending()`), so there is nothing to get out of step. `stop()` drops it until the
next `configure`. Every computation is a few tenths of a second on a CPU, so `advance` does at
least one whole result per call.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from lab.assoc import all_equivalences, recall, sweep
from lab.assoc.experiments import key_cosines
from lab.config import Config, bounded
from lab.memory.registry import KVStream, MemoryParams, entries, runnable
from lab.optim.toys import (AdamSpec, BufferSpec, M3Spec, MuonSpec, SurfaceSpec, TasksSpec, buffer_weights,
                            orthogonal_tasks, surface_grid, trajectories)
from lab.records import COLUMNS
from lab.sessions.base import Session, exclusive

CACHE_SIZE = 64                      # results kept per session (each a small frame)
SWEEPS = {                           # field → the values each sweep visits (capacity, correlation, decay, momentum)
    "n_pairs": (4, 8, 16, 32, 64, 128, 256),
    "correlation": (0.0, 0.2, 0.4, 0.6, 0.8, 0.95),
    "decay": (0.8, 0.9, 0.95, 0.98, 0.99, 1.0),
    "momentum": (0.0, 0.2, 0.4, 0.6, 0.8),
}
TOY_OPTIMIZERS = ("adam", "muon", "m3")           # the optimizers of the 2-D trajectory toy
RECALL_METRIC = "recall_error"


@dataclass(frozen=True)
class ExplorerSettings(Config):
    """What the explorer computes. Defaults are the page's first view."""

    memories: tuple[str, ...] = ("softmax", "hebbian", "delta", "titans")    # registry keys; may be empty
    stream: KVStream = KVStream(n_pairs=32)
    params: MemoryParams = MemoryParams(momentum=0.3, write_strength=0.5)
    sweep_seeds: int = bounded(2, 1, 20, "seeds each sweep point is averaged over")
    equivalence_seed: int = bounded(0, 0, 2**31 - 1, "seed of the equivalences' random data")
    buffers: BufferSpec = BufferSpec(horizon=100)
    tasks: TasksSpec = TasksSpec()
    surface: SurfaceSpec = SurfaceSpec(steps=150)
    optimizers: tuple[str, ...] = TOY_OPTIMIZERS          # which run on the surface; may be empty
    adam: AdamSpec = AdamSpec()
    muon: MuonSpec = MuonSpec()
    m3: M3Spec = M3Spec()

    def check(self) -> None:
        choices = runnable()
        for name in self.memories:
            if name not in choices:
                reason = next((e.not_runnable for e in entries() if e.key == name), "")
                self.fail("memories", f"{name} cannot run on key/value pairs: {reason}" if reason
                          else f"each must be one of {', '.join(choices)}")
        if len(set(self.memories)) < len(self.memories):
            self.fail("memories", "each memory at most once")
        if any(name not in TOY_OPTIMIZERS for name in self.optimizers) or len(set(self.optimizers)) < len(
                self.optimizers):
            self.fail("optimizers", f"each must be one of {', '.join(TOY_OPTIMIZERS)}, at most once")

    def sweep_key(self, field: str) -> tuple:
        """What the sweep of `field` depends on: the settings with the swept field itself left out
        (it is overwritten at every point), so moving that slider does not redo its own sweep."""
        stream, params = self.stream, self.params
        if hasattr(stream, field):
            stream = stream.replace(**{field: SWEEPS[field][0]})
        else:
            params = params.replace(**{field: SWEEPS[field][0]})
        return ("sweep", field, self.memories, stream, params, self.sweep_seeds)


class MemoryExplorerSession(Session):
    """The memory explorer of one user; see the module docstring."""

    kind = "memory"
    Settings = ExplorerSettings
    refusal = "That setting is not allowed"

    def __init__(self, cache_size: int = CACHE_SIZE):
        super().__init__()
        self._cache: OrderedDict[tuple, object] = OrderedDict()
        self._cache_size = cache_size
        self._stopped = False

    @exclusive
    def configure(self, settings: Config | dict | None = None, **changes) -> bool:
        """As `Session.configure`; in `changes`, a nested part given as a dict changes only the
        fields it names: configure(stream={"n_pairs": 16}) keeps the stream's other fields."""
        if settings is None:
            for name, value in changes.items():
                part = getattr(self.settings, name, None)
                if isinstance(value, dict) and isinstance(part, Config):
                    changes[name] = {**part.to_dict(), **value}
        return super().configure(settings, **changes)

    def _apply(self, settings: ExplorerSettings) -> None:
        """Settings are checked on construction (ExplorerSettings.check): nothing to build, the
        work they ask for is derived from them (`pending`)."""
        self._stopped = False

    # --- what the settings ask for -----------------------------------------------------------------
    def _jobs(self) -> dict[str, tuple[tuple, Callable[[], object]]]:
        """name → (cache key, how to compute it), in the order the page shows them. A key holds
        exactly the settings its result depends on."""
        s = self.settings
        picked = list(s.memories)
        jobs: dict[str, tuple[tuple, Callable[[], object]]] = {}
        if picked:
            jobs["cosine"] = (("cosine", s.stream), lambda: key_cosines(s.stream))
            jobs["recall"] = (("recall", s.memories, s.stream, s.params), lambda: recall(picked, s.stream, s.params))
            for field, values in SWEEPS.items():
                jobs[f"sweep:{field}"] = (s.sweep_key(field), lambda f=field, v=values: sweep(
                    picked, s.stream, s.params, f, list(v), seeds=s.sweep_seeds))
        jobs["equivalences"] = (("equivalences", s.equivalence_seed), lambda: all_equivalences(s.equivalence_seed))
        jobs["buffers"] = (("buffers", s.buffers), lambda: buffer_weights(**s.buffers.to_dict()))
        jobs["tasks"] = (("tasks", s.tasks), lambda: orthogonal_tasks(**s.tasks.to_dict()))
        jobs["grid"] = (("grid", s.surface.surface), lambda: surface_grid(s.surface.surface))
        if s.optimizers:
            specs = {name: getattr(s, name) for name in s.optimizers}
            jobs["paths"] = (("paths", s.surface, tuple(specs.items())), lambda: trajectories(s.surface, specs))
        return jobs

    def pending(self) -> list[str]:
        """The results the settings ask for that are not computed yet (empty after `stop`)."""
        if self._stopped:
            return []
        return [name for name, (key, _) in self._jobs().items() if key not in self._cache]

    # --- work ----------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return bool(self.pending())

    @exclusive
    def advance(self, budget_s: float = 0.25) -> int:
        """Compute pending results, whole ones, until about `budget_s` seconds are spent (at least
        one). Returns how many were computed."""
        started, done, jobs = time.perf_counter(), 0, self._jobs()
        for name in self.pending():
            key, compute = jobs[name]
            self._store(key, compute())
            done += 1
            if time.perf_counter() - started >= budget_s:
                break
        if done:
            self.changed()
        return done

    @exclusive
    def finish(self) -> None:
        """Compute everything pending now (a page that is not live draws right after)."""
        while self.busy:
            self.advance(budget_s=float("inf"))

    @exclusive
    def stop(self) -> None:
        self._stopped = True

    @property
    def progress(self) -> tuple[float, str]:
        jobs, left = self._jobs(), self.pending()
        if not left:
            return (1.0, "")
        return (1 - len(left) / len(jobs), f"computing {left[0].replace(':', ' ')}")

    def _store(self, key: tuple, value: object) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _read(self, name: str):
        """The result `name` for the current settings, or None if it is not computed (or not asked for)."""
        job = self._jobs().get(name)
        return None if job is None else self._cache.get(job[0])

    # --- reading ---------------------------------------------------------------------------------
    def choices(self) -> dict[str, str]:
        """The memories the explorer can run: key → label, in REFERENCE.md §1 order (the registry)."""
        return {key: e.label for key, e in runnable().items()}

    def recall(self) -> pd.DataFrame | None:
        """Recall error of every pair against its age (lab.assoc.recall)."""
        return self._read("recall")

    def key_cosine(self) -> float | None:
        """Measured mean cosine between two distinct keys of the stream."""
        return self._read("cosine")

    def sweep(self, field: str) -> pd.DataFrame | None:
        """Mean recall error as `field` (one of SWEEPS) takes SWEEPS[field] (lab.assoc.sweep)."""
        if field not in SWEEPS:
            raise ValueError(f"no sweep of {field!r}; the explorer sweeps {', '.join(SWEEPS)}")
        return self._read(f"sweep:{field}")

    def equivalences(self) -> pd.DataFrame | None:
        return self._read("equivalences")

    def buffer_weights(self) -> pd.DataFrame | None:
        return self._read("buffers")

    def orthogonal_tasks(self) -> pd.DataFrame | None:
        return self._read("tasks")

    def surface_grid(self) -> pd.DataFrame | None:
        return self._read("grid")

    def trajectories(self) -> pd.DataFrame | None:
        return self._read("paths")

    def records(self) -> pd.DataFrame:
        """The recall rows, tidy: one row per memory and pair, metric "recall_error". step = the
        pair's index (when it was written), tokens = pairs written before it was read (N), model =
        the memory; extra columns label, pair, age, diverged. Empty until the recall is computed."""
        frame = self.recall()
        extra = ["label", "pair", "age", "diverged"]
        if frame is None or not len(frame):
            return pd.DataFrame(columns=COLUMNS + extra)
        tidy = pd.DataFrame({"step": frame["pair"], "tokens": self.settings.stream.n_pairs, "phase": "active",
                             "model": frame["memory"], "task": "", "level": -1, "metric": RECALL_METRIC,
                             "value": frame["error"]})
        return pd.concat([tidy, frame[extra]], axis=1)

    # --- snapshot ------------------------------------------------------------------------------------
    @exclusive
    def snapshot(self) -> dict:
        """Settings and the computed results (immutable, shared, not copied)."""
        return {"settings": self.settings, "cache": OrderedDict(self._cache), "stopped": self._stopped}

    @exclusive
    def restore(self, snap: dict) -> None:
        self.settings = snap["settings"]
        self._cache = OrderedDict(snap["cache"])
        self._stopped = snap["stopped"]
        self.changed()
