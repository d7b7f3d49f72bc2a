"""Observations: the template fields of a lesson, each read from a session's own records when the
step is shown (never a number typed into the text).

A field is `{source.path…[:format]}`; the source is a kind of session (lab.sessions.SESSIONS):

    playground   steps, tokens, tokens_per_step, seed, levels, loss, accuracy.<task>[.peak|.drop],
                 updates.level<L>, online_updates.level<L>, every.level<L>, chunk_tokens.level<L>, drift.level<L>
    sleep        accuracy.<task>.before|after, old.before|after, knowledge.level<L>.before|after, sleeps, steps,
                 params.before|grown|pruned
    memory       recall.<memory>[.old|.new], cosine, half_life.<optimizer>[.<buffer>], final_loss.<optimizer>,
                 kept.fast|slow, equivalence.<name>, equivalences.holding|total
    forgetting   <metric>.<model>[.<method>], seeds, n_seeds                (lab.sessions.forgetting)
    deployment   <metric>.<variant>, knowledge.<variant>.level<L>, seeds, n_seeds
    claims       <id>.verdict|reason|claim|source|caveats|experiment|effect_doc|seeds, <id>.effect,
                 <id>.<metric>.<model>[.<method>]                           (assets/claims/claims.json)

Each source has `check(parts, shape)`: None, or what is wrong with the path (validation when a
lesson is loaded; `shape` is what is known of the preset before anything runs), and
`read(parts, session)`: a Value (lab.lessons.values) from the session as it is now.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

from lab.lessons.values import Exact, Measured, Missing, Pending, Text, Value, seeds_text

LEVEL = re.compile(r"^level(\d+)$")
CLAIM_TEXTS = ("verdict", "reason", "claim", "source", "caveats", "experiment", "effect_doc")
HALF_LIFE_BUFFERS = {"m": 0, "fast": 0, "v": 1, "slow": 1}
PARAM_STAGES = ("before", "grown", "pruned")      # the whole model's size at a sleep (lab.viz.sleep.params_events)
EQUIVALENCES = ("softmax", "delta", "hebbian", "titans", "linear", "momentum", "adam", "m3")
NO_CLAIMS = ("the claims scorecard has not been computed yet; make it with `python -m lab claims --out "
             "assets/claims`")


@dataclass
class Shape:
    """What validation knows of a preset before it runs: its task names and CMS levels."""

    tasks: tuple[str, ...] = ()
    levels: int = 0
    total_steps: int = 0
    extra: dict = field(default_factory=dict)


def _level(part: str, shape: Shape | None) -> str | None:
    m = LEVEL.match(part)
    if not m:
        return f"“{part}” is not a level: write level0, level1, …"
    if shape is not None and shape.levels and int(m.group(1)) >= shape.levels:
        return f"level{m.group(1)} does not exist: this model has {shape.levels} CMS level(s), level0 to level{shape.levels - 1}"
    return None


def _task(part: str, shape: Shape | None) -> str | None:
    if shape is not None and shape.tasks and part not in shape.tasks:
        return f"there is no task “{part}”: the tasks are {', '.join(shape.tasks)}"
    return None


def _expect(parts, lengths, what: str) -> str | None:
    return None if len(parts) in lengths else f"write it as {what}"


# --- playground ------------------------------------------------------------------------------------

def check_playground(parts: list[str], shape: Shape | None) -> str | None:
    head, rest = parts[0], parts[1:]
    if head in ("steps", "tokens", "tokens_per_step", "seed", "levels", "loss"):
        return _expect(rest, (0,), f"playground.{head}")
    if head == "accuracy":
        return (_expect(rest, (1, 2), "playground.accuracy.<task>[.peak|.drop]")
                or _task(rest[0], shape) or (None if len(rest) == 1 or rest[1] in ("peak", "drop")
                                             else f"“{rest[1]}”: use peak or drop"))
    if head in ("updates", "online_updates", "every", "chunk_tokens", "drift"):
        return _expect(rest, (1,), f"playground.{head}.level<L>") or _level(rest[0], shape)
    return (f"unknown playground field “{head}”: use steps, tokens, tokens_per_step, seed, levels, loss, accuracy, "
            "updates, online_updates, every, chunk_tokens or drift")


def read_playground(parts: list[str], session) -> Value:
    run, head, rest = session.run, parts[0], parts[1:]
    seed = (session.config.seed,)
    records = run.records()
    if head == "steps":
        return Exact(run.step_count)
    if head == "tokens":
        return Exact(run.tokens_seen)
    if head == "tokens_per_step":
        return Exact(run.stream.tokens_per_step)
    if head == "seed":
        return Exact(session.config.seed)
    if head == "levels":
        return Exact(len(run.schedule.chunk_steps))
    if head == "every":
        return Exact(run.schedule.chunk_steps[int(rest[0][5:])])
    if head == "chunk_tokens":
        return Exact(run.schedule.chunk_steps[int(rest[0][5:])] * run.stream.tokens_per_step)
    if run.step_count == 0:
        return Pending()
    if head == "loss":
        losses = records[records["metric"] == "loss"]["value"].tail(20)
        return Measured.of([losses.mean()], seed)
    if head in ("updates", "online_updates"):
        metric = "update_norm" if head == "updates" else "online_update_norm"
        rows = records[(records["metric"] == metric) & (records["level"] == int(rest[0][5:]))]
        return Exact(int(rows["step"].nunique()))
    if head == "drift":
        rows = records[(records["metric"] == "drift") & (records["level"] == int(rest[0][5:]))]
        return Measured.of([rows["value"].iloc[-1]], seed) if len(rows) else Pending()
    acc = records[(records["metric"] == "accuracy") & (records["phase"] == "active") & (records["task"] == rest[0])]
    if not len(acc):
        return Pending()
    final, peak = float(acc["value"].iloc[-1]), float(acc["value"].max())
    which = rest[1] if len(rest) > 1 else "final"
    return Measured.of([{"final": final, "peak": peak, "drop": peak - final}[which]], seed)


# --- sleep ---------------------------------------------------------------------------------------------

def check_sleep(parts: list[str], shape: Shape | None) -> str | None:
    head, rest = parts[0], parts[1:]
    when = "before or after"
    if head in ("sleeps", "steps"):
        return _expect(rest, (0,), f"sleep.{head}")
    if head == "params":
        return _expect(rest, (1,), "sleep.params.before|grown|pruned") or (
            None if rest[0] in PARAM_STAGES else f"“{rest[0]}”: use {', '.join(PARAM_STAGES)}")
    if head == "accuracy":
        return (_expect(rest, (2,), "sleep.accuracy.<task>.before|after") or _task(rest[0], shape)
                or (None if rest[1] in ("before", "after") else f"“{rest[1]}”: use {when}"))
    if head == "old":
        return _expect(rest, (1,), "sleep.old.before|after") or (None if rest[0] in ("before", "after")
                                                                  else f"“{rest[0]}”: use {when}")
    if head == "knowledge":
        return (_expect(rest, (2,), "sleep.knowledge.level<L>.before|after") or _level(rest[0], shape)
                or (None if rest[1] in ("before", "after") else f"“{rest[1]}”: use {when}"))
    return f"unknown sleep field “{head}”: use sleeps, steps, params, accuracy, old or knowledge"


def read_sleep(parts: list[str], session) -> Value:
    head, rest = parts[0], parts[1:]
    if head == "sleeps":
        return Exact(len(session.sleeps))
    if head == "steps":
        return Exact(0 if session.run is None else session.run.step_count)
    last = session.last_sleep
    if last is None:
        return Pending()
    seed = (0,)
    if head == "params":
        records = session.records()
        rows = records[(records["metric"] == "params") & (records["level"] == -1)]["value"].tail(len(PARAM_STAGES))
        return Exact(int(rows.iloc[PARAM_STAGES.index(rest[0])])) if len(rows) == len(PARAM_STAGES) else Pending()
    if head == "accuracy":
        row = last["accuracy"][last["accuracy"]["task"] == rest[0]]
        return Measured.of([row[rest[1]].iloc[0]], seed) if len(row) else Pending()
    if head == "old":
        names = list(session.run.stream.task_names)
        old = names[:names.index(last["task"])] if last["task"] in names else []
        if not old:
            return Missing("no task was trained before the last one, so there is no old task yet")
        frame = last["accuracy"][last["accuracy"]["task"].isin(old)]
        return Measured.of(frame[rest[0]], seed, over=f"old task{'s' if len(old) > 1 else ''}")
    frame = last[rest[1]]
    rows = frame[frame["level"] == int(rest[0][5:])]
    return Measured.of(rows["drop"], seed, over="tasks") if len(rows) else Pending()


# --- memory explorer --------------------------------------------------------------------------------

def check_memory(parts: list[str], shape: Shape | None) -> str | None:
    head, rest = parts[0], parts[1:]
    if head == "recall":
        return (_expect(rest, (1, 2), "memory.recall.<memory>[.old|.new]")
                or (None if len(rest) == 1 or rest[1] in ("old", "new") else f"“{rest[1]}”: use old or new"))
    if head == "cosine":
        return _expect(rest, (0,), "memory.cosine")
    if head == "half_life":
        return (_expect(rest, (1, 2), "memory.half_life.<optimizer>[.m|.v|.fast|.slow]")
                or (None if len(rest) == 1 or rest[1] in HALF_LIFE_BUFFERS
                    else f"“{rest[1]}”: use {', '.join(HALF_LIFE_BUFFERS)}"))
    if head == "final_loss":
        return _expect(rest, (1,), "memory.final_loss.<optimizer>")
    if head == "kept":
        return _expect(rest, (1,), "memory.kept.fast|slow") or (None if rest[0] in ("fast", "slow")
                                                               else f"“{rest[0]}”: use fast or slow")
    if head == "equivalence":
        return _expect(rest, (1,), "memory.equivalence.<name>") or (
            None if rest[0] in EQUIVALENCES else f"“{rest[0]}”: use one of {', '.join(EQUIVALENCES)}")
    if head == "equivalences":
        return _expect(rest, (1,), "memory.equivalences.holding|total") or (
            None if rest[0] in ("holding", "total") else f"“{rest[0]}”: use holding or total")
    return (f"unknown memory field “{head}”: use recall, cosine, half_life, final_loss, kept, equivalence or "
            "equivalences")


def read_memory(parts: list[str], session) -> Value:
    head, rest = parts[0], parts[1:]
    session.finish()
    seed = (session.settings.stream.seed,)
    if head == "recall":
        frame = session.recall()
        if frame is None:
            return Pending()
        rows = frame[frame["memory"] == rest[0]]
        if not len(rows):
            return Missing(f"the memory “{rest[0]}” is not among those run ({', '.join(frame['memory'].unique())})")
        if len(rest) > 1:
            middle = rows["age"].median()
            rows = rows[rows["age"] >= middle] if rest[1] == "old" else rows[rows["age"] < middle]
        return Measured.of(rows["error"], seed, over="pairs")
    if head == "cosine":
        value = session.key_cosine()
        return Pending() if value is None else Exact(float(value))
    if head == "half_life":
        frame = session.buffer_weights()
        buffers = list(dict.fromkeys(frame[frame["optimizer"] == rest[0]]["buffer"]))
        index = HALF_LIFE_BUFFERS[rest[1]] if len(rest) > 1 else 0
        if index >= len(buffers):
            return Missing(f"the optimizer “{rest[0]}” has no such buffer (it has {len(buffers)})")
        rows = frame[(frame["optimizer"] == rest[0]) & (frame["buffer"] == buffers[index])]
        return Exact(float(rows["half_life"].iloc[0]))
    if head == "final_loss":
        frame = session.trajectories()
        rows = None if frame is None else frame[frame["optimizer"] == rest[0]]
        return Pending() if rows is None or not len(rows) else Exact(float(rows["loss"].iloc[-1]))
    if head == "kept":
        frame = session.orthogonal_tasks()
        last = frame[(frame["step"] == frame["step"].max()) & (frame["buffer"] == rest[0]) & (frame["task"] == 0)]
        return Exact(float(last["share"].fillna(0.0).iloc[0])) if len(last) else Pending()
    frame = session.equivalences()
    if head == "equivalences":
        return Exact(int(frame["holds"].sum()) if rest[0] == "holding" else len(frame))
    rows = frame[frame["name"].str.lower().str.startswith(rest[0])]
    return Exact(float(rows["max_abs_diff"].iloc[0]))


# --- shipped comparisons: forgetting and deployment -------------------------------------------------

def comparison_check(parts, metrics: tuple[str, ...], models: tuple[str, ...], methods: tuple[str, ...],
                      kind: str, knowledge: bool = False) -> str | None:
    head, rest = parts[0], parts[1:]
    if head in ("seeds", "n_seeds"):
        return _expect(rest, (0,), f"{kind}.{head}")
    if knowledge and head == "knowledge":
        return (_expect(rest, (2,), f"{kind}.knowledge.<variant>.level<L>")
                or (None if rest[0] in models else f"“{rest[0]}” is not one of {', '.join(models)}")
                or _level(rest[1], None))
    if head not in metrics:
        return f"unknown {kind} metric “{head}”: use one of {', '.join(metrics)}, seeds or n_seeds"
    if len(rest) not in (1, 2):
        return f"write it as {kind}.{head}.<model>[.<method>]"
    if rest[0] not in models:
        return f"“{rest[0]}” is not one of {', '.join(models)}"
    if len(rest) == 2 and rest[1] not in methods:
        return f"“{rest[1]}” is not one of the methods {', '.join(methods)}"
    return None


def read_comparison(parts: list[str], session) -> Value:
    comparison = session.shown
    if comparison is None:
        return Missing(getattr(session, "shipped_problem", None) or "there is no comparison to read")
    head, rest, seeds = parts[0], parts[1:], comparison.seeds
    if head == "seeds":
        return Text(seeds_text(seeds))
    if head == "n_seeds":
        return Exact(len(seeds))
    if head == "knowledge":
        frame = getattr(comparison, "knowledge", pd.DataFrame())
        rows = frame[(frame["model"] == rest[0]) & (frame["level"] == int(rest[1][5:]))] if len(frame) else frame
        if not len(rows):
            return Missing(f"no knowledge map of {rest[0]} at {rest[1]}")
        rows = rows[rows["step"] == rows["step"].max()]
        per_seed = rows.groupby("seed")["drop"].mean()
        return Measured.of(per_seed, [int(s) for s in per_seed.index])
    method = rest[1] if len(rest) > 1 else comparison.methods[0]
    rows = [r for r in comparison.summary.get("per_seed", []) if r["model"] == rest[0] and r["method"] == method]
    if not rows:
        return Missing(f"this comparison has no {rest[0]} ({method})")
    values = [r.get(head, math.nan) for r in rows]
    kept = [(v, r["seed"]) for v, r in zip(values, rows) if v is not None and math.isfinite(float(v))]
    if not kept:
        return Missing(f"{head} is undefined for {rest[0]} on every seed")
    return Measured.of([v for v, _ in kept], [s for _, s in kept])


# --- claims -----------------------------------------------------------------------------------------------

def check_claims(parts: list[str], shape: Shape | None, claim_ids: tuple[str, ...] = ()) -> str | None:
    if claim_ids and parts[0] not in claim_ids:
        return f"there is no claim “{parts[0]}”: the claims are {', '.join(claim_ids)}"
    rest = parts[1:]
    if len(rest) == 1 and rest[0] in (*CLAIM_TEXTS, "effect", "seeds"):
        return None
    if len(rest) in (2, 3):
        return None                           # <metric>.<model>[.<method>]: checked against the card when read
    return (f"write it as claims.<id>.<{'|'.join(CLAIM_TEXTS)}|effect|seeds> or "
            "claims.<id>.<metric>.<model>[.<method>]")


def read_claims(parts: list[str], session) -> Value:
    if not session.cards:
        return Missing(NO_CLAIMS)
    card = next((c for c in session.cards if c["id"] == parts[0]), None)
    if card is None:
        return Missing(f"the card “{parts[0]}” is not in the claims scorecard yet")
    rest, seeds = parts[1:], tuple(card.get("seeds", ()))
    if rest[0] in CLAIM_TEXTS:
        return Text(str(card.get(rest[0], "")))
    if rest[0] == "seeds":
        return Text(seeds_text(seeds))
    if rest[0] == "effect":
        e = card["effect"]
        nan = math.nan
        return Measured(e["mean"] if e["mean"] is not None else nan, e.get("std") or nan, e.get("ci95") or nan,
                        int(e.get("n") or 0), seeds)
    metric, model = rest[0], rest[1]
    method = rest[2] if len(rest) > 2 else None
    rows = [r for r in card.get("context", []) if r["metric"] == metric and r["model"] == model
            and (method is None or r["method"] == method)]
    if not rows:
        return Missing(f"the card “{parts[0]}” has no {metric} of {model}")
    return Measured(float(rows[0]["value"]), n=len(seeds), seeds=seeds)
