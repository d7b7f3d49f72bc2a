"""Sleep (lab.sleep) and knowledge location (lab.knowledge): the stages, their guarantees, the
no-task-data rule, the knowledge matrix, and the `python -m lab sleep` command."""
from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lab.cli import main
from lab.config import ConfigError
from lab.engine import Run, RunConfig
from lab.knowledge import KNOWLEDGE_COLUMNS, knowledge_matrix, level_removed, matrix_dict, record_knowledge, \
    track_knowledge
from lab.models import build_model
from lab.sleep import SleepConfig, SleepError, sleep, sleep_experiment, unit_importance
from lab.tasks import Task
from lab.tasks.stream import Stream, StreamConfig

torch.set_num_threads(1)
CPU = torch.device("cpu")
STREAM = dict(n_tasks=2, steps_per_task=12, batch_size=4, words=2, lexicon_size=6, target_words=6)
FAST_SLEEP = dict(dream_samples=16, dream_len=6, distill_steps=8, distill_batch=8, grow_units=8, record_every=4,
                  repair_steps=3)


def run_config(model="hope", **kw):
    kw.setdefault("cms_chunk_tokens", (20, 40, 80) if model == "hope" else ())
    return RunConfig(model=model, preset="tiny", eval_size=8, eval_every=12, lr=3e-3,
                     stream=StreamConfig(**STREAM), **kw)


@pytest.fixture(scope="module")
def trained():
    """(config, state) of a tiny HOPE trained on two tasks; each test builds its own Run."""
    cfg = run_config()
    run = Run(cfg, CPU).step(24)
    return cfg, copy.deepcopy(run.model.state_dict())


def fresh_run(trained) -> Run:
    cfg, state = trained
    run = Run(cfg, CPU)
    run.model.load_state_dict(state)
    run.step_count = 24
    return run


def tags(run):
    return [run.stream.vocab.tag(i) for i in range(run.stream.vocab.n_languages)]


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --- config --------------------------------------------------------------------------------------

def test_config_rejects_bad_values_by_name():
    with pytest.raises(ConfigError, match="distill_steps"):
        SleepConfig(distill_steps=-1)
    with pytest.raises(ConfigError, match="knowledge_mode"):
        SleepConfig(knowledge_mode="delete")
    with pytest.raises(ConfigError, match="distill"):
        SleepConfig(dream=False)                 # distillation needs dreams
    with pytest.raises(ConfigError, match="distill_params"):
        SleepConfig(grow=False, distill_params="new")
    assert SleepConfig.from_dict({"grow_units": "12", "prune": "off"}) == SleepConfig(grow_units=12, prune=False)


@pytest.mark.parametrize("model", ["transformer", "titans"])
def test_a_single_level_model_cannot_sleep(model):
    run = SimpleNamespace(model=build_model(model, "tiny", vocab_size=30), step_count=0, tokens_seen=0)
    with pytest.raises(SleepError, match="1 CMS level"):
        sleep(run, SleepConfig(**FAST_SLEEP), prompt_tokens=[3])


def test_levels_must_exist_and_differ(trained):
    run = fresh_run(trained)
    with pytest.raises(SleepError, match="slow_level"):
        sleep(run, SleepConfig(slow_level=5, **FAST_SLEEP), prompt_tokens=tags(run))
    with pytest.raises(SleepError, match="differ"):
        sleep(run, SleepConfig(fast_level=2, **FAST_SLEEP), prompt_tokens=tags(run))


# --- grow and prune ------------------------------------------------------------------------------

def test_growing_leaves_the_function_exactly_unchanged():
    model = build_model("hope", "tiny", vocab_size=30).eval()
    x = torch.randint(0, 30, (4, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(x)
    n_before = model.n_params()
    d = model.config.d_model
    for _, cms in model.cms_blocks():
        cms.levels[2].grow(7, torch.Generator().manual_seed(1))
    with torch.no_grad():
        after = model(x)
    assert torch.equal(before, after)
    assert model.n_params() == n_before + model.config.n_layers * 7 * (2 * d + 1)
    level = model.cms_blocks()[0][1].levels[2]
    assert level.up.weight[-7:].abs().sum() > 0                      # the new units are live…
    assert torch.equal(level.down.weight[:, -7:], torch.zeros(d, 7))  # …and contribute nothing
    with torch.no_grad():                                             # the check can fail:
        level.down.weight[:, -1] = 1.0
        assert not torch.equal(model(x), before)


def test_weight_importance_is_the_stated_product():
    model = build_model("hope", "tiny", vocab_size=30)
    level = model.cms_blocks()[0][1].levels[1]
    expected = torch.stack([level.down.weight[:, i].norm() * level.up.weight[i].norm()
                            for i in range(level.hidden_size)])
    assert torch.allclose(unit_importance(level, "weight"), expected)


def test_pruning_the_grown_zero_units_restores_the_original_exactly(trained):
    run = fresh_run(trained)
    original = params(run.model)
    config = SleepConfig(distill=False, reset=False, grow_units=10, importance="weight", **{
        k: v for k, v in FAST_SLEEP.items() if k != "grow_units"})
    report = sleep(run, config, prompt_tokens=tags(run))
    assert report.param_counts()["grown"] > report.param_counts()["before"] == report.param_counts()["after_prune"]
    assert report.pruned_units == 10
    after = params(run.model)
    assert after.keys() == original.keys()
    for k in original:                             # the new units had importance 0: exactly they went
        assert torch.equal(after[k], original[k]), k


def test_keep_units_keeps_the_chosen_units():
    model = build_model("hope", "tiny", vocab_size=30)
    level = model.cms_blocks()[0][1].levels[0]
    up, down = level.up.weight.detach().clone(), level.down.weight.detach().clone()
    keep = torch.tensor([3, 0, 5])
    level.keep(keep)
    assert level.hidden_size == 3
    assert torch.equal(level.up.weight, up[keep]) and torch.equal(level.down.weight, down[:, keep])


def test_prune_budget_and_restore_across_a_shape_change(trained):
    run = fresh_run(trained)
    base = run.model.cms_blocks()[0][1].levels[2].hidden_size
    config = SleepConfig(prune_budget=base + 3, importance="activation", **FAST_SLEEP)
    sleep(run, config, prompt_tokens=tags(run))
    assert all(cms.levels[2].hidden_size == base + 3 for _, cms in run.model.cms_blocks())
    assert run.model.config.cms_hidden[2] == base + 3
    run.step(2)                                    # the rebuilt optimizers train the new shape
    state = copy.deepcopy(run.model.state_dict())
    other = fresh_run(trained)
    assert other.model.match_shapes(state)
    other.model.load_state_dict(state)
    assert other.model.config.cms_hidden == run.model.config.cms_hidden


# --- the sleep phase -----------------------------------------------------------------------------

class NoTaskData:
    """Only what sleep may touch; any task data (stream, eval sets, config) raises."""

    def __init__(self, run):
        self._run = run
        self.model, self.recorder, self.initial_state = run.model, run.recorder, run.initial_state
        self.step_count, self.tokens_seen = run.step_count, run.tokens_seen
        self.rebuilt = 0

    def rebuild_optimizers(self):
        self.rebuilt += 1
        self._run.rebuild_optimizers()

    def train(self, phase, iterations):
        """The engine's loop, for the distillation phase (its batches are dreams: the stream and
        the held-out sets stay forbidden by the monkeypatches of the test)."""
        assert phase.name == "sleep"
        return self._run.train(phase, iterations)

    def __getattr__(self, name):
        raise AssertionError(f"sleep reached run.{name}: it must see no task data")


def test_sleep_sees_no_task_data(trained, monkeypatch):
    run = fresh_run(trained)
    prompt = tags(run)

    def forbidden(*_args, **_kwargs):
        raise AssertionError("sleep drew task data")
    for cls, name in ((Task, "sample"), (Task, "eval_set"), (Task, "_generate"), (Stream, "batch"),
                      (Stream, "eval_sets")):
        monkeypatch.setattr(cls, name, forbidden)
    proxy = NoTaskData(run)
    with pytest.raises(AssertionError, match="stream"):
        proxy.stream
    report = sleep(proxy, SleepConfig(importance="activation", prompts="tags", **FAST_SLEEP), prompt_tokens=prompt)
    assert proxy.rebuilt == 1 and report.dreams.shape == (16, 6)
    assert report.dreams[:, 0].tolist() == [prompt[i % len(prompt)] for i in range(16)]


def _kl(teacher, student, tokens):
    """KL(teacher ‖ student) per position, computed here independently of lab.sleep."""
    with torch.no_grad():
        return float(F.kl_div(torch.log_softmax(student(tokens), -1), torch.log_softmax(teacher(tokens), -1),
                              log_target=True, reduction="none").sum(-1).mean())


def test_sleep_resets_the_fast_level_and_distillation_lowers_the_kl(trained):
    run = fresh_run(trained)
    before = params(run.model)
    teacher = copy.deepcopy(run.model).eval()
    reset_only = copy.deepcopy(run.model).eval()
    reset_only.reset_level(0, run.initial_state)
    report = sleep(run, SleepConfig(**FAST_SLEEP, distill_lr=3e-3), prompt_tokens=tags(run))
    dreams = report.dreams
    assert _kl(teacher, run.model.eval(), dreams) < _kl(teacher, reset_only, dreams)
    assert 0 <= report.kl["distilled"] < report.kl["reset"]
    assert report.kl["reset"] == pytest.approx(_kl(teacher, reset_only, dreams), rel=1e-4)
    after = params(run.model)
    fast = [k for k in after if ".cms.levels.0." in k]
    assert fast and all(torch.equal(after[k], run.initial_state[k]) for k in fast)
    assert any(not torch.equal(before[k], run.initial_state[k]) for k in fast)   # it was trained away
    others = [k for k in after if ".cms.levels." not in k]
    assert all(torch.equal(after[k], before[k]) for k in others)                # the rest is frozen
    assert report.distill.stage.tolist() == ["distill"] * 8 + ["repair"] * 3 and set(report.drift.level) == {0, 2}
    rows = run.records()
    rows = rows[rows.phase == "sleep"]
    assert {"params", "distill_kl", "repair_kl", "drift", "kl_reset", "kl_distilled", "kl_pruned"} <= set(rows.metric)
    assert rows[(rows.metric == "params") & (rows.level == -1)].value.tolist() == [
        report.param_counts()[s] for s in ("before", "grown", "after_prune")]


def test_every_stage_off_changes_nothing(trained):
    run = fresh_run(trained)
    before = params(run.model)
    off = SleepConfig(dream=False, grow=False, distill=False, reset=False, prune=False)
    report = sleep(run, off)
    assert report.dreams is None and report.distill.empty
    after = params(run.model)
    assert all(torch.equal(after[k], before[k]) for k in before)
    run.step(1)                                      # and the run trains on


def test_reset_only_touches_only_the_fast_level(trained):
    run = fresh_run(trained)
    before = params(run.model)
    sleep(run, SleepConfig(dream=False, grow=False, distill=False, prune=False))
    after = params(run.model)
    for k in before:
        expected = run.initial_state[k] if ".cms.levels.0." in k else before[k]
        assert torch.equal(after[k], expected), k


def test_sleep_is_deterministic(trained):
    a, b = fresh_run(trained), fresh_run(trained)
    ra = sleep(a, SleepConfig(**FAST_SLEEP), prompt_tokens=tags(a))
    rb = sleep(b, SleepConfig(**FAST_SLEEP), prompt_tokens=tags(b))
    assert torch.equal(ra.dreams, rb.dreams)
    assert ra.distill.equals(rb.distill)
    pa, pb = params(a.model), params(b.model)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


# --- knowledge location --------------------------------------------------------------------------

def test_knowledge_matrix_is_accuracy_drop(trained):
    run = fresh_run(trained)
    names = run.stream.task_names
    frame = knowledge_matrix(run.model, run.eval_sets, names, run.initial_state, "reset")
    assert list(frame.columns) == KNOWLEDGE_COLUMNS and len(frame) == 3 * len(names)
    assert torch.allclose(torch.tensor(frame.full - frame.ablated), torch.tensor(frame["drop"]))
    # the model comes back intact
    x = run.eval_sets[0][0]
    with torch.no_grad():
        y0 = run.model(x)
        with level_removed(run.model, 1, "bypass"):
            y1 = run.model(x)
        assert not torch.equal(y0, y1) and torch.equal(run.model(x), y0)
    # a level at its reference state holds nothing: resetting it drops exactly 0
    run.model.reset_level(0, run.initial_state)
    frame = knowledge_matrix(run.model, run.eval_sets, names, run.initial_state, "reset")
    assert (frame[frame.level == 0]["drop"] == 0).all()
    # a level whose output is zero holds nothing either: bypassing it drops exactly 0
    with torch.no_grad():
        for _, cms in run.model.cms_blocks():
            cms.levels[1].down.weight.zero_()
            cms.levels[1].down.bias.zero_()
    frame = knowledge_matrix(run.model, run.eval_sets, names, mode="bypass")
    assert (frame[frame.level == 1]["drop"] == 0).all()
    table = matrix_dict(frame)
    assert table["levels"] == [0, 1, 2] and table["tasks"] == names and len(table["drop"][0]) == len(names)


def test_record_knowledge_writes_tidy_rows(trained):
    run = fresh_run(trained)
    n = len(run.recorder)
    record_knowledge(run, phase="sleep")
    rows = run.records().iloc[n:]
    assert set(rows.metric) == {"knowledge_drop"} and set(rows.phase) == {"sleep"}
    assert sorted(set(rows.level)) == [0, 1, 2] and set(rows.task) == set(run.stream.task_names)
    run = Run(run_config(), CPU)                     # and over time, after every evaluation
    track_knowledge(run, every=1)
    run.step(12)
    frame = run.records()
    steps = set(frame[(frame.metric == "knowledge_drop") & (frame.phase == "active")].step)
    assert steps == set(frame[frame.metric == "accuracy"].step) - {0}


# --- the experiment and the command --------------------------------------------------------------

def test_experiment_arms_share_the_stream_and_the_fast_level_is_empty_after_sleep():
    cfg = run_config().replace(stream=StreamConfig(**dict(STREAM, steps_per_task=6)).to_dict())
    result = sleep_experiment(cfg, SleepConfig(**FAST_SLEEP), when="end", device=CPU)
    s = result.summary
    tasks = s["tasks"]
    for key in ("before_sleep", "after_sleep", "control_no_sleep", "control_reset_only", "reset_only_now"):
        assert set(s[key]) == set(tasks)
    # with one sleep at the end, the arms are identical until then
    assert s["before_sleep"] == s["control_no_sleep"]
    assert s["control_reset_only"] == s["reset_only_now"]
    # after the sleep the fast level is at its reference: resetting it drops nothing
    assert s["knowledge_after"]["drop"][0] == [0.0] * len(tasks)
    assert s["params"]["after_prune"] == s["params"]["before"] < s["params"]["grown"]
    assert set(result.records.arm) == {"sleep", "reset_only", "no_sleep"}
    # the arms fork from one run: the no-sleep arm is the plain run, record for record
    plain = Run(cfg, CPU).step(cfg.stream.n_tasks * cfg.stream.steps_per_task)
    assert s["control_no_sleep"] == dict(zip(tasks, plain.last_eval_accuracy()))
    mine = result.records[result.records.arm == "no_sleep"].drop(columns="arm").reset_index(drop=True)
    assert mine.equals(plain.records())


def test_cli_sleep_writes_the_summary(tmp_path):
    out = tmp_path / "s"
    code = main(["--device", "cpu", "sleep", "--model", "hope", "--preset", "tiny", "--tasks", "2",
                 "--steps-per-task", "2", "--seed", "3", "--eval-size", "4", "--out", str(out),
                 "--set", "dream_samples=4", "--set", "dream_len=4", "--set", "distill_steps=2", "--set", "grow_units=4"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("before_sleep", "after_sleep", "control_no_sleep", "control_reset_only",
                "knowledge_before", "knowledge_after", "params"):
        assert key in summary, key
    assert set(summary["params"]) == {"before", "grown", "after_prune"}
    assert len(summary["knowledge_before"]["drop"]) == 3 and len(summary["knowledge_before"]["drop"][0]) == 2
    assert (out / "records.csv").exists() and (out / "knowledge.csv").exists()
    assert (out / "dreams.txt").read_text().strip()


def test_cli_sleep_rejects_a_single_level_model_and_bad_settings(tmp_path, capsys):
    assert main(["sleep", "--model", "transformer", "--preset", "tiny", "--tasks", "2", "--steps-per-task", "2",
                 "--out", str(tmp_path / "t")]) == 2
    assert "CMS level" in capsys.readouterr().err
    assert main(["sleep", "--preset", "tiny", "--out", str(tmp_path / "u"), "--set", "temperature=0"]) == 2
    assert "temperature" in capsys.readouterr().err
    assert main(["sleep", "--preset", "tiny", "--out", str(tmp_path / "v"), "--arms", "sleep,nap"]) == 2
    assert "nap" in capsys.readouterr().err


def test_optimizer_reset_arm_only_rebuilds_the_optimizers():
    cfg = run_config().replace(stream=StreamConfig(**dict(STREAM, steps_per_task=4)).to_dict())
    result = sleep_experiment(cfg, SleepConfig(**FAST_SLEEP), arms=("optimizer_reset", "no_sleep"), device=CPU)
    s = result.summary
    assert set(s["control_optimizer_reset"]) == set(s["tasks"]) and "after_sleep" not in s
    rows = result.records[(result.records.arm == "optimizer_reset") & (result.records.phase == "sleep")]
    assert set(rows.metric) == {"params", "drift", "accuracy", "knowledge_drop"}
    assert (rows[rows.metric == "drift"].value == 0).all()
    with pytest.raises(ValueError, match="nap"):
        sleep_experiment(cfg, arms=("nap",))


def test_restore_undoes_a_sleep_that_kept_the_shapes(trained):
    """The default budget prunes back to the old width, so the engine's snapshot/restore works
    across a sleep (new parameter objects, rebuilt optimizers) and training continues exactly."""
    run, plain = fresh_run(trained), fresh_run(trained)
    snap = run.snapshot()
    sleep(run, SleepConfig(**FAST_SLEEP))
    run.restore(snap)
    run.step(3)
    plain.step(3)
    a, b = params(run.model), params(plain.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
