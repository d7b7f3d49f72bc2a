"""The registry of panels: every chart-plus-controls unit of the app, by name.

A panel is a function that takes a session (`lab.sessions`) of one kind and draws itself with
Streamlit: its own controls (keys prefixed with `key`, so that one page or lesson can hold the
same panel twice) and its figures. Pages place panels; a lesson places any of them by name,
with a preset for the session it draws:

    @panel("update_timeline", "CMS update timeline", session="playground")
    def update_timeline(session, key="pg"):
        ...

    PANELS["update_timeline"].draw(session, key="lesson1-step2")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    session: str                    # the kind of session it draws (lab.sessions.SESSIONS)
    draw: Callable[..., None]       # draw(session, key=...) → None

    @property
    def doc(self) -> str:
        return (self.draw.__doc__ or "").strip().split("\n")[0]


PANELS: dict[str, Panel] = {}


def panel(name: str, title: str, session: str) -> Callable:
    """Register the decorated function as the panel `name` (one name, one panel)."""
    def register(draw: Callable) -> Callable:
        if name in PANELS:
            raise RuntimeError(f"two panels named {name!r}: {PANELS[name].draw.__module__} and {draw.__module__}")
        PANELS[name] = Panel(name, title, session, draw)
        return draw
    return register
