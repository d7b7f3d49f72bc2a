"""Memories side by side on one key/value stream: write N pairs, then read every key back.

    stream = KVStream(n_pairs=64, d_key=32, correlation=0.3)
    params = MemoryParams(decay=0.99, momentum=0.5)
    recall(["delta", "titans"], stream, params)              # error per pair and its age
    sweep(["delta", "hebbian"], stream, params, "n_pairs", [8, 16, 32, 64])   # capacity

Everything comes out as a tidy DataFrame (one row per memory and measurement). The memories
are the lab's own (`lab.memory`), driven through their common interface (write, then read); which
ones can run, their labels, knobs and how each is built come from the registry
(`lab.memory.registry.runnable()`), where each memory is registered beside its class.

Choices made here (the papers fix none of them):
* Keys are unit vectors. With correlation ρ, k_i = normalise(√ρ c + √(1−ρ) z_i) for one shared
  random unit vector c and independent Gaussian z_i, so that two keys have cosine ≈ ρ.
  Values are independent Gaussian vectors of expected norm 1.
* Recall error of pair i = ‖read(k_i) − v_i‖² / ‖v_i‖² after all N writes: 0 is perfect, 1 is
  no better than reading zeros. Its *age* is N − 1 − i, the writes that came after it.
* One slider per mechanism, shared by the memories that have it: `decay` is the retention per
  write (the Hebbian α; Titans forgets with α_Titans = 1 − decay; DeltaNet and softmax have no
  decay); `momentum` is Titans' η (how long surprise lasts; 0 = off); `write_strength` is the
  DeltaNet β, and Titans' θ = β/2 (Titans' loss has no ½, so that a one-layer Titans memory
  without momentum or decay is exactly DeltaNet); softmax attention reads unit keys with
  inverse temperature `sharpness` (default √d_key: standard attention on keys of norm √d_key
  would score a key against itself √d_key) over the last `window` pairs (0 = all).
* A recall error above 1e6 (a million times the value's own size) or not finite counts as
  diverged and is reported as NaN with a `diverged` flag, not drawn as a number.
* How each memory is built from these knobs (e.g. that a one-layer Titans memory starts empty
  and a two-layer one from seeded initial weights) is written beside it, in its entry's `build`.
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from lab.memory.registry import KVStream, MemoryParams, entries, runnable

DIVERGED_ERROR = 1e6        # a relative recall error above this (or not finite) counts as diverged


def make_stream(stream: KVStream) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys (1, 1, N, d_key), unit norm, pairwise cosine ≈ ρ; values (1, 1, N, d_value)."""
    gen = torch.Generator().manual_seed(stream.seed)
    N, dk, rho = stream.n_pairs, stream.d_key, stream.correlation
    shared = torch.randn(dk, generator=gen)
    shared = shared / shared.norm()                                        # c: (d_key,)
    z = torch.randn(N, dk, generator=gen)
    z = z / z.norm(dim=-1, keepdim=True)                                   # (N, d_key)
    keys = math.sqrt(rho) * shared + math.sqrt(1 - rho) * z
    keys = keys / keys.norm(dim=-1, keepdim=True)
    values = torch.randn(N, stream.d_value, generator=gen) / math.sqrt(stream.d_value)
    return keys[None, None], values[None, None]


def check_names(names) -> list[str]:
    """The names as a list, each one a memory the explorer can run; else a ValueError that says why."""
    names, choices = list(names), runnable()
    for name in names:
        if name in choices:
            continue
        reason = next((e.not_runnable for e in entries() if e.key == name), None)
        if reason:
            raise ValueError(f"memory {name!r} cannot run on key/value pairs: {reason}")
        raise ValueError(f"unknown memory {name!r}; runnable memories are {', '.join(choices)}")
    if not names:
        raise ValueError("pick at least one memory")
    return names


@torch.no_grad()
def recall_errors(name: str, stream: KVStream, params: MemoryParams) -> torch.Tensor:
    """Write the whole stream into a fresh memory, read every key back: relative error (N,)."""
    keys, values = make_stream(stream)
    mem = runnable()[name].build(stream, params)
    mem.reset(1, 1, stream.d_key, stream.d_value)
    mem.write(keys, values)
    out = mem.read(keys)                                                   # (1, 1, N, d_value)
    err = (out - values).pow(2).sum(-1) / values.pow(2).sum(-1)
    ok = torch.isfinite(err) & (err <= DIVERGED_ERROR)
    return torch.where(ok, err, torch.full_like(err, math.nan))[0, 0]    # NaN = diverged


def recall(names, stream: KVStream, params: MemoryParams) -> pd.DataFrame:
    """Columns memory, label, pair, age, error, diverged: the forgetting curve of one memory.
    A memory whose writes blew up (e.g. Titans with θ/(1−η) too large) has error NaN and
    diverged True: the page says so instead of drawing a number."""
    rows, choices = [], runnable()
    for name in check_names(names):
        err = recall_errors(name, stream, params).tolist()
        n = len(err)
        rows += [{"memory": name, "label": choices[name].label, "pair": i, "age": n - 1 - i, "error": e,
                  "diverged": math.isnan(e)} for i, e in enumerate(err)]
    return pd.DataFrame(rows, columns=["memory", "label", "pair", "age", "error", "diverged"])


SWEEPABLE = {"n_pairs": "stream", "correlation": "stream", "d_key": "stream",
             "decay": "params", "momentum": "params", "write_strength": "params", "sharpness": "params"}


def sweep(names, stream: KVStream, params: MemoryParams, field: str, values, seeds: int = 1) -> pd.DataFrame:
    """Mean recall error as one field varies. Columns memory, label, field, value, seed, error,
    diverged (error NaN).

    field "n_pairs" at a fixed d_key is the capacity curve; "correlation", "decay", "momentum"
    show one mechanism each. A memory that ignores the field (e.g. DeltaNet and "decay") is
    left out of that sweep, so a flat line never pretends to be a measurement.
    """
    if field not in SWEEPABLE:
        raise ValueError(f"cannot sweep {field!r}; sweepable fields are {', '.join(SWEEPABLE)}")
    if not 1 <= seeds <= 20:
        raise ValueError(f"seeds = {seeds!r} is not allowed: must be between 1 and 20")
    rows, choices = [], runnable()
    for name in check_names(names):
        if SWEEPABLE[field] == "params" and field not in choices[name].knobs:
            continue
        for value in values:
            for seed in range(seeds):
                s = stream.replace(seed=stream.seed + seed)
                p = params
                if SWEEPABLE[field] == "stream":
                    s = s.replace(**{field: value})
                else:
                    p = params.replace(**{field: value})
                error = float(recall_errors(name, s, p).mean())
                rows.append({"memory": name, "label": choices[name].label, "field": field, "value": value,
                             "seed": s.seed, "error": error, "diverged": math.isnan(error)})
    return pd.DataFrame(rows, columns=["memory", "label", "field", "value", "seed", "error", "diverged"])


def key_cosines(stream: KVStream) -> float:
    """Measured mean cosine between distinct keys (to show the slider does what it says)."""
    keys = make_stream(stream)[0][0, 0]
    n = keys.shape[0]
    if n < 2:
        return float("nan")
    gram = keys @ keys.T
    return float((gram.sum() - gram.diagonal().sum()) / (n * (n - 1)))
