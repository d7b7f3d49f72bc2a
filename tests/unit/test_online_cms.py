"""Online CMS (lab.online, REFERENCE.md §3 "Online"): levels that learn while a stream is read.
Each test can fail: the update times, the update computed by hand, causality, streams apart,
snapshots, and the engine's use of it."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from lab.engine import Run, RunConfig
from lab.models import build_model
from lab.models.cms import levels
from lab.online import OnlineCMS, OnlineConfig
from lab.tasks.vocab import IGNORE

torch.set_num_threads(1)
V = 20


def toy(chunks=(4,), hidden=(8,), n_layers=1, family="transformer", seed=0):
    torch.manual_seed(seed)
    return build_model(family, preset="tiny", vocab_size=V, n_layers=n_layers,
                       cms_levels=levels(chunks, hidden)).eval()


def batch(S=2, T=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, V, (S, T), generator=g)
    targets = torch.randint(0, V, (S, T), generator=g)
    targets[:, ::3] = IGNORE                                   # some tokens are not scored
    return inputs, targets


def test_levels_change_only_at_multiples_of_their_chunk_in_tokens():
    model = toy(chunks=(3, 5, 12), hidden=(8, 8, 8), family="hope")
    reader = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.05), streams=2)
    changed = {0: [], 1: [], 2: []}                            # reads in which each level's fast weights moved
    for k in range(5):                                         # 5 reads of 7 tokens: 35 tokens per stream
        before = [{n: d.clone() for n, d in delta.items()} for delta in reader.deltas]
        reader.read(*batch(T=7, seed=k))
        for (_, level, _), old, new in zip(reader.levels, before, reader.deltas):
            if any(not torch.equal(old[n], new[n]) for n in old) and k not in changed[level]:
                changed[level].append(k)
    events = reader.drain_events()
    assert reader.tokens_read == 35
    for level, chunk in enumerate((3, 5, 12)):
        times = sorted({t for t, lvl, _ in events if lvl == level})
        assert times == list(range(chunk, 36, chunk)), (level, times)
        due_reads = sorted({(t - 1) // 7 for t in times})      # the read in which each multiple falls
        assert changed[level] == due_reads, (level, changed[level], due_reads)


def _by_hand_update(model, inputs, targets, lr):
    """−lr Σ_t (∂o_t/∂θ)ᵀ δ_t for the one CMS level of a one-block model, with δ_t = ∂ℓ_t/∂o_t from
    an autograd pass of the plain model and the Jacobian products written out for
    o = down(GELU(up(LN(x))))."""
    level = model.blocks[0].cms.levels[0]
    cache = {}
    hooks = [level.register_forward_hook(lambda m, args, out: cache.update(x=args[0], o=out))]
    logits = model(inputs)
    for h in hooks:
        h.remove()
    cache["o"].retain_grad()
    F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=IGNORE, reduction="sum").backward()
    delta = cache["o"].grad.detach()                                   # (S, T, D): ∂ℓ/∂o
    x = cache["x"].detach()
    xhat = F.layer_norm(x, x.shape[-1:], eps=level.norm.eps)           # normalised, before the affine
    h = xhat * level.norm.weight + level.norm.bias
    u = h @ level.up.weight.T + level.up.bias                          # (S, T, hidden)
    phi = torch.exp(-u ** 2 / 2) / math.sqrt(2 * math.pi)
    gelu, dgelu = u * 0.5 * (1 + torch.erf(u / math.sqrt(2))), 0.5 * (1 + torch.erf(u / math.sqrt(2))) + u * phi
    d_u = (delta @ level.down.weight) * dgelu                          # ∂ℓ/∂u
    d_h = d_u @ level.up.weight                                        # ∂ℓ/∂h
    grads = {"down.weight": torch.einsum("std,sth->sdh", delta, gelu), "down.bias": delta.sum(1),
             "up.weight": torch.einsum("sth,std->shd", d_u, h), "up.bias": d_u.sum(1),
             "norm.weight": (d_h * xhat).sum(1), "norm.bias": d_h.sum(1)}
    return {name: -lr * g for name, g in grads.items()}


def test_the_update_is_the_summed_local_error_computed_by_hand():
    model = toy(chunks=(8,))
    inputs, targets = batch(S=2, T=8)
    expected = _by_hand_update(model, inputs, targets, lr=0.1)
    reader = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.1), streams=2)
    reader.read(inputs, targets)                                       # 8 tokens: exactly one chunk
    got = reader.deltas[0]
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=1e-4, atol=1e-6)
    assert max(float(v.abs().max()) for v in got.values()) > 1e-4     # it did move


def test_a_token_after_an_update_sees_it_and_a_token_before_does_not():
    model = toy(chunks=(4,))
    inputs, targets = batch(S=2, T=8)
    with torch.no_grad():
        plain = model(inputs)
    reader = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.5), streams=2)
    logits, _ = reader.read(inputs, targets)
    torch.testing.assert_close(logits[:, :4], plain[:, :4], rtol=1e-5, atol=1e-5)   # read before the update
    assert (logits[:, 4:] - plain[:, 4:]).abs().max() > 1e-3                         # read after it
    with torch.no_grad(), reader.attached(reader.deltas):                # …with the updated level, as a re-read
        again = model(inputs)
    # the second chunk's own update came after its tokens were read: only the first one shows
    assert not torch.allclose(again[:, 4:], logits[:, 4:])
    changed = [t for t, _, _ in reader.drain_events()]
    assert changed == [4, 8]


def test_a_change_in_the_future_of_a_stream_changes_nothing_before_it():
    model = toy(chunks=(3,), n_layers=2)
    inputs, targets = batch(S=1, T=9)
    first, _ = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.5), 1).read(inputs, targets)
    inputs2, targets2 = inputs.clone(), targets.clone()
    inputs2[:, 6:] = (inputs2[:, 6:] + 1) % V
    targets2[:, 6:] = (targets2[:, 6:] + 1) % V
    second, _ = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.5), 1).read(inputs2, targets2)
    torch.testing.assert_close(first[:, :6], second[:, :6], rtol=0, atol=0)
    assert not torch.equal(first[:, 6:], second[:, 6:])


def test_streams_learn_apart_and_each_is_evaluated_with_its_own_weights():
    model = toy(chunks=(4,))
    inputs, targets = batch(S=2, T=8)
    inputs[1], targets[1] = inputs[0], targets[0]
    inputs[1, 2] = (inputs[1, 2] + 3) % V                              # stream 1 reads something else
    reader = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.3), streams=2)
    reader.read(inputs, targets)
    d = reader.deltas[0]["up.weight"]
    assert not torch.allclose(d[0], d[1])
    probe = inputs[:1].expand(3, -1)
    with torch.no_grad():
        with reader.stream(0, 3):
            zero = model(probe)
        with reader.stream(1, 3):
            one = model(probe)
    assert not torch.allclose(zero, one)
    single = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.3), streams=1)
    single.read(inputs[:1], targets[:1])
    torch.testing.assert_close(single.deltas[0]["up.weight"][0], d[0], rtol=1e-5, atol=1e-7)


def test_a_zero_rate_reads_like_the_plain_model_and_clipping_bounds_the_update():
    model = toy(chunks=(4,), n_layers=2)
    inputs, targets = batch(S=2, T=8)
    with torch.no_grad():
        plain = model(inputs)
    logits, _ = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.0), 2).read(inputs, targets)
    torch.testing.assert_close(logits, plain, rtol=1e-5, atol=1e-5)
    clipped = OnlineCMS(model, OnlineConfig(enabled=True, lr=5.0, max_update=0.01), 2)
    clipped.read(inputs, targets)
    assert all(norm <= 0.01 * math.sqrt(2) + 1e-6 for _, _, norm in clipped.drain_events())


def test_the_engine_reads_with_online_levels_and_snapshots_them():
    config = RunConfig(model="hope", preset="tiny", trainable="none", eval_every=3, eval_size=8,
                       stream={"steps_per_task": 6, "n_tasks": 2, "batch_size": 2}, cms_chunk_tokens=(9, 18, 36),
                       online={"enabled": True, "lr": 0.05})
    run = Run(config)
    frozen = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.step(4)
    snap = run.snapshot()
    run.step(8)
    expected = run.records().copy()
    assert all(torch.equal(v, frozen[k]) for k, v in run.model.state_dict().items())   # the backbone never moves
    online = expected[expected.metric == "online_update_norm"]
    assert set(online.level) == {0, 1, 2} and (online.tokens % 18 == 0).all()         # 2 streams × 9 tokens
    run.restore(snap)
    run.step(8)
    pd.testing.assert_frame_equal(run.records(), expected, check_exact=True)
    frozen_run = Run(config.replace(online={"enabled": False}))
    frozen_run.step(12)
    learned = expected[expected.metric == "accuracy"].value.to_numpy()
    stayed = frozen_run.records()
    assert not (stayed[stayed.metric == "accuracy"].value.to_numpy() == learned).all()
    assert not (stayed.metric == "online_update_norm").any()


def test_bad_reader_input_is_refused_with_a_message():
    model = toy()
    with pytest.raises(ValueError, match="at least one stream"):
        OnlineCMS(model, OnlineConfig(enabled=True), streams=0)
    with pytest.raises(ValueError, match="2 streams"):
        OnlineCMS(model, OnlineConfig(enabled=True), streams=2).read(*batch(S=3))
    with pytest.raises(ValueError, match="one stream"):
        OnlineCMS(model, OnlineConfig(enabled=True), streams=2).fold_into_model()


@pytest.mark.parametrize("family", ["hope", "titans"])
def test_the_sequence_memory_carries_its_state_from_one_sequence_to_the_next(family):
    model = toy(chunks=(100,), family=family, n_layers=2)         # no level update inside these reads
    first, second = batch(S=2, T=8, seed=1), batch(S=2, T=8, seed=2)
    carry = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.0, carry_memory=True), streams=2)
    fresh = OnlineCMS(model, OnlineConfig(enabled=True, lr=0.0), streams=2)
    carry.read(*first)
    fresh.read(*first)
    states = carry.memory_states
    assert states is not None and len(states) == len(model.stream_memories()) == 2
    with torch.no_grad():                                      # the carried state is the one the first read left
        model(first[0])
    for memory, state in zip(model.stream_memories(), states):
        assert all(torch.equal(a, b) for a, b in zip(state.weights, memory.last_state().weights))
    with torch.no_grad(), carry.stream(1, 3):                   # stream 1's instance answers from its own memory
        one = model(second[0][1:2].expand(3, -1))
    with_memory, _ = carry.read(*second)
    without, _ = fresh.read(*second)
    assert not torch.allclose(with_memory, without)
    with torch.no_grad():
        plain = model(second[0])                                # a fresh memory: what the reader without carry saw
    torch.testing.assert_close(without, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(one[0], with_memory[1], rtol=1e-4, atol=1e-5)
