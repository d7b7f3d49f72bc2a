"""Continual-learning measurements on the accuracy matrix, exactly as REFERENCE.md §7 states them.

R is a numpy array of shape (T+1, T). Rows are "after training on tasks 1..i", columns the
evaluated task j; both are 1-based in the formulas and 0-based in numpy, so the formula's
R[i][j] is `R[i, j-1]`:

    row 0        b_j, the accuracy of the untrained model on task j
    row i ≥ 1    accuracy on task j after training on tasks 1..i

With T = 1 there is no earlier task: BWT, FWT and both forgetting forms are nan (undefined),
not 0. A revisit schedule (0,1,2,0) gives one row per phase; these functions read the matrix
as given, so a caller that wants §7's meaning passes one row per new task.

Bad input (not 2-D, not (T+1, T), NaN or inf, T < 1) raises ValueError.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

NAN = float("nan")


def _check(R) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2:
        raise ValueError(f"accuracy matrix must be 2-D with shape (T+1, T), got {R.ndim}-D {R.shape}")
    T = R.shape[1]
    if T < 1 or R.shape[0] != T + 1:
        raise ValueError(f"accuracy matrix must have shape (T+1, T) with T >= 1 (row 0 = untrained), "
                         f"got {R.shape}")
    if not np.all(np.isfinite(R)):
        bad = np.argwhere(~np.isfinite(R))[0]
        raise ValueError(f"accuracy matrix has a non-finite entry at row {bad[0]}, column {bad[1]}")
    return R


def _k(R: np.ndarray, k: int | None) -> int:
    T = R.shape[1]
    if k is None:
        return T
    if not 1 <= int(k) <= T:
        raise ValueError(f"k must be between 1 and T = {T}, got {k}")
    return int(k)


def acc(R) -> float:
    """ACC = (1/T) Σ_j R[T][j]: mean accuracy over all tasks after the last (§7)."""
    R = _check(R)
    return float(R[-1].mean())


def bwt(R) -> float:
    """BWT = 1/(T−1) Σ_{j<T} (R[T][j] − R[j][j]) (§7, Lopez-Paz & Ranzato 2017).

    Negative = forgetting. nan when T = 1 (undefined).
    """
    R = _check(R)
    T = R.shape[1]
    if T < 2:
        return NAN
    return float(np.mean([R[T, j - 1] - R[j, j - 1] for j in range(1, T)]))


def fwt(R) -> float:
    """FWT = 1/(T−1) Σ_{j≥2} (R[j−1][j] − b_j) (§7): what earlier tasks do for a new one before
    it is trained. b_j is row 0. nan when T = 1 (undefined)."""
    R = _check(R)
    T = R.shape[1]
    if T < 2:
        return NAN
    return float(np.mean([R[j - 1, j - 1] - R[0, j - 1] for j in range(2, T + 1)]))


def forgetting_max(R, k: int | None = None) -> float:
    """Forgetting after task k, Chaudhry et al. 2018 (§7), the max form:

        f_j^k = max_{l ∈ 1..k−1} R[l][j] − R[k][j],   averaged over j = 1..k−1.

    l runs over the after-training rows 1..k−1 only: row 0 (the untrained model) is NOT included,
    so chance accuracy before any training never counts as knowledge that was lost. Rows l < j
    (before task j was trained) are included, as in Chaudhry's formula. k defaults to T.
    nan when k = 1 (no earlier task; always the case for T = 1).
    """
    R = _check(R)
    k = _k(R, k)
    if k < 2:
        return NAN
    return float(np.mean([R[1:k, j - 1].max() - R[k, j - 1] for j in range(1, k)]))


def forgetting_final(R, k: int | None = None) -> float:
    """Forgetting after task k measured against the accuracy just after learning it (Avalanche):

        f_j^k = R[j][j] − R[k][j],   averaged over j = 1..k−1.

    Differs from `forgetting_max` as soon as an old task recovers (sleep can do that): the max
    form remembers the best accuracy ever reached, this one only the one right after training.
    k defaults to T; nan when k = 1.
    """
    R = _check(R)
    k = _k(R, k)
    if k < 2:
        return NAN
    return float(np.mean([R[j, j - 1] - R[k, j - 1] for j in range(1, k)]))


def intransigence(R, joint_acc) -> dict:
    """Intransigence I_k = joint_acc[k] − R[k][k] (§7, Chaudhry et al. 2018).

    joint_acc[k] is the accuracy on task k of a model trained jointly on tasks 1..k. Give it as a
    sequence of length T (position k−1 holds task k) or a mapping {k: accuracy} with k in 1..T
    (some k may be missing). Returns {"per_task": {k: I_k}, "mean": mean of the I_k}.
    """
    R = _check(R)
    T = R.shape[1]
    if isinstance(joint_acc, Mapping):
        items = {int(k): float(v) for k, v in joint_acc.items()}
    else:
        values = np.asarray(joint_acc, dtype=float).reshape(-1)
        if len(values) != T:
            raise ValueError(f"joint_acc must have T = {T} entries (task k at position k-1), got {len(values)}")
        items = {k + 1: float(v) for k, v in enumerate(values)}
    if not items:
        raise ValueError("joint_acc is empty")
    for k, v in items.items():
        if not 1 <= k <= T:
            raise ValueError(f"joint_acc has task {k}: tasks are 1..{T}")
        if not math.isfinite(v):
            raise ValueError(f"joint_acc[{k}] = {v} is not finite")
    per = {k: v - float(R[k, k - 1]) for k, v in sorted(items.items())}
    return {"per_task": per, "mean": float(np.mean(list(per.values())))}


def summarize(R) -> dict:
    """ACC, BWT, FWT, forgetting_max (Chaudhry) and forgetting_final (Avalanche) after task T."""
    R = _check(R)
    return {"ACC": acc(R), "BWT": bwt(R), "FWT": fwt(R),
            "forgetting_max": forgetting_max(R), "forgetting_final": forgetting_final(R)}


def matrix_from_frame(df) -> np.ndarray:
    """R of shape (T+1, T) from a tidy DataFrame with columns after_task (0..T), eval_task (1..T),
    accuracy. Every (after_task, eval_task) cell must appear exactly once (aggregate seeds first)."""
    needed = {"after_task", "eval_task", "accuracy"}
    missing = needed - set(df.columns)
    if missing:
        raise ValueError(f"matrix_from_frame: missing column(s) {', '.join(sorted(missing))}")
    if len(df) == 0:
        raise ValueError("matrix_from_frame: the frame is empty")
    after = df["after_task"].to_numpy()
    ev = df["eval_task"].to_numpy()
    accuracy = df["accuracy"].to_numpy(dtype=float)
    if not (np.all(np.mod(after, 1) == 0) and np.all(np.mod(ev, 1) == 0)):
        raise ValueError("matrix_from_frame: after_task and eval_task must be whole numbers")
    after, ev = after.astype(int), ev.astype(int)
    T = int(ev.max())
    if ev.min() < 1:
        raise ValueError(f"matrix_from_frame: eval_task must be in 1..T, found {ev.min()}")
    if after.min() < 0 or after.max() > T:
        raise ValueError(f"matrix_from_frame: after_task must be in 0..T = 0..{T}")
    R = np.full((T + 1, T), np.nan)
    seen = np.zeros((T + 1, T), dtype=bool)
    for i, j, a in zip(after, ev, accuracy):
        if seen[i, j - 1]:
            raise ValueError(f"matrix_from_frame: cell after_task={i}, eval_task={j} appears twice")
        seen[i, j - 1] = True
        R[i, j - 1] = a
    if not seen.all():
        i, j = np.argwhere(~seen)[0]
        raise ValueError(f"matrix_from_frame: no accuracy for after_task={i}, eval_task={j + 1}")
    return _check(R)


def mean_std(results: Sequence[Mapping[str, float]]) -> dict:
    """{key: {"mean": m, "std": s}} across runs (e.g. seeds) of the same numeric keys.

    std is the SAMPLE standard deviation (ddof=1) when there are n > 1 runs, and 0.0 for n = 1.
    A nan value (e.g. BWT with T = 1) makes that key's mean and std nan. Every dict must have the
    same keys.
    """
    results = list(results)
    if not results:
        raise ValueError("mean_std: no results given")
    keys = list(results[0].keys())
    for i, r in enumerate(results):
        if set(r.keys()) != set(keys):
            raise ValueError(f"mean_std: result {i} has keys {sorted(r)}, expected {sorted(keys)}")
    out = {}
    for key in keys:
        try:
            values = np.array([float(r[key]) for r in results])
        except (TypeError, ValueError) as err:
            raise ValueError(f"mean_std: {key!r} is not numeric in every result") from err
        std = float(values.std(ddof=1)) if len(values) > 1 else (0.0 if np.isfinite(values[0]) else NAN)
        out[key] = {"mean": float(values.mean()), "std": std}
    return out


# t quantile 0.975 for 1..30 degrees of freedom (two-sided 95 % interval of a mean); 1.96 beyond
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def mean_ci(values: Sequence[float]) -> dict:
    """{"mean", "std", "ci95", "n"} of the finite values: ci95 is the half-width of Student's 95 %
    interval of the mean, t_{0.975, n−1} · std / √n (nan with fewer than 2 values); std is the
    sample standard deviation. Non-finite values (an undefined metric of one run) are left out
    and not counted in n."""
    finite = np.array([float(v) for v in values if v is not None and math.isfinite(float(v))])
    n = len(finite)
    if n == 0:
        return {"mean": NAN, "std": NAN, "ci95": NAN, "n": 0}
    std = float(finite.std(ddof=1)) if n > 1 else NAN
    t = T975[n - 2] if 2 <= n <= 31 else 1.96
    return {"mean": float(finite.mean()), "std": std, "ci95": t * std / math.sqrt(n) if n > 1 else NAN, "n": n}


def steps_to_reach(curve: Sequence[tuple[int, float]], target: float) -> int | None:
    """The first step (of (step, accuracy) pairs in step order) at which accuracy ≥ target, or None."""
    return next((step for step, acc in curve if acc >= target), None)


def savings(first: Sequence[tuple[int, float]], revisit: Sequence[tuple[int, float]], length: int,
            fraction: float = 0.8, min_gain: float = 0.05) -> dict:
    """Ebbinghaus savings of a task seen again (REFERENCE.md §7): 1 − n_revisit / n_first, where
    n is the number of steps from the start of the visit to reach `fraction` of the task's peak
    accuracy during its first visit. `first`, `revisit`: (steps since the visit began, accuracy),
    the visit's start included. Choices: undefined (nan) when the first visit gained less than
    `min_gain` over its start (nothing was learned, so nothing can be saved) or began at the target
    already; a revisit that never reaches the target counts its whole `length` (censored).
    Returns {"savings", "first_steps", "revisit_steps", "target", "censored"}."""
    out = {"savings": NAN, "first_steps": None, "revisit_steps": None, "target": NAN, "censored": False}
    if not first or not revisit:
        return out
    start, peak = first[0][1], max(acc for _, acc in first)
    out["target"] = target = fraction * peak
    n_first = steps_to_reach(first, target)
    if peak - start < min_gain or not n_first:
        return out
    n_revisit = steps_to_reach(revisit, target)
    out.update(first_steps=n_first, censored=n_revisit is None)
    n_revisit = length if n_revisit is None else n_revisit
    out.update(revisit_steps=n_revisit, savings=1.0 - n_revisit / n_first)
    return out
