"""`python -m lab …`: everything the app shows, reproducible headless with the same numbers.

    python -m lab info --json
    python -m lab train --model hope --task languages --steps 300 --seed 0 --out runs/a
    python -m lab forget --models transformer,titans,hope --tasks 3 --steps-per-task 150 --seeds 3 --out runs/f
    python -m lab bench --out bench.json

Wrong names or values print a message that lists the valid choices and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lab.config import ConfigError


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    from lab.models import MODELS, PRESETS
    from lab.optim import OPTIMIZERS
    from lab.tasks import KINDS

    p = argparse.ArgumentParser(prog="python -m lab", description="Nested Learning Lab, headless.")
    p.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: automatic, or $NLL_DEVICE)")
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="device, torch version, models and memories")
    info.add_argument("--json", action="store_true", help="print JSON")

    def common(sp):
        sp.add_argument("--preset", default="small", choices=list(PRESETS))
        sp.add_argument("--optimizer", default="adamw", choices=list(OPTIMIZERS))
        sp.add_argument("--lr", type=float, default=None)
        sp.add_argument("--replay", type=int, default=0, help="replay buffer in sequences (0 = naive)")
        sp.add_argument("--eval-every", type=int, default=None)

    train = sub.add_parser("train", help="train one model on one stream")
    train.add_argument("--model", default="hope", choices=list(MODELS))
    train.add_argument("--task", default="languages", choices=list(KINDS), help="the stream's task family")
    train.add_argument("--tasks", type=int, default=3, help="number of tasks in the stream")
    train.add_argument("--steps", type=int, default=None, help="total steps (split evenly over the tasks)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", required=True)
    common(train)

    forget = sub.add_parser("forget", help="every model on the identical stream; accuracy matrices")
    forget.add_argument("--models", default="transformer,titans,hope")
    forget.add_argument("--task", default="languages", choices=list(KINDS))
    forget.add_argument("--tasks", type=int, default=3)
    forget.add_argument("--steps-per-task", type=int, default=None)
    forget.add_argument("--seeds", type=int, default=1, help="number of seeds (0..K-1)")
    forget.add_argument("--overlap", type=float, default=None)
    forget.add_argument("--out", required=True)
    common(forget)

    bench = sub.add_parser("bench", help="speed figures as JSON")
    bench.add_argument("--out", default=None, help="write the JSON here as well as to stdout")
    bench.add_argument("--repeats", type=int, default=20)
    return p


def _run_config(args, model: str, n_tasks: int, steps_per_task: int | None, seed: int, **stream_extra):
    from lab.engine import RunConfig
    from lab.tasks import StreamConfig

    stream = {"kind": args.task, "n_tasks": n_tasks, "seed": seed, **stream_extra}
    if steps_per_task is not None:
        stream["steps_per_task"] = steps_per_task
    run = {"model": model, "preset": args.preset, "optimizer": args.optimizer, "replay": args.replay,
           "seed": seed, "stream": StreamConfig.from_dict(stream).to_dict()}
    if args.lr is not None:
        run["lr"] = args.lr
    if args.eval_every is not None:
        run["eval_every"] = args.eval_every
    return RunConfig.from_dict(run)


def _progress(fraction: float, label: str) -> None:
    bar = "#" * int(30 * fraction)
    sys.stderr.write(f"\r[{bar:<30}] {100 * fraction:5.1f}%  {label:<60}")
    if fraction >= 1:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_info(args) -> int:
    import torch

    from lab.device import describe
    from lab.memory import MEMORIES
    from lab.models import model_table

    info = {"device": describe(), "torch": torch.__version__, "models": model_table(),
            "memories": list(MEMORIES)}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"device: {info['device']['name']} ({info['device']['type']}), torch {info['torch']}")
        for m in info["models"]:
            print(f"  {m['name']:<12} {m['params']:>9,} parameters, {m['cms_levels']} CMS level(s)")
        print("memories: " + ", ".join(info["memories"]))
    return 0


def cmd_train(args) -> int:
    from lab.engine import Run

    per_task = None if args.steps is None else max(1, args.steps // args.tasks)
    config = _run_config(args, args.model, args.tasks, per_task, args.seed)
    run = Run(config)
    total = run.stream.total_steps
    started = time.perf_counter()
    while not run.done and not run.diverged:
        run.step(25)
        _progress(run.step_count / total, f"{args.model}: step {run.step_count}/{total}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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


def cmd_forget(args) -> int:
    from lab.compare import compare
    from lab.models import MODELS

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        raise UsageError(f"unknown model {bad[0] if bad else '(none)'!r}: choose from {', '.join(MODELS)}")
    if args.seeds < 1:
        raise UsageError("--seeds must be at least 1")
    extra = {} if args.overlap is None else {"overlap": args.overlap}
    base = _run_config(args, models[0], args.tasks, args.steps_per_task, 0, **extra)
    started = time.perf_counter()
    result = compare(base, models, list(range(args.seeds)), progress=_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result.matrix.to_csv(out / "accuracy_matrix.csv", index=False)
    result.records.to_csv(out / "records.csv", index=False)
    summary = dict(result.summary, wall_seconds=time.perf_counter() - started, tasks=result.task_names,
                   config=base.to_dict())
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({m: {k: v for k, v in s.items() if k != "forgetting_form"}
                      for m, s in result.summary.items() if m != "n_seeds"}, indent=2))
    return 0


def cmd_bench(args) -> int:
    from lab.bench import run_bench

    result = run_bench(repeats=args.repeats)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)
    return 0


COMMANDS = {"info": cmd_info, "train": cmd_train, "forget": cmd_forget, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)           # unknown options: usage message, exit 2
    try:
        if args.device:
            from lab.device import DeviceError, set_device
            try:
                set_device(args.device)
            except DeviceError as err:
                raise UsageError(str(err)) from err
        return COMMANDS[args.command](args)
    except (ConfigError, UsageError) as err:
        parser.print_usage(sys.stderr)
        print(f"error: {err}", file=sys.stderr)
        return 2
