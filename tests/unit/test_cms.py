"""Continuum Memory System (REFERENCE.md §3): the levels, the schedule, and the update rule
θ^(ℓ)_{i+1} = θ^(ℓ)_i − η Σ_{chunk} ∇ℓ(θ_t; x_t) checked through the engine."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lab.engine import Run, RunConfig
from lab.models import build_model
from lab.models.cms import ContinuumMemory, LevelSchedule, level_of_parameter
from lab.tasks import masked_loss
from lab.tasks.stream import StreamConfig, build_stream
from lab.models.cms import levels

torch.set_num_threads(1)


# --- LevelSchedule ----------------------------------------------------------------------------

def test_from_tokens_rounds_to_steps():
    # 128/36 = 3.56 → 4, 512/36 = 14.2 → 14, 2048/36 = 56.9 → 57
    assert LevelSchedule.from_tokens((128, 512, 2048), 36).chunk_steps == (4, 14, 57)
    # 100/36 = 2.78 → 3, 80/36 = 2.22 → 2, exact multiples stay exact
    assert LevelSchedule.from_tokens((100, 80, 72, 36), 36).chunk_steps == (3, 2, 2, 1)


def test_from_tokens_is_at_least_one_step():
    # 1/36 and 10/36 round to 0: a level still updates every step
    assert LevelSchedule.from_tokens((1, 10, 17), 36).chunk_steps == (1, 1, 1)
    assert LevelSchedule.from_tokens((5,), 1).chunk_steps == (5,)


def test_schedule_rejects_bad_values():
    with pytest.raises(ValueError):
        LevelSchedule.from_tokens((8,), 0)
    with pytest.raises(ValueError):
        LevelSchedule((1, 0))
    with pytest.raises(ValueError):
        LevelSchedule(())
    with pytest.raises(ValueError):
        LevelSchedule((1, 2)).due(0)


def test_due_at_multiples_of_each_chunk():
    s = LevelSchedule((1, 2, 4))
    assert s.due(1) == [0]
    assert s.due(2) == [0, 1]
    assert s.due(3) == [0]
    assert s.due(4) == [0, 1, 2]
    assert s.due(6) == [0, 1]
    assert s.due(8) == [0, 1, 2]
    s = LevelSchedule((3, 5))
    assert [i for i in range(1, 31) if 0 in s.due(i)] == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30]
    assert [i for i in range(1, 31) if 1 in s.due(i)] == [5, 10, 15, 20, 25, 30]
    assert s.due(7) == []
    for i in range(1, 31):
        assert [lvl for lvl in range(2) if s.is_due(lvl, i)] == s.due(i)


def test_describe_in_tokens():
    rows = LevelSchedule((1, 4)).describe(tokens_per_step=10)
    assert rows == [{"level": 0, "chunk_steps": 1, "chunk_tokens": 10},
                    {"level": 1, "chunk_steps": 4, "chunk_tokens": 40}]


# --- the module ---------------------------------------------------------------------------------

def _level_by_hand(level, x):
    h = F.layer_norm(x, x.shape[-1:], level.norm.weight, level.norm.bias)
    h = h @ level.up.weight.T + level.up.bias
    h = 0.5 * h * (1 + torch.erf(h / 2 ** 0.5))                     # exact GELU
    return h @ level.down.weight.T + level.down.bias


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def test_sequential_chain_by_hand():
    cms = ContinuumMemory(6, (5, 7, 3))
    _randomise(cms, 0)
    x = torch.randn(2, 4, 6)
    expected = x
    for level in cms.levels:
        expected = expected + _level_by_hand(level, expected)
    torch.testing.assert_close(cms(x), expected)


def test_independent_sum_by_hand():
    cms = ContinuumMemory(6, (5, 7), variant="independent")
    _randomise(cms, 1)
    x = torch.randn(2, 4, 6)
    w = torch.exp(cms.mix_logits) / torch.exp(cms.mix_logits).sum()
    expected = x + w[0] * _level_by_hand(cms.levels[0], x) + w[1] * _level_by_hand(cms.levels[1], x)
    torch.testing.assert_close(cms(x), expected)
    # levels see x, not each other's output: not the sequential chain
    seq = ContinuumMemory(6, (5, 7))
    seq.levels.load_state_dict(cms.levels.state_dict())
    assert (seq(x) - cms(x)).abs().max() > 1e-4


def test_cms_rejects_bad_arguments():
    with pytest.raises(ValueError):
        ContinuumMemory(4, (8,), variant="nested")
    with pytest.raises(ValueError):
        ContinuumMemory(4, ())


def test_level_of_parameter():
    assert level_of_parameter("blocks.0.cms.levels.2.up.weight") == 2
    assert level_of_parameter("blocks.11.cms.levels.0.norm.bias") == 0
    assert level_of_parameter("blocks.0.cms.mix_logits") is None
    assert level_of_parameter("blocks.0.attn.qkv.weight") is None
    assert level_of_parameter("tok_emb.weight") is None


@pytest.mark.parametrize("name", ["transformer", "hope"])
def test_parameter_levels_partition_the_model(name):
    model = build_model(name, preset="tiny", vocab_size=20, cms_levels=levels((1, 2, 4), (8, 8, 8)),
                        cms_variant="independent")
    groups = model.parameter_levels()
    assert set(groups) == {None, 0, 1, 2}
    ids = [id(p) for named in groups.values() for _, p in named]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    for level in (0, 1, 2):
        names = [n for n, _ in groups[level]]
        assert names and all(f"cms.levels.{level}." in n for n in names)
        # per block: norm, up, down (weight and bias each)
        assert len(names) == 6 * model.config.n_layers
    assert any(n.endswith("mix_logits") for n, _ in groups[None])
    assert len(model.cms_modules()) == model.config.n_layers


# --- the update rule through the engine ---------------------------------------------------------

def assert_update(after, before, expected, what):
    """after − before == expected up to float32 rounding of the parameters themselves."""
    err = ((after - before) - expected).abs()
    tol = 1e-3 * expected.abs() + 4 * torch.finfo(torch.float32).eps * (after.abs() + before.abs()) + 1e-10
    assert (err <= tol).all(), f"{what}: worst error {float((err - tol).max()):.3g} above tolerance"


STREAM = dict(n_tasks=2, steps_per_task=4, batch_size=2, words=2, lexicon_size=6, target_words=6)


def _cms_run(scales=()):
    stream_cfg = StreamConfig(**STREAM)
    tps = build_stream(stream_cfg).tokens_per_step
    cfg = RunConfig(model="hope", preset="tiny", stream=stream_cfg, optimizer="sgd", lr=0.05, grad_clip=0.0,
                    cms_chunk_tokens=(tps, 2 * tps + 1, 4 * tps - 1), level_lr_scale=scales,
                    eval_every=1000, eval_size=4, seed=3)
    return Run(cfg, device=torch.device("cpu"))


@pytest.mark.parametrize("scales", [(), (1.0, 0.5, 2.0)])
def test_levels_step_only_at_their_chunks_by_the_summed_gradient(scales):
    run = _cms_run(scales)
    assert run.schedule.chunk_steps == (1, 2, 4)
    lr = run.config.lr
    factor = {None: 1.0, **{lvl: (scales[lvl] if scales else 1.0) for lvl in range(3)}}
    named = {lvl: list(ps) for lvl, ps in run.model.parameter_levels().items()}
    assert all(named[lvl] for lvl in (None, 0, 1, 2))
    pending = {lvl: [torch.zeros_like(p) for _, p in named[lvl]] for lvl in named}
    last = {}
    checked_accumulation = 0
    for step in range(1, 9):
        # replay this step's batch on a copy with the same parameters: θ_t and ∇ℓ(θ_t; x_t)
        shadow = build_model(run.model.config)
        shadow.load_state_dict(run.model.state_dict())
        shadow.train()
        inputs, targets = run.stream.batch(run.step_count)
        loss = masked_loss(shadow(inputs), targets)
        shadow_params = dict(shadow.named_parameters())
        grads = torch.autograd.grad(loss, [shadow_params[n] for lvl in named for n, _ in named[lvl]])
        it = iter(grads)
        for lvl in named:
            last[lvl] = []
            for i in range(len(named[lvl])):
                g = next(it)
                pending[lvl][i] = pending[lvl][i] + g
                last[lvl].append(g)
        before = {lvl: [p.detach().clone() for _, p in named[lvl]] for lvl in named}

        run.step(1)
        assert run.step_count == step and run.diverged is None

        for lvl, chunk in [(None, 1), (0, 1), (1, 2), (2, 4)]:
            after = [p.detach() for _, p in named[lvl]]
            if step % chunk:
                for (n, _), a, b in zip(named[lvl], after, before[lvl]):
                    assert torch.equal(a, b), f"level {lvl} parameter {n} changed at step {step}"
                continue
            for (n, _), a, b, acc, g in zip(named[lvl], after, before[lvl], pending[lvl], last[lvl]):
                expected = -lr * factor[lvl] * acc
                assert_update(a, b, expected, f"{n} at step {step}")
                if chunk > 1 and acc.abs().max() > 1e-4:
                    # the plain last-step gradient would not do: the update really is the chunk's sum
                    assert (expected - (-lr * factor[lvl] * g)).abs().max() > 1e-6
                    checked_accumulation += 1
            pending[lvl] = [torch.zeros_like(x) for x in pending[lvl]]
    assert checked_accumulation > 0

    rows = run.records()
    for lvl, chunk in [(0, 1), (1, 2), (2, 4)]:
        steps = sorted(rows[(rows.metric == "update_norm") & (rows.level == lvl)].step)
        assert steps == [s for s in range(1, 9) if s % chunk == 0]
    assert sorted(rows[rows.metric == "loss"].step) == list(range(1, 9))


def test_a_level_with_zero_learning_rate_never_moves():
    run = _cms_run((1.0, 0.0, 1.0))
    frozen = [p.detach().clone() for _, p in run.model.parameter_levels()[1]]
    moving = [p.detach().clone() for _, p in run.model.parameter_levels()[0]]
    run.step(4)
    for (_, p), f in zip(run.model.parameter_levels()[1], frozen):
        assert torch.equal(p.detach(), f)
    assert any(not torch.equal(p.detach(), m) for (_, p), m in zip(run.model.parameter_levels()[0], moving))


def test_default_hope_schedule_from_the_seed_example():
    model = build_model("hope", vocab_size=30)
    assert model.config.cms_chunk_tokens == (128, 512, 2048)
    assert model.config.n_levels == 3
