"""The live parts of a page: fragments that read a session while a worker advances it.

    live_area(session, draw)          # the Playground: redraw `draw()` while the run trains
    work_area(session, slot, title)   # a job (comparison, sleep, re-run): progress bar and Stop

The work itself is done by the server's training pool (`lab.sessions.pool`), never by the page:
a fragment asks the pool to advance its session (`want`, also the heartbeat that keeps the run
going), draws holding `session.lock` (a worker's slice never changes what is being drawn), and
reruns on a timer. When the work ends, one full rerun shows the result and switches the timer off.

The timer adapts to the load: `REDRAWS` keeps the time every live page of the server spends
drawing to about half of the machine (`RedrawGovernor`), so ten sessions redraw less often than
one instead of piling redraws up, and training keeps the rest.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable

import streamlit as st

from lab.sessions.pool import pool

# The timer asks every 50 ms: a tick that comes while the last redraw is still on its way is
# dropped, so asking every 0.1 s gave 5-6 redraws a second for round trips just over 0.1 s (measured
# in the real browser); at 0.05 s the round trip sets the pace (7-9 a second, default HOPE).
FASTEST_PERIOD_S = 0.05
JOB_PERIOD_S = 0.5                # a progress bar needs no more


class RedrawGovernor:
    """The redraw period of the live pages of one server: draws of all live pages together use at
    most `share` of the machine's cores; never faster than `fastest`."""

    def __init__(self, fastest: float = FASTEST_PERIOD_S, share: float = 0.5, cores: int | None = None,
                 clock=time.monotonic):
        self.fastest, self.share, self.clock = fastest, share, clock
        self.cores = cores or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._draw_s = 0.02                       # smoothed seconds per draw
        self._seen: dict[str, float] = {}         # page key → last draw

    def record(self, key: str, seconds: float) -> None:
        with self._lock:
            self._draw_s = 0.8 * self._draw_s + 0.2 * seconds
            now = self.clock()
            self._seen[key] = now
            self._seen = {k: t for k, t in self._seen.items() if now - t < 5.0}

    def period(self) -> float:
        with self._lock:
            pages = max(1, len(self._seen))
            return max(self.fastest, pages * self._draw_s / (self.cores * self.share))


REDRAWS = RedrawGovernor()


def _page_key(session) -> str:
    return f"{id(session)}"


def live_area(session, draw: Callable[[], None]) -> None:
    """Draw `draw()` in a fragment that, while the session is busy, redraws every period."""
    period = REDRAWS.period() if session.busy else None

    def body() -> None:
        workers = pool()
        with session.lock:
            started = time.perf_counter()             # the governor counts drawing, not waiting
            session.animate()                         # a replay moves on one frame
            if session.wants_worker:
                workers.want(session)
            busy = session.busy
            session.note_redraw()
            place = workers.place(session)
            if place:
                st.info(f"Waiting for a free trainer: {_ordinal(place)} in the queue "
                        f"({workers.load['training']} runs are training on this server).", icon=":material/hourglass_top:")
            draw()
        REDRAWS.record(_page_key(session), time.perf_counter() - started)
        if period is not None and (not busy or not 0.5 < REDRAWS.period() / period < 2):
            st.rerun()                                # a full rerun sets the timer (or switches it off)
    st.fragment(body, run_every=period)()


def work_area(session, *slots, title: str = "Working") -> None:
    """While `session` has queued work: in each slot (st.empty placeholders) a progress bar and a
    Stop button, refreshed in a fragment while the pool works; a full rerun when it is done."""
    if not session.busy:
        return
    for i, slot in enumerate(s for s in slots if s is not None):
        with slot.container(border=True):
            st.fragment(lambda i=i: _progress(session, title, i), run_every=JOB_PERIOD_S)()


def _progress(session, title: str, index: int) -> None:
    workers = pool()
    with session.lock:
        if session.wants_worker:
            workers.want(session)
        busy, (fraction, label) = session.busy, session.progress
        place = workers.place(session)
    if not busy:
        st.rerun()
    st.markdown(f"**{title}**")
    if place:
        label = f"waiting for a free trainer: {_ordinal(place)} in the queue · {label}"
    st.progress(min(1.0, fraction), text=f"{100 * fraction:.0f} % · {label}")
    st.button("Stop", key=f"{session.kind}_stop_{index}", icon=":material/stop:", on_click=session.stop,
              help="Stop; what is finished is kept.")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
