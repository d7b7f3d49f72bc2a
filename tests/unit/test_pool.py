"""The training pool (lab.sessions.pool): fair slices, a queue with places, heartbeats, freeing."""
from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest

from lab.config import Config, bounded
from lab.engine import RunConfig
from lab.sessions.base import Session, exclusive
from lab.sessions.playground import PlaygroundSession
from lab.sessions.pool import TrainingPool
from lab.tasks.stream import StreamConfig
from dataclasses import dataclass


@dataclass(frozen=True)
class CountSettings(Config):
    units: int = bounded(50, 0, 10_000, "units of work")


class Counter(Session):
    """Work in units of ~1 ms; `fail_at` makes a slice raise."""

    kind = ""                                  # not registered
    Settings = CountSettings

    def __init__(self, units: int = 50, fail_at: int | None = None):
        super().__init__()
        self.left, self.done, self.fail_at = units, 0, fail_at

    def _apply(self, settings):
        self.left = settings.units

    @property
    def busy(self) -> bool:
        return self.left > 0

    @exclusive
    def advance(self, budget_s: float = 0.01) -> int:
        if self.fail_at is not None and self.done >= self.fail_at:
            raise RuntimeError("the model diverged")
        self.left -= 1
        self.done += 1
        time.sleep(0.001)
        return 1

    @exclusive
    def stop(self) -> None:
        self.left = 0

    def snapshot(self) -> dict:
        return {}

    def restore(self, snap: dict) -> None:
        pass


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def pool():
    p = TrainingPool(workers=2, max_trainers=3, slice_s=0.001, idle_timeout_s=60)
    yield p
    p.close()


def test_slices_go_round_robin():
    order = []
    p = TrainingPool(workers=1, max_trainers=3, slice_s=0.001)
    sessions = [Counter(units=4) for _ in range(3)]
    for i, s in enumerate(sessions):
        s.advance = (lambda s=s, i=i: lambda budget_s: (order.append(i), Counter.advance(s, budget_s))[1])()
    try:
        with sessions[0].lock:                      # hold the first until all three are queued
            for s in sessions:
                p.want(s)
        assert wait_until(lambda: not any(s.busy for s in sessions))
    finally:
        p.close()
    assert order == [0, 1, 2] * 4


def test_every_admitted_session_finishes(pool):
    sessions = [Counter(units=40) for _ in range(3)]
    for s in sessions:
        pool.want(s)
    assert wait_until(lambda: not any(s.busy for s in sessions))
    assert [s.done for s in sessions] == [40, 40, 40]
    assert wait_until(lambda: pool.load == {"training": 0, "waiting": 0})


def test_beyond_the_trainers_sessions_wait_in_order_and_are_admitted_later(pool):
    hold = [Counter(units=10**6) for _ in range(3)]
    later = [Counter(units=5) for _ in range(2)]
    for s in hold + later:
        pool.want(s)
    assert [pool.place(s) for s in hold] == [0, 0, 0]
    assert [pool.place(s) for s in later] == [1, 2]
    assert pool.place(Counter()) is None
    assert all(s.done == 0 for s in later)
    hold[0].stop()                                  # a trainer leaves: the first waiting one is admitted
    assert wait_until(lambda: later[0].done == 5)
    assert wait_until(lambda: pool.place(later[0]) is None)
    for s in hold:
        s.stop()
    assert wait_until(lambda: later[1].done == 5)


def test_a_session_nobody_asks_for_is_paused_with_a_notice():
    now = [0.0]
    p = TrainingPool(workers=1, max_trainers=2, slice_s=0.001, idle_timeout_s=5, clock=lambda: now[0])
    try:
        s = Counter(units=10**6)
        p.want(s)
        assert wait_until(lambda: s.done > 3)
        now[0] = 100.0                              # the page stopped asking (tab closed)
        assert wait_until(lambda: not s.busy)
        assert wait_until(lambda: p.place(s) is None)
        assert any("Paused" in text for _, text in s.notices.pop())
    finally:
        p.close()


def test_the_pool_does_not_keep_a_closed_session_alive(pool):
    s = Counter(units=10**6)
    pool.want(s)
    assert wait_until(lambda: s.done > 3)
    ref = weakref.ref(s)
    with s.lock:                                    # no worker holds it right now
        del s
    assert wait_until(lambda: (gc.collect() or True) and ref() is None)
    assert wait_until(lambda: pool.load["training"] == 0)


def test_the_workers_collect_a_closed_runs_cyclic_garbage():
    """A run is cyclic (its phases hold its bound methods): with automatic collection off, only
    the pool's periodic collection frees a closed Playground session's model."""
    session = PlaygroundSession(RunConfig(model="transformer", preset="tiny"))
    model = weakref.ref(session.run.model)
    gc.disable()
    try:
        del session
        assert model() is not None                 # refcounting alone does not free it
        p = TrainingPool(workers=1, max_trainers=1, collect_every_s=0.05)
        try:
            assert wait_until(lambda: model() is None, timeout=30)
        finally:
            p.close()
    finally:
        gc.enable()


def test_a_failing_session_stops_with_a_message_and_the_others_go_on(pool):
    bad, good = Counter(units=100, fail_at=3), Counter(units=30)
    pool.want(bad)
    pool.want(good)
    assert wait_until(lambda: not good.busy and not bad.busy)
    assert good.done == 30 and bad.done == 3
    assert any("diverged" in text for kind, text in bad.notices.pop() if kind == "error")


def test_a_page_holding_the_lock_pauses_the_work(pool):
    s = Counter(units=10**6)
    pool.want(s)
    assert wait_until(lambda: s.done > 0)
    with s.lock:
        seen = s.done
        time.sleep(0.05)
        assert s.done == seen                       # nothing changes while the page draws
    assert wait_until(lambda: s.done > seen)
    s.stop()


def test_a_run_trained_in_the_pool_equals_the_same_run_stepped_directly(pool):
    config = RunConfig(model="hope", preset="tiny", stream=StreamConfig(steps_per_task=8, n_tasks=2), eval_every=4)
    alone = PlaygroundSession(config)
    alone.run.step(16)
    other = PlaygroundSession(config)
    noise = Counter(units=10**6)                    # another session shares the workers meanwhile
    other.play()
    pool.want(noise)
    pool.want(other)
    assert wait_until(lambda: not other.busy, timeout=120)
    noise.stop()
    assert other.run.step_count == 16
    assert other.records().equals(alone.records())


def test_pausing_resetting_or_closing_one_student_never_changes_anothers_records(pool):
    config = RunConfig(model="transformer", preset="tiny", stream=StreamConfig(steps_per_task=20, n_tasks=2),
                       eval_every=5)
    alone = PlaygroundSession(config)
    alone.run.step(40)
    mine = PlaygroundSession(config)
    others = [PlaygroundSession(config.replace(seed=s)) for s in (1, 2, 3)]
    for student in [mine, *others]:
        student.play()
        pool.want(student)
    del student
    assert wait_until(lambda: all(o.run.step_count >= 2 for o in others), timeout=120)
    with others[0].lock:
        others[0].pause()
    with others[1].lock:
        others[1].reset()
    closed = weakref.ref(others.pop())                # the third student closes the tab
    assert wait_until(lambda: not mine.busy, timeout=180)
    assert wait_until(lambda: (gc.collect() or True) and closed() is None, timeout=5)   # the pool let it go
    assert mine.run.step_count == 40
    assert mine.records().equals(alone.records())


def test_a_pool_needs_a_worker():
    with pytest.raises(ValueError, match="at least one worker"):
        TrainingPool(workers=0)


def test_verbs_hold_the_lock_while_a_worker_holds_the_session(pool):
    s = Counter(units=10**6)
    stopped = threading.Event()
    with s.lock:                                    # stands for a worker in the middle of a slice
        t = threading.Thread(target=lambda: (s.stop(), stopped.set()))
        t.start()
        time.sleep(0.05)
        assert not stopped.is_set()                 # the button waits for the slice to end
    t.join(5)
    assert stopped.is_set() and not s.busy


class Spinner(Counter):
    """A slice that keeps the interpreter busy (as a training step does), so that a plain lock would
    be taken again by the worker before a woken page thread runs."""

    @exclusive
    def advance(self, budget_s: float = 0.01) -> int:
        until = time.perf_counter() + 0.002
        while time.perf_counter() < until:
            pass
        self.done += 1
        return 1


def test_a_page_waiting_for_the_lock_gets_it_after_the_slice_in_progress():
    p = TrainingPool(workers=2, max_trainers=2, slice_s=0.002, idle_timeout_s=60)
    try:
        s = Spinner(units=10**6)
        s.left = 10**9
        p.want(s)
        assert wait_until(lambda: s.done > 5)
        waits = []
        for _ in range(20):                         # twenty redraws, each waiting for the lock
            before = s.done
            with s.lock:
                waits.append(s.done - before)       # slices that ran while the page waited
            time.sleep(0.003)
        assert max(waits) <= 2, waits               # the one in progress (and one racing the count)
        assert wait_until(lambda: s.done > before + 5)   # and the work goes on between redraws
    finally:
        s.left = 0
        p.close()
