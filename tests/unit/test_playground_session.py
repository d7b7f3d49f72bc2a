"""The Playground's session without Streamlit: stepping, history, replay, probes, URL set-up,
refused settings, snapshots (lab.sessions.playground)."""
from __future__ import annotations

import pytest
import torch

from lab.sessions.playground import ModelHistory, PlaygroundSession
from lab.engine import Run, RunConfig
from lab.tasks.stream import StreamConfig

TINY = RunConfig(model="transformer", preset="tiny", eval_every=5,
                 stream=StreamConfig(n_tasks=2, steps_per_task=15))


@pytest.fixture(scope="module")
def trained():
    session = PlaygroundSession(TINY)
    session.step(20)
    return session


def test_advance_takes_at_least_one_step_and_stops_at_the_end():
    session = PlaygroundSession(TINY)
    assert session.advance(0.0) == 0 and not session.busy          # nothing queued: nothing done
    session.play()
    assert session.advance(0.0) == 1
    while session.can_train:
        session.advance(0.05)
    assert session.run.done and session.run.step_count == 30 and not session.can_train
    assert not session.playing and not session.busy                 # the end of the stream stops the play


def test_a_replay_is_animated_by_the_page_not_by_a_worker():
    session = PlaygroundSession(TINY)
    session.step(10)
    session.start_replay()
    assert session.busy and not session.wants_worker
    first = session.shown_step
    session.animate()
    assert session.shown_step > first


def test_history_keeps_the_parameters_of_every_evaluation(trained):
    history = trained.history
    assert list(history.states) == [0, 5, 10, 15, 20]
    assert history.step_at_or_before(13) == 10
    step, model = history.model_at(13)
    saved = history.states[10]
    assert step == 10 and all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    live = trained.run.model.state_dict()
    assert any(not torch.equal(live[k], saved[k]) for k in saved)


def test_history_thins_out_evenly_past_its_capacity():
    run = Run(TINY)
    history = ModelHistory(run, capacity=4)
    run.step(30)
    steps = list(history.states)
    assert len(steps) <= 4 and steps[0] == 0 and steps[-1] == 30


def test_history_capacity_is_bounded_in_bytes():
    run = Run(TINY)
    state_bytes = sum(t.numel() * t.element_size() for t in run.model.state_dict().values())
    assert ModelHistory(run, capacity=200, max_bytes=10 * state_bytes).capacity == 10
    assert ModelHistory(run, capacity=200, max_bytes=1).capacity == 4


def test_shown_step_follows_the_latest_unless_scrubbed(trained):
    trained.view_step = None
    assert trained.shown_step == 20
    trained.view_step = 7
    assert trained.shown_step == 7
    assert trained.records_until(7)["step"].max() <= 7
    trained.view_step = None


def test_replay_walks_from_the_start_to_the_latest_step():
    session = PlaygroundSession(TINY)
    session.step(12)
    session.start_replay()
    assert session.replaying and session.shown_step == 0
    seen = []
    while session.replay_tick(frames=4):
        seen.append(session.shown_step)
    assert seen == [3, 6, 9] and session.view_step is None and not session.replaying


def test_probes_use_the_recorded_model_and_are_cached(trained):
    step, frame = trained.probe("attention", 12, task=1, example=3)
    assert step == 10 and len(frame) and set(frame["layer"]) == {0, 1}
    assert trained.probe("attention", 14, task=1, example=3)[1] is frame
    other = trained.probe("attention", 20, task=1, example=3)[1]
    assert not other["weight"].equals(frame["weight"])
    assert trained.input_tokens(1, 3).shape == (1, trained.run.stream.seq_len)
    assert trained.has_attention and not trained.has_memory


def test_records_csv_has_the_tidy_columns(trained):
    header = trained.records_csv().splitlines()[0]
    assert header == "step,tokens,phase,model,task,level,metric,value"


def test_a_url_with_bad_values_gives_one_notice_each_and_the_defaults():
    session = PlaygroundSession.from_params({"model": "gpt", "lr": "banana", "steps": "12", "preset": "tiny"})
    texts = [text for kind, text in session.notices.pop() if kind == "error"]
    assert len(texts) == 2 and any("model=gpt" in t for t in texts) and any("lr=banana" in t for t in texts)
    assert session.config.model == RunConfig().model and session.config.stream.steps_per_task == 12
    assert session.notices.pop() == []                               # each notice is shown once


def test_a_url_value_that_validates_but_cannot_run_falls_back_to_its_default():
    session = PlaygroundSession.from_params({"preset": "tiny", "steps": "2", "tasks": "2", "chunks": "1,100000"})
    (kind, text), = session.notices.pop()
    assert kind == "error" and "chunks" in text and "cms_chunk_tokens" in text
    assert session.config.cms_chunk_tokens == () and session.run.stream.total_steps == 4


def test_a_setting_that_cannot_run_is_refused_and_the_run_is_kept():
    session = PlaygroundSession(TINY)
    session.step(3)
    run = session.run
    assert not session.configure(TINY.replace(cms_chunk_tokens=(10**6,)))
    (kind, text), = session.notices.pop()
    assert kind == "error" and "previous run is kept" in text and "cms_chunk_tokens" in text
    assert session.run is run and run.step_count == 3
    assert session.configure(TINY.replace(seed=4)) and session.run is not run and session.config.seed == 4


def test_snapshot_and_restore_come_back_to_the_same_records():
    session = PlaygroundSession(TINY)
    session.step(7)
    snap = session.snapshot()
    session.step(8)
    expected = session.records().copy()
    session.restore(snap)
    assert session.run.step_count == 7 and list(session.history.states) == [0, 5]
    session.step(8)
    assert session.records().equals(expected)


def test_a_slice_ends_at_the_next_step_when_a_page_waits_to_draw():
    import threading
    session = PlaygroundSession(TINY)
    session.play()
    def draw():
        with session.lock:
            pass

    with session.lock:                                    # stands for a worker inside its slice
        page = threading.Thread(target=draw)
        page.start()                                      # the page waits for the lock
        while not session.lock.waited_for:
            pass
        assert session.advance(budget_s=30.0) == 1        # one step, not thirty seconds of them
    page.join(5)
    assert not page.is_alive() and not session.lock.waited_for
    assert session.advance(budget_s=0.05) >= 1            # nobody waits: the slice trains on
