"""The sleep experiment against its controls as a sweep experiment (`sleep`): one trial trains HOPE on
the stream with sleeps between tasks (lab.sleep.experiment) and reports, per arm (sleep, reset_only,
no_sleep), the accuracy on the old tasks at the end and the §7 numbers of its accuracy matrix."""
from __future__ import annotations

from dataclasses import dataclass, field

from lab.config import Config, bounded, choice
from lab.models import PRESETS
from lab.run_config import RunConfig
from lab.sleep import ARMS, WHEN, SleepConfig, sleep_experiment
from lab.sweep.base import Experiment, Progress, _clean


@dataclass(frozen=True)
class SleepArmsSettings(Config):
    preset: str = choice("small", tuple(PRESETS), "model size of HOPE")
    n_tasks: int = bounded(3, 2, 8, "languages of the stream")
    steps_per_task: int = bounded(250, 1, 100_000, "training steps per language")
    eval_size: int = bounded(64, 1, 4096, "held-out sequences per language")
    level_lr_scale: tuple[float, ...] = bounded((), 0.0, 100.0, "outer learning-rate multiplier per level")
    when: str = choice("boundaries", WHEN, "sleep after every task, or after the last")
    sleep: SleepConfig = field(default_factory=SleepConfig)
    seed: int = bounded(0, 0, 2**31 - 1, "seed of the stream and the model")

    def run_config(self) -> RunConfig:
        return RunConfig(model="hope", preset=self.preset, eval_size=self.eval_size, level_lr_scale=self.level_lr_scale,
                         seed=self.seed, stream={"n_tasks": self.n_tasks, "steps_per_task": self.steps_per_task,
                                                 "seed": self.seed})


class SleepArmsExperiment(Experiment):
    def seeded(self, settings: SleepArmsSettings, seed: int) -> SleepArmsSettings:
        return settings.replace(seed=seed, sleep=settings.sleep.replace(seed=seed).to_dict())

    def run(self, settings: dict, seed: int, progress: Progress) -> list[dict]:
        s = SleepArmsSettings.from_dict(settings)
        result = sleep_experiment(s.run_config(), s.sleep, when=s.when, arms=ARMS,
                                  progress=lambda fraction, _label: progress(fraction)).summary
        old = result["old_tasks_mean"]
        keys = {"sleep": "after_sleep", "reset_only": "control_reset_only", "no_sleep": "control_no_sleep"}
        rows = []
        for arm, key in keys.items():
            numbers = {k: v for k, v in result["cl_metrics"].get(key, {}).items() if k != "R"}
            rows.append({"model": "hope", "method": arm, "old_tasks": _clean(float(old[key])),
                         **{k: _clean(float(v)) for k, v in numbers.items()}})
        return rows


EXPERIMENT = SleepArmsExperiment("sleep", SleepArmsSettings, {}, {("seed",), ("sleep", "seed")},
                                 "HOPE with sleeps between tasks against reset-only and no-sleep controls")
