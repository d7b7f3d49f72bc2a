"""The lock of a session: pages and verbs before the training workers.

    with session.lock:               # a page drawing, a verb changing the session: waits for a slice
        ...
    if session.lock.try_work():      # a worker of lab.sessions.pool: only when nobody else waits
        try: session.advance(...)
        finally: session.lock.release()

A plain lock is not fair: a worker that releases it after a slice and takes it again at once
(the next slice of the same session) wins against a page thread that was woken to take it, so a
page could wait for many slices (measured in the real browser with one student and a fast model:
4–7 s between redraws). Here a thread that enters `with lock` first says that it waits, and a
worker asks `try_work()`, which declines while anyone waits; the page then has the lock after at
most the slice in progress. Re-entrant, like the RLock it wraps (a verb called inside a slice or
inside a draw takes it again).
"""
from __future__ import annotations

import threading


class SessionLock:
    def __init__(self):
        self._lock = threading.RLock()
        self._count = threading.Lock()     # guards _waiting
        self._waiting = 0                  # threads inside __enter__ that do not hold the lock yet

    def __enter__(self) -> "SessionLock":
        with self._count:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._count:
                self._waiting -= 1
        return self

    def __exit__(self, *exc) -> None:
        self._lock.release()

    @property
    def waited_for(self) -> bool:
        """Whether a page or a verb is waiting to take the lock now."""
        return self._waiting > 0

    def try_work(self) -> bool:
        """Take the lock for a worker's slice if nobody waits for it and nobody holds it (True), else
        leave it (False). The caller releases it with `release()`."""
        if self._waiting:
            return False
        return self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()
