"""Choosing the online CMS's settings on tuning seeds (never the reported ones), and mapping where it
keeps old tasks: `python -m lab.deploy.tune --out DIR [--seeds 100,101] [--quick]`.

A grid over the online learning rate, the levels' chunk lengths against the length of a task visit
(a visit reads 150 documents of 9 tokens = 1,350 tokens), and the per-level rate multipliers; every
cell deploys HOPE with its CMS learning online, and HOPE frozen is deployed once as the reference,
all from the same pretrained weights (pretrained once per seed and shared by the cells). Writes
`DIR/grid.csv` (one row per cell and variant: the mean over the seeds of every number of
lab.deploy.summary) and prints the cells best first by the rule the defaults were chosen by: the
final accuracy over all six languages, that is (the pretrained base accuracy being the same for
every cell) `six = final_ACC + base_change`; a tie goes to the family's own chunks.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import pandas as pd

from lab.deploy.job import DeployJob
from lab.deploy.settings import DeploySettings
from lab.deploy.summary import KEYS
from lab.device import configure_threads

GRID = {"online_lr": (3e-5, 1e-4, 3e-4, 1e-3),
        "online_chunks": ((9, 36, 144), ()),                  # every document / the family's 128, 512, 2048
        "level_lr_scale": ((), (1.0, 0.1, 0.01))}              # the same rate / slower levels learn slower
QUICK = {"online_lr": (1e-3,), "online_chunks": ((),), "level_lr_scale": ((),)}


def cells(grid: dict) -> list[dict]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def tune(base: DeploySettings, grid: dict, out: Path, progress=None) -> pd.DataFrame:
    shared: dict = {}
    rows = []
    reference = DeployJob(base.replace(variants=("hope/frozen",)), pretrained=shared).run_to_end()
    numbers = reference.summary["results"]["deploy"]["hope/frozen"]
    rows.append({**{k: "" for k in grid}, "variant": "hope/frozen", **{k: numbers[k]["mean"] for k in KEYS},
                 "n_seeds": len(base.seed_list())})
    for index, cell in enumerate(cells(grid)):
        settings = base.replace(**cell)
        result = DeployJob(settings, pretrained=shared).run_to_end()
        for variant in settings.variants:
            numbers = result.summary["results"]["deploy"][variant]
            rows.append({**{k: str(v) for k, v in cell.items()}, "variant": variant,
                         **{k: numbers[k]["mean"] for k in KEYS}, "n_seeds": len(settings.seed_list())})
        frame = pd.DataFrame(rows)
        frame.to_csv(out / "grid.csv", index=False)
        if progress:
            progress(f"cell {index + 1}/{len(cells(grid))}: {cell}")
    return pd.DataFrame(rows)


def ranked(frame: pd.DataFrame) -> pd.DataFrame:
    """The online cells, best first: final accuracy over all six languages (up to the base
    accuracy before deployment, the same for every cell), ties to the family's own chunks ("()")."""
    online = frame[frame.variant == "hope/cms_online"].assign(six=lambda f: (f.final_ACC + f.base_change).round(9),
                                                               own_chunks=lambda f: f.online_chunks == "()")
    return online.sort_values(["six", "own_chunks"], ascending=False).drop(columns="own_chunks")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.deploy.tune", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", default="100,101", help="tuning seeds, comma-separated (not the reported 0..4)")
    p.add_argument("--quick", action="store_true", help="one cell only (a smoke test)")
    args = p.parse_args(argv)
    configure_threads()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds or min(seeds) < 0:
        p.error("--seeds: give non-negative whole numbers, e.g. 100,101")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = DeploySettings(variants=("hope/cms_online",), first_seed=seeds[0], seeds=len(seeds))
    if seeds != base.seed_list():
        p.error("--seeds: give consecutive seeds, e.g. 100,101")
    frame = tune(base, QUICK if args.quick else GRID, out, progress=lambda text: print(text, file=sys.stderr))
    print(ranked(frame).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
