"""The Sleep experiment a user drives: HOPE trained task by task, a sleep when asked (or after each
task), and what each sleep did (knowledge map before and after, accuracy, dreams, drift).

    session = SleepSession()
    session.configure(preset="tiny", steps=40)
    session.request_train()            # to the end of the current task
    session.request_sleep()            # then a sleep (REFERENCE.md §6, lab.sleep)
    while session.busy:
        session.advance(0.3)
    session.last_sleep["before"]       # knowledge map (level, task, drop) just before the sleep

A run is built at the first "train" with the settings of that moment; settings changed later
apply to the next run (the page says so), so that nothing already computed is lost.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import pandas as pd

from lab.config import Config, ConfigError, bounded, choice, flag
from lab.engine import Run, RunConfig
from lab.sessions.base import Session, exclusive
from lab.sleep import SleepConfig, SleepError, sleep_and_map
from lab.tasks.stream import StreamConfig

CHUNK = 5                   # steps between progress updates


@dataclass(frozen=True)
class SleepSettings(Config):
    preset: str = choice("small", ("tiny", "small"), "model size of HOPE")
    steps: int = bounded(100, 1, 2000, "training steps per task")
    eval_size: int = bounded(64, 4, 512, "held-out sequences per task")
    auto_sleep: bool = flag(False, "sleep after each task")
    distill_steps: int = bounded(60, 0, 2000, "distillation steps of a sleep")
    dream_samples: int = bounded(128, 1, 4096, "dreamed sequences of a sleep")
    repair_steps: int = bounded(20, 0, 1000, "repair steps after pruning")

    def run_config(self) -> RunConfig:
        return RunConfig(model="hope", preset=self.preset, stream=StreamConfig(steps_per_task=self.steps),
                         eval_size=self.eval_size, eval_every=max(1, self.steps // 5))

    def sleep_config(self) -> SleepConfig:
        return SleepConfig(distill_steps=self.distill_steps, dream_samples=self.dream_samples,
                           repair_steps=self.repair_steps, record_every=max(1, self.distill_steps // 10))


def knowledge_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """knowledge_drop records as the knowledge map's columns level, task, drop."""
    return pd.DataFrame({"level": rows["level"].astype(int).to_numpy(), "task": rows["task"].to_numpy(),
                         "drop": rows["value"].astype(float).to_numpy()})


class SleepSession(Session):
    kind = "sleep"
    Settings = SleepSettings

    def __init__(self, settings: SleepSettings | None = None):
        super().__init__()
        self.settings = settings or SleepSettings()
        self.run: Run | None = None
        self.run_settings: SleepSettings | None = None     # the settings the run was built with
        self.sleeps: list[dict] = []
        self._target: int | None = None                    # step to train to
        self._sleep_pending = False

    def _apply(self, settings: SleepSettings) -> None:
        """Settings take effect at the next run (a run keeps the settings it was built with); one
        this server does not allow (lab.limits) is refused now."""
        self.limits.check_run(settings.run_config())

    @property
    def settings_differ(self) -> bool:
        return self.run is not None and self.run_settings != self.settings

    # --- verbs ------------------------------------------------------------------------------------
    @exclusive
    def request_train(self) -> None:
        """Train to the end of the current task (a new run first, if there is none or the settings
        changed); then sleep, if `auto_sleep`."""
        if self.run is None or self.settings_differ:
            try:
                self.run = Run(self.settings.run_config())
            except (ConfigError, ValueError) as err:
                self.notices.add("error", f"This cannot run: {err}")
                return
            self.run_settings, self.sleeps = self.settings, []
        if not self.can_train:
            return
        bounds = self.run.stream.boundaries_steps()
        self._target = min((b for b in bounds if b > self.run.step_count), default=self.run.stream.total_steps)

    @exclusive
    def request_sleep(self) -> None:
        if self.run is not None:
            self._sleep_pending = True

    @exclusive
    def reset(self) -> None:
        """Start over: no run, no sleeps."""
        self.run, self.run_settings, self.sleeps = None, None, []
        self.stop()
        self.changed()

    @property
    def can_train(self) -> bool:
        return self.run is None or not (self.run.done or self.run.diverged)

    # --- work -------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._target is not None or self._sleep_pending

    @exclusive
    def stop(self) -> None:
        self._target, self._sleep_pending = None, False

    @property
    def progress(self) -> tuple[float, str]:
        if self._target is not None:
            start = max([b for b in self.run.stream.boundaries_steps() if b < self._target], default=0)
            done = (self.run.step_count - start) / max(1, self._target - start)
            return done, f"training {self.run.stream.task_names[self.run.current_task]}: step {self.run.step_count} of {self._target}"
        return (0.0, "sleeping: dreaming, distilling, pruning…") if self._sleep_pending else (1.0, "")

    @exclusive
    def advance(self, budget_s: float = 0.3) -> int:
        """Train towards the end of the task (CHUNK steps at a time), then sleep if one is due."""
        start, steps = time.perf_counter(), 0
        while self._target is not None and time.perf_counter() - start < budget_s:
            run = self.run
            before = run.step_count
            run.step(min(CHUNK, self._target - run.step_count))
            steps += run.step_count - before
            if run.diverged:
                self.notices.add("warning", run.diverged.message())
                self.stop()
            elif run.step_count >= self._target or run.done:
                self._target = None
                self._sleep_pending = self._sleep_pending or self.settings.auto_sleep
        if self._target is None and self._sleep_pending:
            self._sleep_pending = False
            self._sleep()
        self.changed()
        return steps

    def _sleep(self) -> None:
        """One sleep, with what the page shows of it kept (small frames only)."""
        run = self.run
        records_before = len(run.records())
        run.evaluate()                               # the accuracy row just before the sleep
        try:
            report = sleep_and_map(run, self.run_settings.sleep_config())
        except (SleepError, ConfigError) as err:
            self.notices.add("error", f"This cannot run: {err}")
            return
        new = run.records().iloc[records_before:]
        know = new[new.metric == "knowledge_drop"]
        acc = new[new.metric == "accuracy"]
        before = acc[acc.phase == "active"].groupby("task", sort=False)["value"].last()
        after = acc[acc.phase == "sleep"].groupby("task", sort=False)["value"].last()
        names = list(run.stream.task_names)
        self.sleeps.append({
            "step": run.step_count,
            "task": names[run.stream.task_at(max(0, run.step_count - 1))] if run.step_count > 0 else None,
            "before": knowledge_frame(know[know.phase == "active"]),
            "after": knowledge_frame(know[know.phase == "sleep"]),
            "accuracy": pd.DataFrame({"task": names, "before": [float(before.get(t, float("nan"))) for t in names],
                                      "after": [float(after.get(t, float("nan"))) for t in names]}),
            "dreams": [run.stream.decode(row) for row in report.dreams[:5]] if report.dreams is not None else [],
            "drift": report.drift.copy(), "kl": dict(report.kl),
        })

    # --- reading ----------------------------------------------------------------------------------
    @property
    def last_sleep(self) -> dict | None:
        return self.sleeps[-1] if self.sleeps else None

    @property
    def tasks_trained(self) -> int:
        return 0 if self.run is None else sum(1 for b in self.run.stream.boundaries_steps()[1:] if b <= self.run.step_count)

    def records(self) -> pd.DataFrame:
        return super().records() if self.run is None else self.run.records()

    @exclusive
    def snapshot(self) -> dict:
        return {"settings": self.settings, "run_settings": self.run_settings, "sleeps": copy.deepcopy(self.sleeps),
                "run": None if self.run is None else self.run.snapshot()}

    @exclusive
    def restore(self, snap: dict) -> None:
        self.stop()
        self.settings, self.run_settings, self.sleeps = snap["settings"], snap["run_settings"], copy.deepcopy(snap["sleeps"])
        if snap["run"] is None:
            self.run = None
        else:
            if self.run is None or self.run.config != self.run_settings.run_config():
                self.run = Run(self.run_settings.run_config())
            self.run.restore(snap["run"])
        self.changed()
