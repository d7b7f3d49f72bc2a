"""A user's session objects in `st.session_state`, their notices, and the loop that works off a
session's queued work while a progress bar shows how far it is.

    session = session_for("sleep")                    # this browser session's SleepSession
    show_notices(session)                             # its messages, once
    work_while_busy(session, slot)                    # last on the page: advance until done

Sessions live in `st.session_state` only (DESIGN.md principle 7): never in a cache shared
between users.
"""
from __future__ import annotations

import logging
from typing import Callable

import streamlit as st

from lab.sessions import SESSIONS, Session

log = logging.getLogger("nll.app")
RENDERERS = {"error": st.error, "warning": st.warning, "info": st.info, "success": st.success}
MARKDOWN_SPECIALS = "\\`*_{}[]()#+-.!|<>~$:"


def as_text(text: str) -> str:
    """`text` with every Markdown special character escaped, so that Streamlit shows it as it is:
    a link or an image in a user's value stays characters, it is never rendered or fetched."""
    return "".join("\\" + c if c in MARKDOWN_SPECIALS else c for c in str(text))


def session_key(kind: str) -> str:
    return f"session:{kind}"


def session_for(kind: str, build: Callable[[], Session] | None = None) -> Session:
    """The session of `kind` of this browser session, built on first use (by `build`, or with its
    defaults)."""
    key = session_key(kind)
    if key not in st.session_state:
        st.session_state[key] = build() if build is not None else SESSIONS[kind]()
    return st.session_state[key]


def replace_session(kind: str, session: Session) -> None:
    st.session_state[session_key(kind)] = session


def show_notices(session: Session) -> None:
    """The session's notices, each once, as text: a value a user typed is never read as Markdown."""
    for kind, text in session.notices.pop():
        RENDERERS[kind](as_text(text))


def work_while_busy(session: Session, *slots, title: str = "Working") -> None:
    """Advance `session` until its queued work is done, with a progress bar and a Stop button in
    every slot (st.empty placeholders). Call it last on a page: everything above is on screen
    while it works. Streamlit ends this loop when the user touches a widget (the next progress
    update raises); the work keeps its place in the session and goes on at the next run."""
    if not session.busy:
        return
    bars = []
    for i, slot in enumerate(s for s in slots if s is not None):
        with slot.container(border=True):
            fraction, label = session.progress
            st.markdown(f"**{title}**")
            bars.append(st.progress(min(1.0, fraction), text=label))
            st.button("Stop", key=f"{session.kind}_stop_{i}", icon=":material/stop:", on_click=session.stop,
                      help="Stop; what is finished is kept.")
    try:
        while session.busy:
            session.advance(0.3)
            fraction, label = session.progress
            for bar in bars:
                bar.progress(min(1.0, fraction), text=f"{100 * fraction:.0f} % · {label}")
    except Exception as err:  # noqa: BLE001 - a teaching page shows a message, never a traceback
        log.exception("%s session failed", session.kind)
        session.stop()
        session.notices.add("error", f"That could not finish: {err}")
    st.rerun()
