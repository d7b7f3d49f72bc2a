"""The sessions a user drives (`lab.sessions.base.Session`), by kind.

    from lab.sessions import SESSIONS
    session = SESSIONS["playground"]()          # or build from a lesson preset:
    session.configure({"model": "hope"})

Each module of this package that defines a Session subclass with a `kind` is registered here
when the package is imported; adding a session is adding a module.
"""
from __future__ import annotations

from lab.discovery import import_submodules
from lab.sessions.base import NOTICE_KINDS, Notices, Session, shorten

SESSIONS: dict[str, type[Session]] = {}


def _discover() -> None:
    for module in import_submodules(__name__, skip=("base",)):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Session) and value.kind and value.__module__ == module.__name__:
                if value.kind in SESSIONS:
                    raise RuntimeError(f"two sessions of kind {value.kind!r}: {SESSIONS[value.kind]} and {value}")
                SESSIONS[value.kind] = value


_discover()

__all__ = ["SESSIONS", "Session", "Notices", "NOTICE_KINDS", "shorten"]
