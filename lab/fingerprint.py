"""`python -m lab fingerprint`: a hash of the records of a fixed set of short runs, so that a change
that must not change any number (a refactor, a speed-up) can be checked: the same code path and
torch build give the same hashes, to the bit, on a CPU.

The runs cover every family (naive and with replay), the probes, custom CMS levels with per-level
learning rates, the Muon, M3 and SGD optimizers, a snapshot/restore round trip, the controlled
sleep experiment (all four arms) and a sleep with the knowledge map inside a run. Each frame is
written as CSV with 17 significant digits (`--out`), and hashed (SHA-256, first 16 hex digits).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

STREAM = {"steps_per_task": 40}
N_FRAMES = 26                       # how many frames _frames yields (for the progress bar)


def _frames() -> Iterator[tuple[str, Callable[[], pd.DataFrame]]]:
    from lab import probes
    from lab.engine import Run, RunConfig
    from lab.sleep import SleepConfig, sleep_and_map, sleep_experiment

    for family in ("transformer", "titans", "hope"):
        for replay in (0, 16):
            run = Run(RunConfig(model=family, stream=STREAM, replay=replay, eval_every=10))
            run.step(1000)
            yield f"{family}_replay{replay}", run.records
            if replay == 0:
                tokens = run.stream.tasks[0].eval_set(2, seed=5)[0][:1]
                for kind, probe in (("act", probes.level_activations), ("contrib", probes.level_contributions),
                                    ("mem", probes.memory_traces), ("attn", probes.attention_maps)):
                    yield f"{family}_probe_{kind}", lambda probe=probe, run=run: probe(run.model, tokens, run.stream.decode)
    run = Run(RunConfig(model="hope", stream=STREAM, cms_chunk_tokens=(72, 288), level_lr_scale=(2.0, 5.0)))
    yield "hope_custom_levels", run.step(1000).records
    for optimizer in ("muon", "m3", "sgd"):
        run = Run(RunConfig(model="titans", stream={"steps_per_task": 15}, optimizer=optimizer))
        yield f"titans_{optimizer}", run.step(1000).records
    run = Run(RunConfig(model="hope", stream=STREAM)).step(30)
    snap = run.snapshot()
    run.step(30)
    run.restore(snap)
    yield "hope_restore", run.step(1000).records
    config = SleepConfig(distill_steps=20, dream_samples=32, repair_steps=5, record_every=5)
    result = sleep_experiment(RunConfig(model="hope", stream={"steps_per_task": 30}, eval_size=32), config,
                              arms=("sleep", "reset_only", "no_sleep", "optimizer_reset"))
    yield "sleep_records", lambda: result.records
    yield "sleep_knowledge", lambda: result.knowledge
    config = SleepConfig(distill_steps=15, dream_samples=16, repair_steps=3, distill_params="new",
                         importance="activation", prompts="tags")
    run = Run(RunConfig(model="hope", stream={"steps_per_task": 20}, eval_size=16)).step(20)
    sleep_and_map(run, config)
    yield "sleep_run_records", run.step(1000).records


def fingerprint(out: str | Path | None = None, progress: Callable[[float, str], None] | None = None) -> dict:
    """{name: {"sha256": first 16 hex digits, "rows": n}} of every frame, in a fixed order."""
    folder = Path(out) if out else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    result = {}
    for index, (name, frame) in enumerate(_frames()):
        text = frame().to_csv(index=False, float_format="%.17g")
        if folder:
            (folder / f"{name}.csv").write_text(text)
        result[name] = {"sha256": hashlib.sha256(text.encode()).hexdigest()[:16], "rows": text.count("\n") - 1}
        if progress:
            progress(min(1.0, (index + 1) / N_FRAMES), name)
    if folder:
        (folder / "fingerprint.json").write_text(json.dumps(result, indent=2))
    return result
