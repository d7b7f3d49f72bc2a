"""Attributions (lab.attribution, issue 14): completeness on every family within captum's delta, a
zeroed level gets nothing, swapped levels swap, the maps read the accuracy matrix's held-out sets,
the sleep tracker keeps the right models, the CLI writes its JSON."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from lab.attribution import (N_STEPS, AttributionError, SleepAttributions, attribute_example, attribution_map,
                             checkpoints, compare_run, component_groups, level_trajectory, rank_agreement)
from lab.attribution.figures import components_figure, flow_figure, map_pair_figure, trajectory_figure
from lab.engine import Run, RunConfig
from lab.knowledge import knowledge_matrix
from lab.models import build_model
from lab.sessions.sleep import SleepSession, SleepSettings
from lab.tasks import PAD, StreamConfig, build_stream


RUNS: dict[tuple, Run] = {}


@pytest.fixture(autouse=True, scope="module")
def eager():
    """The memories' chunk bodies eager (lab.memory.compiled): these tests must not wait for a compiler."""
    from lab.memory.compiled import set_compile

    set_compile(False)
    yield
    set_compile(None)


def trained(model: str, steps: int = 20, fresh: bool = False) -> Run:
    """A tiny run of two tasks trained `steps` steps (shared between tests unless `fresh`)."""
    key = (model, steps)
    if fresh or key not in RUNS:
        config = RunConfig(model=model, preset="tiny", eval_size=8, eval_every=10,
                           stream=StreamConfig(steps_per_task=max(steps, 1), n_tasks=2))
        RUNS[key] = Run(config).step(steps)
    return RUNS[key]


def log_p(model, tokens, position, answer, zero_paths=()):
    """F computed without lab.attribution: the model as it is, with `zero_paths` outputs zeroed."""
    handles = [model.get_submodule(p).register_forward_hook(lambda _m, _i, out: torch.zeros_like(out))
               for p in zero_paths]
    try:
        with torch.no_grad():
            return float(model(tokens).log_softmax(-1)[0, position, answer])
    finally:
        for h in handles:
            h.remove()


@pytest.fixture(scope="module", params=["transformer", "titans", "hope"])
def run(request):
    return trained(request.param)


def test_completeness_within_the_convergence_delta_on_every_family(run):
    """Σ attributions = F(input) − F(baseline) within captum's delta, the delta < 1 % of the difference
    at the default number of steps, for tokens, every block's residual stream and every component."""
    model, (inputs, targets) = run.model.eval(), run.eval_sets[0]
    example = 1
    result = attribute_example(model, inputs[example], targets[example], decode=run.stream.decode)
    s, f = result.summary, result.frame
    assert s["n_steps"] == N_STEPS
    tokens, position = inputs[example:example + 1], s["position"]
    answer = int(targets[example, position])
    value, base = log_p(model, tokens, position, answer), log_p(model, torch.full_like(tokens, PAD), position, answer)
    assert s["value"] == pytest.approx(value, abs=1e-5) and s["baseline_value"] == pytest.approx(base, abs=1e-5)
    diff = value - base
    assert abs(diff) > 1e-3                                  # a difference worth decomposing
    token_sum = f[f.part == "token"].attribution.sum()
    assert abs(token_sum - diff) <= abs(s["delta"]["token"]) + 1e-5
    assert abs(s["delta"]["token"]) < 0.01 * abs(diff)
    for block, delta in s["delta"]["residual"].items():
        total = f[(f.part == "residual") & (f.block == block)].attribution.sum()
        assert abs(total - diff) <= abs(delta) + 1e-5 and abs(delta) < 0.01 * abs(diff)
    totals = result.totals().set_index("group").attribution
    for group in component_groups(model):
        without = log_p(model, tokens, position, answer, group.paths)
        delta = s["delta"]["component"][group.name]
        assert abs(totals[group.name] - (value - without)) <= abs(delta) + 1e-5, group.name
        assert abs(delta) <= 0.01 * abs(value - without) + 1e-5, group.name
    assert {"token", "component", "residual"} == set(f.part)
    assert set(f[f.part == "token"].position) == set(range(tokens.shape[1]))


def test_the_components_are_each_familys_levels_and_branches():
    names = {m: [g.name for g in component_groups(build_model(m, "tiny", vocab_size=40), levels_everywhere=False)]
             for m in ("transformer", "titans", "hope")}
    assert names["transformer"] == ["block 0 · attention", "block 0 · level 0", "block 1 · attention", "block 1 · level 0"]
    assert names["titans"][:3] == ["block 0 · attention", "block 0 · memory", "block 0 · level 0"]
    assert names["hope"][:4] == ["block 0 · memory", "block 0 · level 0", "block 0 · level 1", "block 0 · level 2"]


def test_a_level_whose_output_is_zeroed_gets_no_attribution():
    run = trained("hope")
    model = copy.deepcopy(run.model)
    with torch.no_grad():
        for _, cms in model.cms_blocks():
            cms.levels[1].down.weight.zero_()
            cms.levels[1].down.bias.zero_()
    inputs, targets = run.eval_sets[0]
    totals = attribute_example(model, inputs[0], targets[0], parts=("component",)).totals().set_index("group")
    assert totals.attribution[["level 1", "block 0 · level 1", "block 1 · level 1"]].abs().max() == 0.0
    assert totals.attribution[["level 0", "level 2"]].abs().min() > 0.0
    frame = attribution_map(model, run.eval_sets, run.stream.task_names)
    assert (frame[frame.level == 1].attribution == 0.0).all() and (frame[frame.level != 1].attribution != 0.0).all()


def test_swapping_two_levels_swaps_their_attributions():
    """With independent levels (y = x + Σ w_ℓ level_ℓ(x)) swapping two levels and their weights keeps
    the function; their attributions swap. (In the sequential chain order matters: the function changes.)"""
    stream = build_stream(StreamConfig(n_tasks=2, steps_per_task=5))
    torch.manual_seed(3)
    model = build_model("hope", "tiny", vocab_size=stream.vocab_size, cms_variant="independent").eval()
    with torch.no_grad():
        for index, (_, cms) in enumerate(model.cms_blocks()):
            for level, module in enumerate(cms.levels):
                module.down.weight.normal_(0, 0.3 * (level + 1))       # three levels that differ clearly
            cms.mix_logits.copy_(torch.tensor([0.3, -0.2, 0.5]))
    inputs, targets = stream.tasks[0].eval_set(4, seed=0)
    before = attribute_example(model, inputs[0], targets[0])
    logits = model(inputs)
    with torch.no_grad():
        for _, cms in model.cms_blocks():
            cms.levels[0], cms.levels[2] = cms.levels[2], cms.levels[0]
            cms.mix_logits.copy_(cms.mix_logits[[2, 1, 0]])
    torch.testing.assert_close(model(inputs), logits)                 # the same function
    after = attribute_example(model, inputs[0], targets[0])
    b, a = before.totals().set_index("group").attribution, after.totals().set_index("group").attribution
    for x, y in (("level 0", "level 2"), ("level 1", "level 1"), ("block 1 · level 0", "block 1 · level 2")):
        assert a[x] == pytest.approx(b[y], abs=1e-5) and a[y] == pytest.approx(b[x], abs=1e-5)
    assert not np.isclose(b["level 0"], b["level 2"], atol=1e-3)     # the swap is visible
    tokens = lambda r: r.frame[r.frame.part == "token"].attribution.to_numpy()
    np.testing.assert_allclose(tokens(after), tokens(before), atol=1e-5)


def test_both_maps_read_the_held_out_sets_of_the_accuracy_matrix(monkeypatch):
    import lab.attribution.maps as maps

    run = trained("hope", 20)
    held_out = {tuple(row.tolist()) for inputs, _ in run.eval_sets for row in inputs}
    seen, lesion_sets = set(), []
    hook = run.model.register_forward_pre_hook(lambda _m, args: seen.update(tuple(r.tolist()) for r in args[0]))
    real = maps.knowledge_matrix
    monkeypatch.setattr(maps, "knowledge_matrix", lambda model, sets, *a, **k: lesion_sets.append(sets) or real(model, sets, *a, **k))
    try:
        comparison = compare_run(run)
    finally:
        hook.remove()
    assert seen == held_out                                            # every forward pass read exactly those
    assert lesion_sets == [run.eval_sets] and lesion_sets[0] is run.eval_sets
    accuracy = {t: r["token_acc"] for t, r in run.evaluate().items()}  # the accuracy matrix's row, now
    full = comparison.lesion.groupby("task").full.first()
    assert {t: full[t] for t in accuracy} == pytest.approx(accuracy)
    pd.testing.assert_frame_equal(comparison.lesion, knowledge_matrix(run.model, run.eval_sets, run.stream.task_names,
                                                                       run.initial_state))
    assert (comparison.attribution.n == 8).all() and len(comparison.attribution) == 3 * 2
    assert comparison.attribution.delta.max() < 1e-3


def test_rank_agreement_is_spearman_over_the_cells():
    lesion = pd.DataFrame({"level": [0, 0, 1, 1], "task": ["a", "b", "a", "b"], "drop": [0.1, 0.4, 0.2, 0.3]})
    same = lesion.rename(columns={"drop": "attribution"}).assign(attribution=lambda f: f.attribution ** 3)
    assert rank_agreement(same, lesion) == pytest.approx(1.0)
    assert rank_agreement(same.assign(attribution=-same.attribution), lesion) == pytest.approx(-1.0)
    assert math.isnan(rank_agreement(same.iloc[:2], lesion))
    assert math.isnan(rank_agreement(same.assign(attribution=1.0), lesion))


def test_the_sleep_tracker_keeps_the_models_just_before_and_after_a_sleep():
    session = SleepSession(SleepSettings(preset="tiny", steps=4, eval_size=8, distill_steps=3, dream_samples=8,
                                         repair_steps=1))
    session.request_train()
    tracker = SleepAttributions(session.run)
    for request in (None, session.request_sleep):
        if request:
            request()
        while session.busy:
            session.advance(0.05)
    last = session.last_sleep
    pair = tracker.pair_at(last["step"])
    assert pair is not None and len(tracker.pairs) == 1
    run = session.run
    for which in ("before", "after"):
        model = tracker.model_of(pair[which])
        lesion = knowledge_matrix(model, run.eval_sets, run.stream.task_names, run.initial_state)
        np.testing.assert_allclose(lesion.sort_values(["level", "task"])["drop"].to_numpy(),
                                   last[which].sort_values(["level", "task"])["drop"].to_numpy())
    frame = tracker.maps(last["step"], "after")
    assert set(frame.level) == {0, 1, 2} and list(dict.fromkeys(frame.task)) == list(run.stream.task_names)
    assert tracker.maps(last["step"], "after") is frame and tracker.maps(last["step"] + 1, "after") is None


def test_a_playground_example_is_followed_through_its_checkpoints():
    from lab.sessions.playground import PlaygroundSession

    session = PlaygroundSession(RunConfig(model="transformer", preset="tiny", eval_every=5,
                                          stream=StreamConfig(steps_per_task=10, n_tasks=2)))
    session.step(20)
    steps = checkpoints(session.history, 20, count=3)
    assert steps[0] == 0 and steps[-1] == 20 and len(steps) == 3
    inputs, targets = session.run.eval_sets[1]
    frame = level_trajectory(session.history, steps, inputs[0], targets[0])
    assert list(frame.step) == steps and set(frame.level) == {0}
    assert frame.attribution.iloc[0] != frame.attribution.iloc[-1]


def test_the_figures_are_valid_plotly():
    run = trained("titans")
    inputs, targets = run.eval_sets[0]
    result = attribute_example(run.model, inputs[0], targets[0], decode=run.stream.decode)
    comparison = compare_run(run)
    traj = pd.DataFrame({"step": [0, 10], "level": [0, 0], "attribution": [0.1, 0.2]})
    for fig in (flow_figure(result), components_figure(result), trajectory_figure(traj, 10), trajectory_figure(None),
                map_pair_figure(comparison.attribution, comparison.lesion, comparison.agreement),
                map_pair_figure(None, None, None)):
        go.Figure(fig.to_dict())
    assert len(flow_figure(result).data[0].z) == 1 + 2 * (3 + 1)      # tokens; per block 3 components + stream


def test_the_command_line_writes_attributions_json(tmp_path, capsys):
    from lab.cli import main

    out = tmp_path / "attr"
    assert main(["attribute", "--model", "transformer", "--preset", "tiny", "--tasks", "3", "--steps", "9",
                 "--example-task", "lang2", "--baseline", "mean", "--out", str(out)]) == 0
    content = json.loads((out / "attributions.json").read_text())
    assert content["trained_steps"] == 9 and content["example"] == {"task": "lang2", "index": 0}
    assert content["baseline"] == "mean" and set(content["methods"]) == {"token", "component", "residual"}
    assert set(content["levels"]) == {"0"} and len(content["tokens"]) == len(content["tokens_text"])
    assert set(content["delta"]) == {"token", "component", "residual"}
    assert content["map"]["lesion_map"] and content["map"]["attribution_map"] and content["map"]["bypass"]["lesion_map"]
    assert content["map"]["lesion_mode"] == "reset" and content["map"]["n_steps"] == 16 and content["n_steps"] == N_STEPS
    assert json.loads(capsys.readouterr().out)["levels"] == content["levels"]


@pytest.mark.parametrize("options,words", [
    (["--example-task", "lang9"], ["lang9", "lang1"]), (["--example-task", "-1"], ["-1", "0…1"]),
    (["--example", "999"], ["999", "0…"]), (["--example", "-1"], ["-1", "0…"]),
    (["--position", "0"], ["position = 0", "scored position"]), (["--n-steps", "0"], ["n_steps = 0", "2…512"]),
    (["--steps", "-3"], ["--steps -3"]),
])
def test_the_command_line_refuses_bad_input_with_exit_2_before_training(tmp_path, capsys, monkeypatch, options, words):
    import lab.engine
    from lab.cli import main

    monkeypatch.setattr(lab.engine.Run, "step", lambda *a, **k: pytest.fail("trained before refusing"))
    out = tmp_path / "attr"
    assert main(["attribute", "--preset", "tiny", "--tasks", "2", "--no-map", *options, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert "Traceback" not in err and not (out / "attributions.json").exists()


def test_an_unknown_baseline_is_a_usage_error():
    from lab.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["attribute", "--baseline", "noise", "--out", "/tmp/unused"])
    assert exit_.value.code == 2


def test_bad_requests_name_the_value_and_the_allowed_ones():
    run = trained("transformer")
    inputs, targets = run.eval_sets[0]
    x, y = inputs[0], targets[0]
    scored = [int(i) for i in (y != -100).nonzero().flatten()]
    unscored = next(i for i in range(len(y)) if i not in scored)
    cases = [({"position": unscored}, [f"position = {unscored}", str(scored[0])]),
             ({"position": len(y) + 5}, [f"position = {len(y) + 5}"]),
             ({"baseline": "noise"}, ["'noise'", "pad, zero, mean"]), ({"target": "prob"}, ["'prob'", "logprob"]),
             ({"n_steps": 1}, ["n_steps = 1", "2…512"]), ({"parts": ("tokens",)}, ["tokens", "component"])]
    for kwargs, words in cases:
        with pytest.raises(AttributionError) as err:
            attribute_example(run.model, x, y, **kwargs)
        assert all(w in str(err.value) for w in words), (kwargs, str(err.value))
    with pytest.raises(AttributionError, match="no scored position"):
        attribute_example(run.model, x, torch.full_like(y, -100))
    with pytest.raises(AttributionError, match="differ in length"):
        attribute_example(run.model, x, y[:-1])
    with pytest.raises(AttributionError, match="n_steps = 0"):
        attribution_map(run.model, run.eval_sets, run.stream.task_names, n_steps=0)


def test_attributions_are_deterministic_and_have_one_row_per_position_and_part():
    run = trained("hope")
    inputs, targets = run.eval_sets[1]
    first = attribute_example(run.model, inputs[2], targets[2], baseline="zero")
    again = attribute_example(run.model, inputs[2], targets[2], baseline="zero")
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert first.summary == again.summary
    f, T = first.frame, inputs.shape[1]
    groups = component_groups(run.model)
    blocks = len({g.block for g in groups if g.block >= 0})
    assert len(f) == T * (1 + len(groups) + blocks)
    assert (f.groupby(["part", "group"]).size() == T).all()
    assert np.isfinite(f.attribution).all()
    pad = attribute_example(run.model, inputs[2], targets[2])                 # another baseline, another F(x')
    assert pad.summary["value"] == pytest.approx(first.summary["value"])
    assert pad.summary["baseline_value"] != pytest.approx(first.summary["baseline_value"])
