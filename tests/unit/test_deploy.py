"""Deployment after pretraining (lab.deploy): savings and intervals by hand, the variants' runs,
the summary and its files, the CLI and the session."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from lab import metrics
from lab.cli import main
from lab.config import ConfigError
from lab.deploy import DeployJob, DeploySettings, Deployment
from lab.deploy.summary import run_numbers
from lab.sessions.deployment import DeploymentSession

TINY = dict(preset="tiny", pretrain_steps=30, deploy_steps=6, new_tasks=2, base_tasks=2, rounds=2, seeds=1,
            eval_every=2, eval_size=8, sleep_distill_steps=3)


# --- the numbers, by hand ---------------------------------------------------------------------------

def test_savings_by_hand():
    first = [(0, 0.1), (5, 0.3), (10, 0.5), (15, 0.6)]          # peak 0.6: target 0.48, reached at 10
    revisit = [(0, 0.2), (5, 0.5), (10, 0.6)]                     # reached at 5
    out = metrics.savings(first, revisit, length=15)
    assert out["target"] == pytest.approx(0.48) and out["first_steps"] == 10 and out["revisit_steps"] == 5
    assert out["savings"] == pytest.approx(0.5) and not out["censored"]
    never = metrics.savings(first, [(0, 0.1), (5, 0.2)], length=15)
    assert never["censored"] and never["savings"] == pytest.approx(1 - 15 / 10)
    assert math.isnan(metrics.savings([(0, 0.1), (5, 0.12)], revisit, 15)["savings"])   # nothing learned first
    assert metrics.savings(first, [(0, 0.55)], 15)["savings"] == 1.0                     # remembered at once


def test_mean_ci_is_students_interval():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    out = metrics.mean_ci(values)
    assert out["mean"] == 3.0 and out["n"] == 5
    assert out["ci95"] == pytest.approx(2.776 * np.std(values, ddof=1) / math.sqrt(5))
    assert metrics.mean_ci([1.0, float("nan"), 3.0])["n"] == 2
    assert math.isnan(metrics.mean_ci([2.0])["ci95"]) and metrics.mean_ci([])["n"] == 0


def test_run_numbers_take_the_first_round_of_new_languages():
    # 2 base + 2 new languages, rounds of (new1, new2, new1, new2): rows 0..4
    R = np.array([[0.9, 0.8, 0.1, 0.1],
                  [0.9, 0.7, 0.6, 0.1],
                  [0.8, 0.7, 0.3, 0.7],
                  [0.8, 0.6, 0.7, 0.4],
                  [0.7, 0.6, 0.5, 0.8]])
    out = run_numbers(R, base=2, savings=[{"savings": 0.5}, {"savings": float("nan")}])
    assert out["learned"] == pytest.approx((0.6 + 0.7) / 2) and out["ACC"] == pytest.approx((0.3 + 0.7) / 2)
    assert out["BWT"] == pytest.approx(0.3 - 0.6) and out["forgetting"] == pytest.approx(0.3)
    assert out["final_ACC"] == pytest.approx(0.65) and out["base_change"] == pytest.approx(0.65 - 0.85)
    assert out["savings"] == 0.5


# --- settings ---------------------------------------------------------------------------------------------

def test_bad_settings_name_the_field():
    with pytest.raises(ConfigError, match="variants"):
        DeploySettings(variants=("hope/dreaming",))
    with pytest.raises(ConfigError, match="deploy_batch"):
        DeploySettings(variants=("hope/cms_online+sleep",), deploy_batch=2)
    with pytest.raises(ConfigError, match="level_lr_scale"):
        DeploySettings(level_lr_scale=(1.0, 2.0))                      # HOPE has 3 levels


# --- a tiny deployment ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny() -> Deployment:
    settings = DeploySettings(variants=("hope/frozen", "hope/finetune", "hope/cms_online", "hope/cms_online+sleep"),
                              **TINY)
    return DeployJob(settings).run_to_end()


def test_every_variant_starts_from_the_same_pretrained_model(tiny):
    m = tiny.matrix
    start = m[m.after_task == 0].pivot(index="model", columns="eval_task", values="accuracy")
    assert (start.nunique() == 1).all()                           # row 0: one pretrained model for every variant
    assert set(m[m.after_task == 0].phase) == {"pretrain"} and set(m[m.after_task > 0].phase) == {"deploy"}
    assert m.after_task.max() == 4 and m.eval_task.max() == 4     # 2 new languages × 2 rounds; 4 languages


def test_a_frozen_model_never_changes_and_online_levels_do(tiny):
    m, r = tiny.matrix, tiny.records
    frozen = m[m.model == "hope/frozen"].pivot(index="after_task", columns="eval_task", values="accuracy")
    assert (frozen.nunique() == 1).all()                          # the knowledge cutoff: nothing moves
    online = r[(r.model == "hope/cms_online") & (r.metric == "online_update_norm")]
    assert len(online) and set(online.level) <= {0, 1, 2}
    assert not len(r[(r.model == "hope/frozen") & (r.metric == "online_update_norm")])
    sleeps = r[(r.model == "hope/cms_online+sleep") & (r.metric == "knowledge_drop")]
    assert len(sleeps) > len(r[(r.model == "hope/cms_online") & (r.metric == "knowledge_drop")])
    assert set(tiny.knowledge.model) == set(tiny.models) and {"level", "task", "drop"} <= set(tiny.knowledge)


def test_the_summary_has_every_number_with_an_interval_and_round_trips(tiny, tmp_path):
    cells = tiny.summary["results"]["deploy"]["hope/cms_online"]
    assert set(cells) >= {"ACC", "BWT", "forgetting", "forgetting_final", "savings"}
    assert set(cells["ACC"]) == {"mean", "std", "ci95", "n"}
    assert len(tiny.table()) == 4 and "savings on revisit" in tiny.table().columns
    assert "Deployment after pretraining" in tiny.describe()
    tiny.save(tmp_path / "d")
    back = Deployment.load(tmp_path / "d")
    assert back.matrix.equals(tiny.matrix) and back.phase_tasks == tiny.phase_tasks and len(back.knowledge)
    assert back.row_labels[0] == "after pretraining" and len(back.row_labels) == 5


def test_a_live_rerun_reproduces_the_deployment_exactly(tiny):
    session = DeploymentSession(shipped=tiny)
    assert not session.request_rerun([7])
    assert session.request_rerun([0])
    while session.busy:
        session.advance(5.0)
    assert session.agreement["identical"] and session.agreement["cells"] == len(tiny.matrix)


# --- the command ------------------------------------------------------------------------------------------

def test_deploy_command_writes_the_files(tmp_path, capsys):
    args = ["deploy", "--models", "transformer/frozen,hope/cms_online", "--seeds", "1", "--preset", "tiny",
            "--out", str(tmp_path / "d")] + [f"--set={k}={v}" for k, v in TINY.items() if k not in ("seeds", "preset")]
    assert main(args) == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["n_seeds"] == 1 and set(summary["results"]["deploy"]) == {"transformer/frozen", "hope/cms_online"}
    for name in ("accuracy_matrix.csv", "records.csv", "knowledge.csv"):
        assert (tmp_path / "d" / name).is_file()
    header = (tmp_path / "d" / "accuracy_matrix.csv").read_text().splitlines()[0]
    assert header == "model,method,seed,after_task,eval_task,accuracy,phase"
    flat = json.loads(capsys.readouterr().out)
    assert set(flat["hope/cms_online"]) == {"ACC", "BWT", "forgetting", "savings"}


@pytest.mark.parametrize("args,message", [
    (["--models", "hope/nap"], "variants"),
    (["--set", "online_lr=-1"], "online_lr"),
    (["--set", "rounds"], "FIELD=VALUE"),
])
def test_deploy_command_refuses_bad_input_before_any_work(tmp_path, capsys, args, message):
    assert main(["deploy", "--out", str(tmp_path / "x"), *args]) == 2
    assert message in capsys.readouterr().err


def test_deploy_command_refuses_an_unwritable_folder_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["deploy", "--out", str(blocker / "inside")]) == 2
    assert "cannot be written" in capsys.readouterr().err


def test_the_tuning_ranks_cells_by_all_six_languages_and_breaks_ties_to_the_familys_chunks():
    from lab.deploy.tune import ranked

    grid = pd.DataFrame([
        {"online_lr": 1e-3, "online_chunks": "()", "variant": "hope/cms_online", "final_ACC": 0.05, "base_change": -0.6},
        {"online_lr": 3e-5, "online_chunks": "(9, 36, 144)", "variant": "hope/cms_online", "final_ACC": 0.02 + 1e-12,
         "base_change": -0.04},
        {"online_lr": 3e-5, "online_chunks": "()", "variant": "hope/cms_online", "final_ACC": 0.02, "base_change": -0.04},
        {"online_lr": None, "online_chunks": "", "variant": "hope/frozen", "final_ACC": 0.02, "base_change": 0.0},
    ])
    order = ranked(grid)
    assert list(order.variant.unique()) == ["hope/cms_online"]            # the reference is not a cell
    assert list(zip(order.online_lr, order.online_chunks)) == [(3e-5, "()"), (3e-5, "(9, 36, 144)"), (1e-3, "()")]
    assert order.six.iloc[0] == pytest.approx(-0.02)
