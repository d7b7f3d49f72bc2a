"""A finished forgetting comparison (`Comparison`): its accuracy matrix, tidy records, summary
and joint reference; written to and read from a folder (`save`, `load`: what `python -m lab forget`
writes and what assets/forgetting/ ships), re-run live (`lab.forgetting.job.rerun_job`) and checked against a live
re-run (`check_agreement`), with the configuration drift since it was made (`drift_from_defaults`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lab import metrics
from lab.config import ConfigError
from lab.forgetting.report import describe_comparison, table_notes
from lab.forgetting.settings import ForgetSettings
from lab.forgetting.summary import MATRIX_COLUMNS, matrix_agreement, summary_table


FILES = {"matrix": "accuracy_matrix.csv", "records": "records.csv", "joint": "joint.csv", "summary": "summary.json"}


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False,
                       na_values={c: ["", "nan", "NaN"] for c in ("value", "accuracy")})


@dataclass
class Comparison:
    """A finished comparison; the page and the sessions treat it as read-only (the shipped one is
    shared by every user of a server)."""

    matrix: pd.DataFrame            # MATRIX_COLUMNS, after_task 0 = untrained, eval_task 1..T
    records: pd.DataFrame           # tidy records of every sequential run, with seed and method columns
    summary: dict                   # see build_summary; summary["results"][method][model][metric] = {mean, std}
    task_names: list[str]
    boundaries_tokens: list[int]
    joint: pd.DataFrame | None = None   # JOINT_COLUMNS, when the joint reference was run

    @property
    def models(self) -> list[str]:
        return list(self.summary["models"])

    @property
    def methods(self) -> list[str]:
        return list(self.summary["methods"])

    @property
    def seeds(self) -> list[int]:
        return list(self.summary["seeds"])

    def matrices(self) -> dict[tuple[str, str, int], list[list[float]]]:
        out = {}
        for (model, method, seed), df in self.matrix.groupby(["model", "method", "seed"], sort=False):
            out[(model, method, int(seed))] = metrics.matrix_from_frame(df).tolist()
        return out

    def describe(self) -> str:
        return describe_comparison(self.summary)

    def table(self, numeric: bool = False) -> pd.DataFrame:
        """The summary table the page shows (lab.forgetting.summary_table)."""
        return summary_table(self.summary, numeric)

    def table_notes(self) -> str:
        """What the table's columns mean."""
        return table_notes(self.summary)

    @property
    def phase_tasks(self) -> list[int] | None:
        """The task each phase trains (None: phase i trains task i)."""
        return None

    @property
    def row_labels(self) -> list[str] | None:
        """Labels of the accuracy matrix's rows (None: untrained, after task 1, …)."""
        return None

    def save(self, out: str | Path, keep_metrics: list[str] | None = None, **extra) -> list[Path]:
        """Write accuracy_matrix.csv, records.csv (only `keep_metrics` rows, if given), joint.csv
        (with a joint reference) and summary.json (the summary plus task names, boundaries and
        `extra`). Returns the paths written."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / FILES["matrix"], out / FILES["records"], out / FILES["summary"]]
        self.matrix.to_csv(paths[0], index=False)
        records = self.records if not keep_metrics else self.records[self.records.metric.isin(keep_metrics)]
        records.to_csv(paths[1], index=False)
        if self.joint is not None:
            paths.append(out / FILES["joint"])
            self.joint.to_csv(paths[-1], index=False)
        elif (out / FILES["joint"]).exists():
            (out / FILES["joint"]).unlink()
        summary = dict(self.summary, tasks=self.task_names, boundaries_tokens=self.boundaries_tokens,
                       records_metrics=sorted(set(records.metric)), **extra)
        # The flat form `python -m lab forget` documents: each model's ACC, BWT, FWT and forgetting
        # as {"mean", "std"}, for the first method (naive unless only replay was run).
        first = next(iter(self.summary["results"]))
        summary.update({model: metrics for model, metrics in self.summary["results"][first].items()},
                       flat_method=first)
        paths[2].write_text(json.dumps(summary, indent=2))
        return paths

    @classmethod
    def load(cls, folder: str | Path) -> "Comparison":
        """A comparison written by `save` (or `python -m lab forget`). Raises ValueError with the
        reason when a file is missing or unreadable."""
        folder = Path(folder)
        try:
            summary = json.loads((folder / FILES["summary"]).read_text())
            matrix = _read_csv(folder / FILES["matrix"])
            records = _read_csv(folder / FILES["records"])
            joint = _read_csv(folder / FILES["joint"]) if summary.get("joint") else None
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read the comparison in {folder}: {err}") from err
        missing = set(MATRIX_COLUMNS) - set(matrix.columns)
        if missing or "results" not in summary:
            raise ValueError(f"{folder} does not hold a comparison of this version of the lab "
                             f"(missing {', '.join(sorted(missing)) or 'summary results'})")
        return cls(matrix, records, summary, list(summary.get("tasks", [])),
                   [int(t) for t in summary.get("boundaries_tokens", [])], joint)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = tuple(v) if isinstance(v, list) else v
    return out


def config_changes(old: dict, new: dict) -> list[str]:
    """Fields of two RunConfig dicts that differ, as "field: old → new" (nested fields dotted)."""
    a, b = _flat(old), _flat(new)
    return [f"{k}: {a.get(k, '(absent)')!r} → {b.get(k, '(absent)')!r}" for k in sorted(set(a) | set(b))
            if a.get(k, "(absent)") != b.get(k, "(absent)")]


def drift_from_defaults(comparison: Comparison) -> list[str]:
    """How the stored RunConfig of `comparison` differs from what today's defaults would build
    for the same stored settings (e.g. a default learning rate changed since it was made)."""
    settings = comparison.summary.get("settings")
    if not settings or not comparison.summary.get("config"):
        return []
    try:
        today = ForgetSettings.from_dict(settings).base_config().to_dict()
    except ConfigError as err:
        return [f"the stored settings are no longer valid: {err}"]
    return config_changes(comparison.summary["config"], today)


def check_agreement(shipped: Comparison, live: Comparison) -> dict:
    """`matrix_agreement` of a live rerun against the shipped result, plus the joint reference's."""
    out = matrix_agreement(shipped.matrix, live.matrix)
    if live.joint is not None and shipped.joint is not None:
        keys = ["model", "seed", "k"]
        both = live.joint[keys + ["accuracy"]].merge(shipped.joint[keys + ["accuracy"]], on=keys, suffixes=("", "_ref"))
        out["joint_max_abs_diff"] = float((both.accuracy - both.accuracy_ref).abs().max()) if len(both) else math.nan
    return out
