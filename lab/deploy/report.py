"""A deployment comparison in plain sentences, generated from its summary alone: each variant's
numbers, then the comparisons the nested-learning claim is about, paired by seed, with a verdict
only where the 95 % interval of the paired difference leaves out zero."""
from __future__ import annotations

import math

from lab import metrics
from lab.deploy.settings import variant_label

MARGIN = 0.03          # below this, a difference of accuracies is within the noise of one measurement
# (variant, reference, metric, what it tests)
CONTRASTS = (
    ("hope/finetune", "transformer/finetune", "savings", "does HOPE relearn a language faster than a Transformer"),
    ("hope/cms_online", "hope/frozen", "final_ACC", "does learning while reading lift the knowledge cutoff"),
    ("hope/cms_online", "hope/finetune", "forgetting", "do CMS levels learning online forget less than fine-tuning"),
    ("hope/cms_online", "hope/finetune", "savings", "do forgotten skills come back faster through the levels"),
    ("hope/cms_online", "transformer/replay", "final_ACC", "against the classical baseline, experience replay"),
    ("hope/cms_online+sleep", "hope/cms_online", "final_ACC", "does sleep between tasks help"),
    ("hope/cms_online", "hope1/cms_online", "forgetting", "do three levels forget less than one"),
    ("hope/cms_online", "hope1/cms_online", "savings", "do three levels give more savings than one"),
)
LOWER_IS_BETTER = {"forgetting", "forgetting_final"}


def paired(summary: dict, variant: str, reference: str, key: str) -> dict:
    """mean_ci of (variant − reference) over the seeds where both are defined."""
    by = {(r["model"], r["seed"]): r[key] for r in summary["per_seed"]}
    diffs = [by[(variant, s)] - by[(reference, s)] for s in summary["seeds"]
             if (variant, s) in by and (reference, s) in by]
    return metrics.mean_ci(diffs)


def _first_up(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cell(cell: dict) -> str:
    if not math.isfinite(cell["mean"]):
        return "n/a"
    ci = f" ± {cell['ci95']:.3f}" if math.isfinite(cell.get("ci95", math.nan)) else ""
    return f"{cell['mean']:.3f}{ci}"


def describe_deployment(summary: dict) -> str:
    results, n = summary["results"]["deploy"], summary["n_seeds"]
    lines = [f"**Deployment after pretraining**, {n} seed{'s' if n != 1 else ''} (mean ± 95 % interval): "
             "ACC and forgetting over the first round of new languages, savings on their revisits."]
    for variant, cells in results.items():
        lines.append(f"- {variant_label(variant)}: learned {_cell(cells['learned'])}, ACC {_cell(cells['ACC'])}, "
                     f"forgetting {_cell(cells['forgetting'])}, savings {_cell(cells['savings'])}, accuracy on the new "
                     f"languages at the end {_cell(cells['final_ACC'])}, base languages {_cell(cells['base_change'])}.")
    verdicts = []
    for variant, reference, key, question in CONTRASTS:
        if variant not in results or reference not in results:
            continue
        d = paired(summary, variant, reference, key)
        if d["n"] < 2 or not math.isfinite(d["ci95"]):
            verdicts.append(f"- *{_first_up(question)}?* Not enough seeds with {key} defined to say ({d['n']}).")
            continue
        better = d["mean"] < 0 if key in LOWER_IS_BETTER else d["mean"] > 0
        clear = abs(d["mean"]) > d["ci95"] and abs(d["mean"]) >= MARGIN
        word = ("yes" if better else "no, the opposite") if clear else (
            "no clear difference" if abs(d["mean"]) <= d["ci95"] else f"no difference that matters (under {MARGIN})")
        verdicts.append(f"- *{_first_up(question)}?* {word}: {key} of {variant_label(variant)} minus "
                        f"{variant_label(reference)} = {d['mean']:+.3f} ± {d['ci95']:.3f} (paired by seed, n = {d['n']}).")
        learned = paired(summary, variant, reference, "learned")
        if key in LOWER_IS_BETTER and learned["mean"] <= -MARGIN:
            verdicts.append(f"  Caution: {variant_label(variant)} learned the new languages less well (learned "
                            f"{learned['mean']:+.3f} against {variant_label(reference)}): less learned is less to "
                            "forget.")
    if verdicts:
        lines.append("**What the numbers say** (a verdict only where the interval of the paired difference leaves "
                     "out zero):")
        lines += verdicts
    lines.append("*Small models on synthetic languages. An online variant learns in each of its streams from one "
                 "document a step, while fine-tuning uses every document of the step for one model; savings are "
                 "undefined where a language was not learned on its first visit. These numbers say nothing about "
                 "the papers' large-scale results.*")
    return "\n\n".join(lines)


def table_notes(summary: dict) -> str:
    """What the columns of the deployment table mean, for the caption under it."""
    n = summary["n_seeds"]
    return (f"Mean ± half-width of the 95 % interval over {n} seed{'s' if n != 1 else ''} (Student's t). ACC, BWT and "
            "forgetting: over the first round of new languages, row 0 = after pretraining (REFERENCE.md §7). Savings: "
            "1 − steps to reach 80 % of a language's first-visit peak on its revisit / steps on the first visit "
            "(n/a where the first visit learned nothing). ACC at the end: the new languages after every round. Base "
            "languages Δ: change on the pretraining languages during deployment (negative = forgotten).")
