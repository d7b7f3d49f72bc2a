"""Sweeps on Ray Tune: a grid or a random search over any experiment's settings, over seeds.

    result = run_sweep("sweep.json", "runs/sweep")     # what `python -m lab sweep sweep.json --out …` does
    result.regime_map("ACC", model="hope")             # cell settings → mean and 95 % interval
    SweepResult.load("runs/sweep")                     # read a finished (or partial) sweep, no Ray needed

    experiments.py  what a trial runs: "run" (the engine), "forget", "deploy" (their jobs); the names of settings
    spec.py         SweepSpec: validation of the whole spec, the cells (grid × random draws) and the trials
    store.py        the folder: one file per finished trial, records.csv, summary.json, failures.json; SweepResult
    runner.py       run_sweep and start_ray: the trials on Ray Tune (local or a cluster), resume

Importing this package does not import Ray; running a sweep does.
"""
from __future__ import annotations

from lab.sweep.experiments import EXPERIMENTS, TrialError, run_trial
from lab.sweep.runner import run_sweep, start_ray, sweep_command
from lab.sweep.spec import SpecError, SweepError, SweepSpec, Trial
from lab.sweep.store import FILES, SweepResult, regime_map

__all__ = ["run_sweep", "start_ray", "sweep_command", "SweepSpec", "SweepResult", "SpecError", "SweepError", "Trial",
           "TrialError", "EXPERIMENTS", "run_trial", "regime_map", "FILES"]
