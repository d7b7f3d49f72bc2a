"""`python -m lab …`: everything the app shows, reproducible headless with the same numbers.

    python -m lab info --json
    python -m lab train --model hope --task languages --steps 300 --seed 0 --out runs/a
    python -m lab forget --models transformer,titans,hope --tasks 3 --steps-per-task 150 --seeds 3 --out runs/f
    python -m lab sleep --model hope --tasks 3 --steps-per-task 150 --seed 0 --out runs/s
    python -m lab bench --out bench.json

Wrong names or values print a message that lists the valid choices and exit with code 2.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from lab.cli_args import parser as build_parser
from lab.config import ConfigError
from lab.records import METRICS


class UsageError(Exception):
    pass


def _settings(args, extra: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """The --set KEY=VALUE pairs: (URL-named run settings, {field: value} of the `extra` prefix,
    e.g. "sleep"). A bare key that is no URL name goes to the first extra prefix, if any."""
    from lab.urlstate import PARAMS

    run, other = {}, {}
    for item in args.set:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {item!r}: write KEY=VALUE, e.g. --set chunks=64,256,1024")
        prefix, dot, field_name = key.partition(".")
        if dot and prefix in extra:
            other[field_name] = value.strip()
        elif key in PARAMS:
            run[key] = value.strip()
        elif extra and not dot:
            other[key] = value.strip()
        else:
            known = ", ".join(list(PARAMS) + [f"{e}.FIELD" for e in extra])
            raise UsageError(f"--set {key}: unknown name; use one of {known}")
    return run, other


def _run_config(args, model: str, n_tasks: int, steps_per_task: int | None, seed: int, sets: dict | None = None,
                **stream_extra):
    from lab.engine import RunConfig
    from lab.tasks import StreamConfig
    from lab.urlstate import with_values

    stream = {"kind": args.task, "n_tasks": n_tasks, "seed": seed, **stream_extra}
    if steps_per_task is not None:
        stream["steps_per_task"] = steps_per_task
    run = {"model": model, "preset": args.preset, "optimizer": args.optimizer, "replay": args.replay,
           "seed": seed, "stream": StreamConfig.from_dict(stream).to_dict()}
    if args.lr is not None:
        run["lr"] = args.lr
    if args.eval_every is not None:
        run["eval_every"] = args.eval_every
    config = RunConfig.from_dict(run)
    return with_values(config, sets) if sets else config


def _progress(fraction: float, label: str) -> None:
    bar = "#" * int(30 * fraction)
    sys.stderr.write(f"\r[{bar:<30}] {100 * fraction:5.1f}%  {label:<60}")
    if fraction >= 1:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_info(args) -> int:
    import torch

    from lab.device import describe
    from lab.memory.registry import entries
    from lab.models import model_table

    registered = entries()                # every associative memory, REFERENCE.md §1 order (lab.memory.registry)
    info = {"device": describe(), "torch": torch.__version__, "models": model_table(),
            "memories": [e.key for e in registered if e.cls is not None],
            "associative_memories": [{"key": e.key, "label": e.label, "component": e.row.component if e.row else None,
                                      "runnable": e.runnable} for e in registered]}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"device: {info['device']['name']} ({info['device']['type']}), torch {info['torch']}")
        for m in info["models"]:
            print(f"  {m['name']:<12} {m['params']:>9,} parameters, {m['cms_levels']} CMS level(s)")
        print("memories: " + ", ".join(info["memories"]))
        print("§1 catalogue: " + ", ".join(e["key"] for e in info["associative_memories"] if e["component"]))
    return 0


def cmd_train(args) -> int:
    from lab.engine import Run

    if args.steps is not None and args.steps < max(1, args.tasks):
        raise UsageError(f"--steps {args.steps}: give at least one step per task (≥ {max(1, args.tasks)})")
    per_task = None if args.steps is None else max(1, args.steps // args.tasks)
    config = _run_config(args, args.model, args.tasks, per_task, args.seed, _settings(args)[0])
    out = _writable(args.out)
    run = Run(config)
    total = run.stream.total_steps
    started = time.perf_counter()
    while not run.done and not run.diverged:
        run.step(25)
        _progress(run.step_count / total, f"{args.model}: step {run.step_count}/{total}")
    run.records().to_csv(out / "records.csv", index=False)
    frame = run.records()
    losses = frame[frame.metric == "loss"].value
    final = run.evaluate() if not run.diverged else run.last_eval
    summary = {
        "final_loss": float(losses.iloc[-1]) if len(losses) else None,
        "accuracy": {task: r["token_acc"] for task, r in final.items()},
        "seq_accuracy": {task: r["seq_acc"] for task, r in final.items()},
        "steps_per_sec": run.steps_per_sec, "wall_seconds": time.perf_counter() - started,
        "steps": run.step_count, "params": run.model.n_params(), "device": str(run.device),
        "config": config.to_dict(), "diverged": run.diverged.message() if run.diverged else None,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("final_loss", "accuracy", "steps_per_sec", "params", "device")}))
    if run.diverged:
        print(run.diverged.message(), file=sys.stderr)
        return 1
    return 0


# --set names (the URL's) that a forgetting comparison takes, and its field for each
FORGET_SETS = {"chunks": "cms_chunk_tokens", "level_lr": "level_lr_scale", "lr": "lr", "overlap": "overlap",
               "steps": "steps_per_task", "tasks": "n_tasks", "stream": "kind", "preset": "preset",
               "optimizer": "optimizer", "memory": "memory_bound"}


def cmd_forget(args) -> int:
    from lab.forgetting import DEFAULT_REPLAY, ComparisonError, ForgetSettings, run_settings, summary_table

    methods = args.methods or ("replay" if args.replay > 0 else "naive")
    fields = {"models": args.models, "methods": methods, "kind": args.task, "n_tasks": args.tasks,
              "seeds": args.seeds, "replay": args.replay or DEFAULT_REPLAY, "joint": args.joint,
              "preset": args.preset, "optimizer": args.optimizer, "lr": args.lr, "eval_every": args.eval_every,
              "eval_size": args.eval_size}
    if args.steps_per_task is not None:
        fields["steps_per_task"] = args.steps_per_task
    if args.overlap is not None:
        fields["overlap"] = args.overlap
    for key, value in _settings(args)[0].items():
        if key not in FORGET_SETS:
            raise UsageError(f"--set {key}: forget takes {', '.join(FORGET_SETS)} (models and seeds have their own "
                             "options)")
        fields[FORGET_SETS[key]] = value
    settings = ForgetSettings.from_dict(fields)          # a bad value: ConfigError, exit 2 with its message
    keep = [m.strip() for m in args.keep_metrics.split(",") if m.strip()] if args.keep_metrics else None
    unknown = [m for m in keep or [] if m not in METRICS]
    if unknown or keep == []:
        raise UsageError(f"--keep-metrics {args.keep_metrics!r}: choose from {', '.join(METRICS)}")
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: give at least 1 (one process per model trained at once)")
    out = _writable(args.out)
    try:
        result = run_settings(settings, progress=_progress, workers=args.workers)
    except ComparisonError as err:
        print(f"\nerror: {err}", file=sys.stderr)
        if len(err.partial):                      # nothing already computed is lost
            err.partial.to_csv(out / "accuracy_matrix.partial.csv", index=False)
            runs = err.partial[["model", "method", "seed"]].drop_duplicates()
            print(f"The {len(runs)} run(s) that finished before it are kept in {out / 'accuracy_matrix.partial.csv'}.",
                  file=sys.stderr)
        return 1
    result.save(out, keep_metrics=keep)
    print(summary_table(result.summary).to_string(index=False), file=sys.stderr)
    print(json.dumps({method: {model: {k: v["mean"] for k, v in cells.items()} for model, cells in by_model.items()}
                      for method, by_model in result.summary["results"].items()}, indent=2))
    return 0


def cmd_sleep(args) -> int:
    from lab.sleep import ALL_ARMS, SleepConfig, SleepError, sleep_experiment
    from lab.tasks import build_stream

    run_sets, fields = _settings(args, extra=("sleep",))
    sleep_config = SleepConfig.from_dict(fields)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ALL_ARMS]
    if bad or not arms:
        raise UsageError(f"unknown arm {bad[0] if bad else '(none)'!r}: choose from {', '.join(ALL_ARMS)}")
    config = _run_config(args, args.model, args.tasks, args.steps_per_task, args.seed, run_sets)
    if args.eval_size is not None:
        config = config.replace(eval_size=args.eval_size)
    if args.level_lr_scale is not None:
        config = config.replace(level_lr_scale=args.level_lr_scale)
    out = _writable(args.out)
    started = time.perf_counter()
    try:
        result = sleep_experiment(config, sleep_config, when=args.when, arms=arms, progress=_progress)
    except SleepError as err:
        raise UsageError(str(err)) from err
    summary = dict(result.summary, wall_seconds=time.perf_counter() - started)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    result.records.to_csv(out / "records.csv", index=False)
    result.knowledge.to_csv(out / "knowledge.csv", index=False)
    if result.dreams is not None:
        (out / "dreams.txt").write_text(build_stream(config.stream).decode(result.dreams) + "\n")
    print(json.dumps({k: summary[k] for k in ("before_sleep", "after_sleep", "control_no_sleep", "control_reset_only",
                                             "control_optimizer_reset", "params") if k in summary}, indent=2))
    return 0


def cmd_bench(args) -> int:
    from lab.bench import run_bench

    if args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats}: give at least 1")
    if args.out is not None and not args.out.strip():
        raise UsageError("--out '': give a file to write the JSON into")
    target = _writable(Path(args.out).parent) / Path(args.out).name if args.out else None
    result = run_bench(repeats=args.repeats, compiled=not args.eager_only)
    text = json.dumps(result, indent=2)
    if target:
        target.write_text(text)
    print(text)
    return 0


def cmd_deploy(args) -> int:
    from lab.deploy import DeployError, DeployJob, DeploySettings

    fields = {"seeds": args.seeds, "preset": args.preset}
    if args.models:
        fields["variants"] = args.models
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: write FIELD=VALUE, e.g. --set deploy_steps=150")
        fields[key.strip()] = value.strip()
    settings = DeploySettings.from_dict(fields)          # a bad value: ConfigError, exit 2 with its message
    out = _writable(args.out)
    try:
        result = DeployJob(settings).run_to_end(progress=_progress)
    except DeployError as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 1
    result.save(out)
    print(result.table().to_string(index=False), file=sys.stderr)
    flat = {v: {k: result.summary["results"]["deploy"][v][k] for k in ("ACC", "BWT", "forgetting", "savings")}
            for v in settings.variants}
    print(json.dumps(flat, indent=2))
    return 0


def _writable(out: str | Path) -> Path:
    """The output folder, created and checked writable before any work starts."""
    path = Path(out)
    if not str(out).strip():
        raise UsageError("--out '': give a folder to write into")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"--out {out!r} cannot be written: {err.strerror or err}") from err
    return path


def cmd_sweep(args) -> int:
    from lab.sweep import SweepError, sweep_command

    try:                                               # a bad spec: SpecError, a ConfigError (exit 2)
        return sweep_command(args.spec, _writable(args.out), args.address, args.resume, args.max_concurrent,
                             args.retry_failed, progress=_progress)
    except SweepError as err:                          # a spec file or a folder that cannot be used: exit 2
        raise UsageError(str(err)) from err


def cmd_claims(args) -> int:
    from lab.claims import CLAIMS, compute

    only = [c.strip() for c in args.only.split(",") if c.strip()] if args.only else None
    bad = [c for c in only or [] if c not in CLAIMS]
    if bad or (only is not None and not only):
        raise UsageError(f"--only {args.only!r}: choose from {', '.join(CLAIMS)}")
    out = _writable(args.out)
    cards = compute(out, quick=args.quick, only=only, progress=_progress)
    for card in cards:
        e = card["effect"]
        print(f"{card['id']:<16} {card['verdict']:<20} effect {e['mean']} ± {e['ci95']} (n = {e['n']})", file=sys.stderr)
    print(json.dumps([{k: c[k] for k in ("id", "verdict", "effect", "n_seeds", "command")} for c in cards], indent=2))
    return 0


def cmd_fingerprint(args) -> int:
    from lab.fingerprint import fingerprint

    print(json.dumps(fingerprint(args.out, progress=_progress), indent=2))
    return 0


def cmd_attribute(args) -> int:
    from lab.attribution.command import AttributionError, attribute_command, brief

    per_task = max(1, args.steps // args.tasks) if args.steps else None
    config = _run_config(args, args.model, args.tasks, per_task, args.seed, _settings(args)[0])
    try:
        content = attribute_command(config, _writable(args.out), args.steps, args.example_task, args.example,
                                    args.position, args.baseline, args.n_steps, args.target, not args.no_map, _progress)
    except AttributionError as err:
        raise UsageError(str(err)) from err
    print(json.dumps(brief(content), indent=2))
    return 0


COMMANDS = {"info": cmd_info, "train": cmd_train, "forget": cmd_forget, "sleep": cmd_sleep, "bench": cmd_bench,
            "deploy": cmd_deploy, "claims": cmd_claims, "fingerprint": cmd_fingerprint, "sweep": cmd_sweep,
            "attribute": cmd_attribute}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)           # unknown options: usage message, exit 2
    try:
        from lab.device import DeviceError, configure_threads, set_device
        try:
            if args.device:
                set_device(args.device)
            configure_threads()               # as the app and the tests do: the same numbers
        except DeviceError as err:
            raise UsageError(str(err)) from err
        return COMMANDS[args.command](args)
    except (ConfigError, UsageError) as err:
        parser.print_usage(sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: stopped before the end; what a command writes at its end was not written "
              "(claims, sweep and deploy resume from their --out folder)", file=sys.stderr)
        return 130
