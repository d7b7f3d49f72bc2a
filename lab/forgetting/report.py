"""A forgetting comparison in plain sentences, generated from its summary alone: what the page
shows under "What the numbers show" and what a lesson quotes. It never claims more than the numbers
measured: a difference smaller than MARGIN, or not seen on every seed, is said to be no clear
difference, and less forgetting that comes with less learning gets a caution.
"""
from __future__ import annotations

import math

import numpy as np

from lab.forgetting.settings import ForgetSettings, method_label
from lab.forgetting.summary import fmt_cell
from lab.viz.palette import model_label

# Differences below MARGIN are within the noise of one accuracy: the default held-out set scores
# 64 sequences × 4 answer words = 256 tokens, whose standard error is at most √(0.25/256) ≈ 0.031.
MARGIN = 0.03
LEARNED_ENOUGH = 0.1                # below this gain over the untrained model, nothing much was learned


def _the(model: str) -> str:
    """"the Transformer", but "Titans" and "HOPE" (names of models, no article)."""
    return "the Transformer" if model == "transformer" else model_label(model)


def _paired(summary: dict, method: str, model: str, reference: str, key: str) -> tuple[float, int, int, int]:
    """(mean difference model − reference, seeds where it is lower, higher, pairs) for one metric."""
    by = {(r["model"], r["seed"]): r[key] for r in summary["per_seed"] if r["method"] == method}
    diffs = [by[(model, s)] - by[(reference, s)] for s in summary["seeds"]
             if (model, s) in by and (reference, s) in by and math.isfinite(by[(model, s)] - by[(reference, s)])]
    if not diffs:
        return math.nan, 0, 0, 0
    return float(np.mean(diffs)), sum(d < 0 for d in diffs), sum(d > 0 for d in diffs), len(diffs)


def describe_comparison(summary: dict, reference: str = "transformer", margin: float = MARGIN) -> str:
    """What the numbers show, in plain sentences (Markdown), generated from `summary` alone.

    For each method: every model's forgetting; for each other model against the reference (the
    Transformer), paired by seed on the identical stream: "forgets less" only when it does so by
    at least `margin` on average and on every seed, "forgets more" likewise, otherwise "no clear
    difference" (said as: does not forget clearly less). A model that learned each task less well
    than the reference gets a caution: less learned is less to forget. Then replay's effect and
    intransigence when they were run, and the scale and seed caveats.
    """
    n, models, methods = summary["n_seeds"], summary["models"], summary["methods"]
    results, replay = summary["results"], summary.get("replay")
    seeds_text = f"{n} seed{'s' if n != 1 else ''}"
    lines = []
    for method in methods:
        r = results[method]
        numbers = ", ".join(f"{model_label(m)} {fmt_cell(r[m]['forgetting'])}" for m in models)
        accs = ", ".join(f"{model_label(m)} {fmt_cell(r[m]['ACC'])}" for m in models)
        lines.append(f"**{method_label(method, replay).capitalize()}**, {seeds_text}: forgetting (max form, "
                     f"0 = nothing forgotten) {numbers}; final average accuracy ACC {accs}.")
        gains = {m: r[m]["learned"]["mean"] - r[m]["untrained"]["mean"] for m in models if "untrained" in r[m]}
        if gains and max(gains.values()) < LEARNED_ENOUGH:
            lines.append(f"- Caution: no architecture learned the tasks much here (at best "
                         f"{max(gains.values()):+.3f} above the untrained model right after training on a task), "
                         "so there was little to forget: train for more steps per task before reading the forgetting "
                         "numbers.")
        if reference not in models:
            continue
        ref, the_ref = model_label(reference), _the(reference)
        for m in models:
            if m == reference:
                continue
            diff, lower, higher, pairs = _paired(summary, method, m, reference, "forgetting")
            if not pairs:
                continue
            name = model_label(m)
            if diff <= -margin and lower == pairs:
                lines.append(f"- {name} forgets less than {the_ref}: by {-diff:.3f} on average, and on "
                             f"{'every seed' if pairs > 1 else 'the one seed run'}.")
            elif diff >= margin and higher == pairs:
                lines.append(f"- {name} does **not** forget less than {the_ref} at this scale: it forgets more, "
                             f"by {diff:.3f} on average ({'on every seed' if pairs > 1 else 'one seed'}).")
            else:
                why = (f"the average difference, {diff:+.3f}, is smaller than {margin:.2f}, about the noise of one "
                       "accuracy measurement" if abs(diff) < margin else
                       f"the difference is {diff:+.3f} on average but it forgets less on only {lower} of {pairs} seeds")
                lines.append(f"- {name} does **not** forget clearly less than {the_ref} at this scale: {why}.")
            learned, learned_ref = r[m]["learned"]["mean"], r[reference]["learned"]["mean"]
            if abs(learned - learned_ref) > margin:
                less, more = (_the(m), the_ref) if learned < learned_ref else (the_ref, _the(m))
                low, high = min(learned, learned_ref), max(learned, learned_ref)
                old, old_ref, floor = r[m]["old_acc"]["mean"], r[reference]["old_acc"]["mean"], \
                    r[reference]["untrained_old"]["mean"]
                lines.append(f"  Caution: {less} learned each task less well while training on it than "
                             f"{more} (learned {low:.3f} against {high:.3f}), so it had less to forget. What is left "
                             f"of the earlier tasks at the end: {name} {old:.3f}, {ref} {old_ref:.3f}, untrained "
                             f"{floor:.3f}.")
    if "naive" in methods and "replay" in methods:
        parts = []
        for m in models:
            a, b = results["naive"][m], results["replay"][m]
            parts.append(f"{model_label(m)} {a['forgetting']['mean']:.3f} → {b['forgetting']['mean']:.3f} "
                         f"(ACC {a['ACC']['mean']:.3f} → {b['ACC']['mean']:.3f})")
        lines.append(f"**Experience replay** (buffer of {replay} sequences) against naive training, forgetting: "
                     + "; ".join(parts) + ".")
    if summary.get("joint"):
        parts = []
        for method in methods:
            cells = ", ".join(f"{model_label(m)} {fmt_cell(results[method][m]['intransigence'])}" for m in models
                              if "intransigence" in results[method][m])
            parts.append(f"{method}: {cells}")
        lines.append("**Intransigence** (accuracy of the joint reference on task k minus R[k][k], averaged over k; "
                     "above 0 = learning tasks one after another learns the new task less well than learning them "
                     "together; below 0 = the joint model, which shares the same steps among k tasks, is worse on "
                     "task k than the sequential model right after training on it): " + "; ".join(parts) + ".")
    caveat = "One seed: there is no spread, so treat every difference as anecdotal. " if n == 1 else ""
    config = summary.get("config") or {}
    stream = config.get("stream") or {}
    scale = (f"small models (preset {config.get('preset', '?')}), {stream.get('steps_per_task', '?')} steps per "
             f"task on a synthetic stream") if config else "small models on a synthetic stream"
    lines.append(f"*{caveat}These are {scale}: they say nothing about the papers' large-scale results.*")
    return "\n\n".join(lines)


def describe_settings(settings: ForgetSettings) -> str:
    """A comparison's settings in one line, the name it is kept under in a session:
    "Transformer, HOPE · 2 × 4 steps of languages, overlap 0.5 · naive sequential training · 1 seed · tiny"."""
    models = ", ".join(model_label(m) for m in settings.models)
    methods = " and ".join(method_label(m, settings.replay) for m in settings.methods)
    vocabulary = f", overlap {settings.overlap:g}" if settings.kind != "two_languages" else ""
    joint = ", with the joint reference" if settings.joint else ""
    return (f"{models} · {settings.n_tasks} × {settings.steps_per_task} steps of {settings.kind}{vocabulary} · "
            f"{methods} · {settings.seeds} seed{'s' if settings.seeds != 1 else ''} · {settings.preset}{joint}")


def table_notes(summary: dict) -> str:
    """What the columns of the summary table mean, for the caption under it."""
    n, joint = summary["n_seeds"], summary.get("joint")
    joint_text = ("Intransigence: accuracy on task k of a fresh model trained on tasks 1..k mixed together for as many "
                  "steps, minus R[k][k], averaged over k. " if joint else
                  "Intransigence needs the joint reference (tick it in the form). ")
    replay = (f"replay: experience replay with a buffer of {summary.get('replay')} sequences. "
              if "replay" in summary["methods"] else "")
    return (f"Mean ± standard deviation over {n} seed{'s' if n != 1 else ''} (sample std; 0 with one seed). "
            f"naive: naive sequential training. {replay}"
            "ACC: mean accuracy on all tasks after the last. BWT: mean change on earlier tasks from right after "
            "learning them to the end (negative = forgetting). FWT: accuracy on a task before training on it, "
            "minus the untrained model's. "
            f"Forgetting, {summary['forgetting_form']}; the final form is {summary['forgetting_final_form']}. "
            "Learned: accuracy on each task right after training on it (what there was to forget). " + joint_text)
