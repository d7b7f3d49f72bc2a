"""What one server lets its sessions cost: limits a teacher sets by environment variable.

    limits = Limits.from_env()                  # NLL_MAX_TRAINERS=12 streamlit run app/main.py
    limits.check_run(run_config)                # a ConfigError naming the limit, before any work

| variable              | default        | what it bounds                                                     |
|-----------------------|----------------|--------------------------------------------------------------------|
| NLL_WORKERS           | CPU cores      | threads that train (one torch thread each)                         |
| NLL_MAX_TRAINERS      | 12             | sessions training at once; the others wait in a queue              |
| NLL_IDLE_TIMEOUT_S    | 30             | a run whose page stopped asking for this long is paused            |
| NLL_MAX_PRESET        | medium         | the largest model size a session may start (tiny, small, medium)   |
| NLL_MAX_STEP_COST     | 16             | a step's estimated cost, in default steps of the same family       |
| NLL_MAX_TOTAL_STEPS   | 20000          | training steps of one run (all tasks together)                     |
| NLL_MAX_RECORD_ROWS   | 400000         | records one session keeps; at the limit its run pauses             |
| NLL_MAX_SNAPSHOTS     | 100            | parameter copies the Playground keeps for its time scrubber        |

The step cost is estimated from the config before anything is built: tokens per step times
the square of the width, relative to the family's default step (parameters grow with the width
squared and so does the work per token, at fixed depth). It is an estimate, not a measurement:
`?preset=medium&batch=1024` (512× the default step) is refused, `?preset=medium` (4×) is not.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

from lab.config import ConfigError
from lab.models import PRESETS
from lab.tasks.stream import build_stream

SIZES = tuple(sorted(PRESETS, key=PRESETS.get))   # tiny, small, medium

ENV = {"workers": "NLL_WORKERS", "max_trainers": "NLL_MAX_TRAINERS", "idle_timeout_s": "NLL_IDLE_TIMEOUT_S",
       "max_preset": "NLL_MAX_PRESET", "max_step_cost": "NLL_MAX_STEP_COST",
       "max_total_steps": "NLL_MAX_TOTAL_STEPS", "max_record_rows": "NLL_MAX_RECORD_ROWS",
       "max_snapshots": "NLL_MAX_SNAPSHOTS"}


@dataclass(frozen=True)
class Limits:
    workers: int = max(1, os.cpu_count() or 1)
    max_trainers: int = 12
    idle_timeout_s: float = 30.0
    max_preset: str = "medium"
    max_step_cost: float = 16.0
    max_total_steps: int = 20_000
    max_record_rows: int = 400_000
    max_snapshots: int = 100

    @classmethod
    def from_env(cls, environ=None) -> "Limits":
        """The limits in `environ` (default os.environ); a malformed value is an error that names it."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(ENV[f.name])
            if raw is None or raw == "":
                continue
            if f.name == "max_preset":
                if raw not in SIZES:
                    raise ValueError(f"{ENV[f.name]} = {raw!r}: must be one of {', '.join(SIZES)}")
                values[f.name] = raw
                continue
            kind = float if f.type in ("float", float) else int
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{ENV[f.name]} = {raw!r}: must be a positive number") from None
            if value <= 0:
                raise ValueError(f"{ENV[f.name]} = {raw!r}: must be a positive number")
            values[f.name] = value
        return cls(**values)

    # --- what a run may cost ------------------------------------------------------------------
    def check_run(self, config) -> None:
        """Refuse a lab.run_config.RunConfig this server does not allow, before anything is built."""
        if SIZES.index(config.preset) > SIZES.index(self.max_preset):
            raise ConfigError("RunConfig", "preset", config.preset,
                              f"this server allows sizes up to {self.max_preset} (set by its {ENV['max_preset']})")
        stream = build_stream(config.stream)
        tokens = stream.tokens_per_step / build_stream().tokens_per_step
        cost = tokens * PRESETS[config.preset] ** 2
        if cost > self.max_step_cost:
            blame = ("RunConfig", "preset", config.preset) if tokens <= self.max_step_cost else \
                ("StreamConfig", "batch_size", config.stream.batch_size)    # the size alone would fit: the batch
            raise ConfigError(*blame, f"a step of this setup would cost about {cost:.0f}× the default step; this "
                                      f"server allows {self.max_step_cost:g}× ({ENV['max_step_cost']}): use a smaller "
                                      "batch or size")
        if stream.total_steps > self.max_total_steps:
            raise ConfigError("StreamConfig", "steps_per_task", config.stream.steps_per_task,
                              f"the run would take {stream.total_steps} steps; this server allows "
                              f"{self.max_total_steps} ({ENV['max_total_steps']}): fewer tasks or steps per task")


_SERVER: Limits | None = None


def server_limits() -> Limits:
    """This process's limits, read from the environment once (a malformed value raises, naming it)."""
    global _SERVER
    if _SERVER is None:
        _SERVER = Limits.from_env()
    return _SERVER
