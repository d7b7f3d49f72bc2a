"""The numbers of a deployment comparison, and the result itself (`Deployment`, read by the same
panels as a forgetting comparison).

The accuracy matrix has a row per deployment phase (row 0: after pretraining) and a column per
language (the base languages first). The continual-learning numbers of REFERENCE.md §7 are taken
on the new languages' first round (R restricted to rows 0..n_new and the new columns, so that each
new language has its "after training on it" row):

    ACC, BWT, FWT, forgetting (max form, Chaudhry) and forgetting_final (Avalanche)
    learned        mean_j R[j][j] of the first round
    final_ACC      mean accuracy on the new languages after the whole deployment (every round)
    base_change    mean change on the base languages from the start of deployment to its end
    savings        for every new language seen again: 1 − steps to 80 % of its first-visit peak on
                   the revisit / steps on the first visit (lab.metrics.savings), mean over the
                   revisits and languages where it is defined

Each as {"mean", "std", "ci95", "n"} over the seeds (Student's t interval, lab.metrics.mean_ci).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lab import metrics
from lab.forgetting.store import Comparison

MATRIX_COLUMNS = ["model", "method", "seed", "after_task", "eval_task", "accuracy", "phase"]
KEYS = ("ACC", "BWT", "FWT", "forgetting", "forgetting_final", "learned", "final_ACC", "base_change", "savings")
TABLE_COLUMNS = {"ACC": "ACC (first round)", "BWT": "BWT", "forgetting": "forgetting (max form)",
                 "savings": "savings on revisit", "final_ACC": "ACC at the end", "base_change": "base languages Δ",
                 "learned": "learned (mean R[j][j])"}


def visit_curve(acc: pd.DataFrame, start: int, end: int) -> list[tuple[int, float]]:
    """(steps since the visit began, accuracy) of one task from `start` to `end`: at `start` the
    last row recorded there (after a sleep, if one happened), at `end` the first (before it)."""
    rows = acc[(acc["step"] >= start) & (acc["step"] <= end)]
    first = rows.groupby("step", sort=True)["value"].first()
    last = rows.groupby("step", sort=True)["value"].last()
    curve = [(int(step) - start, float(last[step] if step == start else first[step])) for step in first.index]
    return curve


def run_savings(records: pd.DataFrame, task_names: list[str], boundaries: list[int], phase_tasks: list[int],
                fraction: float = 0.8) -> list[dict]:
    """`lab.metrics.savings` of every revisit in one run's accuracy records (columns step, task,
    metric, value, in the order recorded), with the task and the visit. `boundaries`: the phases'
    first steps and the last step."""
    acc = records[records["metric"] == "accuracy"]
    out = []
    for task in sorted(set(phase_tasks)):
        visits = [p for p, t in enumerate(phase_tasks) if t == task]
        mine = acc[acc["task"] == task_names[task]]
        curves = [visit_curve(mine, boundaries[p], boundaries[p + 1]) for p in visits]
        for p, curve in zip(visits[1:], curves[1:]):
            out.append(dict(metrics.savings(curves[0], curve, boundaries[p + 1] - boundaries[p], fraction),
                            task=task_names[task], visit=p))
    return out


def run_numbers(R: np.ndarray, base: int, savings: list[dict]) -> dict:
    """KEYS of one run from its matrix R (rows: phases + 1, columns: languages, base first)."""
    new = R.shape[1] - base
    first = R[:new + 1, base:]                          # the first round, new languages only: (new + 1, new)
    s = metrics.summarize(first)
    values = [v["savings"] for v in savings if math.isfinite(v["savings"])]
    return {"ACC": s["ACC"], "BWT": s["BWT"], "FWT": s["FWT"], "forgetting": s["forgetting_max"],
            "forgetting_final": s["forgetting_final"],
            "learned": float(np.mean([first[j, j - 1] for j in range(1, new + 1)])),
            "final_ACC": float(R[-1, base:].mean()),
            "base_change": float(R[-1, :base].mean() - R[0, :base].mean()) if base else math.nan,
            "savings": float(np.mean(values)) if values else math.nan}


def matrix_of(cells: pd.DataFrame) -> np.ndarray:
    """R (phases + 1, languages) of one run from its matrix rows."""
    rows, cols = int(cells["after_task"].max()) + 1, int(cells["eval_task"].max())
    R = np.full((rows, cols), np.nan)
    for r in cells.itertuples():
        R[int(r.after_task), int(r.eval_task) - 1] = r.accuracy
    return R


def build_summary(matrix: pd.DataFrame, records: pd.DataFrame, variants: list[str], seeds: list[int],
                  task_names: list[str], base: int, boundaries_steps: list[int], phase_tasks: list[int]) -> dict:
    """Per seed and per variant: KEYS as {"mean", "std", "ci95", "n"}; in the shape of a forgetting
    summary (results[method][model]) so that the same panels read it."""
    per_seed = []
    for variant in variants:
        for seed in seeds:
            cells = matrix[(matrix["model"] == variant) & (matrix["seed"] == seed)]
            mine = records[(records["model"] == variant) & (records["seed"] == seed)]
            saved = run_savings(mine, task_names, boundaries_steps, phase_tasks)
            per_seed.append({"model": variant, "method": "deploy", "seed": int(seed),
                             **run_numbers(matrix_of(cells), base, saved), "savings_detail": saved})
    results = {"deploy": {v: {k: metrics.mean_ci([r[k] for r in per_seed if r["model"] == v]) for k in KEYS}
                          for v in variants}}
    return {"kind": "deployment", "n_seeds": len(seeds), "seeds": [int(s) for s in seeds], "models": list(variants),
            "methods": ["deploy"], "tasks": list(task_names), "base_tasks": base, "phase_tasks": list(phase_tasks),
            "results": results, "per_seed": per_seed, "joint": False, "replay": None,
            "forgetting_form": "max form (Chaudhry et al. 2018), over the first round of new languages",
            "forgetting_final_form": "final form (Avalanche), over the first round of new languages"}


def fmt(cell: dict, digits: int = 3) -> str:
    mean, ci = cell["mean"], cell.get("ci95", math.nan)
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}" if math.isfinite(ci) else f"{mean:.{digits}f}"


class Deployment(Comparison):
    """A finished deployment comparison: a `Comparison` (same files, same panels) whose matrix has
    a row per deployment phase and a `phase` column, plus the knowledge map after every task."""

    def __init__(self, matrix, records, summary, task_names, boundaries_tokens, joint=None, knowledge=None,
                 phase_tasks=None):
        super().__init__(matrix, records, summary, task_names, boundaries_tokens, joint)
        self.knowledge = knowledge if knowledge is not None else pd.DataFrame()
        self._phase_tasks = list(phase_tasks if phase_tasks is not None else summary.get("phase_tasks", []))

    @property
    def phase_tasks(self) -> list[int]:
        return self._phase_tasks

    @property
    def row_labels(self) -> list[str]:
        return ["after pretraining"] + [f"after {self.task_names[t]}" for t in self.phase_tasks]

    def table(self, numeric: bool = False) -> pd.DataFrame:
        """One row per variant: TABLE_COLUMNS as "mean ± 95 % interval" (or numbers)."""
        from lab.deploy.settings import variant_label

        rows = []
        for variant in self.models:
            cells = self.summary["results"]["deploy"][variant]
            row = {"variant": variant_label(variant)}
            for key, title in TABLE_COLUMNS.items():
                if numeric:
                    row[f"{title} mean"], row[f"{title} ci95"] = cells[key]["mean"], cells[key]["ci95"]
                else:
                    row[title] = fmt(cells[key])
            rows.append(row)
        return pd.DataFrame(rows)

    def describe(self) -> str:
        from lab.deploy.report import describe_deployment

        return describe_deployment(self.summary)

    def table_notes(self) -> str:
        from lab.deploy.report import table_notes

        return table_notes(self.summary)

    def save(self, out, keep_metrics=None, **extra):
        """The comparison's files, plus knowledge.csv (the knowledge map after every task)."""
        paths = super().save(out, keep_metrics, **extra)
        path = Path(out) / "knowledge.csv"
        self.knowledge.to_csv(path, index=False)
        return paths + [path]

    @classmethod
    def load(cls, folder) -> "Deployment":
        result = super().load(folder)
        if result.summary.get("kind") != "deployment":
            raise ValueError(f"{folder} holds a forgetting comparison, not a deployment")
        path = Path(folder) / "knowledge.csv"
        result.knowledge = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        return result


def merge(parts: list[Deployment]) -> Deployment:
    """One deployment from runs of the same settings on other seeds or other variants (made in
    parallel, or a variant run again): a later part's (variant, seed) replaces an earlier one's.
    Runs are independent given their seed, so this is what one run of everything would give."""
    from lab.deploy.settings import VARIANTS

    first = parts[0]
    loose = ("seeds", "first_seed", "variants")
    settings = {k: v for k, v in first.summary["settings"].items() if k not in loose}
    for other in parts[1:]:
        if {k: v for k, v in other.summary["settings"].items() if k not in loose} != settings \
                or other.task_names != first.task_names:
            raise ValueError("only deployments of the same settings (seeds and variants apart) can be merged")

    def keyed(frame, part):
        return frame.assign(_part=part)
    matrix = pd.concat([keyed(p.matrix, i) for i, p in enumerate(parts)], ignore_index=True)
    records = pd.concat([keyed(p.records, i) for i, p in enumerate(parts)], ignore_index=True)
    knowledge = pd.concat([keyed(p.knowledge, i) for i, p in enumerate(parts)], ignore_index=True)
    last = matrix.groupby(["model", "seed"])["_part"].max().rename("_last").reset_index()

    def latest(frame):
        frame = frame.merge(last, on=["model", "seed"], how="inner")
        return frame[frame["_part"] == frame["_last"]].drop(columns=["_part", "_last"]).reset_index(drop=True)
    matrix, records, knowledge = latest(matrix), latest(records), latest(knowledge)
    variants = [v for v in VARIANTS if v in set(matrix["model"])]
    seeds = sorted(int(s) for s in set(matrix["seed"]))
    steps = [int(x) for x in first.summary.get("boundaries_steps", [])]
    summary = build_summary(matrix, records, variants, seeds, first.task_names, first.summary["base_tasks"],
                            steps, first.phase_tasks)
    summary.update(settings=dict(first.summary["settings"], first_seed=seeds[0], seeds=len(seeds), variants=variants),
                   wall_seconds=sum(p.summary.get("wall_seconds", 0.0) for p in parts),
                   config=first.summary.get("config"), boundaries_steps=steps)
    return Deployment(matrix, records, summary, first.task_names, first.boundaries_tokens, None, knowledge,
                      first.phase_tasks)
