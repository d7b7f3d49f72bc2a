"""A claim of the nested-learning papers, the lab's experiment for it, and the card that reports it.

A `Claim` names what is claimed (in the lab's words, with where it is claimed), the experiment and
its controls as sweeps (lab.sweep: a headline sweep on the reported seeds, a regime sweep over the
lab's knobs on other seeds), and how one number, the *effect*, is read from a sweep's records: for
each seed, the claimed architecture or method minus its control, paired by seed. The claim predicts
the effect's sign (`direction`: +1 the effect should be positive, −1 negative).

The verdict is computed, never written (`verdict`):

    holds            the 95 % interval of the headline effect lies on the claimed side of zero,
                     no cell of the regime map lies clearly on the other side, and the claimed
                     side did not learn clearly less than its control (`matched`)
    does not hold    the interval includes zero or lies on the other side, and no regime cell
                     lies clearly on the claimed side
    mixed at this scale   the headline and some regime cells disagree (the regime map says where),
                     or the effect has the claimed sign only because the claimed side learned
                     less: a model that learned less has less to forget and less to relearn
    not measured     no seed gave a headline effect (every trial of one side failed, e.g. diverged:
                     the card's failed trials say why); nothing is claimed either way
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from lab import metrics

HOLDS, FAILS, MIXED, UNMEASURED = "holds", "does not hold", "mixed at this scale", "not measured"
VERDICTS = (HOLDS, FAILS, MIXED, UNMEASURED)


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str                  # the lab's wording
    source: str                 # where the papers claim it (attribution)
    experiment: str             # what the lab runs, and its controls
    effect_doc: str             # what the effect is (a − b, paired by seed)
    direction: int              # +1: the claim predicts a positive effect; −1: negative
    headline: dict              # sweep spec without seeds (lab.sweep.spec)
    effect: Callable[[pd.DataFrame], pd.DataFrame]    # records → columns seed, value (+ cell fields)
    regime: dict | None = None  # sweep spec of the regime map (without seeds)
    regime_fields: tuple[str, ...] = ()
    caveats: str = ""
    quick: dict = field(default_factory=dict)         # overrides of the headline's and regime's base for --quick
    context: tuple[str, ...] = ()                     # metrics shown beside the effect, per model and method
    # what both sides must reach alike for the effect to be fair (records → seed, value: claimed − control;
    # negative: the claimed side learned less), and its words
    matched: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    matched_doc: str = ""

    def spec(self, which: str, seeds: list[int], quick: bool = False) -> dict:
        spec = dict(self.headline if which == "headline" else self.regime)
        base = dict(spec.get("base", {}))
        if quick:
            base.update(self.quick)
            if which == "regime":
                spec["grid"] = {k: list(v)[:2] for k, v in spec.get("grid", {}).items()}
        spec.update(base=base, seeds=list(seeds))
        return spec


def paired(records: pd.DataFrame, metric: str, a: tuple[str, str], b: tuple[str, str],
           by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per seed (and per cell of `by`): value of (model, method) `a` minus that of `b` for `metric`."""
    rows = records[records["metric"] == metric]
    keys = ["seed", *by]

    def side(model, method):
        part = rows[(rows["model"] == model) & (rows["method"] == method)]
        return part.groupby(keys)["value"].mean()
    diff = (side(*a) - side(*b)).dropna()
    return diff.rename("value").reset_index()


def best_of(records: pd.DataFrame, metric: str, a: tuple[str, str], others: list[tuple[str, str]],
            by: tuple[str, ...] = (), lower: bool = True) -> pd.DataFrame:
    """Per seed: `a` minus the best of `others` (lowest when `lower`) for `metric`."""
    rows = records[records["metric"] == metric]
    keys = ["seed", *by]
    sides = [rows[(rows["model"] == m) & (rows["method"] == t)].groupby(keys)["value"].mean() for m, t in others]
    best = pd.concat(sides, axis=1).min(axis=1) if lower else pd.concat(sides, axis=1).max(axis=1)
    mine = rows[(rows["model"] == a[0]) & (rows["method"] == a[1])].groupby(keys)["value"].mean()
    return (mine - best).dropna().rename("value").reset_index()


def per_model(records: pd.DataFrame, effect: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    """`effect(model)` for every model of the records, stacked: an effect within one architecture
    (M3 against AdamW and Muon) read on a regime map that varies the architecture."""
    parts = [effect(model) for model in records["model"].unique()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["seed", "value"])


def side_of(cell: dict, direction: int) -> int:
    """+1 if the interval lies on the claimed side of zero, −1 on the other, 0 if it includes zero."""
    mean, ci = cell["mean"], cell["ci95"]
    if not math.isfinite(mean) or not math.isfinite(ci):
        return 0
    if abs(mean) <= ci:
        return 0
    return 1 if mean * direction > 0 else -1


def verdict(headline: dict, regime: list[dict], direction: int, matched: dict | None = None) -> str:
    """The card's verdict from the headline effect, the regime cells and the matched control (see the
    module docstring)."""
    return judge(headline, regime, direction, matched)[0]


def judge(headline: dict, regime: list[dict], direction: int, matched: dict | None = None,
          matched_doc: str = "the matched control") -> tuple[str, str]:
    """(verdict, the reason in one sentence), computed from the same numbers."""
    if not headline.get("n") or headline.get("mean") is None or not math.isfinite(headline["mean"]):
        return UNMEASURED, "No seed gave a headline effect (every trial of one side failed); nothing is claimed."
    head = side_of(headline, direction)
    learned_less = bool(matched) and side_of(matched, +1) == -1              # clearly, its interval below zero
    control = f"({matched_doc}: {matched['mean']:+.3f} ± {matched['ci95']:.3f})" if matched else ""
    against = [c for c in regime if side_of(c, direction) == -1]
    along = [c for c in regime if side_of(c, direction) == 1]
    if head == 1 and against:
        return MIXED, (f"The headline interval lies on the claimed side, but {len(against)} regime cell(s) lie "
                       "clearly on the other (the regime map says where).")
    if head == 1 and learned_less:
        return MIXED, (f"The effect has the claimed sign, but the claimed side learned less {control}: it had less "
                       "to lose, so this comparison cannot credit the architecture.")
    if head == 1:
        unsure = (f" The claimed side learned less on average {control}, though not clearly: read the effect with "
                  "that in mind." if matched and matched.get("n") and matched["mean"] < 0 else "")
        return HOLDS, ("The 95 % interval lies on the claimed side of zero and no regime cell lies clearly on the "
                       "other." + unsure)
    words = "lies on the other side of zero" if head == -1 else "includes zero"
    less = f" The claimed side also learned clearly less {control}: its effect compares what little it learned." \
        if learned_less else ""
    if along:
        return MIXED, (f"The headline interval {words}, but {len(along)} regime cell(s) lie clearly on the claimed "
                       "side (the regime map says where)." + less)
    return FAILS, f"The 95 % interval {words} and no regime cell lies clearly on the claimed side." + less


def effect_cell(values) -> dict:
    return metrics.mean_ci(list(values))
