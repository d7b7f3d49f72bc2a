"""Sequential state tracking against length as a sweep experiment (`tracking`): one trial trains a
model on state-tracking problems of one length (lab.tasks.tracking: parity, running sums mod k,
composition of permutations, all mixed in every batch) and measures the final answer's accuracy at
that length and at longer ones (REFERENCE.md §7, last paragraph: what attention cannot do in a
fixed number of layers, and what a memory that carries a state can).

Caveat stated on the card: every family here reads learned absolute position embeddings, so
positions past the trained length are untrained for all of them; a fall-off at longer lengths mixes
state tracking with untrained positions."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lab.config import Config, bounded, choice
from lab.models import MODELS, PRESETS
from lab.run_config import RunConfig
from lab.sweep.base import Experiment, Progress, TrialError, _clean
from lab.tasks.tracking import PROBLEMS, length_curve


@dataclass(frozen=True)
class TrackingSettings(Config):
    model: str = choice("hope", tuple(MODELS), "architecture")
    preset: str = choice("small", tuple(PRESETS), "model size")
    problems: tuple[str, ...] = field(default=("parity", "perm3"), metadata={"doc": f"any of {', '.join(PROBLEMS)}"})
    length: int = bounded(16, 2, 120, "symbols a training sequence")
    test_lengths: tuple[int, ...] = bounded((16, 32), 2, 250, "lengths the accuracy is measured at")
    steps: int = bounded(600, 1, 100_000, "training steps (every batch mixes the problems)")
    lr: float = bounded(1e-3, 1e-6, 10.0, "learning rate")
    eval_size: int = bounded(128, 8, 4096, "held-out sequences per problem and length")
    seed: int = bounded(0, 0, 2**31 - 1, "seed of the data and the model")

    def check(self) -> None:
        if not self.problems or [p for p in self.problems if p not in PROBLEMS]:
            self.fail("problems", f"choose some of {', '.join(PROBLEMS)}")

    def measured_lengths(self) -> list[int]:
        """The test lengths and always the trained one (acc_trained is read there; each length has
        its own held-out set, so adding one changes no other)."""
        return sorted(set(self.test_lengths) | {self.length})

    def run_config(self) -> RunConfig:
        per = max(1, self.steps // len(self.problems))
        stream = {"kind": "tracking", "problems": self.problems, "n_tasks": len(self.problems), "length": self.length,
                  "joint": True, "schedule": tuple(range(len(self.problems))), "steps_per_task": per, "seed": self.seed}
        return RunConfig(model=self.model, preset=self.preset, lr=self.lr, seed=self.seed, eval_every=100_000,
                         eval_size=self.eval_size, stream=stream)


class TrackingExperiment(Experiment):
    def seeded(self, settings: TrackingSettings, seed: int) -> TrackingSettings:
        return settings.replace(seed=seed)

    def run(self, settings: dict, seed: int, progress: Progress) -> list[dict]:
        from lab.engine import Run

        s = TrackingSettings.from_dict(settings)
        run = Run(s.run_config())
        while not run.done and not run.diverged:
            run.step(25)
            progress(run.step_count / run.stream.total_steps)
        if run.diverged:
            raise TrialError(f"{s.model}, seed {seed} diverged: {run.diverged.message()}")
        with torch.no_grad():
            curve = length_curve(run.model, run.stream.tasks, s.measured_lengths(), n=s.eval_size, seed=seed)
        row = {"model": s.model, "method": "naive"}
        for length, part in curve.groupby("length"):
            row[f"acc_L{int(length)}"] = _clean(float(part["accuracy"].mean()))
        longer = curve[curve["length"] > s.length]
        row["acc_trained"] = _clean(float(curve[curve["length"] == s.length]["accuracy"].mean()))
        row["acc_longer"] = _clean(float(longer["accuracy"].mean())) if len(longer) else None
        row["chance"] = _clean(float(curve["chance"].mean()))
        return [row]


EXPERIMENT = TrackingExperiment("tracking", TrackingSettings, {}, {("seed",)},
                                "a model trained on state tracking at one length, measured at longer ones")
