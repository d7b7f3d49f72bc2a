"""The command line's options (`python -m lab …`): one sub-parser per command. The commands
themselves are in lab.cli."""
from __future__ import annotations

import argparse
import os


def parser() -> argparse.ArgumentParser:
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
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting by the name the Playground's address bar uses, e.g. --set chunks=64,256,1024 "
                             "(CMS levels), --set level_lr=10,10,10, --set batch=16 (repeatable)"
                             + ("; for the sleep phase sleep.FIELD=VALUE, e.g. --set sleep.distill_steps=100 "
                                "(a SleepConfig field; the bare field name works too)" if sp.prog.endswith("sleep")
                                else ""))

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
    forget.add_argument("--methods", default=None,
                        help="naive and/or replay, comma-separated (default: naive; replay if --replay N > 0)")
    forget.add_argument("--joint", action="store_true", help="also train the joint reference (intransigence)")
    forget.add_argument("--eval-size", type=int, default=None, help="held-out sequences per task")
    forget.add_argument("--keep-metrics", default=None,
                        help="write only these metrics' rows to records.csv, e.g. accuracy (default: all)")
    forget.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes that train the comparison's runs (the same records as 1; default: 2 cores)")
    forget.add_argument("--out", required=True)
    common(forget)

    sleep = sub.add_parser("sleep", help="sleep (consolidation) against its controls on one stream")
    sleep.add_argument("--model", default="hope", choices=list(MODELS))
    sleep.add_argument("--task", default="languages", choices=list(KINDS))
    sleep.add_argument("--tasks", type=int, default=3)
    sleep.add_argument("--steps-per-task", type=int, default=None)
    sleep.add_argument("--seed", type=int, default=0)
    sleep.add_argument("--when", default="boundaries", choices=["boundaries", "end"],
                       help="sleep after every task, or only after the last")
    sleep.add_argument("--eval-size", type=int, default=None, help="held-out sequences per task")
    sleep.add_argument("--level-lr-scale", default=None, metavar="S0,S1,…",
                       help="learning-rate multiplier per CMS level, e.g. 10,10,10")
    sleep.add_argument("--arms", default="sleep,reset_only,no_sleep",
                       help="comma-separated arms: sleep, reset_only, no_sleep, optimizer_reset")
    sleep.add_argument("--out", required=True)
    common(sleep)

    attribute = sub.add_parser("attribute", help="train a run, then attribute one held-out answer to its tokens, CMS "
                                                 "levels, branches and residual stream; the attribution map beside "
                                                 "the lesion knowledge map (DIR/attributions.json)")
    attribute.add_argument("--model", default="hope", choices=list(MODELS))
    attribute.add_argument("--task", default="languages", choices=list(KINDS), help="the stream's task family")
    attribute.add_argument("--tasks", type=int, default=3, help="number of tasks in the stream")
    attribute.add_argument("--steps", type=int, default=None,
                           help="training steps before attributing, split evenly over the tasks as `train` does "
                                "(default: the whole stream; 0: the untrained model)")
    attribute.add_argument("--seed", type=int, default=0)
    attribute.add_argument("--example-task", default="0", help="the task (index or name) whose held-out set holds "
                                                               "the example (default: the first)")
    attribute.add_argument("--example", type=int, default=0, help="index of the example in that held-out set")
    attribute.add_argument("--position", type=int, default=None, help="the scored position (default: the first)")
    attribute.add_argument("--baseline", default="pad", choices=["pad", "zero", "mean"],
                           help="token baseline: a padding sequence (default), zero or the mean embedding")
    attribute.add_argument("--target", default="logprob", choices=["logprob", "logit"], help="what is attributed")
    attribute.add_argument("--n-steps", type=int, default=None,
                           help="integration points (Gauss-Legendre; default 32 for the example, 16 for the maps)")
    attribute.add_argument("--no-map", action="store_true", help="skip the attribution map and the lesion map")
    attribute.add_argument("--out", required=True)
    common(attribute)

    deploy = sub.add_parser("deploy", help="pretraining, then deployment on new languages with revisits: frozen, "
                                           "fine-tuned, replay, CMS learning online (with and without sleep)")
    deploy.add_argument("--models", default=None, metavar="VARIANTS",
                        help="comma-separated variants (default: all), e.g. hope/frozen,hope/cms_online,"
                             "hope1/cms_online,transformer/finetune")
    deploy.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1)")
    deploy.add_argument("--preset", default="small", choices=list(PRESETS))
    deploy.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a DeploySettings field, e.g. --set deploy_steps=150 --set online_lr=0.02 (repeatable)")
    deploy.add_argument("--out", required=True)

    sweep = sub.add_parser("sweep", help="a grid or random search over an experiment's settings and seeds on Ray Tune")
    sweep.add_argument("spec", nargs="?", help="the sweep's JSON file (optional with --resume: the folder's own)")
    sweep.add_argument("--out", required=True, help="the sweep's folder (records.csv, summary.json, failures.json)")
    sweep.add_argument("--address", help="an existing Ray cluster, e.g. auto (default: a local Ray in this process)")
    sweep.add_argument("--resume", action="store_true", help="resume the sweep in --out (the same spec resumes anyway)")
    sweep.add_argument("--max-concurrent", type=int, metavar="N", help="at most N trials at once (default: 1 per CPU)")
    sweep.add_argument("--retry-failed", action="store_true", help="run the trials that raised again")

    claims = sub.add_parser("claims", help="the claim cards: every claim's sweeps on Ray Tune and its computed verdict")
    claims.add_argument("--out", required=True, help="folder of the sweeps and of claims.json (resumes there)")
    claims.add_argument("--quick", action="store_true", help="tiny models on two seeds (a smoke test: no verdict)")
    claims.add_argument("--only", default=None, metavar="IDS", help="comma-separated claim ids (default: all)")

    fingerprint = sub.add_parser("fingerprint", help="hashes of the records of fixed short runs (a change that "
                                                     "must not change any number keeps them)")
    fingerprint.add_argument("--out", default=None, help="also write every frame as CSV and the hashes as JSON here")

    bench = sub.add_parser("bench", help="speed figures as JSON")
    bench.add_argument("--out", default=None, help="write the JSON here as well as to stdout")
    bench.add_argument("--repeats", type=int, default=20)
    bench.add_argument("--eager-only", action="store_true", help="skip the compiled measurement (lab.memory.compiled)")
    return p
