"""The one stepwise training loop (DESIGN.md, principle 1).

    run = Run(RunConfig(model="hope"))
    run.step(50)                # advance; returns quickly, so a UI can call it every frame
    snap = run.snapshot(); run.step(10); run.restore(snap)
    run.records()               # tidy DataFrame of everything measured
    run.accuracy_matrix()       # R of REFERENCE.md §7, row 0 = untrained

The app, the CLI, the lessons and the tests all drive this `Run`; there is no other loop.

One loop, two phases. A step of the loop takes a batch from a batch source, computes a loss,
back-propagates and steps the optimizers that are due (`Run._update`, the one place in `lab/`
that steps an optimizer on model parameters). What varies is a `Phase`: the active phase
(`Run.step`: stream batches, cross-entropy, every CMS level on its schedule) and the sleep phase
(`Run.train(phase, n)` with a phase that `lab.sleep` builds: dreamed batches, distillation loss to
a teacher, only the slow level). Rows are recorded with their phase.

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
from typing import Callable

import torch

from lab.device import get_device
from lab.models import build_model
from lab.models.cms import LevelSchedule, check_schedule
from lab.online import OnlineCMS
from lab.phase import Batch, Divergence, Phase
from lab.optim import make_optimizer
from lab.records import Recorder
from lab.replay import ReplayBuffer
from lab.run_config import RunConfig
from lab.tasks import masked_loss, score
from lab.tasks.stream import build_stream

EVENTS = ("on_step_end", "on_eval_end", "on_phase_end", "on_diverged")


class Run:
    def __init__(self, config: RunConfig, device: torch.device | None = None, start_from: dict | None = None,
                 scale: float | None = None):
        """`start_from`: a state_dict to start from instead of the seeded initialisation (a
        pretrained model); the run's reference state (`initial_state`) and row 0 are then its.
        `scale`: the model's width as a multiple of the family default, instead of the preset's (the
        bench's scan of widths beyond the presets, `lab.bench.live_sizes`)."""
        self.config = config
        self.device = device or get_device()
        self.stream = build_stream(config.stream)
        model_config = config.model_config(self.stream.vocab_size, self.stream.seq_len, scale)
        if config.cms_chunk_tokens:
            check_schedule(model_config.cms_levels, self.stream.total_steps * self.stream.tokens_per_step)
        with torch.random.fork_rng(devices=[]):     # the seed is this run's own, not the process's
            torch.manual_seed(config.seed)
            self.model = build_model(model_config).to(self.device)
        if start_from is not None:
            self.model.load_state_dict(start_from)
        if config.trainable == "none":
            self.model.requires_grad_(False)
        # online CMS: every row of a batch is a stream whose levels learn while it reads (lab.online)
        self.online = OnlineCMS(self.model, config.online, self.stream.batch_size) if config.online.enabled else None
        self.schedule = LevelSchedule.from_tokens(model_config.cms_chunk_tokens, self.stream.tokens_per_step)
        self.optimizers = self._make_optimizers()
        self.initial_state = copy.deepcopy(self.model.state_dict())   # the reference state of every level
        self.recorder = Recorder(config.model)
        self.callbacks: dict[str, list[Callable]] = {e: [] for e in EVENTS}
        self.step_count = 0
        self.diverged: Divergence | None = None
        self.matrix_rows: list[list[float]] = []
        self._replay = ReplayBuffer(config.replay, config.seed) if config.replay else None
        # every task's held-out set: [(inputs, targets)], on the run's device, in task order
        self.eval_sets = [tuple(t.to(self.device) for t in task.eval_set(config.eval_size, seed=config.stream.seed))
                          for task in self.stream.tasks]
        self._eval_inputs = torch.cat([inputs for inputs, _ in self.eval_sets])
        offsets = [0]
        for inputs, _ in self.eval_sets:
            offsets.append(offsets[-1] + inputs.shape[0])
        self._eval_slices = [slice(a, b) for a, b in zip(offsets, offsets[1:])]
        self._phase_start_params = self._level_params_copy()
        self._timing = [0.0, 0]                     # seconds and steps spent in step(), not recorded
        self.evaluate()
        self.matrix_rows.append(self.last_eval_accuracy())
        self._loss_ceiling = max(50.0, 20.0 * self._untrained_loss)
        self.active = Phase("active", self._stream_batch, self._active_loss, self._due_levels, config.grad_clip,
                            self._loss_ceiling, None, self._after_active_step)

    # --- set-up --------------------------------------------------------------------------
    def _make_optimizers(self) -> dict:
        if self.config.trainable == "none":
            return {}
        groups = self.model.parameter_levels()
        scales = [spec.lr_scale for spec in self.model.config.cms_levels]
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
        """Advance the active phase up to n steps (fewer if the stream ends or the run diverges)."""
        for _ in range(n):
            if self.done or self.diverged:
                break
            started = time.perf_counter()
            self._update(self.active, self.step_count + 1)
            self._timing[0] += time.perf_counter() - started
            self._timing[1] += 1
        return self

    def train(self, phase: Phase, iterations: int) -> int:
        """Run `iterations` steps of another phase (a sleep's distillation); the step counter of
        the stream does not move. Stops early if the run diverges. Returns the iterations done."""
        done = 0
        for iteration in range(1, iterations + 1):
            if self.diverged:
                break
            if self._update(phase, iteration) is None:
                break
            done += 1
        return done

    def _update(self, phase: Phase, iteration: int) -> float | None:
        """One step of the loop: batch, loss, backward, the due optimizers' steps, then the phase's
        `after_update`. Returns the loss, or None when it diverged (then nothing was applied)."""
        self.model.train()
        batch = phase.batch(iteration)
        loss = phase.loss(self.model, batch)
        value = float(loss.detach())
        if not self._check_loss(value, phase, iteration):
            return None
        if loss.requires_grad:                             # a frozen model has nothing to back-propagate into
            loss.backward()
        if phase.before_update is not None:
            phase.before_update()
        due = [(key, opt) for key, opt in phase.due(iteration) if opt is not None]
        grad_norms = {}
        for key, opt in due:
            params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
            norm = (torch.nn.utils.clip_grad_norm_(params, phase.grad_clip) if phase.grad_clip
                    else torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
            grad_norms[key] = float(norm)
            if not math.isfinite(grad_norms[key]):
                self._stop(value, "the gradient is not finite while the loss is: a value overflowed where the loss "
                                  "does not look (at positions it does not score) or in the backward pass", phase,
                           iteration)
                return None
        level_norms = {}                                   # CMS level → (update norm, gradient norm)
        for key, opt in due:
            measured = isinstance(key, int)
            before = [p.detach().clone() for g in opt.param_groups for p in g["params"]] if measured else None
            opt.step()
            opt.zero_grad(set_to_none=True)
            if measured:
                after = [p.detach() for g in opt.param_groups for p in g["params"]]
                delta = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(after, before)))
                level_norms[key] = (float(delta), grad_norms[key])
        if phase.after_update is not None:
            phase.after_update(iteration, value, level_norms)
        return value

    # --- the active phase ------------------------------------------------------------------
    def _stream_batch(self, step: int) -> Batch:
        """The stream's batch of this step (with replayed sequences mixed in), on the device."""
        fresh = self.stream.batch(step - 1)
        inputs, targets = fresh
        if self._replay is not None:
            inputs, targets = self._replay.mix(inputs, targets, self.current_task, self.config.replay_fraction,
                                               self.config.replay_extra)
            self._fresh = fresh
        return inputs.to(self.device), targets.to(self.device)

    def _active_loss(self, model, batch: Batch) -> torch.Tensor:
        """Cross-entropy on the batch; with online CMS, the streams read it and their levels learn on
        the way (`OnlineCMS.read`); a frozen model only reads."""
        if self.online is not None:
            return self.online.read(*batch, outer=bool(self.optimizers))[1]
        if not self.optimizers:
            with torch.no_grad():
                return masked_loss(model(batch[0]), batch[1])
        return masked_loss(model(batch[0]), batch[1])

    def _due_levels(self, step: int) -> list:
        """The optimizer of everything outside the CMS, then each level due at this step."""
        return [(level, self.optimizers.get(level)) for level in [None] + self.schedule.due(step)]

    def _after_active_step(self, step: int, loss: float, level_norms: dict) -> None:
        task = self.current_task
        name, tokens = self.stream.tasks[task].name, step * self.stream.tokens_per_step
        for level, (update_norm, grad_norm) in level_norms.items():
            self.recorder.add(step, tokens, "update_norm", update_norm, name, level)
            self.recorder.add(step, tokens, "grad_norm", grad_norm, name, level)
        if self.online is not None:                        # tokens: the run's, at the moment of the update
            for read, level, norm in self.online.drain_events():
                self.recorder.add(step, read * self.online.streams, "online_update_norm", norm, name, level)
        if self._replay is not None:
            self._replay.add(*self._fresh, task)
        self.step_count = step
        self.recorder.add(step, tokens, "loss", loss, name)
        self._trigger("on_step_end")
        phase_end = step in self.stream.boundaries_steps()[1:]
        if phase_end or step % self.config.eval_every == 0:
            self.evaluate()
        if phase_end:
            self.matrix_rows.append(self.last_eval_accuracy())
            self._trigger("on_phase_end")
            self._phase_start_params = self._level_params_copy()

    def _check_loss(self, value: float, phase: Phase, iteration: int) -> bool:
        if not math.isfinite(value):
            self._stop(value, "the loss is not finite", phase, iteration)
            return False
        if value > phase.loss_ceiling:
            self._stop(value, f"the loss rose above {phase.loss_ceiling:.3g}, 20× the untrained model's", phase, iteration)
            return False
        return True

    def _stop(self, loss: float, reason: str, phase: Phase, iteration: int) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        for p in self.model.parameters():
            p.grad = None
        self.diverged = Divergence(iteration, loss, reason, phase.name)
        self.recorder.add(self.step_count, self.tokens_seen, "diverged", loss, phase=phase.name)
        self._trigger("on_diverged")

    # --- measurement ---------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, phase: str = "active") -> dict[str, dict]:
        """Accuracy and loss on every task's held-out set; recorded as rows of `phase`."""
        self.model.eval()
        results = {}
        for task, s in zip(self.stream.tasks, self._scores()):
            results[task.name] = s
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

    def _scores(self) -> list[dict]:
        """Each task's held-out scores, every held-out set in one forward pass; with online CMS, the
        mean over the streams of what each stream's instance scores."""
        streams = range(self.online.streams) if self.online is not None else [None]
        per_stream = []
        for s in streams:
            if s is None:
                logits = self.model(self._eval_inputs)
            else:
                with self.online.stream(s, self._eval_inputs.shape[0]):
                    logits = self.model(self._eval_inputs)
            per_stream.append([score(logits[rows], targets) for (_, targets), rows in
                               zip(self.eval_sets, self._eval_slices)])
        if len(per_stream) == 1:
            return [{k: float(v) for k, v in s.items()} for s in per_stream[0]]
        return [{k: sum(float(p[j][k]) for p in per_stream) / len(per_stream) for k in per_stream[0][j]}
                for j in range(len(self.eval_sets))]

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
            "online": self.online.state() if self.online else None,
        })

    def restore(self, snap: dict) -> None:
        snap = copy.deepcopy(snap)
        if self.model.match_shapes(snap["model"]):       # a sleep grew or pruned a level since the snapshot
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
        if self.online is not None:
            self.online.load(snap["online"])
