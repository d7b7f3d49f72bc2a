"""The Sleep page's session without Streamlit (lab.sessions.sleep): train task by task, sleep on
request or after each task, refuse bad settings, keep a run's settings, snapshot and restore."""
from __future__ import annotations

import pandas as pd

from lab.engine import Run
from lab.sessions import SESSIONS
from lab.sessions.sleep import SleepSession, SleepSettings
from lab.sleep import sleep_and_map

TINY = SleepSettings(preset="tiny", steps=4, eval_size=8, distill_steps=3, dream_samples=8, repair_steps=1)


def work(session: SleepSession) -> None:
    while session.busy:
        session.advance(0.05)


def test_the_session_is_registered_by_its_kind():
    assert SESSIONS["sleep"] is SleepSession


def test_train_then_sleep_matches_the_engine_driven_by_hand():
    session = SleepSession(TINY)
    assert not session.busy and session.run is None
    session.request_train()
    assert session.busy and session.progress[0] == 0.0
    work(session)
    assert session.run.step_count == 4 and session.sleeps == [] and session.tasks_trained == 1
    session.request_sleep()
    work(session)
    assert len(session.sleeps) == 1 and session.last_sleep["step"] == 4 and session.last_sleep["task"] == "lang1"
    assert set(session.last_sleep["before"].columns) == {"level", "task", "drop"}
    by_hand = Run(TINY.run_config()).step(4)
    by_hand.evaluate()
    sleep_and_map(by_hand, TINY.sleep_config())
    pd.testing.assert_frame_equal(session.records(), by_hand.records(), check_exact=True)


def test_auto_sleep_sleeps_at_the_end_of_each_task():
    session = SleepSession(TINY.replace(auto_sleep=True))
    session.request_train()
    work(session)
    session.request_train()
    work(session)
    assert [s["step"] for s in session.sleeps] == [4, 8] and [s["task"] for s in session.sleeps] == ["lang1", "lang2"]


def test_a_bad_setting_is_a_notice_and_nothing_changes():
    session = SleepSession(TINY)
    assert not session.configure(steps=0)
    (kind, text), = session.notices.pop()
    assert kind == "error" and "steps" in text and "between 1 and 2000" in text
    assert session.settings == TINY


def test_new_settings_apply_to_the_next_run_only():
    session = SleepSession(TINY)
    session.request_train()
    work(session)
    run = session.run
    assert session.configure(steps=6) and session.settings_differ and session.run is run
    session.request_train()
    work(session)
    assert session.run is not run and session.run.step_count == 6 and not session.settings_differ


def test_start_over_and_snapshot_restore():
    session = SleepSession(TINY)
    session.request_train()
    session.request_sleep()
    work(session)
    snap = session.snapshot()
    session.request_train()
    work(session)
    expected = session.records().copy()
    session.restore(snap)
    assert session.run.step_count == 4 and len(session.sleeps) == 1
    session.request_train()
    work(session)
    pd.testing.assert_frame_equal(session.records(), expected, check_exact=True)
    session.reset()
    assert session.run is None and session.sleeps == [] and not session.busy


def test_a_diverging_run_is_a_warning_and_stops_the_work():
    session = SleepSession(TINY)
    session.request_train()
    original = session.run.model.forward
    session.run.model.forward = lambda tokens: original(tokens) * float("nan")
    work(session)
    (kind, text), = session.notices.pop()
    assert kind == "warning" and "not finite" in text and not session.busy and not session.can_train
