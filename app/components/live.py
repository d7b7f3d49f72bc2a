"""The live part of a page: one `st.fragment` that advances a session a little and redraws.

While the session is busy (playing, replaying) the fragment reruns on a timer of TICK_SECONDS;
each tick first gives the session a slice of work (at least one training step), sized by
`session.live_budget` so that a redraw comes every REDRAW_PERIOD_SECONDS, then draws. Only the
fragment reruns, not the page. When the session stops being busy (the run ended, diverged or was
paused) the fragment asks for one full rerun, which switches the timer off.
"""
from __future__ import annotations

from typing import Callable

import streamlit as st

TICK_SECONDS = 0.1                 # the timer; a tick that takes longer simply delays the next
REDRAW_PERIOD_SECONDS = 0.24       # aim: a little over four redraws a second


def live_area(session, draw: Callable[[], None]) -> None:
    """Draw `draw()` in a fragment that, while `session.busy`, advances the session every tick."""
    def body() -> None:
        if session.busy:
            session.advance(session.live_budget(REDRAW_PERIOD_SECONDS))
            if not session.busy:
                st.rerun()                  # a full rerun switches the timer off and shows why
        session.note_redraw()
        draw()
    st.fragment(body, run_every=TICK_SECONDS if session.busy else None)()
