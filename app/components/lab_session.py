"""One student's Playground state: the Run, its model history, what is playing, what is shown.

Pure Python (no Streamlit), so it is tested without a browser. A page keeps one `LabSession`
in `st.session_state` (never in a cache shared between sessions).

- `advance(budget_s)` steps the run for about `budget_s` seconds (at least one step), the
  batch the live fragment runs before each redraw.
- `ModelHistory` keeps a copy of the model's parameters at every evaluation, so that the
  probe panels can show the model as it was at any recorded step (the time scrubber).
"""
from __future__ import annotations

import copy
import time
from collections import OrderedDict
from typing import Callable

import pandas as pd
import torch

from lab import probes
from lab.engine import Run, RunConfig
from lab.hooks import hook_points
from lab.viz.style import StreamLayout

PROBES: dict[str, Callable] = {
    "activations": probes.level_activations,
    "contributions": probes.level_contributions,
    "memory": probes.memory_traces,
    "attention": probes.attention_maps,
}
EXAMPLES = 16                   # inputs to choose from per task


class ModelHistory:
    """Parameters of the model at step 0 and at every evaluation (every `eval_every` steps).

    At most `capacity` copies are kept, and no more than `max_bytes` in all (a session must stay
    small when a class shares one server); past that, every second copy is dropped (the first
    and the latest stay), so a long run keeps an even, coarser history.
    """

    def __init__(self, run: Run, capacity: int = 200, max_bytes: int = 64 * 2**20):
        self.run = run
        state_bytes = sum(t.numel() * t.element_size() for t in run.model.state_dict().values())
        self.capacity = max(4, min(capacity, max_bytes // max(1, state_bytes)))
        self.states: OrderedDict[int, dict] = OrderedDict()
        self._probe_model = copy.deepcopy(run.model).eval()
        self._loaded: int | None = None
        self.save()
        run.add_callback("on_eval_end", lambda _run: self.save())

    def save(self) -> None:
        step = self.run.step_count
        self.states[step] = {k: v.detach().clone() for k, v in self.run.model.state_dict().items()}
        if step == self._loaded:
            self._loaded = None
        if len(self.states) > self.capacity:
            steps = list(self.states)
            for s in steps[1:-1:2]:
                del self.states[s]

    def step_at_or_before(self, step: int) -> int:
        candidates = [s for s in self.states if s <= step]
        return max(candidates) if candidates else min(self.states)

    def model_at(self, step: int) -> tuple[int, torch.nn.Module]:
        """(the recorded step used, a model holding the parameters of that step)."""
        saved = self.step_at_or_before(step)
        if self._loaded != saved:
            self._probe_model.load_state_dict(self.states[saved])
            self._loaded = saved
        return saved, self._probe_model


class LabSession:
    def __init__(self, config: RunConfig):
        self.run = Run(config)                    # raises ConfigError for a config that cannot run
        self.config = config
        self.layout = StreamLayout.of(self.run.stream)
        self.history = ModelHistory(self.run)
        names = hook_points(self.run.model)
        self.has_memory = any(probes.MEMORY_RE.match(n) for n in names)
        self.has_attention = any(probes.PATTERN_RE.match(n) for n in names)
        self.playing = False
        self.replaying = False
        self.view_step: int | None = None         # None: follow the latest step
        self.tick_times: list[float] = []         # when the live view last redrew (for the rate)
        self._trained_until: float | None = None
        self._overhead: float | None = None
        self._inputs: dict[int, torch.Tensor] = {}
        self._cache: OrderedDict[tuple, object] = OrderedDict()

    # --- training -------------------------------------------------------------------------
    @property
    def can_train(self) -> bool:
        return not (self.run.done or self.run.diverged)

    def live_budget(self, period_s: float, lo: float = 0.06, hi: float = 0.2) -> float:
        """Seconds of training for the next live tick, so that ticks come every `period_s`.

        What a tick costs besides training (drawing, the browser, the timer) is measured as the
        time from the end of the previous tick's training to now (smoothed); the budget is the
        rest of the period, within [lo, hi]. A fast machine trains more per redraw, a busy one
        less, and the redraw rate stays near 1 / period_s where that is possible at all; the
        floor `lo` keeps training going on a machine too busy for that.
        """
        now = time.perf_counter()
        if self._trained_until is not None and now - self._trained_until < 2.0:
            overhead = now - self._trained_until
            self._overhead = overhead if self._overhead is None else 0.7 * self._overhead + 0.3 * overhead
        if self._overhead is None:
            return (lo + hi) / 2
        return min(hi, max(lo, period_s - self._overhead))

    def advance(self, budget_s: float) -> int:
        """Step for about `budget_s` seconds: at least one step, and no step that would likely
        end past the budget. Returns the number of steps taken."""
        start, steps = time.perf_counter(), 0
        while self.can_train:
            self.run.step(1)
            steps += 1
            elapsed = time.perf_counter() - start
            if elapsed + elapsed / steps > budget_s:
                break
        self._trained_until = time.perf_counter()
        return steps

    def step(self, n: int) -> None:
        self.playing = self.replaying = False
        self.run.step(n)

    # --- what is shown --------------------------------------------------------------------
    @property
    def shown_step(self) -> int:
        latest = self.run.step_count
        if self.view_step is None or self.playing:
            return latest
        return min(self.view_step, latest)

    def start_replay(self) -> None:
        self.playing = False
        if self.view_step is None or self.view_step >= self.run.step_count:
            self.view_step = 0
        self.replaying = self.run.step_count > 0

    def replay_tick(self, frames: int = 60) -> bool:
        """Move the shown step forward by 1/frames of the run; False once at the end."""
        latest = self.run.step_count
        stride = max(1, latest // frames)
        self.view_step = min(latest, (self.view_step or 0) + stride)
        if self.view_step >= latest:
            self.view_step, self.replaying = None, False
        return self.replaying

    def records_until(self, step: int) -> pd.DataFrame:
        records = self.run.records()
        return records if step >= self.run.step_count else records[records["step"] <= step]

    def note_redraw(self) -> None:
        now = time.perf_counter()
        self.tick_times = [t for t in self.tick_times[-20:] if now - t < 3.0] + [now]

    @property
    def redraws_per_sec(self) -> float:
        t = self.tick_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) >= 3 and t[-1] > t[0] else float("nan")

    # --- probes ---------------------------------------------------------------------------
    def input_tokens(self, task: int, example: int) -> torch.Tensor:
        """Held-out example `example` of task `task`, shape (1, T)."""
        if task not in self._inputs:
            inputs, _ = self.run.stream.tasks[task].eval_set(EXAMPLES, seed=self.config.stream.seed + 101)
            self._inputs[task] = inputs
        inputs = self._inputs[task]
        return inputs[example % inputs.shape[0]].unsqueeze(0)

    def input_text(self, task: int, example: int) -> str:
        return self.run.stream.decode(self.input_tokens(task, example)[0])

    def probe(self, kind: str, step: int, task: int, example: int) -> tuple[int, pd.DataFrame]:
        """(recorded step used, the probe's frame) for the model as it was at `step`."""
        saved = self.history.step_at_or_before(step)
        key = ("probe", kind, saved, task, example)
        if key not in self._cache:
            _, model = self.history.model_at(step)
            device = next(model.parameters()).device
            tokens = self.input_tokens(task, example).to(device)
            self._remember(key, PROBES[kind](model, tokens, self.run.stream.decode))
        return saved, self._cache[key]

    def cached(self, key: tuple, build: Callable[[], object]):
        """A small per-session cache for figures that only change with a checkpoint."""
        if key not in self._cache:
            self._remember(key, build())
        return self._cache[key]

    def _remember(self, key: tuple, value: object, capacity: int = 24) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > capacity:
            self._cache.popitem(last=False)

    def records_csv(self) -> str:
        return self.run.records().to_csv(index=False)
