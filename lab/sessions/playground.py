"""The Playground: one model learning a stream live, and what is shown of it (any recorded step).

    session = PlaygroundSession.from_params({"model": "titans", "lr": "banana"})   # a URL: bad values → notices
    session.play()
    while session.busy:
        session.advance(0.1)          # trains (while playing) or moves the replay on; the page redraws
    session.records_until(120)        # what the time scrubber shows at step 120

It keeps a copy of the model's parameters at every evaluation (`ModelHistory`), so that the probe
panels can show the model as it was at any recorded step, and a small cache of probe frames.
"""
from __future__ import annotations

import copy
import time
from collections import OrderedDict
from typing import Callable, Mapping

import pandas as pd
import torch

from lab import probes
from lab.config import ConfigError
from lab.engine import Run, RunConfig
from lab.hooks import hook_points
from lab.sessions.base import Session, exclusive
from lab.urlstate import from_params, key_of, reset_field, to_params
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

    def replace(self, states: OrderedDict[int, dict]) -> None:
        """Take another history (restoring a snapshot)."""
        self.states = copy.deepcopy(states)
        self._loaded = None

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


class PlaygroundSession(Session):
    kind = "playground"
    Settings = RunConfig
    refusal = "This setup cannot run, so the previous run is kept"

    def __init__(self, config: RunConfig | None = None):
        super().__init__()
        self.run: Run | None = None
        self._apply(config or RunConfig())
        self.settings = self.run.config

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> "PlaygroundSession":
        """A session for the setup in URL query parameters. A value that cannot be used falls back
        to its default with an error notice that names the parameter; so does a combination that
        validates but cannot run (e.g. a chunk longer than the stream)."""
        config, problems = from_params(params)
        session = None
        for _ in range(4):
            try:
                session = cls(config)
                break
            except ConfigError as err:
                key = key_of(err.config, err.field)
                problems.append(f"URL parameter `{key or err.field}` cannot be used: {err}. The default is used instead.")
                config = reset_field(config, err.config, err.field)
            except ValueError as err:
                problems.append(f"The setup in the URL cannot run ({err}); the default setup is used instead.")
                break
        session = session or cls()
        for text in problems:
            session.notices.add("error", text)
        return session

    def _apply(self, config: RunConfig) -> None:
        self.limits.check_run(config)             # what this server allows (lab.limits), before building
        run = Run(config)                         # raises ConfigError for a config that cannot run
        self.run, self.config = run, config
        self.layout = StreamLayout.of(run.stream)
        self.history = ModelHistory(run, capacity=self.limits.max_snapshots)
        names = hook_points(run.model)
        self.has_memory = any(probes.MEMORY_RE.match(n) for n in names)
        self.has_attention = any(probes.PATTERN_RE.match(n) for n in names)
        self.playing = self.replaying = False
        self.view_step: int | None = None         # None: follow the latest step
        self.tick_times: list[float] = []         # when the live view last redrew (for the rate)
        self._inputs: dict[int, torch.Tensor] = {}
        self._cache: OrderedDict[tuple, object] = OrderedDict()

    def params(self) -> dict[str, str]:
        """The setup as URL query parameters (a link to this exact setup)."""
        return to_params(self.config)

    # --- the verbs of the transport bar -----------------------------------------------------
    @property
    def can_train(self) -> bool:
        return not (self.run.done or self.run.diverged)

    @exclusive
    def play(self) -> None:
        self.replaying, self.view_step = False, None
        self.playing = self.can_train

    @exclusive
    def pause(self) -> None:
        self.playing = False

    @exclusive
    def step(self, n: int) -> None:
        """Pause and train exactly n steps (fewer at the end of the stream)."""
        self.playing = self.replaying = False
        self.run.step(n)
        self.view_step = None
        self.changed()

    @exclusive
    def reset(self) -> None:
        """A fresh model with the same setup and seed: the same curves again."""
        self.notices.clear()
        self.configure(self.config)

    @exclusive
    def start_replay(self) -> None:
        self.playing = False
        if self.view_step is None or self.view_step >= self.run.step_count:
            self.view_step = 0
        self.replaying = self.run.step_count > 0

    # --- work ---------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.playing or self.replaying

    @property
    def wants_worker(self) -> bool:
        return self.playing                   # a replay is moved on by the page (`animate`)

    @exclusive
    def animate(self) -> None:
        if self.replaying:
            self.replay_tick()

    @exclusive
    def advance(self, budget_s: float = 0.2) -> int:
        """While playing: train for about `budget_s` seconds (at least one step, no step that would
        likely end past the budget, and none more once a page waits to draw: `lab.sessions.lock`);
        at the end of the stream or on divergence, stop playing.
        While replaying: move the shown step on by one frame. Returns the steps trained."""
        if self.replaying:
            self.replay_tick()
            return 0
        if not self.playing:
            return 0
        start, steps = time.perf_counter(), 0
        while self.can_train:
            self.run.step(1)
            steps += 1
            elapsed = time.perf_counter() - start
            if elapsed + elapsed / steps > budget_s or self.lock.waited_for:
                break
        if not self.can_train:
            self.playing = False
        if len(self.run.recorder) > self.limits.max_record_rows:
            self.playing = False
            self.notices.add("warning", f"Paused: this run holds {len(self.run.recorder):,} records, the most this "
                                        f"server keeps for one session (NLL_MAX_RECORD_ROWS). Download the CSV, or "
                                        f"Reset.")
        self.changed()
        return steps

    @exclusive
    def stop(self) -> None:
        self.playing = self.replaying = False

    @property
    def progress(self) -> tuple[float, str]:
        total = self.run.stream.total_steps
        return self.run.step_count / max(1, total), f"step {self.run.step_count} of {total}"

    def replay_tick(self, frames: int = 60) -> bool:
        """Move the shown step forward by 1/frames of the run; False once at the end."""
        latest = self.run.step_count
        stride = max(1, latest // frames)
        self.view_step = min(latest, (self.view_step or 0) + stride)
        if self.view_step >= latest:
            self.view_step, self.replaying = None, False
        return self.replaying

    # --- what is shown ------------------------------------------------------------------------
    @property
    def shown_step(self) -> int:
        latest = self.run.step_count
        if self.view_step is None or self.playing:
            return latest
        return min(self.view_step, latest)

    @exclusive
    def show_step(self, step: int) -> None:
        """The time scrubber: show the run as it was at `step` (the latest: follow the run)."""
        self.view_step = None if step >= self.run.step_count else int(step)

    @property
    def cursor(self) -> int | None:
        """The step a figure marks with a line (None when the latest step is shown)."""
        step = self.shown_step
        return step if step < self.run.step_count else None

    def records(self) -> pd.DataFrame:
        return self.run.records()

    def records_until(self, step: int | None = None) -> pd.DataFrame:
        step = self.shown_step if step is None else step
        records = self.run.records()
        return records if step >= self.run.step_count else records[records["step"] <= step]

    def note_redraw(self) -> None:
        now = time.perf_counter()
        self.tick_times = [t for t in self.tick_times[-20:] if now - t < 3.0] + [now]

    @property
    def redraws_per_sec(self) -> float:
        t = self.tick_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) >= 3 and t[-1] > t[0] else float("nan")

    # --- probes ---------------------------------------------------------------------------------
    def input_tokens(self, task: int, example: int) -> torch.Tensor:
        """Held-out example `example` of task `task`, shape (1, T)."""
        if task not in self._inputs:
            inputs, _ = self.run.stream.tasks[task].eval_set(EXAMPLES, seed=self.config.stream.seed + 101)
            self._inputs[task] = inputs
        inputs = self._inputs[task]
        return inputs[example % inputs.shape[0]].unsqueeze(0)

    def input_text(self, task: int, example: int) -> str:
        return self.run.stream.decode(self.input_tokens(task, example)[0])

    @exclusive
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

    # --- snapshots ------------------------------------------------------------------------------
    @exclusive
    def snapshot(self) -> dict:
        return {"config": self.config, "run": self.run.snapshot(), "view_step": self.view_step,
                "history": copy.deepcopy(self.history.states)}

    @exclusive
    def restore(self, snap: dict) -> None:
        if snap["config"] != self.config:
            self._apply(snap["config"])
            self.settings = self.config
        self.run.restore(snap["run"])
        self.history.replace(snap["history"])
        self.playing = self.replaying = False
        self.view_step = snap["view_step"]
        self._cache.clear()
        self.changed()
