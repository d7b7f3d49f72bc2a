"""The forgetting comparison (lab.forgetting): the identical stream, methods, the joint reference,
the summary against lab.metrics, the plain-language reading, save/load and the live check."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from lab import metrics
from lab.forgetting import (Comparison, ComparisonError, ComparisonJob, ForgetSettings, build_summary, compare, rerun_job,
                            config_changes, describe_comparison, differences, drift_from_defaults, joint_config,
                            matrix_agreement, per_task, run_settings, seeded, summary_table)
from lab.config import ConfigError
from lab.engine import Run

torch.set_num_threads(1)
TINY = dict(n_tasks=2, steps_per_task=4, preset="tiny", eval_size=16, eval_every=2)


@pytest.fixture(scope="module")
def tiny() -> Comparison:
    """Transformer and HOPE, naive and replay, one seed, with the joint reference."""
    return run_settings(ForgetSettings(models=("transformer", "hope"), methods=("naive", "replay"), joint=True,
                                       replay=8, **TINY))


# --- settings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, field", [
    ({"models": ("transformer", "gpt")}, "models"),
    ({"models": ()}, "models"),
    ({"models": ("hope", "hope")}, "models"),
    ({"methods": ("naive", "ewc")}, "methods"),
    ({"methods": ()}, "methods"),
    ({"n_tasks": 1}, "n_tasks"),
    ({"seeds": 0}, "seeds"),
    ({"kind": "two_languages", "n_tasks": 5}, "n_tasks"),
])
def test_bad_settings_name_the_field(changes, field):
    with pytest.raises(ConfigError) as info:
        ForgetSettings(**changes)
    assert info.value.field == field


def test_settings_build_the_stream_and_runs_they_say():
    s = ForgetSettings.from_dict({"models": "titans,hope", "methods": "naive,replay", "overlap": "0",
                                  "steps_per_task": "7", "seeds": "2", "replay": "5"})
    base = s.base_config()
    assert (base.stream.overlap, base.stream.steps_per_task, base.stream.n_tasks) == (0.0, 7, 3)
    job = ComparisonJob.from_settings(s)
    sequential = [u for u in job.units if u.k is None]
    assert [(u.model, u.method, u.seed) for u in sequential[:4]] == [
        ("titans", "naive", 0), ("hope", "naive", 0), ("titans", "replay", 0), ("hope", "replay", 0)]
    assert {u.config.replay for u in sequential if u.method == "naive"} == {0}
    assert {u.config.replay for u in sequential if u.method == "replay"} == {5}
    # the identical stream: for one seed every model and method gets the very same stream config
    for seed in (0, 1):
        streams = {u.config.stream.to_json() for u in sequential if u.seed == seed}
        assert len(streams) == 1
        assert {u.config.seed for u in sequential if u.seed == seed} == {seed}
    assert job.total_steps == 2 * 2 * 2 * 3 * 7


# --- the identical stream, the methods --------------------------------------------------------

def test_every_model_and_method_sees_the_same_batches_in_task_one(tiny):
    records = tiny.records
    # same data in task 1 (replay has nothing earlier to mix in yet): replay's first phase equals naive's
    for model in ("transformer", "hope"):
        first = records[(records.model == model) & (records.metric == "loss") & (records.step <= 4)]
        naive = first[first.method == "naive"].value.to_numpy()
        replay = first[first.method == "replay"].value.to_numpy()
        assert len(naive) == 4 and np.array_equal(naive, replay)
        later = records[(records.model == model) & (records.metric == "loss") & (records.step > 4)]
        assert not np.array_equal(later[later.method == "naive"].value, later[later.method == "replay"].value)
    base = ForgetSettings(**TINY).base_config()
    a = Run(seeded(base.replace(model="transformer"), 3)).stream
    b = Run(seeded(base.replace(model="hope"), 3)).stream
    for step in (0, 5):
        assert torch.equal(a.batch(step)[0], b.batch(step)[0])


def test_matrix_and_summary_agree_with_lab_metrics(tiny):
    assert list(tiny.matrix.columns) == ["model", "method", "seed", "after_task", "eval_task", "accuracy"]
    assert len(tiny.matrix) == 2 * 2 * 3 * 2                        # models × methods × (T+1) × T
    for (model, method, seed), R in tiny.matrices().items():
        R = np.array(R)
        run = [r for r in tiny.summary["per_seed"] if (r["model"], r["method"], r["seed"]) == (model, method, seed)][0]
        assert run["ACC"] == metrics.acc(R) and run["BWT"] == metrics.bwt(R) and run["FWT"] == metrics.fwt(R)
        assert run["forgetting"] == metrics.forgetting_max(R)
        assert run["forgetting_final"] == metrics.forgetting_final(R)
        assert run["learned"] == pytest.approx((R[1, 0] + R[2, 1]) / 2)
        assert run["old_acc"] == R[2, 0] and run["untrained_old"] == R[0, 0]
        joint = tiny.joint[(tiny.joint.model == model) & (tiny.joint.seed == seed)].set_index("k").accuracy
        assert joint[1] == R[1, 0]                                  # k = 1 reuses R[1][1]
        assert run["intransigence"] == pytest.approx(((joint[1] - R[1, 0]) + (joint[2] - R[2, 1])) / 2)
        cell = tiny.summary["results"][method][model]["ACC"]
        assert cell == {"mean": run["ACC"], "std": 0.0}
    assert tiny.summary["n_seeds"] == 1 and tiny.summary["joint"] and tiny.summary["replay"] == 8
    assert "max form" in tiny.summary["forgetting_form"]
    assert tiny.task_names == ["lang1", "lang2"]
    assert tiny.boundaries_tokens == [0, 4 * 72, 8 * 72]


def test_joint_reference_is_a_fresh_model_on_the_mixture():
    base = ForgetSettings(**TINY).base_config()
    config = joint_config(base, "titans", 2, seed=4)
    assert config.stream.joint and config.stream.schedule == (0, 1) and config.replay == 0
    assert config.seed == 4 and config.stream.seed == 4 and config.model == "titans"
    run = Run(config)
    assert run.stream.total_steps == 2 * 4 and run.stream.mixture == [0, 1]


@pytest.mark.parametrize("model", ["transformer", "hope"])
def test_joint_run_on_task_one_equals_the_sequential_first_phase(model):
    """Why lab.forgetting.job may reuse R[1][1] as the joint reference for k = 1."""
    base = ForgetSettings(**TINY).base_config().replace(eval_size=8)
    sequential = Run(seeded(base.replace(model=model), 2))
    sequential.step(4)                                               # the end of task 1
    joint = Run(joint_config(base, model, 1, 2))
    joint.step(10)
    assert joint.done and joint.step_count == 4
    assert joint.last_eval["lang1"] == sequential.last_eval["lang1"]  # accuracy and loss, exactly
    for a, b in zip(joint.model.parameters(), sequential.model.parameters()):
        assert torch.equal(a, b)


def test_joint_reference_rejects_a_custom_order_and_jobs_check_inputs():
    base = ForgetSettings(**TINY).base_config()
    with pytest.raises(ValueError, match="plain task order"):
        ComparisonJob(base.replace(stream=base.stream.replace(schedule=(1, 0)).to_dict()), ["hope"], [0], joint=True)
    with pytest.raises(ValueError, match="models"):
        ComparisonJob(base, ["gpt"], [0])
    with pytest.raises(ValueError, match="seeds"):
        ComparisonJob(base, ["hope"], [0, 0])
    with pytest.raises(ValueError, match="methods"):
        ComparisonJob(base, ["hope"], [0], methods=["ewc"])


def test_job_progress_and_the_chunked_path_give_the_same_matrix():
    settings = ForgetSettings(models=("transformer",), **TINY)
    job = ComparisonJob.from_settings(settings)
    with pytest.raises(RuntimeError, match="not finished"):
        job.result()
    fractions = []
    while not job.done:
        job.advance(max_steps=3)                       # the page's path: a few steps at a time
        fractions.append(job.fraction)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and job.label == "done"
    seen = []
    whole = compare(settings.base_config(), ["transformer"], [0], progress=lambda f, label: seen.append(f))
    assert seen[-1] == 1.0
    pd.testing.assert_frame_equal(job.result().matrix, whole.matrix)


def test_a_diverging_run_stops_the_comparison_with_a_message(monkeypatch):
    import lab.engine

    real = lab.engine.masked_loss
    monkeypatch.setattr(lab.engine, "masked_loss", lambda logits, targets: real(logits, targets) * float("inf"))
    with pytest.raises(ComparisonError, match="Transformer, seed 0, naive sequential training diverged"):
        run_settings(ForgetSettings(models=("transformer",), **TINY))


def test_a_diverging_run_keeps_the_runs_that_finished_before_it(monkeypatch, tmp_path, capsys):
    import lab.engine
    from lab.cli import main

    real, calls = lab.engine.masked_loss, []

    def second_run_diverges(logits, targets):          # the first run's steps are fine, then inf
        calls.append(1)
        return real(logits, targets) * (float("inf") if len(calls) > 2 * TINY["steps_per_task"] else 1.0)

    monkeypatch.setattr(lab.engine, "masked_loss", second_run_diverges)
    with pytest.raises(ComparisonError, match="HOPE, seed 0, naive sequential training diverged") as caught:
        run_settings(ForgetSettings(models=("transformer", "hope"), **TINY))
    kept = caught.value.partial
    assert set(kept["model"]) == {"transformer"} and len(kept) == 3 * 2          # (T+1) × T cells of one run
    calls.clear()
    out = tmp_path / "c"
    code = main(["forget", "--models", "transformer,hope", "--preset", "tiny", "--tasks", "2", "--steps-per-task",
                 str(TINY["steps_per_task"]), "--eval-size", "8", "--workers", "1", "--out", str(out)])
    assert code == 1 and "kept in" in capsys.readouterr().err
    on_disk = pd.read_csv(out / "accuracy_matrix.partial.csv")
    assert set(on_disk["model"]) == {"transformer"} and len(on_disk) == 6


# --- save, load, agreement --------------------------------------------------------------------

def test_save_and_load_round_trip_exactly(tiny, tmp_path):
    paths = tiny.save(tmp_path / "c", keep_metrics=["accuracy"])
    assert {p.name for p in paths} == {"accuracy_matrix.csv", "records.csv", "summary.json", "joint.csv"}
    back = Comparison.load(tmp_path / "c")
    pd.testing.assert_frame_equal(back.matrix, tiny.matrix)
    pd.testing.assert_frame_equal(back.joint, tiny.joint)
    kept = tiny.records[tiny.records.metric == "accuracy"].reset_index(drop=True)
    pd.testing.assert_frame_equal(back.records, kept, check_dtype=False)
    assert back.summary["results"] == tiny.summary["results"] and back.task_names == tiny.task_names
    assert back.boundaries_tokens == tiny.boundaries_tokens and back.summary["records_metrics"] == ["accuracy"]
    assert matrix_agreement(back.matrix, tiny.matrix)["identical"]
    with pytest.raises(ValueError, match="cannot read"):
        Comparison.load(tmp_path / "nowhere")


def test_matrix_agreement_finds_the_largest_difference(tiny):
    live = tiny.matrix.copy()
    assert matrix_agreement(tiny.matrix, live) == {"cells": 24, "missing": 0, "max_abs_diff": 0.0,
                                                    "identical": True, "worst": None}
    live.loc[5, "accuracy"] += 0.25
    live.loc[7, "accuracy"] -= 0.125
    out = matrix_agreement(tiny.matrix, live)
    assert not out["identical"] and out["max_abs_diff"] == pytest.approx(0.25)
    row = tiny.matrix.loc[5]
    assert out["worst"]["after_task"] == row.after_task and out["worst"]["model"] == row.model
    assert out["worst"]["live"] - out["worst"]["shipped"] == pytest.approx(0.25)
    subset = tiny.matrix[tiny.matrix.model == "hope"]
    assert matrix_agreement(subset, tiny.matrix)["missing"] == 12       # cells the reference lacks
    assert matrix_agreement(tiny.matrix, subset)["identical"]


def test_rerun_job_reproduces_a_saved_comparison(tiny, tmp_path):
    tiny.save(tmp_path / "c")
    shipped = Comparison.load(tmp_path / "c")
    job = rerun_job(shipped, seeds=[0], methods=["naive"], joint=False)
    assert [u.method for u in job.units] == ["naive", "naive"]
    live = job.run_to_end()
    assert matrix_agreement(shipped.matrix, live.matrix)["identical"]
    with pytest.raises(ValueError, match="not part"):
        rerun_job(shipped, seeds=[7])


# --- reading the numbers ----------------------------------------------------------------------

def _R(learned: float, kept: float, untrained: float = 0.05) -> list[list[float]]:
    """A 3-task matrix: each task reaches `learned` when trained and falls to `kept` later."""
    u = untrained
    return [[u, u, u], [learned, u, u], [kept, learned, u], [kept, kept, learned]]


def _summary(matrices: dict[tuple[str, int], list], methods=("naive",), joint=None) -> dict:
    rows = []
    for (model, seed), R in matrices.items():
        for method in methods:
            for i, row in enumerate(R):
                for j, acc in enumerate(row):
                    rows.append((model, method, seed, i, j + 1, acc))
    matrix = pd.DataFrame(rows, columns=["model", "method", "seed", "after_task", "eval_task", "accuracy"])
    models = list(dict.fromkeys(m for m, _ in matrices))
    seeds = sorted({s for _, s in matrices})
    summary = build_summary(matrix, joint, models, list(methods), seeds, 64 if "replay" in methods else None,
                            ["lang1", "lang2", "lang3"])
    summary["config"] = {"preset": "small", "stream": {"steps_per_task": 250}}
    return summary


def test_the_reading_says_plainly_when_hope_does_not_forget_less():
    more = _summary({("transformer", 0): _R(0.9, 0.5), ("transformer", 1): _R(0.9, 0.6),
                     ("hope", 0): _R(0.9, 0.2), ("hope", 1): _R(0.9, 0.3)})
    text = describe_comparison(more)
    assert "HOPE does **not** forget less than the Transformer at this scale: it forgets more, by 0.300" in text
    assert "2 seeds" in text and "say nothing about the papers' large-scale results" in text

    less = _summary({("transformer", 0): _R(0.9, 0.2), ("transformer", 1): _R(0.9, 0.3),
                     ("hope", 0): _R(0.9, 0.6), ("hope", 1): _R(0.9, 0.5)})
    text = describe_comparison(less)
    assert "HOPE forgets less than the Transformer: by 0.300 on average, and on every seed." in text

    mixed = _summary({("transformer", 0): _R(0.9, 0.2), ("transformer", 1): _R(0.9, 0.6),
                      ("hope", 0): _R(0.9, 0.5), ("hope", 1): _R(0.9, 0.5)})
    text = describe_comparison(mixed)
    assert "HOPE does **not** forget clearly less than the Transformer" in text
    assert "less on only 1 of 2 seeds" in text

    tie = _summary({("transformer", 0): _R(0.9, 0.5), ("hope", 0): _R(0.9, 0.51)})
    text = describe_comparison(tie)
    assert "smaller than 0.03" in text and "One seed: there is no spread" in text


def test_the_reading_warns_when_less_forgetting_is_less_learning():
    summary = _summary({("transformer", 0): _R(1.0, 0.05), ("hope", 0): _R(0.4, 0.05)})
    text = describe_comparison(summary)
    assert "HOPE forgets less than the Transformer" in text
    assert "Caution: HOPE learned each task less well while training on it than the Transformer" in text and "learned 0.400 against 1.000" in text
    reverse = describe_comparison(_summary({("transformer", 0): _R(0.4, 0.05), ("hope", 0): _R(1.0, 0.05)}))
    assert "HOPE does **not** forget less than the Transformer" in reverse
    assert "Caution: the Transformer learned each task less well while training on it than HOPE" in reverse
    nothing = _summary({("transformer", 0): _R(0.08, 0.05), ("hope", 0): _R(0.07, 0.05)})
    assert "no architecture learned the tasks much" in describe_comparison(nothing)


def test_the_reading_covers_replay_and_intransigence():
    joint = pd.DataFrame([(m, 0, k, 0.95, 4 * k, "joint run") for m in ("transformer", "hope") for k in (1, 2, 3)],
                         columns=["model", "seed", "k", "accuracy", "steps", "source"])
    summary = _summary({("transformer", 0): _R(0.9, 0.5), ("hope", 0): _R(0.8, 0.5)},
                       methods=("naive", "replay"), joint=joint)
    text = describe_comparison(summary)
    assert "**Experience replay** (buffer of 64 sequences) against naive training" in text
    assert "**Intransigence**" in text and "Transformer 0.050 ± 0.000" in text and "HOPE 0.150 ± 0.000" in text
    table = summary_table(summary)
    assert list(table.columns) == ["method", "model", "ACC", "BWT", "FWT", "forgetting (max form)",
                                   "forgetting (final form)", "learned (mean R[j][j])", "intransigence"]
    assert table.loc[0, "method"] == "naive" and table.loc[2, "method"] == "replay (64 seq.)"
    assert table.loc[0, "forgetting (max form)"] == "0.400 ± 0.000"
    numeric = summary_table(summary, numeric=True)
    assert numeric.loc[1, "intransigence mean"] == pytest.approx(0.15)
    without = summary_table(_summary({("transformer", 0): _R(0.9, 0.5)}))
    assert "intransigence" not in without.columns


def test_per_task_and_paired_differences_by_hand():
    rows = []
    for model, seed, R in [("transformer", 0, _R(0.9, 0.5)), ("transformer", 1, _R(0.8, 0.4)),
                           ("hope", 0, _R(0.7, 0.6)), ("hope", 1, _R(0.9, 0.2))]:
        for i, row in enumerate(R):
            for j, acc in enumerate(row):
                rows.append((model, "naive", seed, i, j + 1, acc))
    matrix = pd.DataFrame(rows, columns=["model", "method", "seed", "after_task", "eval_task", "accuracy"])
    table = per_task(matrix)
    t = table[(table.model == "hope") & (table.seed == 0)].set_index("task")
    assert t.loc[1, "learned"] == 0.7 and t.loc[1, "final"] == 0.6
    assert t.loc[1, "forgetting"] == pytest.approx(0.1) and math.isnan(t.loc[3, "forgetting"])
    d = differences(matrix)
    f = d[(d.metric == "forgetting") & (d.task == 1)].set_index("seed").value
    assert f[0] == pytest.approx(0.1 - 0.4) and f[1] == pytest.approx(0.7 - 0.4)   # paired by seed
    assert set(d.model) == {"hope"}
    with pytest.raises(ValueError, match="reference"):
        differences(matrix[matrix.model == "hope"])


def test_config_changes_since_a_comparison_was_made(tiny):
    assert drift_from_defaults(tiny) == []
    old = dict(tiny.summary["config"], lr=0.5, stream=dict(tiny.summary["config"]["stream"], overlap=1.0))
    changed = config_changes(old, tiny.summary["config"])
    assert changed == [f"lr: 0.5 → {tiny.summary['config']['lr']!r}", "stream.overlap: 1.0 → 0.5"]
    stale = Comparison(tiny.matrix, tiny.records, dict(tiny.summary, config=old), tiny.task_names,
                       tiny.boundaries_tokens, tiny.joint)
    assert len(drift_from_defaults(stale)) == 2


def test_cli_forget_options_and_messages(tmp_path, capsys):
    from lab import cli

    out = tmp_path / "f"
    args = ["forget", "--models", "transformer", "--tasks", "2", "--steps-per-task", "3", "--preset", "tiny",
            "--eval-size", "8", "--out", str(out)]
    assert cli.main([*args, "--replay", "6", "--keep-metrics", "accuracy,loss"]) == 0
    result = Comparison.load(out)
    assert result.methods == ["replay"] and result.summary["replay"] == 6     # --replay N alone: the replay method
    assert result.summary["settings"]["eval_size"] == 8 and result.summary["config"]["eval_size"] == 8
    assert set(result.records.metric) == {"accuracy", "loss"}
    printed = json.loads(capsys.readouterr().out)
    assert printed["replay"]["transformer"]["ACC"] == result.summary["results"]["replay"]["transformer"]["ACC"]["mean"]
    assert cli.main([*args, "--methods", "naive,dropout"]) == 2
    assert "ForgetSettings.methods" in capsys.readouterr().err
