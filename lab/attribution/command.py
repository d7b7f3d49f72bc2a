"""`python -m lab attribute`: train a run, then attribute one held-out answer and draw the maps.

The model is trained first, on the one engine (`lab.engine.Run`, the same run `python -m lab train`
makes with the same options): `--steps N` trains N steps of the stream (default: the whole stream,
as `train`; 0: the untrained model). Then, on the run's own held-out sets (`run.eval_sets`, the
accuracy matrix's): one example's attributions (`attribute_example`) and, unless `--no-map`, the
attribution map beside the lesion knowledge map with their rank agreement: against the reset lesion
(the knowledge map the app draws, `map`) and against the bypass lesion (the level adding nothing,
the very change whose effect on log p the attribution map decomposes, `map.bypass`). Everything
goes to DIR/attributions.json.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

from lab.attribution.core import (MAP_N_STEPS, N_STEPS, RULE, AttributionError, attribute_example,
                                  check_position, check_request)
from lab.attribution.maps import compare_run, rank_agreement
from lab.knowledge import knowledge_matrix


def pick_task(names: list[str], which: str | int) -> int:
    """A task of the stream by index ("0") or by name ("lang2")."""
    text = str(which).strip()
    if text in names:
        return names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return int(text)
    raise AttributionError(f"--example-task {which!r}: use an index 0…{len(names) - 1} or one of {', '.join(names)}")


def attribute_command(config, out: Path, train_steps: int | None = None, example_task: str | int = 0,
                      example: int = 0, position: int | None = None, baseline: str = "pad",
                      n_steps: int | None = None,                      target: str = "logprob", with_map: bool = True,
                      progress: Callable[[float, str], None] | None = None) -> dict:
    """Train (see the module docstring), attribute, write `out`/attributions.json; returns its content."""
    from lab.engine import Run

    if train_steps is not None and train_steps < 0:
        raise AttributionError(f"--steps {train_steps}: use 0 (the untrained model) or more")
    run = Run(config)
    names = list(run.stream.task_names)
    task = pick_task(names, example_task)
    inputs, targets = run.eval_sets[task]
    if not 0 <= example < inputs.shape[0]:
        raise AttributionError(f"--example {example}: the held-out set of {names[task]} has examples 0…"
                               f"{inputs.shape[0] - 1}")
    example_steps, map_steps = (N_STEPS, MAP_N_STEPS) if n_steps is None else (n_steps, n_steps)
    try:                                                    # every refusal comes before any training
        check_request(baseline, target, example_steps)
        position = check_position(targets[example], position)
    except AttributionError as err:
        raise AttributionError(f"{err} (example {example} of {names[task]})") from err
    goal = run.stream.total_steps if train_steps is None else min(int(train_steps), run.stream.total_steps)
    while run.step_count < goal and not run.diverged:
        run.step(min(25, goal - run.step_count))
        if progress:
            progress(run.step_count / max(1, goal), f"{config.model}: step {run.step_count}/{goal}")
    started = time.perf_counter()
    result = attribute_example(run.model, inputs[example], targets[example], position=position, baseline=baseline,
                               n_steps=example_steps, target=target, decode=run.stream.decode)
    seconds = {"example": time.perf_counter() - started}
    content = {"model": config.model, "config": config.to_dict(), "trained_steps": run.step_count,
               "diverged": run.diverged.message() if run.diverged else None,
               "accuracy": dict(zip(names, run.last_eval_accuracy())),
               "example": {"task": names[task], "index": example}, **result.to_dict()}
    if with_map:
        started = time.perf_counter()
        comparison = compare_run(run, target=target, n_steps=map_steps, progress=progress)
        bypass = knowledge_matrix(run.model, run.eval_sets, names, run.initial_state, "bypass")
        agreement = rank_agreement(comparison.attribution, bypass)
        content["map"] = {**comparison.to_dict(), "n_steps": map_steps, "rule": RULE,
                          "bypass": {"agreement_spearman": None if math.isnan(agreement) else agreement,
                                     "lesion_map": bypass.to_dict(orient="records")}}
        seconds["map"] = time.perf_counter() - started
    content["seconds"] = seconds
    out.mkdir(parents=True, exist_ok=True)
    (out / "attributions.json").write_text(json.dumps(content, indent=2, default=float))
    return content


def brief(content: dict) -> dict:
    """What the command prints: the answer, F and its baseline, each level's attribution, the deltas."""
    keys = ("model", "trained_steps", "example", "answer", "position", "baseline", "value", "baseline_value", "levels")
    out = {k: content[k] for k in keys}
    deltas = content["delta"]
    out["largest_convergence_delta"] = max([abs(deltas.get("token", 0.0))]
                                           + [abs(v) for v in deltas.get("component", {}).values()]
                                           + [abs(v) for v in deltas.get("residual", {}).values()])
    if "map" in content:
        out["agreement_spearman"] = content["map"]["agreement_spearman"]
        out["agreement_spearman_bypass"] = content["map"]["bypass"]["agreement_spearman"]
    return out
