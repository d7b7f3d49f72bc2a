"""What a step has its session do before its panel and observation are shown (`run:` in the step),
per kind of session, what is known of a preset before it runs (its `Shape`), and which shipped
results a step can re-run live (`rerun:`).

    playground   run: {steps: N}            train until step N (at most the stream's length)
    sleep        run: {tasks: N, sleep: true}  train N tasks (one after another), then sleep once
    memory       (no run: the explorer computes what its panels ask for)
    forgetting, deployment, claims: no run; the shipped result is shown at once, and `rerun: true`
                 (forgetting, deployment) or `rerun: <claim id>` (claims) adds a button that re-runs
                 it live and says whether it agrees.

Every `run` is a target ("until"), so showing a step twice, or two steps sharing a preset, trains
nothing twice.
"""
from __future__ import annotations

from lab.lessons.observe import Shape

RUN_KEYS = {"playground": {"steps": int}, "sleep": {"tasks": int, "sleep": bool}}
RERUNS = ("forgetting", "deployment", "claims")
SHIPPED_ONLY = ("forgetting", "deployment")       # their presets take no settings: a new comparison takes minutes


def shape_of(kind: str, settings) -> Shape:
    """What validation knows of a preset of `kind` with these (valid) Settings."""
    if kind == "playground":
        from lab.tasks.stream import build_stream
        stream = build_stream(settings.stream)
        levels = len(settings.model_config(stream.vocab_size, stream.seq_len).cms_levels)
        return Shape(tuple(stream.task_names), levels, stream.total_steps)
    if kind == "sleep":
        from lab.tasks.stream import build_stream
        config = settings.run_config()
        stream = build_stream(config.stream)
        levels = len(config.model_config(stream.vocab_size, stream.seq_len).cms_levels)
        return Shape(tuple(stream.task_names), levels, stream.total_steps, {"tasks": len(stream.task_names)})
    return Shape()


def check_run(kind: str, run, shape: Shape) -> str | None:
    """None, or what is wrong with a step's `run` for a session of `kind`."""
    if not run:
        return None
    if not isinstance(run, dict):
        return "run must be a mapping, e.g. run: {steps: 200}"
    allowed = RUN_KEYS.get(kind, {})
    if not allowed:
        return f"a {kind} step has nothing to run: leave out “run”"
    for key, value in run.items():
        if key not in allowed:
            return f"run.{key} is not known for a {kind} step: use {', '.join(allowed)}"
        if allowed[key] is bool:
            if not isinstance(value, bool):
                return f"run.{key} = {value!r} is not allowed: must be true or false"
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            return f"run.{key} = {value!r} is not allowed: must be a whole number"
    if kind == "playground" and not 1 <= run.get("steps", 1) <= shape.total_steps:
        return (f"run.steps = {run['steps']} is not allowed: must be between 1 and {shape.total_steps} (the preset's "
                "stream has that many steps)")
    if kind == "sleep" and not 1 <= run.get("tasks", 1) <= shape.extra.get("tasks", 1):
        return f"run.tasks = {run['tasks']} is not allowed: must be between 1 and {shape.extra.get('tasks', 1)}"
    return None


def check_rerun(kind: str, rerun, claim_ids: tuple[str, ...]) -> str | None:
    if rerun in (False, None):
        return None
    if kind not in RERUNS:
        return f"rerun is for a shipped result (a panel of {', '.join(RERUNS)}), not a {kind} step"
    if kind == "claims":
        if rerun not in claim_ids:
            return f"rerun: {rerun!r} is not allowed: name the claim to re-run, one of {', '.join(claim_ids)}"
    elif rerun is not True:
        return f"rerun: {rerun!r} is not allowed: write rerun: true"
    return None
