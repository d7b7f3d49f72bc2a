"""A sweep's folder: what has finished, and the results read from it.

    DIR/spec.json        the normalised spec and its fingerprint (a resume checks it)
    DIR/trials/KEY.json  one file per finished trial, written atomically the moment its result
                         arrives: its cell, seed, settings, and its rows of numbers or its error
    DIR/records.csv      tidy records: one row per trial × model × method × metric
                         (trial, cell, the swept settings, seed, model, method, metric, value;
                         a swept setting named like one of these columns is "cell.NAME")
    DIR/summary.json     per cell, model and method: each metric as {"mean", "std", "ci95", "n"}
                         over the seeds (lab.metrics.mean_ci), and how far the sweep got
    DIR/failures.json    the trials that raised (their settings and the error), and trials Ray lost
    DIR/tune/            Ray Tune's own experiment folders (its logs), one per invocation

The trial files are the sweep's memory: records, summary and failures are rebuilt from them after
every invocation, so a folder can always be summarised again (`SweepResult.load`).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lab import metrics

FILES = {"spec": "spec.json", "records": "records.csv", "summary": "summary.json", "failures": "failures.json"}
TRIALS = "trials"
ID_COLUMNS = ["trial", "cell"]
ROW_COLUMNS = ["seed", "model", "method", "metric", "value"]
FIXED = set(ID_COLUMNS + ROW_COLUMNS + ["mean", "std", "ci95", "lo", "hi", "n"])


def field_columns(field_names: list[str]) -> list[str]:
    """The columns of the swept settings: their names, or "cell.NAME" where a name is a fixed
    column's (a sweep over `model` has both the cell's model and each row's)."""
    return [f"cell.{name}" if name in FIXED else name for name in field_names]


def strict(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader (or a resume after a kill) sees the old file or the new, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(strict(data), indent=2))
    os.replace(tmp, path)


def trial_path(out: Path, key: str) -> Path:
    return Path(out) / TRIALS / f"{key}.json"


def read_trial(out: Path, key: str) -> dict | None:
    """A finished trial's file, or None when it is missing, cut short or unreadable."""
    try:
        data = json.loads(trial_path(out, key).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("status") in ("ok", "failed") else None


def finished(out: Path, trials: list, retry_failed: bool = False) -> dict[str, dict]:
    """The trials of the plan that have a whole result file for the very same settings (a failed
    trial counts as finished unless `retry_failed`: it would fail again)."""
    done = {}
    for trial in trials:
        data = read_trial(out, trial.key)
        if data is None or data.get("settings") != trial.settings or data.get("seed") != trial.seed:
            continue
        if data["status"] == "failed" and retry_failed:
            continue
        done[trial.key] = data
    return done


def _cell_value(value: Any) -> Any:
    """A swept value in a CSV cell: a list as the URL writes it ("64,256,1024")."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def records_frame(results: list[dict], field_names: list[str]) -> pd.DataFrame:
    """Tidy records of the finished trials (in plan order)."""
    rows = []
    for data in results:
        if data["status"] != "ok":
            continue
        head = [data["key"], data["cell"]] + [_cell_value(data["fields"].get(f)) for f in field_names]
        for row in data["rows"]:
            for metric, value in row.items():
                if metric in ("model", "method"):
                    continue
                rows.append(head + [data["seed"], row["model"], row["method"], metric,
                                    math.nan if value is None else float(value)])
    return pd.DataFrame(rows, columns=ID_COLUMNS + field_columns(field_names) + ROW_COLUMNS)


def summarise(spec, results: list[dict], lost: list[dict], ran: list[str]) -> dict:
    """The summary: per cell, model and method, each metric's {"mean", "std", "ci95", "n"} over the
    seeds that finished, with the seeds that did and did not."""
    by_key = {r["key"]: r for r in results}
    cells = []
    for index, fields in enumerate(spec.cells):
        mine = [t for t in spec.trials if t.cell == index]
        ok = [by_key[t.key] for t in mine if t.key in by_key and by_key[t.key]["status"] == "ok"]
        groups: dict[tuple, dict[int, dict]] = {}
        for data in ok:
            for row in data["rows"]:
                groups.setdefault((row["model"], row["method"]), {})[data["seed"]] = row
        for (model, method), per_seed in groups.items():
            names = [k for k in next(iter(per_seed.values())) if k not in ("model", "method")]
            cells.append({"cell": index, "fields": fields, "model": model, "method": method,
                          "seeds": sorted(per_seed),
                          "metrics": {m: metrics.mean_ci([math.nan if r.get(m) is None else r[m]
                                                          for r in per_seed.values()]) for m in names}})
    failed = [r["key"] for r in results if r["status"] == "failed"]
    done = {r["key"] for r in results}
    return {"kind": "sweep", "experiment": spec.experiment, "fingerprint": spec.fingerprint,
            "fields": spec.field_names, "seeds": spec.seeds,
            "metrics": sorted({m for c in cells for m in c["metrics"]}),
            "trials": len(spec.trials), "finished": len(done) - len(failed), "failed": len(failed),
            "missing": [t.key for t in spec.trials if t.key not in done],
            "complete": len(done) == len(spec.trials),
            "last_invocation": {"ran": list(ran), "reused": sorted(done - set(ran)),
                                "lost": [x["key"] for x in lost]},
            "spec": spec.to_dict(), "cells": cells}


def failures_list(results: list[dict], lost: list[dict]) -> list[dict]:
    out = [{k: r.get(k) for k in ("key", "cell", "fields", "seed", "experiment", "settings", "status", "error",
                                  "traceback")} for r in results if r["status"] == "failed"]
    return out + lost


def regime_map(summary: dict, metric: str, model: str | None = None, method: str | None = None) -> pd.DataFrame:
    """A sweep's summary as a regime map: one row per cell (and model, method) with the swept
    settings, the metric's mean, std, 95 % interval (half-width, and lo / hi) and n seeds."""
    rows, columns = [], dict(zip(summary["fields"], field_columns(summary["fields"])))
    for entry in summary["cells"]:
        if (model is not None and entry["model"] != model) or (method is not None and entry["method"] != method):
            continue
        cell = entry["metrics"].get(metric)
        if cell is None:
            continue
        mean = math.nan if cell["mean"] is None else cell["mean"]
        ci = math.nan if cell["ci95"] is None else cell["ci95"]
        rows.append({"cell": entry["cell"], **{c: _cell_value(entry["fields"].get(f)) for f, c in columns.items()},
                     "model": entry["model"], "method": entry["method"], "metric": metric, "mean": mean,
                     "std": math.nan if cell["std"] is None else cell["std"], "ci95": ci,
                     "lo": mean - ci, "hi": mean + ci, "n": cell["n"]})
    return pd.DataFrame(rows, columns=["cell", *columns.values(), "model", "method", "metric", "mean", "std", "ci95",
                                       "lo", "hi", "n"])


@dataclass
class SweepResult:
    """A sweep's results as written in its folder (`run_sweep` returns one; `load` reads one back)."""

    out: Path
    summary: dict
    records: pd.DataFrame
    failures: list[dict] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.summary["complete"])

    @property
    def ran(self) -> list[str]:
        """The trials this invocation ran (the others were found finished in the folder)."""
        return list(self.summary["last_invocation"]["ran"])

    @property
    def reused(self) -> list[str]:
        return list(self.summary["last_invocation"]["reused"])

    def regime_map(self, metric: str, model: str | None = None, method: str | None = None) -> pd.DataFrame:
        return regime_map(self.summary, metric, model, method)

    @classmethod
    def load(cls, out: str | Path) -> "SweepResult":
        """A sweep's folder as written (raises ValueError when it holds no sweep summary)."""
        out = Path(out)
        try:
            summary = json.loads((out / FILES["summary"]).read_text())
            failures = json.loads((out / FILES["failures"]).read_text())
            records = pd.read_csv(out / FILES["records"], keep_default_na=False,
                                  na_values={"value": ["", "nan", "NaN"]})
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read the sweep in {out}: {err}") from err
        if summary.get("kind") != "sweep":
            raise ValueError(f"{out} does not hold a sweep summary")
        return cls(out, summary, records, failures)


def write_results(out: Path, spec, lost: list[dict], ran: list[str]) -> SweepResult:
    """Rebuild records.csv, summary.json and failures.json from the trial files in `out`."""
    done = finished(out, spec.trials)
    results = [done[t.key] for t in spec.trials if t.key in done]
    records = records_frame(results, spec.field_names)
    summary = summarise(spec, results, lost, ran)
    failures = failures_list(results, lost)
    records.to_csv(out / FILES["records"], index=False)
    write_json(out / FILES["summary"], summary)
    write_json(out / FILES["failures"], failures)
    return SweepResult(Path(out), json.loads(json.dumps(strict(summary))), records, strict(failures))
