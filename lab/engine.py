"""The one stepwise training loop (DESIGN.md, principle 1).

    run = Run(RunConfig(model="hope"))
    run.step(50)                # advance; returns quickly, so a UI can call it every frame
    snap = run.snapshot(); run.step(10); run.restore(snap)
    run.records()               # tidy DataFrame of everything measured
    run.accuracy_matrix()       # R of REFERENCE.md §7, row 0 = untrained

The app, the CLI, the lessons and the tests all drive this `Run`; there is no other loop.

Scheduling of the Continuum Memory System (REFERENCE.md §3): the parameters of CMS level ℓ
are stepped by their own optimizer only when the step counter is a multiple of the level's
chunk (in steps, converted from the chunk in tokens of the stream); until then their
gradients add up in `.grad`. Everything else (embeddings, attention, memories) steps every
step. Per-level learning rates scale the base rate.

Divergence: a non-finite loss or gradient (or a loss far above the untrained model's) stops
the run before the update is applied, so the model keeps its last good parameters; the
event is recorded and `run.diverged` says what happened. Nothing recorded is lost.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from lab.config import Config, ConfigError, bounded, choice
from lab.device import get_device
from lab.models import MODELS, PRESETS, build_model, default_config
from lab.models.cms import LevelSchedule
from lab.optim import OPTIMIZERS, make_optimizer
from lab.records import Recorder
from lab.tasks import masked_loss, score
from lab.tasks.stream import StreamConfig, build_stream

EVENTS = ("on_step_end", "on_eval_end", "on_phase_end", "on_diverged")


@dataclass(frozen=True)
class RunConfig(Config):
    model: str = choice("hope", tuple(MODELS), "architecture")
    preset: str = choice("small", tuple(PRESETS), "model size")
    stream: StreamConfig = field(default_factory=StreamConfig)
    cms_chunk_tokens: tuple[int, ...] = bounded((), 1, 10_000_000,
                                                "CMS chunk sizes in tokens, one per level (empty = the family's)")
    optimizer: str = choice("adamw", OPTIMIZERS, "outer optimizer")
    lr: float = bounded(1e-3, 1e-6, 10.0, "learning rate of the outer optimizer (every family)")
    level_lr_scale: tuple[float, ...] = bounded((), 0.0, 100.0, "learning-rate multiplier per CMS level (empty = 1)")
    weight_decay: float = bounded(0.0, 0.0, 1.0, "decoupled weight decay")
    grad_clip: float = bounded(1.0, 0.0, 1000.0, "clip each optimizer's gradient norm (0 = off)")
    eval_every: int = bounded(10, 1, 100_000, "evaluate every task of the stream every K steps")
    eval_size: int = bounded(64, 1, 4096, "held-out sequences per task")
    replay: int = bounded(0, 0, 100_000, "experience-replay buffer in sequences (0 = naive sequential training)")
    replay_fraction: float = bounded(0.5, 0.0, 1.0, "share of each batch drawn from the replay buffer")
    seed: int = bounded(0, 0, 2**31 - 1, "seed of the model's initialisation (the stream has its own)")

    def check(self):
        if self.level_lr_scale and self.cms_chunk_tokens and len(self.level_lr_scale) != len(self.cms_chunk_tokens):
            self.fail("level_lr_scale", f"needs one entry per CMS level ({len(self.cms_chunk_tokens)})")

    def model_config(self, vocab_size: int, seq_len: int):
        """The model's config: the family default at this preset, sized to the stream."""
        base = default_config(self.model, self.preset, vocab_size=vocab_size,
                              max_len=max(seq_len, default_config(self.model).max_len))
        if not self.cms_chunk_tokens:
            return base
        # Re-split the family's CMS width over the requested levels: the parameter count stays put.
        levels = len(self.cms_chunk_tokens)
        width = max(4, sum(base.cms_hidden) // levels)
        return base.replace(cms_hidden=(width,) * levels, cms_chunk_tokens=self.cms_chunk_tokens)


@dataclass
class Divergence:
    step: int
    loss: float
    reason: str

    def message(self) -> str:
        return (f"Training stopped at step {self.step}: {self.reason} (loss = {self.loss:.4g}). "
                "The model keeps its parameters from the last good step; lower the learning rate or reset.")


class Run:
    def __init__(self, config: RunConfig, device: torch.device | None = None):
        self.config = config
        self.device = device or get_device()
        self.stream = build_stream(config.stream)
        model_config = config.model_config(self.stream.vocab_size, self.stream.seq_len)
        total_tokens = self.stream.total_steps * self.stream.tokens_per_step
        too_long = [c for c in model_config.cms_chunk_tokens if c > total_tokens]
        if config.cms_chunk_tokens and too_long:
            raise ConfigError("RunConfig", "cms_chunk_tokens", config.cms_chunk_tokens,
                              f"each chunk must be at most the stream's {total_tokens} tokens, or that level never updates")
        if config.level_lr_scale and len(config.level_lr_scale) != model_config.n_levels:
            raise ConfigError("RunConfig", "level_lr_scale", config.level_lr_scale,
                              f"needs one entry per CMS level ({model_config.n_levels})")
        with torch.random.fork_rng(devices=[]):     # the seed is this run's own, not the process's
            torch.manual_seed(config.seed)
            self.model = build_model(model_config).to(self.device)
        self.schedule = LevelSchedule.from_tokens(model_config.cms_chunk_tokens, self.stream.tokens_per_step)
        self.optimizers = self._make_optimizers()
        self.initial_state = copy.deepcopy(self.model.state_dict())   # the reference state of every level
        self.recorder = Recorder(config.model)
        self.callbacks: dict[str, list[Callable]] = {e: [] for e in EVENTS}
        self.step_count = 0
        self.diverged: Divergence | None = None
        self.matrix_rows: list[list[float]] = []
        self._replay = ReplayBuffer(config.replay, config.seed) if config.replay else None
        self._eval_sets = [tuple(t.to(self.device) for t in task.eval_set(config.eval_size, seed=config.stream.seed))
                           for task in self.stream.tasks]
        self._eval_inputs = torch.cat([inputs for inputs, _ in self._eval_sets])
        offsets = [0]
        for inputs, _ in self._eval_sets:
            offsets.append(offsets[-1] + inputs.shape[0])
        self._eval_slices = [slice(a, b) for a, b in zip(offsets, offsets[1:])]
        self._phase_start_params = self._level_params_copy()
        self._timing = [0.0, 0]                     # seconds and steps spent in step(), not recorded
        self.evaluate()
        self.matrix_rows.append(self.last_eval_accuracy())
        self._loss_ceiling = max(50.0, 20.0 * self._untrained_loss)

    # --- set-up --------------------------------------------------------------------------
    def _make_optimizers(self) -> dict:
        groups = self.model.parameter_levels()
        scales = self.config.level_lr_scale or (1.0,) * self.model.config.n_levels
        optimizers = {}
        for level, named in groups.items():
            if not named:
                continue
            lr = self.config.lr * (1.0 if level is None else scales[level])
            optimizers[level] = make_optimizer(self.config.optimizer, named, lr, self.config.weight_decay)
        return optimizers

    def rebuild_optimizers(self) -> None:
        """New optimizers over the model's current parameters (after a sleep phase grew or pruned a
        level). Optimizer state is reset; gradients accumulated so far are dropped."""
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        self.optimizers = self._make_optimizers()
        self._phase_start_params = self._level_params_copy()

    def add_callback(self, event: str, fn: Callable[["Run"], None]) -> None:
        if event not in self.callbacks:
            raise ValueError(f"unknown event {event!r}; events are {', '.join(EVENTS)}")
        self.callbacks[event].append(fn)

    def _trigger(self, event: str) -> None:
        for fn in self.callbacks[event]:
            fn(self)

    # --- where we are --------------------------------------------------------------------
    @property
    def tokens_seen(self) -> int:
        return self.step_count * self.stream.tokens_per_step

    @property
    def done(self) -> bool:
        return self.step_count >= self.stream.total_steps

    @property
    def current_task(self) -> int:
        return self.stream.task_at(min(self.step_count, self.stream.total_steps - 1))

    @property
    def steps_per_sec(self) -> float:
        seconds, steps = self._timing
        return steps / seconds if seconds > 0 else float("nan")

    # --- the loop ------------------------------------------------------------------------
    def step(self, n: int = 1) -> "Run":
        """Advance up to n steps (fewer if the stream ends or the run diverges)."""
        for _ in range(n):
            if self.done or self.diverged:
                break
            started = time.perf_counter()
            self._one_step()
            self._timing[0] += time.perf_counter() - started
            self._timing[1] += 1
        return self

    def _one_step(self) -> None:
        task = self.current_task
        self.model.train()
        fresh = self.stream.batch(self.step_count)
        inputs, targets = fresh
        if self._replay is not None:
            inputs, targets = self._replay.mix(inputs, targets, task, self.config.replay_fraction)
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        loss = masked_loss(self.model(inputs), targets)
        if not self._check_loss(loss):
            return
        loss.backward()
        step = self.step_count + 1
        due = [None] + self.schedule.due(step)
        grad_norms = {}
        for level in due:
            opt = self.optimizers.get(level)
            if opt is None:
                continue
            params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
            norm = (torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip) if self.config.grad_clip
                    else torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
            grad_norms[level] = float(norm)
            if not math.isfinite(grad_norms[level]):
                return self._stop(float(loss.detach()), "the gradient is not finite")
        tokens = step * self.stream.tokens_per_step
        task_name = self.stream.tasks[task].name
        for level in due:
            opt = self.optimizers.get(level)
            if opt is None:
                continue
            before = None if level is None else [p.detach().clone() for g in opt.param_groups for p in g["params"]]
            opt.step()
            opt.zero_grad(set_to_none=True)
            if level is not None:
                after = [p.detach() for g in opt.param_groups for p in g["params"]]
                delta = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(after, before)))
                self.recorder.add(step, tokens, "update_norm", float(delta), task_name, level)
                self.recorder.add(step, tokens, "grad_norm", grad_norms[level], task_name, level)
        if self._replay is not None:
            self._replay.add(*fresh, task)
        self.step_count = step
        self.recorder.add(step, tokens, "loss", float(loss.detach()), task_name)
        self._trigger("on_step_end")
        phase_end = step in self.stream.boundaries_steps()[1:]
        if phase_end or step % self.config.eval_every == 0:
            self.evaluate()
        if phase_end:
            self.matrix_rows.append(self.last_eval_accuracy())
            self._trigger("on_phase_end")
            self._phase_start_params = self._level_params_copy()

    def _check_loss(self, loss: torch.Tensor) -> bool:
        value = float(loss.detach())
        if not math.isfinite(value):
            self._stop(value, "the loss is not finite")
            return False
        if value > self._loss_ceiling:
            self._stop(value, f"the loss rose above {self._loss_ceiling:.3g}, 20× the untrained model's")
            return False
        return True

    def _stop(self, loss: float, reason: str) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        self.diverged = Divergence(self.step_count + 1, loss, reason)
        self.recorder.add(self.step_count, self.tokens_seen, "diverged", loss)
        self._trigger("on_diverged")

    # --- measurement ---------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, phase: str = "active") -> dict[str, dict]:
        """Accuracy and loss on every task's held-out set; recorded as rows of `phase`."""
        self.model.eval()
        results = {}
        logits = self.model(self._eval_inputs)        # every task's held-out set in one forward pass
        for task, (_, targets), rows in zip(self.stream.tasks, self._eval_sets, self._eval_slices):
            s = score(logits[rows], targets)
            results[task.name] = {k: float(v) for k, v in s.items()}
            for metric, key in (("accuracy", "token_acc"), ("seq_accuracy", "seq_acc"), ("eval_loss", "loss")):
                self.recorder.add(self.step_count, self.tokens_seen, metric, results[task.name][key], task.name,
                                  phase=phase)
        for level, drift in self.level_drift().items():
            self.recorder.add(self.step_count, self.tokens_seen, "drift", drift, "", level, phase)
        self.last_eval = results
        if self.step_count == 0:
            self._untrained_loss = sum(r["loss"] for r in results.values()) / len(results)
        self._trigger("on_eval_end")
        return results

    def last_eval_accuracy(self) -> list[float]:
        return [self.last_eval[t.name]["token_acc"] for t in self.stream.tasks]

    def _level_params_copy(self) -> dict[int, list[torch.Tensor]]:
        return {level: [p.detach().clone() for _, p in named]
                for level, named in self.model.parameter_levels().items() if level is not None}

    def level_drift(self) -> dict[int, float]:
        """‖θ_ℓ − θ_ℓ(start of the current phase)‖ / ‖θ_ℓ(start)‖ per CMS level."""
        out = {}
        for level, named in self.model.parameter_levels().items():
            if level is None:
                continue
            start = self._phase_start_params[level]
            num = sum(((p.detach() - s) ** 2).sum() for (_, p), s in zip(named, start))
            den = sum((s ** 2).sum() for s in start)
            out[level] = float(torch.sqrt(num / den)) if den > 0 else 0.0
        return out

    def accuracy_matrix(self) -> list[list[float]]:
        """Rows of R measured so far: row 0 untrained, row i after phase i (REFERENCE.md §7)."""
        return [list(r) for r in self.matrix_rows]

    def records(self):
        return self.recorder.frame()

    # --- sleep -------------------------------------------------------------------------------
    def sleep(self, config=None, **kwargs):
        """A sleep phase now (`lab.sleep`, REFERENCE.md §6): it sees the model, never the task data.
        The knowledge map is recorded before (phase "active") and after (phase "sleep")."""
        from lab.knowledge import record_knowledge
        from lab.sleep import SleepConfig, sleep as sleep_phase

        config = config or SleepConfig()
        vocab = self.stream.vocab
        kwargs.setdefault("prompt_tokens", [vocab.tag(i) for i in range(vocab.n_languages)])
        record_knowledge(self, config.knowledge_mode, "active")
        report = sleep_phase(self, config, **kwargs)
        self.evaluate(phase="sleep")
        record_knowledge(self, config.knowledge_mode, "sleep")
        return report

    # --- snapshots -----------------------------------------------------------------------
    def snapshot(self) -> dict:
        """Everything needed to continue exactly from here, as an in-memory copy."""
        return copy.deepcopy({
            "model": self.model.state_dict(),
            # gradients a slow CMS level has accumulated since its last update belong to the state
            "grads": {n: p.grad for n, p in self.model.named_parameters() if p.grad is not None},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "step": self.step_count, "records": len(self.recorder), "matrix_rows": self.matrix_rows,
            "phase_start": self._phase_start_params, "diverged": self.diverged,
            "last_eval": self.last_eval, "replay": self._replay.state() if self._replay else None,
        })

    def restore(self, snap: dict) -> None:
        from lab.sleep import match_shapes

        snap = copy.deepcopy(snap)
        if match_shapes(self.model, snap["model"]):      # a sleep grew or pruned a level since the snapshot
            self.optimizers = self._make_optimizers()
        self.model.load_state_dict(snap["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(snap["optimizers"][k])
            o.zero_grad(set_to_none=True)
        for name, p in self.model.named_parameters():
            if name in snap["grads"]:
                p.grad = snap["grads"][name].to(p.device)
        self.step_count = snap["step"]
        self.recorder.truncate(snap["records"])
        self.matrix_rows = snap["matrix_rows"]
        self._phase_start_params = snap["phase_start"]
        self.diverged = snap["diverged"]
        self.last_eval = snap["last_eval"]
        if self._replay is not None:
            self._replay.load(snap["replay"])


class ReplayBuffer:
    """Experience replay (the classical baseline): a reservoir of past training sequences.

    Each step, a `fraction` of the batch is replaced by sequences drawn from the buffer that
    belong to other tasks than the current one (none while there are none). Reservoir sampling
    keeps a uniform sample of everything seen, within `capacity` sequences.
    """

    def __init__(self, capacity: int, seed: int):
        self.capacity = capacity
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.inputs: torch.Tensor | None = None
        self.targets: torch.Tensor | None = None
        self.tasks: torch.Tensor | None = None
        self.seen = 0

    def add(self, inputs, targets, task: int) -> None:
        for i in range(inputs.shape[0]):
            row = (inputs[i:i + 1], targets[i:i + 1], torch.tensor([task]))
            if self.inputs is None:
                self.inputs, self.targets, self.tasks = row
            elif self.inputs.shape[0] < self.capacity:
                self.inputs = torch.cat([self.inputs, row[0]])
                self.targets = torch.cat([self.targets, row[1]])
                self.tasks = torch.cat([self.tasks, row[2]])
            else:
                j = int(torch.randint(self.seen + 1, (1,), generator=self.generator))
                if j < self.capacity:
                    self.inputs[j], self.targets[j], self.tasks[j] = row[0][0], row[1][0], task
            self.seen += 1

    def mix(self, inputs, targets, task: int, fraction: float):
        if self.inputs is None:
            return inputs, targets
        others = (self.tasks != task).nonzero().flatten()
        n = min(int(round(fraction * inputs.shape[0])), len(others))
        if n == 0:
            return inputs, targets
        pick = others[torch.randperm(len(others), generator=self.generator)[:n]]
        inputs, targets = inputs.clone(), targets.clone()
        inputs[-n:], targets[-n:] = self.inputs[pick], self.targets[pick]
        return inputs, targets

    def state(self) -> dict:
        return {"inputs": self.inputs, "targets": self.targets, "tasks": self.tasks, "seen": self.seen,
                "generator": self.generator.get_state()}

    def load(self, state: dict) -> None:
        self.inputs, self.targets, self.tasks = state["inputs"], state["targets"], state["tasks"]
        self.seen = state["seen"]
        self.generator.set_state(state["generator"])
