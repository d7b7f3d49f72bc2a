"""Tidy records: every measurement is one row (DESIGN.md, principle 2).

Columns: step, tokens, phase ("active" or "sleep"), model, task, level, metric, value.
`task` is a task name or "" (a measurement of no particular task); `level` a CMS level
index or -1 (not a level). All plots read these rows; export is a CSV of them.
"""
from __future__ import annotations

import pandas as pd

COLUMNS = ["step", "tokens", "phase", "model", "task", "level", "metric", "value"]
# every metric a run records (lab.engine, lab.knowledge): what `--keep-metrics` may name
METRICS = ("loss", "accuracy", "seq_accuracy", "eval_loss", "drift", "update_norm", "grad_norm",
           "online_update_norm", "knowledge_drop", "diverged")


class Recorder:
    def __init__(self, model: str):
        self.model = model
        self._rows: list[tuple] = []
        self._frame: pd.DataFrame | None = None
        self._framed = 0

    def add(self, step: int, tokens: int, metric: str, value: float, task: str = "", level: int = -1,
            phase: str = "active") -> None:
        self._rows.append((step, tokens, phase, self.model, task, level, metric, float(value)))

    def __len__(self) -> int:
        return len(self._rows)

    def truncate(self, n: int) -> None:
        del self._rows[n:]
        self._frame, self._framed = None, 0

    def frame(self) -> pd.DataFrame:
        """All rows as a DataFrame; built incrementally, so calling it every frame stays cheap."""
        if self._frame is None or self._framed > len(self._rows):
            self._frame, self._framed = pd.DataFrame(columns=COLUMNS), 0
        if self._framed < len(self._rows):
            new = pd.DataFrame(self._rows[self._framed:], columns=COLUMNS)
            self._frame = new if self._framed == 0 else pd.concat([self._frame, new], ignore_index=True)
            self._framed = len(self._rows)
        return self._frame

    def rows(self) -> list[tuple]:
        return list(self._rows)
