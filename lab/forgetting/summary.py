"""The numbers of a forgetting comparison, from its accuracy matrices (REFERENCE.md §7): each
run's ACC, BWT, FWT and forgetting (`run_metrics`), their mean ± std over seeds (`build_summary`),
the per-task view and the paired differences against a reference model (`per_task`,
`differences`), how far two matrices agree (`matrix_agreement`) and the table the page and the
CLI print (`summary_table`).

The accuracy matrix is long-form: one row per (model, method, seed, after_task, eval_task), with
after_task 0 = the untrained model and eval_task 1..T (MATRIX_COLUMNS).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lab import metrics
from lab.viz.palette import model_label

MATRIX_COLUMNS = ["model", "method", "seed", "after_task", "eval_task", "accuracy"]
JOINT_COLUMNS = ["model", "seed", "k", "accuracy", "steps", "source"]
FORGETTING_FORM = "max form (Chaudhry et al. 2018): max_{l<k} R[l][j] − R[k][j], averaged over j<k"
FORGETTING_FINAL_FORM = "final form (Avalanche): R[j][j] − R[k][j], averaged over j<k"
METRIC_KEYS = ("ACC", "BWT", "FWT", "forgetting", "forgetting_final", "learned", "old_acc", "untrained_old",
               "untrained")
TABLE_COLUMNS = {"ACC": "ACC", "BWT": "BWT", "FWT": "FWT", "forgetting": "forgetting (max form)",
                 "forgetting_final": "forgetting (final form)", "learned": "learned (mean R[j][j])",
                 "intransigence": "intransigence"}


def run_metrics(R, joint_acc: dict[int, float] | None = None) -> dict:
    """§7's numbers of one accuracy matrix, plus what reading them honestly needs:

    learned        mean_j R[j][j]: accuracy on each task right after training on it
    old_acc        mean_{j<T} R[T][j]: what is left of the earlier tasks at the end
    untrained_old  mean_{j<T} R[0][j]: the same tasks before any training (the floor)
    untrained      mean_j R[0][j]: every task before any training
    intransigence  mean_k (joint_k − R[k][k]), when a joint reference is given
    """
    R = np.asarray(R, dtype=float)
    s = metrics.summarize(R)
    T = R.shape[1]
    out = {"ACC": s["ACC"], "BWT": s["BWT"], "FWT": s["FWT"], "forgetting": s["forgetting_max"],
           "forgetting_final": s["forgetting_final"],
           "learned": float(np.mean([R[j, j - 1] for j in range(1, T + 1)])),
           "old_acc": float(R[T, :T - 1].mean()) if T > 1 else math.nan,
           "untrained_old": float(R[0, :T - 1].mean()) if T > 1 else math.nan,
           "untrained": float(R[0].mean())}
    if joint_acc is not None:
        out["intransigence"] = metrics.intransigence(R, joint_acc)["mean"]
    return out


def build_summary(matrix: pd.DataFrame, joint: pd.DataFrame | None, models: list[str], methods: list[str],
                  seeds: list[int], replay: int | None, task_names: list[str]) -> dict:
    """`run_metrics` of every (method, model, seed) run ("per_seed") and their mean ± std over
    seeds ("results"[method][model][metric] = {mean, std}), with what the comparison was."""
    per_seed = []
    for method in methods:
        for model in models:
            for seed in seeds:
                cells = matrix[(matrix.model == model) & (matrix.method == method) & (matrix.seed == seed)]
                joint_acc = None
                if joint is not None:
                    rows = joint[(joint.model == model) & (joint.seed == seed)]
                    joint_acc = {int(r.k): float(r.accuracy) for r in rows.itertuples()}
                per_seed.append({"model": model, "method": method, "seed": int(seed),
                                 **run_metrics(metrics.matrix_from_frame(cells), joint_acc)})
    results = {}
    for method in methods:
        results[method] = {}
        for model in models:
            rows = [{k: v for k, v in r.items() if k not in ("model", "method", "seed")}
                    for r in per_seed if r["model"] == model and r["method"] == method]
            results[method][model] = metrics.mean_std(rows)
    return {"n_seeds": len(seeds), "seeds": [int(s) for s in seeds], "models": list(models),
            "methods": list(methods), "replay": replay, "joint": joint is not None, "tasks": list(task_names),
            "forgetting_form": FORGETTING_FORM, "forgetting_final_form": FORGETTING_FINAL_FORM,
            "results": results, "per_seed": per_seed}


def per_task(matrix: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method, seed, task j): learned R[j][j], final R[T][j], and forgetting
    of task j after the last task in the max form, max_{l<T} R[l][j] − R[T][j] (nan for j = T)."""
    rows = []
    for (model, method, seed), cells in matrix.groupby(["model", "method", "seed"], sort=False):
        R = metrics.matrix_from_frame(cells)
        T = R.shape[1]
        for j in range(1, T + 1):
            forgetting = float(R[1:T, j - 1].max() - R[T, j - 1]) if j < T else math.nan
            rows.append((model, method, seed, j, float(R[j, j - 1]), float(R[T, j - 1]), forgetting))
    return pd.DataFrame(rows, columns=["model", "method", "seed", "task", "learned", "final", "forgetting"])


def differences(matrix: pd.DataFrame, reference: str = "transformer") -> pd.DataFrame:
    """Per task, paired by seed: each other model's learned / final / forgetting minus the
    reference model's, on the same stream. Columns model, method, seed, task, metric, value."""
    table = per_task(matrix)
    if reference not in set(table.model):
        raise ValueError(f"the reference model {reference!r} is not in the comparison")
    ref = table[table.model == reference].drop(columns="model")
    out = []
    for model in [m for m in table.model.unique() if m != reference]:
        mine = table[table.model == model].drop(columns="model")
        both = mine.merge(ref, on=["method", "seed", "task"], suffixes=("", "_ref"))
        for metric in ("learned", "final", "forgetting"):
            frame = both[["method", "seed", "task"]].copy()
            frame.insert(0, "model", model)
            frame["metric"] = metric
            frame["value"] = both[metric] - both[f"{metric}_ref"]
            out.append(frame)
    if not out:
        return pd.DataFrame(columns=["model", "method", "seed", "task", "metric", "value"])
    return pd.concat(out, ignore_index=True)


def matrix_agreement(reference: pd.DataFrame, other: pd.DataFrame) -> dict:
    """How far `other`'s accuracy matrix is from `reference`'s on the cells they share.

    Returns cells (shared), missing (cells of `other` the reference does not have), max_abs_diff,
    identical (every shared cell exactly equal and none missing) and worst (the cell of the max).
    """
    keys = ["model", "method", "seed", "after_task", "eval_task"]
    both = other[keys + ["accuracy"]].merge(reference[keys + ["accuracy"]], on=keys, how="left",
                                            suffixes=("", "_ref"))
    missing = int(both["accuracy_ref"].isna().sum())
    shared = both.dropna(subset=["accuracy_ref"])
    diff = (shared["accuracy"] - shared["accuracy_ref"]).abs()
    worst = None
    if len(shared) and float(diff.max()) > 0:
        row = shared.loc[diff.idxmax()]
        worst = {k: (row[k].item() if hasattr(row[k], "item") else row[k]) for k in keys}
        worst.update(live=float(row["accuracy"]), shipped=float(row["accuracy_ref"]))
    max_diff = float(diff.max()) if len(shared) else math.nan
    return {"cells": int(len(shared)), "missing": missing, "max_abs_diff": max_diff,
            "identical": bool(len(shared) > 0 and missing == 0 and max_diff == 0.0), "worst": worst}


# --- as a table ---------------------------------------------------------------------------------

def fmt_cell(cell: dict, digits: int = 3) -> str:
    """{mean, std} as "0.412 ± 0.031" ("0.412" without a std, "n/a" without a mean)."""
    mean, std = cell["mean"], cell["std"]
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if math.isfinite(std) else f"{mean:.{digits}f}"


def summary_table(summary: dict, numeric: bool = False) -> pd.DataFrame:
    """One row per (method, model): ACC, BWT, FWT, forgetting in both forms, learned accuracy and,
    with a joint reference, intransigence; "mean ± std over n seeds" strings (or numbers). The
    method is named short ("naive", "replay (64 seq.)"), so that the table fits a projector."""
    rows = []
    for method in summary["methods"]:
        for model in summary["models"]:
            cells = summary["results"][method][model]
            short = f"replay ({summary.get('replay')} seq.)" if method == "replay" else method
            row = {"method": short, "model": model_label(model)}
            for key, title in TABLE_COLUMNS.items():
                if key not in cells:
                    continue
                if numeric:
                    row[f"{title} mean"], row[f"{title} std"] = cells[key]["mean"], cells[key]["std"]
                else:
                    row[title] = fmt_cell(cells[key])
            rows.append(row)
    return pd.DataFrame(rows)
