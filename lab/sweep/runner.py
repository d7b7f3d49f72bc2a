"""Running a sweep's trials on Ray Tune (`run_sweep`).

Ray: a local Ray started in this process by default (`start_ray`: `ray.init(address="local",
num_cpus=…, include_dashboard=False)`, a new instance even if another runs on the machine, nothing
downloaded, no usage statistics, the lab importable by the workers through PYTHONPATH), or an
existing cluster (`address=`: the `lab` package is shipped to it as a runtime-env module; the
cluster's Python needs torch, numpy and pandas). A Ray session that is already up (a notebook's, a
test's) is used as it is, and left up.

Ray Tune: one Tune trial per pending (cell, seed), a grid search over the trials' keys; the trials
themselves travel with the trainable (`tune.with_parameters`). Each trial reserves `cpus_per_trial`
CPUs (1) and computes with as many torch threads (`NLL_THREADS`, `lab.device.configure_threads`),
so numbers are the same as a direct run's. A trial reports its progress every few seconds and its
result once (`tune.report`), as JSON: its rows of numbers, or its error and traceback if the lab's
code raised (the trial is then "failed", not an error of Tune's, and the others go on).

Resume: the lab's own bookkeeping, not Tune's experiment restore. A Tune callback in this process
writes each trial's result to DIR/trials/KEY.json, atomically, as soon as it arrives; a new
invocation on the same folder runs only the trials without such a file (for the very same
settings). Why: it survives the process being killed at any moment (Tune saves its experiment
state only every so often, and restores trials that were running at that moment from scratch
anyway); it does not depend on Tune's storage layout being readable by the next Ray version or on
another machine; and it lets a result be checked and read without Ray at all.
"""
from __future__ import annotations

import json
import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import lab
from lab.sweep.spec import SweepError, SweepSpec
from lab.sweep.store import FILES, TRIALS, SweepResult, finished, trial_path, write_json, write_results

REPORT_EVERY_S = 5.0
QUIET = {"RAY_USAGE_STATS_ENABLED": "0",           # nothing sent anywhere
         "RAY_AIR_NEW_OUTPUT": "0",                # with verbose=0: no tables on stdout
         "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}  # the lab keeps its own results (no CSV/TensorBoard)
Progress = Callable[[float, str], None]


def _worker_env(cpus_per_trial: int) -> dict[str, str]:
    env = {"NLL_THREADS": str(cpus_per_trial), "OMP_NUM_THREADS": str(cpus_per_trial)}
    if os.environ.get("NLL_DEVICE"):
        env["NLL_DEVICE"] = os.environ["NLL_DEVICE"]
    return env


def start_ray(address: str | None = None, num_cpus: int | None = None, cpus_per_trial: int = 1) -> bool:
    """Start (or connect to) Ray for sweeps, unless a session is up. True if this call started one
    (the caller then shuts it down: `ray.shutdown()`)."""
    for key, value in QUIET.items():
        os.environ.setdefault(key, value)
    import ray

    if ray.is_initialized():
        return False
    package = Path(lab.__file__).resolve().parent
    env = _worker_env(cpus_per_trial)
    if address:
        runtime_env = {"py_modules": [str(package)], "env_vars": env}
        try:
            ray.init(address=address, runtime_env=runtime_env, logging_level=logging.ERROR)
        except (ConnectionError, ValueError) as err:
            raise SweepError(f"cannot reach the Ray cluster at {address!r}: {err}") from err
    else:
        paths = [str(package.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 logging_level=logging.ERROR, log_to_driver=False, runtime_env={"env_vars": env})
    return True


def trainable(config: dict, plan: dict) -> None:
    """One Ray Tune trial: runs the lab's code for trial `config["trial"]` of `plan` and reports."""
    import torch
    from ray import tune

    from lab.device import configure_threads, get_device
    from lab.sweep.experiments import run_trial

    trial = plan[config["trial"]]
    started = last = time.perf_counter()
    where: dict[str, Any] = {}

    def progress(fraction: float) -> None:
        nonlocal last
        if time.perf_counter() - last >= REPORT_EVERY_S and fraction < 1:
            last = time.perf_counter()
            tune.report({"fraction": float(fraction)})

    try:
        where.update(threads=configure_threads(), device=str(get_device()))
        payload = {"status": "ok", "rows": run_trial(trial["experiment"], trial["settings"], trial["seed"], progress)}
    except Exception as err:                     # the lab's code raised: a failed trial, reported like a result
        payload = {"status": "failed", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
    payload.update(where, seconds=time.perf_counter() - started, torch_threads=torch.get_num_threads())
    tune.report({"fraction": 1.0, "payload": json.dumps(payload)})


def _bookkeeper(out: Path, plan: dict, total: int, before: int, progress: Progress | None, lost: list, ran: list):
    """A Tune callback (in this process) that writes each result as it arrives and shows progress."""
    from ray import tune

    running: dict[str, float] = {}

    class Bookkeeper(tune.Callback):
        def show(self, label: str) -> None:
            if progress is not None:
                progress(min(1.0, (before + len(ran) + sum(running.values())) / max(1, total)), label)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            key = trial.config["trial"]
            if "payload" not in result:
                running[key] = float(result.get("fraction", 0.0))
                self.show(f"{before + len(ran)}/{total} done, {key} at {100 * running[key]:.0f} %")
                return
            data = dict(plan[key], **json.loads(result["payload"]))
            write_json(trial_path(out, key), data)
            running.pop(key, None)
            ran.append(key)
            status = "" if data["status"] == "ok" else f" FAILED ({data['error'][:60]})"
            self.show(f"{before + len(ran)}/{total} done, last {key}{status}")

        def on_trial_error(self, iteration, trials, trial, **info):
            key = trial.config["trial"]
            running.pop(key, None)
            if key not in ran:                   # Ray lost it (a worker died): not finished, a resume reruns it
                try:
                    error = trial.get_error() or "the trial's Ray worker failed"
                except Exception as err:         # noqa: BLE001  (the error file itself could not be read)
                    error = f"the trial's Ray worker failed ({type(err).__name__})"
                lost.append(dict(plan[key], status="lost", error=str(error)[-4000:], traceback=None))
                self.show(f"{before + len(ran)}/{total} done, {key} LOST")

    return Bookkeeper()


def _prepare(spec: Any, out: Path, resume: bool | None) -> SweepSpec:
    """The spec to run in `out`, checked against what the folder already holds."""
    stored = None
    if (out / FILES["spec"]).is_file():
        try:
            stored = json.loads((out / FILES["spec"]).read_text())["spec"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise SweepError(f"{out / FILES['spec']} is unreadable ({err}); use another folder") from err
    if spec is None:
        if stored is None:
            raise SweepError(f"{out} holds no sweep to resume: give a spec")
        spec = stored
    elif isinstance(spec, (str, Path)):
        spec = SweepSpec.load(spec)
    spec = SweepSpec.from_dict(spec)
    if stored is not None and SweepSpec.from_dict(stored).fingerprint != spec.fingerprint:
        raise SweepError(f"{out} holds another sweep (its spec.json differs from this spec); resume it without a "
                         f"spec, or use another folder")
    if resume and stored is None:
        raise SweepError(f"{out} holds no sweep to resume: run it first without --resume")
    if resume is False and stored is not None:
        raise SweepError(f"{out} already holds this sweep; resume it or use another folder")
    return spec


def run_sweep(spec: Any, out: str | Path, *, address: str | None = None, resume: bool | None = None,
              max_concurrent: int | None = None, num_cpus: int | None = None, cpus_per_trial: int = 1,
              gpus_per_trial: float = 0, retry_failed: bool = False, progress: Progress | None = None) -> SweepResult:
    """Run the trials of `spec` (a dict, a `SweepSpec`, a JSON file's path; None with a folder that
    holds a sweep) on Ray Tune and write the results to `out`.

    resume: None resumes when `out` holds the same sweep (else starts it), True requires a sweep
    in `out` to resume, False requires a folder without one. Finished
    trials (and failed ones, unless `retry_failed`) are never run again. Raises SpecError for a bad
    spec and SweepError for a folder that holds another sweep, before anything starts.

    Each trial reserves `cpus_per_trial` CPUs (and computes with as many torch threads) and
    `gpus_per_trial` GPUs: with none (the default) a trial sees no GPU and runs on the CPU, where
    the lab is deterministic; with one, `lab.device` picks the GPU Ray gives it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = _prepare(spec, out, resume)
    if max_concurrent is not None and max_concurrent < 1:
        raise SweepError(f"max_concurrent = {max_concurrent}: must be at least 1")
    (out / TRIALS).mkdir(exist_ok=True)
    write_json(out / FILES["spec"], {"fingerprint": spec.fingerprint, "spec": spec.to_dict()})
    done = finished(out, spec.trials, retry_failed)
    pending = [t for t in spec.trials if t.key not in done]
    lost: list[dict] = []
    ran: list[str] = []
    try:
        if pending:
            resources = {"cpu": cpus_per_trial, "gpu": gpus_per_trial} if gpus_per_trial else {"cpu": cpus_per_trial}
            _fit(spec, pending, out, len(done), address, max_concurrent, num_cpus, resources, progress, lost, ran)
        elif progress is not None:
            progress(1.0, f"all {len(spec.trials)} trials already finished in {out}")
    finally:
        result = write_results(out, spec, lost, ran)
    return result


def _fit(spec: SweepSpec, pending: list, out: Path, before: int, address, max_concurrent, num_cpus,
         resources: dict, progress, lost: list, ran: list) -> None:
    started = start_ray(address, num_cpus=max(num_cpus or os.cpu_count() or 1, max_concurrent or 0),
                        cpus_per_trial=int(resources["cpu"]))
    try:
        from ray import tune

        plan = {t.key: t.to_dict() for t in pending}
        attempt = 1 + sum(1 for p in (out / "tune").glob("attempt-*")) if (out / "tune").is_dir() else 1
        callback = _bookkeeper(out, plan, len(spec.trials), before, progress, lost, ran)
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable, plan=plan), resources),
            param_space={"trial": tune.grid_search(list(plan))},
            tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                        trial_dirname_creator=_trial_dirname),
            run_config=tune.RunConfig(name=f"attempt-{attempt}", storage_path=str((out / "tune").resolve()),
                                      verbose=0, callbacks=[callback],
                                      failure_config=tune.FailureConfig(max_failures=0)))
        callback.show(f"{before}/{len(spec.trials)} done, {len(pending)} to run")
        tuner.fit()
    finally:
        if started:
            import ray

            ray.shutdown()


def _trial_dirname(trial) -> str:
    return str(trial.config["trial"])


def sweep_command(spec: str | None, out: Path, address: str | None, resume: bool, max_concurrent: int | None,
                  retry_failed: bool, progress: Progress | None = None) -> int:
    """`python -m lab sweep`: run, print what happened (stderr) and a JSON line (stdout); exit code 0
    when every trial finished, 1 when some failed or are missing (the results are written all the same)."""
    import sys

    if spec is None and not resume:
        raise SweepError("give the sweep's spec file (or --resume to resume the sweep in --out)")
    result = run_sweep(spec, out, address=address, resume=True if resume else None, max_concurrent=max_concurrent,
                       retry_failed=retry_failed, progress=progress)
    s = result.summary
    print(("" if s["complete"] else "\n")
          + f"{s['finished']} of {s['trials']} trials finished ({len(result.ran)} run now), {s['failed']} failed"
          + ("" if s["complete"] else f", {len(s['missing'])} missing: run again to resume")
          + (f"; see {out / FILES['failures']}" if s["failed"] or result.failures else ""), file=sys.stderr)
    print(json.dumps({"out": str(out), "trials": s["trials"], "finished": s["finished"], "failed": s["failed"],
                      "ran": len(result.ran), "complete": s["complete"]}))
    return 0 if s["complete"] and not s["failed"] else 1
