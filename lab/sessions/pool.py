"""Training off the page's thread: a bounded pool of workers that advances busy sessions, fairly.

    pool = TrainingPool(workers=2, max_trainers=8)
    pool.want(session)             # the page, at every redraw: "advance this while it has work"
    pool.place(session)            # 0: training now; k ≥ 1: k-th in the queue; None: not in the pool
    with session.lock:             # the page reads (draws) between the workers' slices
        draw(session)

How it shares the machine: at most `max_trainers` sessions are admitted; the workers (one torch
thread each, `workers` of them, by default one per core) take the admitted sessions round robin
and give each a slice of `slice_s` seconds (`Session.advance`), holding `session.lock` for the
slice, so a page never reads a half-made step; a session whose page holds its lock (drawing) or
waits for it is passed over for the next one instead of keeping a worker waiting, and the page
has it after the slice in progress (`lab.sessions.lock`). A session that wants work
beyond the admitted ones waits in a queue, first come first served, and is admitted when a
trainer leaves.

What ends a session's place: its work is done (`wants_worker` is False), its page stopped asking
(`want` not called for `idle_timeout_s`: the tab was closed or the session ended; the session
is stopped with a notice and what it computed stays), or the session object itself is gone
(the pool holds weak references only, so a closed session's model is freed, not kept by the
pool). Lock order: a session's lock before the pool's condition (a page holds its session's lock
when it calls `want`; a worker holds it for the slice and the bookkeeping after). A run is a cyclic structure (its phases hold its bound methods), so a closed session's
model is garbage that only the cyclic collector frees: the workers collect it at most every
`collect_every_s` seconds and hand the freed pages back to the system (`release_memory`), so
the server's memory follows the number of open sessions. A slice that raises stops that session with an error notice; the others go on.

`lab` never imports Streamlit: the app holds one pool per process (`pool()` below), a test or a
script may build its own.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time
import weakref
from collections import deque

from lab.limits import Limits
from lab.sessions.base import Session

log = logging.getLogger("nll.pool")


class TrainingPool:
    """Round-robin workers over admitted sessions, a queue for the rest; see the module docstring."""

    def __init__(self, workers: int = 2, max_trainers: int = 8, slice_s: float = 0.1,
                 idle_timeout_s: float = 30.0, collect_every_s: float = 30.0, clock=time.monotonic):
        if workers < 1 or max_trainers < 1:
            raise ValueError(f"a pool needs at least one worker and one trainer (got {workers}, {max_trainers})")
        self.workers, self.max_trainers = workers, max_trainers
        self.slice_s, self.idle_timeout_s, self.clock = slice_s, idle_timeout_s, clock
        self.collect_every_s, self._collected = collect_every_s, clock()
        self._cond = threading.Condition()
        self._admitted: deque[weakref.ref] = deque()     # round robin: the left one is next
        self._waiting: deque[weakref.ref] = deque()      # first come, first served
        self._working: set[int] = set()                  # ids of the sessions a worker holds now
        self._seen = weakref.WeakKeyDictionary()         # session → when its page last asked
        self._slices = weakref.WeakKeyDictionary()       # session → slices given (for fairness checks)
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"nll-trainer-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    @classmethod
    def from_limits(cls, limits: Limits) -> "TrainingPool":
        return cls(workers=limits.workers, max_trainers=limits.max_trainers, idle_timeout_s=limits.idle_timeout_s)

    # --- what a page calls -------------------------------------------------------------------
    def want(self, session: Session) -> None:
        """Advance `session` while it is busy (call at every redraw: it is also the heartbeat)."""
        with self._cond:
            self._seen[session] = self.clock()
            if not session.wants_worker or self._index(session) is not None:
                return
            ref = weakref.ref(session)
            (self._admitted if len(self._admitted) < self.max_trainers else self._waiting).append(ref)
            self._cond.notify_all()

    def place(self, session: Session) -> int | None:
        """0 while admitted (training), k ≥ 1 for the k-th place in the queue, None when not here."""
        with self._cond:
            return self._index(session)

    def leave(self, session: Session) -> None:
        """Take `session` out of the pool (its page reset or closed it)."""
        with self._cond:
            self._drop(session)
            self._cond.notify_all()

    @property
    def load(self) -> dict[str, int]:
        """How many sessions train and wait now."""
        with self._cond:
            return {"training": len(self._admitted) + len(self._working), "waiting": len(self._waiting)}

    def slices(self, session: Session) -> int:
        with self._cond:
            return self._slices.get(session, 0)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # --- the workers ---------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            self._collect_if_due()
            with self._cond:
                session = self._next()
                while session is None and not self._closed:
                    self._cond.wait(0.5)
                    session = self._next()
                    if session is None and self._due():
                        break
                if session is None and not self._closed:
                    continue
                if self._closed:
                    return
                key = id(session)
                self._working.add(key)
            if not session.lock.try_work():                   # its page draws or waits to: the next one first
                with self._cond:
                    self._working.discard(key)
                    self._admitted.append(weakref.ref(session))
                    self._cond.wait(0.002)                    # not a busy spin when every page draws
                del session
                continue
            try:                                              # lock order: session.lock, then _cond
                self._slice(session, key)
            finally:
                session.lock.release()
            del session

    def _slice(self, session: Session, key: int) -> None:
        """One slice of `session` (its lock held), then its place: back in the line, or out."""
        try:
            if session.wants_worker:
                session.advance(self.slice_s)
        except Exception as err:  # noqa: BLE001 - one failing session must not stop the others
            log.exception("a %s session failed in the pool", session.kind)
            session.stop()
            session.notices.add("error", f"The work stopped: {err}")
        with self._cond:
            self._working.discard(key)
            self._slices[session] = self._slices.get(session, 0) + 1
            abandoned = session.wants_worker and self._stale(session)   # nobody asked lately
            if session.wants_worker and not abandoned:
                self._admitted.append(weakref.ref(session))
            else:
                self._drop(session)
            self._admit()
            self._cond.notify_all()
        if abandoned:
            session.stop()
            session.notices.add("info", "Paused: the page was not open. Press Play to go on.")

    def _due(self) -> bool:
        return self.clock() - self._collected >= self.collect_every_s

    def _collect_if_due(self) -> None:
        with self._cond:
            if not self._due():
                return
            self._collected = self.clock()
        release_memory()

    def _next(self) -> Session | None:
        """The next admitted session no worker holds (dead ones are dropped on the way)."""
        for _ in range(len(self._admitted)):
            session = self._admitted.popleft()()
            if session is None:
                self._admit()
                continue
            if id(session) in self._working:                 # cannot happen: held ones are not queued
                self._admitted.append(weakref.ref(session))
                continue
            return session
        return None

    def _admit(self) -> None:
        while self._waiting and len(self._admitted) + len(self._working) < self.max_trainers:
            ref = self._waiting.popleft()
            if ref() is not None:
                self._admitted.append(ref)

    def _stale(self, session: Session) -> bool:
        return self.clock() - self._seen.get(session, float("-inf")) > self.idle_timeout_s

    def _index(self, session: Session) -> int | None:
        key = id(session)
        if key in self._working or any(ref() is session for ref in self._admitted):
            return 0
        for place, ref in enumerate(self._waiting, start=1):
            if ref() is session:
                return place
        return None

    def _drop(self, session: Session) -> None:
        self._admitted = deque(r for r in self._admitted if r() is not None and r() is not session)
        self._waiting = deque(r for r in self._waiting if r() is not None and r() is not session)
        self._seen.pop(session, None)
        self._slices.pop(session, None)


def release_memory() -> None:
    """Collect cyclic garbage (closed sessions' runs) and return free heap pages to the system
    (glibc's `malloc_trim`; elsewhere the collection alone)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_POOL: TrainingPool | None = None
_POOL_LOCK = threading.Lock()


def pool() -> TrainingPool:
    """The process's pool, sized by `Limits.from_env()` (built on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = TrainingPool.from_limits(Limits.from_env())
        return _POOL
