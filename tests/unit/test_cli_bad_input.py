"""Every bad CLI input ends before any work with exit 2 and a message that names the option;
an interrupted command says what was and was not written."""
from __future__ import annotations

import pytest

from lab import cli
from lab.cli import main
from lab.records import METRICS


@pytest.fixture
def no_work(monkeypatch):
    """Any training reached by a command fails the test: the check must come first."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("work started before the input was checked")
    import lab.bench
    import lab.engine
    import lab.forgetting
    import lab.sleep
    monkeypatch.setattr(lab.engine.Run, "__init__", refuse)
    monkeypatch.setattr(lab.forgetting, "run_settings", refuse)
    monkeypatch.setattr(lab.sleep, "sleep_experiment", refuse)
    monkeypatch.setattr(lab.bench, "run_bench", refuse)


@pytest.mark.parametrize("argv, named", [
    (["train", "--tasks", "0", "--out", "{tmp}/a"], "n_tasks"),
    (["train", "--steps", "0", "--out", "{tmp}/a"], "--steps 0"),
    (["train", "--steps", "-5", "--out", "{tmp}/a"], "--steps -5"),
    (["train", "--preset", "tiny", "--out", ""], "--out ''"),
    (["train", "--preset", "tiny", "--out", "{tmp}/file/inside"], "cannot be written"),
    (["forget", "--out", "{tmp}/file/inside"], "cannot be written"),
    (["forget", "--keep-metrics", "bogus", "--out", "{tmp}/b"], "--keep-metrics 'bogus'"),
    (["forget", "--keep-metrics", ",", "--out", "{tmp}/b"], "--keep-metrics"),
    (["forget", "--seeds", "0", "--out", "{tmp}/b"], "seeds"),
    (["forget", "--workers", "0", "--out", "{tmp}/b"], "--workers 0"),
    (["sleep", "--preset", "tiny", "--out", "{tmp}/file/inside"], "cannot be written"),
    (["bench", "--repeats", "0"], "--repeats 0"),
    (["bench", "--repeats", "1", "--out", "{tmp}/file/inside/b.json"], "cannot be written"),
    (["bench", "--repeats", "1", "--out", ""], "--out ''"),
])
def test_bad_input_exits_2_with_a_message_before_any_work(argv, named, tmp_path, capsys, no_work):
    (tmp_path / "file").write_text("a file where a folder is wanted")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err and named in err, err
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


def test_keep_metrics_lists_what_a_run_records():
    from lab.engine import Run, RunConfig
    from lab.knowledge import record_knowledge
    from lab.tasks.stream import StreamConfig

    run = Run(RunConfig(model="hope", preset="tiny", stream=StreamConfig(n_tasks=2, steps_per_task=2), eval_every=1))
    run.step(4)
    record_knowledge(run)
    recorded = set(run.records().metric)
    assert recorded <= set(METRICS), recorded - set(METRICS)
    assert {"loss", "accuracy", "drift", "knowledge_drop"} <= recorded


def test_ctrl_c_ends_with_a_message_and_status_130(monkeypatch, capsys):
    def interrupted(_args):
        raise KeyboardInterrupt
    monkeypatch.setitem(cli.COMMANDS, "bench", interrupted)
    assert main(["bench"]) == 130
    assert "interrupted" in capsys.readouterr().err
