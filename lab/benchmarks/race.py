"""An optimizer race as a sweep experiment (`race`): one trial trains the same model, seed and batches
once per optimizer (lab.optimizer_race) and reports, per optimizer, the mean training loss over the
last `window` steps and the steps it took to bring the loss under `target` (REFERENCE.md §5: does
M3 train faster than AdamW and Muon?)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from lab.config import Config, bounded
from lab.optim import OPTIMIZERS
from lab.optimizer_race import race
from lab.run_config import RunConfig
from lab.sweep.base import Experiment, Progress, _clean


@dataclass(frozen=True)
class RaceSettings(Config):
    run: RunConfig = field(default_factory=RunConfig)
    optimizers: tuple[str, ...] = field(default=("adamw", "muon", "m3"), metadata={
        "doc": f"optimizers to race, any of {', '.join(OPTIMIZERS)}"})
    steps: int = bounded(150, 1, 10_000, "training steps of each optimizer")
    window: int = bounded(10, 1, 1000, "steps averaged for the final loss")
    target: float = bounded(2.0, 0.0, 100.0, "loss target (nats) for steps_to_target")

    def check(self) -> None:
        bad = [o for o in self.optimizers if o not in OPTIMIZERS]
        if not self.optimizers or bad:
            self.fail("optimizers", f"choose some of {', '.join(OPTIMIZERS)}")


class RaceExperiment(Experiment):
    def seeded(self, settings: RaceSettings, seed: int) -> RaceSettings:
        run = settings.run.replace(seed=seed, stream=settings.run.stream.replace(seed=seed).to_dict())
        return settings.replace(run=run.to_dict())

    def run(self, settings: dict, seed: int, progress: Progress) -> list[dict]:
        s = RaceSettings.from_dict(settings)
        frame = race(s.run, list(s.optimizers), s.steps, progress=lambda fraction, _label: progress(fraction))
        rows = []
        for name in s.optimizers:
            loss = frame[(frame.optimizer == name) & (frame.metric == "loss")].sort_values("step")
            below = loss[loss.value < s.target]
            rows.append({"model": s.run.model, "method": name,
                         "final_loss": _clean(float(loss.value.tail(s.window).mean())),
                         "steps_to_target": _clean(float(below.step.iloc[0]) if len(below) else math.nan),
                         "diverged": float(bool((frame[(frame.optimizer == name)].metric == "diverged").any()))})
        return rows


EXPERIMENT = RaceExperiment("race", RaceSettings, {}, {("run", "seed")},
                            "one setup trained once per optimizer: final loss and steps to a loss target")
