"""The one training loop (lab.engine.Run): determinism, snapshots, divergence, replay, records."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from lab.config import ConfigError
from lab.engine import ReplayBuffer, Run, RunConfig
from lab.models import MODELS, build_model
from lab.records import COLUMNS
from lab.tasks import masked_loss
from lab.tasks.stream import StreamConfig, build_stream

torch.set_num_threads(1)
CPU = torch.device("cpu")
SMALL = dict(n_tasks=3, steps_per_task=10, batch_size=2, words=2, lexicon_size=6, target_words=6)


def config(model="transformer", stream=None, **kw):
    kw.setdefault("eval_every", 5)
    kw.setdefault("eval_size", 4)
    return RunConfig(model=model, preset="tiny", stream=StreamConfig(**(stream or SMALL)), **kw)


def params(run):
    return {k: v.detach().clone() for k, v in run.model.state_dict().items()}


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --- determinism --------------------------------------------------------------------------------

@pytest.mark.parametrize("model", list(MODELS))
def test_same_config_same_records(model):
    cfg = config(model)
    a, b = Run(cfg, CPU).step(30), Run(cfg, CPU).step(30)
    assert a.step_count == b.step_count == 30 and a.done
    pd.testing.assert_frame_equal(a.records(), b.records(), check_exact=True)
    assert_same_params(params(a), params(b))
    assert a.accuracy_matrix() == b.accuracy_matrix()


def test_a_different_seed_gives_different_records():
    a = Run(config(seed=1), CPU).step(10).records()
    b = Run(config(seed=2), CPU).step(10).records()
    assert a.shape == b.shape
    assert not a["value"].equals(b["value"])


# --- snapshot and restore -----------------------------------------------------------------------

def _snapshot_round_trip(cfg, first=10, then=10):
    run = Run(cfg, CPU)
    run.step(first)
    snap = run.snapshot()
    n_rows = len(run.records())
    run.step(then)
    records_a, params_a, matrix_a = run.records().copy(), params(run), run.accuracy_matrix()
    run.restore(snap)
    assert run.step_count == first and len(run.records()) == n_rows
    run.step(then)
    pd.testing.assert_frame_equal(run.records(), records_a, check_exact=True)
    assert_same_params(params(run), params_a)
    assert run.accuracy_matrix() == matrix_a
    return run


@pytest.mark.parametrize("model", ["transformer", "titans"])
def test_snapshot_restore_continues_exactly(model):
    _snapshot_round_trip(config(model))


def test_snapshot_restore_with_replay_and_sgd():
    _snapshot_round_trip(config("transformer", replay=5, optimizer="sgd", lr=0.1))


def test_snapshot_restore_hope_at_a_common_chunk_boundary():
    tps = build_stream(StreamConfig(**SMALL)).tokens_per_step
    _snapshot_round_trip(config("hope", cms_chunk_tokens=(tps, 2 * tps, 5 * tps)))


def test_snapshot_restore_hope_inside_a_slow_chunk():
    """The gradients a slow CMS level has accumulated belong to the snapshot."""
    tps = build_stream(StreamConfig(**SMALL)).tokens_per_step
    _snapshot_round_trip(config("hope", cms_chunk_tokens=(tps, 4 * tps)))       # 10 is not a multiple of 4


def test_snapshot_is_a_copy():
    run = Run(config(), CPU)
    run.step(3)
    snap = run.snapshot()
    before = {k: v.clone() for k, v in snap["model"].items()}
    run.step(3)
    for k, v in snap["model"].items():
        assert torch.equal(v, before[k])
    run.restore(snap)
    run.restore(snap)                     # restoring twice from the same snapshot is fine
    assert run.step_count == 3


# --- divergence ---------------------------------------------------------------------------------

def _patch_forward(run, transform):
    """Make training forwards pass their logits through `transform` once `state['on']` is set."""
    state = {"on": False, "calls": 0}
    original = run.model.forward

    def forward(tokens):
        out = original(tokens)
        if run.model.training:
            state["calls"] += 1
            if state["on"]:
                return transform(out)
        return out

    run.model.forward = forward
    return state


@pytest.mark.parametrize("transform,reason", [
    (lambda out: out * float("nan"), "loss is not finite"),
    (lambda out: out * float("inf"), "loss is not finite"),
    (lambda out: out * 1e4, "rose above"),
    # a finite loss whose backward is not: as HOPE's overflow at unscored (padded) positions
    (lambda out: out + (out.sum() * 0).sqrt(), "gradient is not finite while the loss is"),
])
def test_divergence_stops_and_keeps_last_good_parameters(transform, reason):
    run = Run(config("hope"), CPU)
    events = []
    run.add_callback("on_diverged", lambda r: events.append(r.step_count))
    state = _patch_forward(run, transform)
    run.step(5)
    good, good_records = params(run), run.records().copy()
    assert run.diverged is None
    state["on"] = True
    run.step(3)
    assert run.diverged is not None and run.step_count == 5
    msg = run.diverged.message()
    assert "step 6" in msg and reason in msg
    assert run.diverged.step == 6
    assert_same_params(params(run), good)
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    assert all(p.grad is None for p in run.model.parameters())
    records = run.records()
    pd.testing.assert_frame_equal(records.iloc[:len(good_records)].reset_index(drop=True), good_records,
                                  check_exact=True)
    extra = records.iloc[len(good_records):]
    assert list(extra.metric) == ["diverged"] and list(extra.step) == [5]
    assert events == [5]
    calls = state["calls"]
    run.step(4)
    assert run.step_count == 5 and state["calls"] == calls and len(run.records()) == len(records)
    assert_same_params(params(run), good)


def test_non_finite_gradient_stops_before_the_update():
    run = Run(config("transformer", optimizer="sgd", lr=0.1), CPU)
    run.step(4)
    good = params(run)
    run.model.tok_emb.weight.register_hook(lambda g: g * float("nan"))
    run.step(2)
    assert run.diverged is not None and "gradient" in run.diverged.reason
    assert run.step_count == 4
    assert_same_params(params(run), good)


def test_restore_after_divergence_resumes():
    run = Run(config(), CPU)
    run.step(3)
    snap = run.snapshot()
    state = _patch_forward(run, lambda out: out * float("nan"))
    state["on"] = True
    run.step(1)
    assert run.diverged
    state["on"] = False
    run.restore(snap)
    assert run.diverged is None
    run.step(2)
    assert run.step_count == 5 and run.diverged is None


# --- replay -------------------------------------------------------------------------------------

def test_replay_mixes_earlier_tasks_within_capacity():
    stream = dict(n_tasks=2, steps_per_task=4, batch_size=4, words=2, lexicon_size=6, target_words=6)
    cap = 6
    run = Run(config(stream=stream, replay=cap, replay_fraction=0.5, eval_every=100), CPU)
    seen_inputs = []
    original = run.model.forward

    def forward(tokens):
        if run.model.training:
            seen_inputs.append(tokens.clone())
        return original(tokens)

    run.model.forward = forward
    sizes = []
    run.add_callback("on_step_end", lambda r: sizes.append(r._replay.inputs.shape[0]))
    run.step(8)
    assert len(seen_inputs) == 8
    assert sizes == [min(cap, 4 * s) for s in range(1, 9)]
    assert all(s <= cap for s in sizes)
    first_task_rows = {tuple(row.tolist()) for s in range(4) for row in run.stream.batch(s)[0]}
    for s in range(4):                      # first task: nothing earlier to replay
        assert torch.equal(seen_inputs[s], run.stream.batch(s)[0])
    replayed = 0
    for s in range(4, 8):
        fresh = run.stream.batch(s)[0]
        used = seen_inputs[s]
        assert torch.equal(used[:2], fresh[:2])                 # round(0.5 · 4) = 2 rows replaced
        for row in used[2:]:
            assert tuple(row.tolist()) in first_task_rows
            replayed += 1
    assert replayed == 8
    assert run._replay.seen == 32 and run._replay.tasks.shape[0] == cap


def test_no_replay_means_plain_batches():
    run = Run(config(stream=dict(SMALL, n_tasks=2, steps_per_task=3), eval_every=100), CPU)
    seen = []
    original = run.model.forward
    run.model.forward = lambda t: (seen.append(t.clone()) if run.model.training else None, original(t))[1]
    run.step(6)
    for s in range(6):
        assert torch.equal(seen[s], run.stream.batch(s)[0])


def _rows(n, start, T=3):
    x = torch.arange(start, start + n * T).view(n, T)
    return x, -x


def test_replay_buffer_capacity_and_mixing():
    buf = ReplayBuffer(capacity=5, seed=0)
    x, y = _rows(4, 0)
    assert buf.mix(x, y, task=0, fraction=0.5)[0] is x          # empty buffer: unchanged
    buf.add(x, y, task=0)
    assert buf.inputs.shape == (4, 3) and buf.tasks.tolist() == [0] * 4
    x2, y2 = _rows(4, 100)
    out_x, out_y = buf.mix(x2, y2, task=0, fraction=0.5)           # only the current task stored
    assert torch.equal(out_x, x2) and torch.equal(out_y, y2)
    for i in range(20):
        buf.add(*_rows(3, 1000 * (i + 1)), task=1 + i % 2)
        assert buf.inputs.shape[0] <= 5 and buf.targets.shape[0] == buf.tasks.shape[0] == buf.inputs.shape[0]
    assert buf.seen == 64 and buf.inputs.shape[0] == 5
    assert torch.equal(buf.targets, -buf.inputs)                  # rows stay paired with their targets
    for row, task in zip(buf.inputs, buf.tasks):                  # ... and with their task
        block = int(row[0]) // 1000
        assert int(task) == (0 if block == 0 else 1 + (block - 1) % 2)
    x3, y3 = _rows(4, 5000)
    keep = x3.clone()
    out_x, out_y = buf.mix(x3, y3, task=1, fraction=0.5)
    assert torch.equal(x3, keep)                                  # the input batch is not modified
    stored = {tuple(r.tolist()): int(t) for r, t in zip(buf.inputs, buf.tasks)}
    n = min(2, sum(1 for t in stored.values() if t != 1))         # round(0.5 · 4) = 2, if there are 2
    assert n > 0
    assert torch.equal(out_x[:4 - n], x3[:4 - n])
    for row, target in zip(out_x[4 - n:], out_y[4 - n:]):
        assert stored[tuple(row.tolist())] != 1
        assert torch.equal(target, -row)
    out_x, _ = buf.mix(x3, y3, task=1, fraction=0.0)
    assert torch.equal(out_x, x3)


def test_replay_buffer_state_round_trip():
    a = ReplayBuffer(capacity=3, seed=4)
    for i in range(5):
        a.add(*_rows(2, 10 * i), task=i % 2)
    b = ReplayBuffer(capacity=3, seed=99)
    b.load(a.state())
    x, y = _rows(4, 500)
    assert torch.equal(a.mix(x, y, 0, 0.5)[0], b.mix(x, y, 0, 0.5)[0])


# --- records, evaluation, phases ------------------------------------------------------------------

def test_records_layout_and_evaluation_schedule():
    run = Run(config(eval_every=4), CPU)
    tps = run.stream.tokens_per_step
    ends, evals = [], []
    run.add_callback("on_phase_end", lambda r: ends.append(r.step_count))
    run.add_callback("on_eval_end", lambda r: evals.append(r.step_count))
    run.step(100)                                  # more than the stream has
    assert run.done and run.step_count == 30
    run.step(5)
    assert run.step_count == 30
    rows = run.records()
    assert list(rows.columns) == COLUMNS
    assert (rows.tokens == rows.step * tps).all()
    assert set(rows.model) == {"transformer"} and set(rows.phase) == {"active"}
    assert sorted(rows[rows.metric == "loss"].step) == list(range(1, 31))
    expected_eval_steps = sorted({0} | {s for s in range(1, 31) if s % 4 == 0} | {10, 20, 30})
    assert evals == expected_eval_steps[1:]        # the step-0 evaluation ran before the callback was added
    assert ends == [10, 20, 30]
    acc = rows[rows.metric == "accuracy"]
    assert sorted(set(acc.step)) == expected_eval_steps
    assert set(acc.task) == set(run.stream.task_names)
    for metric in ("accuracy", "seq_accuracy"):
        v = rows[rows.metric == metric].value
        assert ((v >= 0) & (v <= 1)).all()
    matrix = run.accuracy_matrix()
    assert len(matrix) == 4 and all(len(r) == 3 for r in matrix)
    for i, boundary in enumerate([0, 10, 20, 30]):
        at = acc[acc.step == boundary]
        for j, name in enumerate(run.stream.task_names):
            vals = at[at.task == name].value.tolist()
            assert matrix[i][j] == vals[-1]


def test_loss_row_is_the_loss_before_the_update():
    run = Run(config(eval_every=100), CPU)
    for _ in range(3):
        shadow = build_model(run.model.config)
        shadow.load_state_dict(run.model.state_dict())
        inputs, targets = run.stream.batch(run.step_count)
        expected = float(masked_loss(shadow(inputs), targets).detach())
        run.step(1)
        got = run.records().query("metric == 'loss'").value.iloc[-1]
        assert got == pytest.approx(expected, rel=1e-5)
    assert run.tokens_seen == 3 * run.stream.tokens_per_step


def test_training_reduces_the_loss():
    stream = dict(n_tasks=1, steps_per_task=40, batch_size=8, words=2, lexicon_size=4, target_words=4)
    run = Run(config(stream=stream, lr=1e-2, eval_every=40), CPU)
    start = run.records().query("metric == 'eval_loss'").value.iloc[0]
    run.step(40)
    end = run.records().query("metric == 'eval_loss'").value.iloc[-1]
    assert end < start - 0.2


def test_drift_measures_change_since_the_phase_start():
    run = Run(config(eval_every=5), CPU)
    rows = run.records()
    assert rows[(rows.metric == "drift")].value.tolist() == [0.0]
    run.step(5)
    assert run.level_drift()[0] > 0
    run.step(5)                                      # end of phase 1: the reference moves
    assert run.level_drift()[0] == 0.0
    run.step(1)
    assert run.level_drift()[0] > 0


def test_callbacks_and_bad_events():
    run = Run(config(), CPU)
    calls = []
    run.add_callback("on_step_end", lambda r: calls.append(r.step_count))
    run.step(3)
    assert calls == [1, 2, 3]
    with pytest.raises(ValueError, match="on_step_end"):
        run.add_callback("on_tick", lambda r: None)


def test_run_rejects_chunks_longer_than_the_stream_and_bad_level_scales():
    total = build_stream(StreamConfig(**SMALL)).tokens_per_step * 30
    with pytest.raises(ConfigError) as info:
        Run(config("hope", cms_chunk_tokens=(1, total + 1)), CPU)
    assert info.value.field == "cms_chunk_tokens" and str(total) in str(info.value)
    with pytest.raises(ConfigError) as info:
        Run(config("hope", level_lr_scale=(1.0, 1.0)), CPU)        # hope has 3 levels
    assert info.value.field == "level_lr_scale"
    run = Run(config("transformer", cms_chunk_tokens=(1, total)), CPU)
    assert run.model.config.n_levels == 2 and run.schedule.chunk_steps == (1, 30)


def test_learning_rates_per_optimizer():
    run = Run(config("hope"), CPU)
    assert run.optimizers[None].param_groups[0]["lr"] == RunConfig().lr
    run = Run(config("hope", lr=0.02, level_lr_scale=(1.0, 0.5, 0.0)), CPU)
    got = {level: opt.param_groups[0]["lr"] for level, opt in run.optimizers.items()}
    assert got == {None: 0.02, 0: 0.02, 1: 0.01, 2: 0.0}


def test_steps_per_sec_is_measured_but_not_recorded():
    run = Run(config(), CPU)
    assert math.isnan(run.steps_per_sec)
    run.step(2)
    assert run.steps_per_sec > 0
    assert not any("sec" in m or "time" in m for m in set(run.records().metric))
