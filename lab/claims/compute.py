"""Computing the claim cards: `python -m lab claims --out DIR [--quick] [--only ID,…]`.

For every claim, its headline sweep on the reported seeds (0–4) and its regime sweep on other seeds
(100, 101) run on Ray Tune (lab.sweep: resumable, one failing trial does not stop the others), in
DIR/<id>/headline and DIR/<id>/regime; the card is computed from their records and written, with
all the others, to DIR/claims.json: a list of objects with id, claim, verdict, effect (mean, ci95),
n_seeds, command, and what the page draws (per-seed effects, the regime map, a trial to re-run).
`--quick` runs tiny models on two seeds (for tests; its verdicts mean nothing).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import pandas as pd

from lab import metrics
from lab.claims.cards import Claim, judge, side_of
from lab.claims.registry import CLAIMS
from lab.sweep import run_sweep
from lab.sweep.store import read_trial, strict

REPORTED_SEEDS = (0, 1, 2, 3, 4)
REGIME_SEEDS = (100, 101)
QUICK_SEEDS = (0, 1)
FILE = "claims.json"


def command(claim: Claim, quick: bool = False) -> str:
    return f"python -m lab claims --only {claim.id} --out runs/claims" + (" --quick" if quick else "")


def regime_rows(claim: Claim, records: pd.DataFrame) -> list[dict]:
    """One row per regime cell: its fields, the effect's mean and 95 % interval over the seeds, and on
    which side of zero the interval lies (+1 the claimed side, −1 the other, 0 both)."""
    if not len(records):
        return []
    by = tuple(f for f in claim.regime_fields if f in records.columns)
    effects = claim.effect(records, by)
    rows = []
    for values, group in effects.groupby(list(by), sort=False) if by else [((), effects)]:
        values = values if isinstance(values, tuple) else (values,)
        cell = metrics.mean_ci(group["value"])
        rows.append({**dict(zip(by, values)), **cell, "side": side_of(cell, claim.direction)})
    return rows


def first_trial(folder: Path) -> dict | None:
    """The first finished trial of a sweep folder: what the page re-runs live to check the numbers."""
    spec = json.loads((folder / "spec.json").read_text())["spec"]
    from lab.sweep.spec import SweepSpec

    for trial in SweepSpec.from_dict(spec).trials:
        data = read_trial(folder, trial.key)
        if data is not None and data.get("status") == "ok":
            return {"experiment": spec["experiment"], "settings": data["settings"], "seed": data["seed"],
                    "rows": data["rows"], "key": trial.key}
    return None


def card(claim: Claim, out: Path, quick: bool = False, progress: Callable[[float, str], None] | None = None) -> dict:
    """Run (or resume) the claim's sweeps in out/<id>/ and compute its card."""
    seeds = QUICK_SEEDS if quick else REPORTED_SEEDS
    folder = out / claim.id
    say = (lambda fraction, label: progress(fraction, f"{claim.id}: {label}")) if progress else None
    head = run_sweep(claim.spec("headline", seeds, quick), folder / "headline", progress=say)
    effects = claim.effect(head.records)
    headline = metrics.mean_ci(effects["value"])
    regime = []
    if claim.regime is not None:
        reg = run_sweep(claim.spec("regime", REGIME_SEEDS, quick), folder / "regime", progress=say)
        regime = regime_rows(claim, reg.records)
    matched = metrics.mean_ci(claim.matched(head.records)["value"]) if claim.matched else None
    decided, reason = judge(headline, regime, claim.direction, matched, claim.matched_doc)
    shown = head.records[head.records["metric"].isin(claim.context)]
    context = shown.groupby(["model", "method", "metric"], sort=False)["value"].mean().reset_index()
    return {"id": claim.id, "claim": claim.claim, "source": claim.source, "experiment": claim.experiment,
            "effect_doc": claim.effect_doc, "direction": claim.direction,
            "verdict": decided, "reason": reason,
            "matched": None if matched is None else {"doc": claim.matched_doc, "mean": matched["mean"],
                                                     "ci95": matched["ci95"], "n": matched["n"]},
            "effect": {"mean": headline["mean"], "ci95": headline["ci95"], "std": headline["std"], "n": headline["n"]},
            "n_seeds": len(seeds), "seeds": list(seeds), "regime_seeds": list(REGIME_SEEDS) if regime else [],
            "command": command(claim, quick), "caveats": claim.caveats, "quick": quick,
            "per_seed": effects.to_dict("records"), "regime": regime, "regime_fields": list(claim.regime_fields),
            "context": context.to_dict("records"), "rerun": first_trial(folder / "headline"),
            "failed_trials": len(head.failures)}


def compute(out: str | Path, quick: bool = False, only: list[str] | None = None,
            progress: Callable[[float, str], None] | None = None) -> list[dict]:
    """The cards of `only` (default: every claim), computed in `out`; writes out/claims.json (the
    cards of earlier invocations for other claims are kept)."""
    from lab.sweep.runner import start_ray

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ids = list(only or CLAIMS)
    unknown = [i for i in ids if i not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claim {unknown[0]!r}: the claims are {', '.join(CLAIMS)}")
    started = start_ray()
    try:
        fresh = {i: card(CLAIMS[i], out, quick, progress) for i in ids}
    finally:
        if started:
            import ray
            ray.shutdown()
    kept = {c["id"]: c for c in load(out)} if (out / FILE).is_file() else {}
    kept.update(fresh)
    cards = [kept[i] for i in CLAIMS if i in kept]
    (out / FILE).write_text(json.dumps(strict(cards), indent=2))
    return cards


def load(folder: str | Path) -> list[dict]:
    """The cards written by `compute` (ValueError with the reason when unreadable)."""
    path = Path(folder) / FILE
    try:
        cards = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the claims in {path}: {err}") from err
    if not isinstance(cards, list) or any(not isinstance(c, dict) or "verdict" not in c for c in cards):
        raise ValueError(f"{path} does not hold claim cards")
    return cards


def rerun_agrees(card: dict) -> dict:
    """Re-run the card's stored trial in this process and compare its numbers with the stored ones:
    {"identical": bool, "max_abs_diff": float, "numbers": n}."""
    from lab.sweep.experiments import run_trial

    stored = card.get("rerun")
    if not stored:
        raise ValueError(f"the card {card.get('id')!r} has no trial to re-run")
    rows = run_trial(stored["experiment"], stored["settings"], stored["seed"])
    worst, count = 0.0, 0
    for mine, theirs in zip(rows, stored["rows"]):
        for key, value in theirs.items():
            if key in ("model", "method"):
                continue
            a, b = mine.get(key), value
            if a is None and b is None:
                continue
            if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
                worst = math.inf
                continue
            worst, count = max(worst, abs(float(a) - float(b))), count + 1
    return {"identical": worst == 0.0 and len(rows) == len(stored["rows"]), "max_abs_diff": worst, "numbers": count}
