"""Probes: read the hook points of a model on one input and return tidy DataFrames.

The model code knows nothing of these: each probe attaches to named hook points through
`lab.hooks.capture`, runs one forward pass without gradients, and lays the tensors out as rows
for the figure builders in `lab.viz`.

Hook point names used here (module paths; see the README for the full list):
    blocks.{i}.cms.levels.{l}.hook_hidden / .hook_out              CMS level activations and contributions
    blocks.{i}.memory.hook_surprise, blocks.{i}.hook_{alpha,eta,theta}   Titans memory and gates
    blocks.{i}.titans.memory.hook_{surprise,eta,alpha}             HOPE's self-modifying memory
    blocks.{i}.attn.hook_pattern                                   Transformer attention
"""
from __future__ import annotations

import re

import pandas as pd
import torch

from lab.hooks import capture, hook_points


def _tokens_text(decode, tokens: torch.Tensor) -> list[str]:
    return [decode([int(t)]) for t in tokens[0]]


@torch.no_grad()
def _capture(model, tokens, predicate):
    was_training = model.training
    model.eval()
    try:
        with capture(model, predicate) as cache:
            model(tokens)
    finally:
        model.train(was_training)
    return cache


LEVEL_RE = re.compile(r"blocks\.(\d+)\.cms\.levels\.(\d+)\.hook_(hidden|out)$")


def level_activations(model, tokens: torch.Tensor, decode=str, top_units: int = 12) -> pd.DataFrame:
    """Activations of each CMS level on one sequence (tokens: (1, T)): the `top_units` most
    active hidden units (by mean |activation|). Columns: layer, level, position, token, unit, activation."""
    cache = _capture(model, tokens, lambda n: LEVEL_RE.match(n) is not None and n.endswith("hidden"))
    words = _tokens_text(decode, tokens)
    rows = []
    for name, act in cache.items():
        layer, level, _ = LEVEL_RE.match(name).groups()
        a = act[0]                                                  # (T, hidden)
        units = a.abs().mean(0).topk(min(top_units, a.shape[1])).indices.sort().values
        for pos in range(a.shape[0]):
            for u in units.tolist():
                rows.append((int(layer), int(level), pos, words[pos], u, float(a[pos, u])))
    return pd.DataFrame(rows, columns=["layer", "level", "position", "token", "unit", "activation"])


def level_contributions(model, tokens: torch.Tensor, decode=str) -> pd.DataFrame:
    """‖what level l adds to the residual stream‖ per position, and its share among the levels
    of its block. Columns: layer, level, position, token, norm, share."""
    cache = _capture(model, tokens, lambda n: LEVEL_RE.match(n) is not None and n.endswith("out"))
    words = _tokens_text(decode, tokens)
    rows = []
    for name, out in cache.items():
        layer, level, _ = LEVEL_RE.match(name).groups()
        norms = out[0].norm(dim=-1)                                 # (T,)
        for pos, value in enumerate(norms.tolist()):
            rows.append((int(layer), int(level), pos, words[pos], value))
    frame = pd.DataFrame(rows, columns=["layer", "level", "position", "token", "norm"])
    total = frame.groupby(["layer", "position"])["norm"].transform("sum")
    frame["share"] = frame["norm"] / total.where(total > 0, 1.0)
    return frame


MEMORY_RE = re.compile(r"blocks\.(\d+)\.(?:titans\.)?(?:memory\.)?hook_(surprise|alpha|eta|theta)$")


def memory_traces(model, tokens: torch.Tensor, decode=str) -> pd.DataFrame:
    """Surprise (‖∇ℓ‖) and gates per head and token for Titans and HOPE memories.
    Columns: layer, head, position, token, metric, value. Empty for a Transformer."""
    names = [n for n in hook_points(model) if MEMORY_RE.match(n)]
    if not names:
        return pd.DataFrame(columns=["layer", "head", "position", "token", "metric", "value"])
    cache = _capture(model, tokens, names)
    words = _tokens_text(decode, tokens)
    rows = []
    for name, value in cache.items():
        layer, metric = MEMORY_RE.match(name).groups()
        v = value[0]                                                # (H, T') — T' may include persistent tokens
        offset = v.shape[-1] - len(words)
        for head in range(v.shape[0]):
            for pos in range(len(words)):
                rows.append((int(layer), head, pos, words[pos], metric, float(v[head, pos + offset])))
    return pd.DataFrame(rows, columns=["layer", "head", "position", "token", "metric", "value"])


PATTERN_RE = re.compile(r"blocks\.(\d+)\.attn\.hook_pattern$")


def attention_maps(model, tokens: torch.Tensor, decode=str) -> pd.DataFrame:
    """Attention weights per layer and head. Columns: layer, head, query, key, query_token,
    key_token, weight. Keys beyond the sequence (persistent tokens) are labelled '<p{i}>'."""
    names = [n for n in hook_points(model) if PATTERN_RE.match(n)]
    if not names:
        return pd.DataFrame(columns=["layer", "head", "query", "key", "query_token", "key_token", "weight"])
    cache = _capture(model, tokens, names)
    words = _tokens_text(decode, tokens)
    rows = []
    for name, pattern in cache.items():
        layer = int(PATTERN_RE.match(name).group(1))
        p = pattern[0]                                              # (H, T, S), S ≥ T
        extra = p.shape[-1] - p.shape[-2]
        key_words = [f"<p{i}>" for i in range(extra)] + words
        q_offset = p.shape[-2] - len(words)
        for head in range(p.shape[0]):
            for qi in range(len(words)):
                for ki in range(p.shape[-1]):
                    rows.append((layer, head, qi, ki, words[qi], key_words[ki] if ki < len(key_words) else str(ki),
                                 float(p[head, qi + q_offset, ki])))
    return pd.DataFrame(rows, columns=["layer", "head", "query", "key", "query_token", "key_token", "weight"])
