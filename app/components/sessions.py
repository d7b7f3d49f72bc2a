"""A user's session objects in `st.session_state` and their notices.

    session = session_for("sleep")                    # this browser session's SleepSession
    show_notices(session)                             # its messages, once
    with sessions_held(): navigation.run()            # app/main.py: a full render reads still sessions

The work a session queues is done by the server's training pool; `app.components.live` shows it.

Sessions live in `st.session_state` only (DESIGN.md principle 7): never in a cache shared
between users.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator

import streamlit as st

from lab.sessions import SESSIONS, Session

RENDERERS = {"error": st.error, "warning": st.warning, "info": st.info, "success": st.success}
MAX_NOTICE = 600
MARKDOWN_SPECIALS = "\\`*_{}[]()#+-.!|<>~$:"


def as_text(text: str) -> str:
    """`text` with every Markdown special character escaped, so that Streamlit shows it as it is:
    a link or an image in a user's value stays characters, it is never rendered or fetched. A bare
    address would still become a link (GitHub's autolinks): a zero-width space after its `://` or
    `www` keeps it text and looks the same."""
    text = str(text).replace("://", ":\u200b//").replace("www.", "www\u200b.")
    return "".join("\\" + c if c in MARKDOWN_SPECIALS else c for c in text)


def session_key(kind: str) -> str:
    return f"session:{kind}"


def session_for(kind: str, build: Callable[[], Session] | None = None) -> Session:
    """The session of `kind` of this browser session, built on first use (by `build`, or with its
    defaults)."""
    key = session_key(kind)
    if key not in st.session_state:
        st.session_state[key] = build() if build is not None else SESSIONS[kind]()
    return st.session_state[key]


@contextmanager
def sessions_held() -> Iterator[None]:
    """Hold the lock of every session of this browser session while a page renders in full, so a
    worker's slice never changes what is being drawn (a live fragment takes its own session's lock)."""
    with ExitStack() as stack:
        for key, value in list(st.session_state.items()):
            if str(key).startswith("session:") and isinstance(value, Session):
                stack.enter_context(value.lock)
        yield


def replace_session(kind: str, session: Session) -> None:
    st.session_state[session_key(kind)] = session


def show_notices(session: Session) -> None:
    """The session's notices, each once, as text: a value a user typed is never read as Markdown,
    and an echo longer than `MAX_NOTICE` characters (a tampered URL) is cut."""
    for kind, text in session.notices.pop():
        text = str(text)
        RENDERERS[kind](as_text(text if len(text) <= MAX_NOTICE else text[:MAX_NOTICE] + " … (cut)"))
