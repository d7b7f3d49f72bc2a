"""Sweeps on Ray Tune (lab.sweep): a sweep's numbers are the engine's, a trial that raises is
reported while the others finish, a resumed sweep runs only what is missing, a bad spec is refused
before anything runs, naming the entry. One local Ray session serves the whole module."""
from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest

from lab.cli import main
from lab.config import ConfigError
from lab.engine import Run
from lab.forgetting import ComparisonJob, ForgetSettings
from lab.forgetting.summary import run_metrics
from lab.run_config import RunConfig
from lab.sweep import (FILES, SpecError, SweepError, SweepResult, SweepSpec, TrialError, regime_map, run_sweep,
                       run_trial, start_ray)
from lab.sweep.store import records_frame, strict, summarise
from lab.tasks.stream import StreamConfig

BASE = {"model": "transformer", "preset": "tiny", "stream.n_tasks": 2, "steps": 4, "eval_every": 4, "eval_size": 16}
# cell 0: the family's own levels; cell 1: a chunk longer than the stream, which only building the run rejects
SPEC = {"experiment": "run", "base": BASE, "grid": {"chunks": ["", "100000"]}, "seeds": [100, 101]}
OK, FAILING = ["c0000-s100", "c0000-s101"], ["c0001-s100", "c0001-s101"]


@pytest.fixture(scope="module")
def ray_session():
    import ray

    started = start_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def swept(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    calls = []
    result = run_sweep(SPEC, out, progress=lambda fraction, label: calls.append((fraction, label)))
    return out, result, calls


def direct(seed: int) -> dict:
    """The engine, driven directly: the same run a trial of SPEC's cell 0 describes."""
    config = RunConfig(model="transformer", preset="tiny", eval_every=4, eval_size=16, seed=seed,
                       stream=StreamConfig(n_tasks=2, steps_per_task=4, seed=seed))
    run = Run(config)
    run.step(run.stream.total_steps)
    assert run.done and not run.diverged
    numbers = run_metrics(run.accuracy_matrix())
    numbers["final_loss"] = float(run.records().query("metric == 'loss'")["value"].iloc[-1])
    return numbers


# --- on Ray -------------------------------------------------------------------------------------------

def test_a_sweep_gives_the_engines_numbers_bit_for_bit(swept):
    out, result, calls = swept
    records = pd.read_csv(out / FILES["records"])
    assert list(records.columns) == ["trial", "cell", "chunks", "seed", "model", "method", "metric", "value"]
    assert sorted(set(records.trial)) == OK
    expected = {seed: direct(seed) for seed in (100, 101)}
    for seed, numbers in expected.items():
        mine = records[records.seed == seed].set_index("metric")["value"]
        assert set(mine.index) == set(numbers)
        for metric, value in numbers.items():
            assert (math.isnan(value) and math.isnan(mine[metric])) or mine[metric] == value, metric
    loaded = SweepResult.load(out)
    assert loaded.records.equals(result.records) and loaded.summary["cells"] == result.summary["cells"]
    # the summary as a regime map: mean and 95 % interval over the two seeds
    regime = loaded.regime_map("ACC")
    assert list(regime.cell) == [0] and list(regime.chunks) == [""] and regime.n.iloc[0] == 2
    assert regime["mean"].iloc[0] == pytest.approx((expected[100]["ACC"] + expected[101]["ACC"]) / 2)
    assert regime["hi"].iloc[0] - regime["lo"].iloc[0] == pytest.approx(2 * regime["ci95"].iloc[0])
    assert calls[-1][0] == 1.0 and all(0 <= f <= 1 for f, _ in calls)


def test_a_trial_that_raises_is_reported_with_its_config_and_the_others_finish(swept):
    out, result, _ = swept
    failures = json.loads((out / FILES["failures"]).read_text())
    assert sorted(f["key"] for f in failures) == FAILING
    for failure in failures:
        assert failure["status"] == "failed" and failure["fields"] == {"chunks": "100000"}
        assert failure["settings"]["cms_chunk_tokens"] == [100000] and failure["settings"]["seed"] == failure["seed"]
        assert "ConfigError" in failure["error"] and "cms_chunk_tokens" in failure["error"]
        assert "Traceback" in failure["traceback"]
    summary = json.loads((out / FILES["summary"]).read_text())
    assert (summary["trials"], summary["finished"], summary["failed"], summary["complete"]) == (4, 2, 2, True)
    assert [c["cell"] for c in summary["cells"]] == [0]                  # the failing cell has no numbers
    assert set(summary["cells"][0]["metrics"]["ACC"]) == {"mean", "std", "ci95", "n"}


def test_a_resumed_sweep_runs_only_the_missing_trials(swept, tmp_path, capsys):
    out, first, _ = swept
    again = tmp_path / "again"
    shutil.copytree(out, again)
    (again / "trials" / f"{OK[1]}.json").unlink()                         # lost
    whole = (again / "trials" / f"{OK[0]}.json").read_text()
    (again / "trials" / f"{OK[0]}.json").write_text(whole[:len(whole) // 2])   # cut short by a kill
    kept = {k: (again / "trials" / f"{k}.json").stat().st_mtime_ns for k in FAILING}
    assert main(["sweep", "--resume", "--out", str(again)]) == 1          # 1: two trials failed (not run again)
    summary = json.loads((again / FILES["summary"]).read_text())
    assert sorted(summary["last_invocation"]["ran"]) == OK
    assert sorted(summary["last_invocation"]["reused"]) == FAILING
    assert {k: (again / "trials" / f"{k}.json").stat().st_mtime_ns for k in FAILING} == kept
    assert pd.read_csv(again / FILES["records"]).equals(pd.read_csv(out / FILES["records"]))   # the same numbers
    assert '"ran": 2' in capsys.readouterr().out


def test_a_finished_sweep_runs_nothing_again_and_another_spec_is_refused(swept):
    out, _, _ = swept
    result = run_sweep(SPEC, out)                                         # the same spec resumes by default
    assert result.ran == [] and sorted(result.reused) == sorted(OK + FAILING)
    with pytest.raises(SweepError, match="another sweep"):
        run_sweep(dict(SPEC, seeds=[7]), out)


# --- the other experiments' trials, in this process ------------------------------------------------------

def test_a_forget_trial_gives_the_comparisons_numbers_for_its_seed():
    settings = {"models": "transformer", "preset": "tiny", "n_tasks": 2, "steps_per_task": 3, "eval_size": 8}
    spec = SweepSpec.from_dict({"experiment": "forget", "base": settings, "grid": {"lr": [0.003]}, "seeds": [5]})
    trial = spec.trials[0]
    rows = run_trial("forget", trial.settings, trial.seed)
    s = ForgetSettings.from_dict(dict(settings, lr=0.003))
    expected = ComparisonJob(s.base_config(), ["transformer"], [5]).run_to_end().summary["per_seed"][0]
    assert rows[0]["model"] == "transformer" and rows[0]["method"] == "naive"
    assert all(rows[0][k] == expected[k] or math.isnan(expected[k]) for k in ("ACC", "BWT", "forgetting", "learned"))


def test_a_deploy_trial_runs_the_deployment_job():
    base = {"variants": "hope/frozen", "preset": "tiny", "base_tasks": 1, "new_tasks": 2, "rounds": 1,
            "pretrain_steps": 2, "deploy_steps": 2, "eval_every": 1, "eval_size": 4}
    spec = SweepSpec.from_dict({"experiment": "deploy", "base": base, "seeds": [3]})
    trial = spec.trials[0]
    assert trial.settings["first_seed"] == 3 and trial.settings["seeds"] == 1
    rows = run_trial("deploy", trial.settings, trial.seed)
    assert [r["model"] for r in rows] == ["hope/frozen"] and "savings" in rows[0] and "final_ACC" in rows[0]


def test_a_run_that_diverges_is_a_failed_trial_not_numbers():
    spec = SweepSpec.from_dict({"experiment": "run", "seeds": [0],
                                "base": dict(BASE, optimizer="sgd", lr=10.0, grad_clip=0.0)})
    with pytest.raises(TrialError, match="diverged"):
        run_trial("run", spec.trials[0].settings, 0)


# --- the spec ----------------------------------------------------------------------------------------------

def test_a_spec_expands_into_cells_and_trials():
    spec = SweepSpec.from_dict({"experiment": "run", "base": {"preset": "tiny"}, "grid": {"lr": [0.001, 0.003]},
                                "search": {"online.lr": {"loguniform": [1e-4, 1e-2]}, "steps": {"uniform": [3, 9]},
                                           "optimizer": {"choice": ["adamw", "sgd"]}},
                                "samples": 3, "seeds": [0, 1]})
    assert len(spec.cells) == 6 and len(spec.trials) == 12 and spec.trials[1].key == "c0000-s1"
    assert [c["lr"] for c in spec.cells] == [0.001] * 3 + [0.003] * 3
    assert spec.cells[:3] == [dict(c, lr=0.001) for c in spec.cells[3:]]          # the same draws per grid point
    for cell, trial in zip(spec.cells, spec.trials[::2]):
        assert 1e-4 <= cell["online.lr"] <= 1e-2 and isinstance(cell["steps"], int) and 3 <= cell["steps"] <= 9
        assert trial.settings["online"]["lr"] == cell["online.lr"]
        assert trial.settings["stream"]["steps_per_task"] == cell["steps"]
        assert trial.settings["seed"] == trial.settings["stream"]["seed"] == trial.seed
    again = SweepSpec.from_dict(spec.to_dict())
    assert again.cells == spec.cells and again.fingerprint == spec.fingerprint


def test_records_and_the_regime_map_keep_a_swept_model_apart_from_each_rows_model():
    spec = SweepSpec.from_dict({"experiment": "run", "base": {"preset": "tiny"}, "grid": {"model": ["hope"]},
                                "seeds": [0, 1]})
    results = [dict(t.to_dict(), status="ok", rows=[{"model": "hope", "method": "naive", "ACC": 0.5 + t.seed / 10,
                                                     "BWT": None}]) for t in spec.trials]
    records = records_frame(results, spec.field_names)
    assert list(records.columns) == ["trial", "cell", "cell.model", "seed", "model", "method", "metric", "value"]
    assert len(records) == 4 and records.query("metric == 'BWT'").value.isna().all()
    regime = regime_map(strict(summarise(spec, results, [], [])), "ACC")
    assert regime[["cell.model", "model", "n"]].values.tolist() == [["hope", "hope", 2]]
    assert regime["mean"].iloc[0] == pytest.approx(0.55) and regime["ci95"].iloc[0] > 0
    assert regime_map(strict(summarise(spec, results, [], [])), "BWT")["n"].tolist() == [0]


@pytest.mark.parametrize("change, where", [
    ({"experiment": "train"}, "SweepSpec.experiment"),
    ({"grid": {"lrr": [0.1]}}, "SweepSpec.grid.lrr"),
    ({"grid": {"lr": [0.001, 100]}}, "SweepSpec.grid.lr = 100"),
    ({"grid": {"stream.stepz": [1]}}, "SweepSpec.grid.stream.stepz"),
    ({"grid": {"lr": []}}, "SweepSpec.grid.lr"),
    ({"base": {"model": "hopf"}}, "SweepSpec.base.model"),
    ({"grid": {"seed": [1, 2]}}, "SweepSpec.grid.seed"),
    ({"grid": {"data_seed": [1, 2]}}, "SweepSpec.grid.data_seed"),
    ({"grid": {"chunks": ["8"], "cms_chunk_tokens": ["16"]}}, "SweepSpec.grid.cms_chunk_tokens"),
    ({"search": {"lr": {"uniform": [0.1, 0.01]}}, "samples": 2}, "SweepSpec.search.lr"),
    ({"search": {"lr": {"loguniform": [0, 0.01]}}, "samples": 2}, "SweepSpec.search.lr"),
    ({"search": {"lr": {"uniform": [0.1, 20]}}, "samples": 2}, "SweepSpec.search.lr = 20"),
    ({"search": {"lr": {"normal": [0, 1]}}, "samples": 2}, "SweepSpec.search.lr"),
    ({"search": {"chunks": {"uniform": [1, 9]}}, "samples": 2}, "SweepSpec.search.chunks"),
    ({"search": {"lr": {"uniform": [0.001, 0.01]}}}, "SweepSpec.samples"),
    ({"samples": 3}, "SweepSpec.samples"),
    ({"seeds": []}, "SweepSpec.seeds"),
    ({"seeds": [1, 1]}, "SweepSpec.seeds"),
    ({"seeds": None}, "SweepSpec.seeds"),
    ({"grids": {}}, "SweepSpec.grids"),
])
def test_a_bad_spec_is_refused_naming_the_entry(change, where):
    spec = {k: v for k, v in dict(SPEC, **change).items() if v is not None}
    with pytest.raises(ConfigError) as err:
        SweepSpec.from_dict(spec)
    assert isinstance(err.value, SpecError) and str(err.value).startswith(where), str(err.value)


def test_other_experiments_name_their_own_settings():
    with pytest.raises(SpecError, match=r"SweepSpec.grid.seeds"):
        SweepSpec.from_dict({"experiment": "forget", "grid": {"seeds": [2]}, "seeds": [0]})
    with pytest.raises(SpecError, match=r"SweepSpec.grid.first_seed"):
        SweepSpec.from_dict({"experiment": "deploy", "grid": {"first_seed": [2]}, "seeds": [0]})
    spec = SweepSpec.from_dict({"experiment": "forget", "base": {"models": "hope", "preset": "tiny"},
                                "grid": {"chunks": ["8,32"], "steps": [5]}, "seeds": [0]})
    assert spec.trials[0].settings["cms_chunk_tokens"] == [8, 32] and spec.trials[0].settings["steps_per_task"] == 5


def test_the_cli_refuses_a_bad_spec_with_exit_code_2_and_no_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(SPEC, grid={"lr": [0.001, 100]})))
    assert main(["sweep", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "SweepSpec.grid.lr = 100" in err and "RunConfig.lr" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "trials").exists()                   # nothing started
    bad.write_text("{not json")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["sweep", "--resume", "--out", str(tmp_path / "empty")]) == 2
    assert "no sweep to resume" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["incontext", "tracking", "sleep_arms", "race"])
def test_a_benchmark_imported_before_the_sweep_package_is_still_an_experiment(module):
    """Importing a benchmark first imports lab.sweep from inside it, while the benchmark is half-made:
    its experiment must still be found (a fresh interpreter, so the import order is the one tested)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (f"import lab.benchmarks.{module} as m\n"
            "from lab.sweep.spec import SweepSpec\n"
            "SweepSpec.from_dict({'experiment': m.EXPERIMENT.name, 'base': {}, 'seeds': [0]})\n")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-800:]
