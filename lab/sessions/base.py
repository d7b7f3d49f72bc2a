"""What a user drives, as plain objects with the same small verbs (DESIGN.md principles 7 and 8).

Every interactive thing of the app (the Playground run, the forgetting comparison, the sleep
experiment, the associative-memory explorer) is a `Session`. A page reads widgets, calls these
verbs, and arranges panels that read the session; a lesson builds the same session from a preset;
the tests drive it without a browser:

    session = SleepSession()
    session.configure({"preset": "tiny", "steps": 40})   # validate and (re)build; a bad value: a notice
    session.request("train")                              # queue work (a verb of the session)
    while session.busy:
        session.advance(budget_s=0.25)                    # do about this much of the queued work
    session.records()                                     # tidy rows (lab.records.COLUMNS, + session keys)
    snap = session.snapshot(); ...; session.restore(snap)
    session.notices.pop()                                 # [(kind, text)], shown once

`advance` is the only verb that does heavy work, and it does it in slices of about `budget_s`
seconds; everything else reads. In the app a worker (`lab.sessions.pool`) calls `advance` while
the page only reads (`progress`, `records`, `revision`). `revision` grows whenever what the
session shows changes, so a page can cache a figure per revision.

Threads: `session.lock` (re-entrant; `lab.sessions.lock`: a waiting page goes before the next
slice) is held by a worker for each slice of `advance` and by a page while it draws; the verbs
that change a session (`configure`, `stop`, `restore`, and each subclass's own, marked
`@exclusive`) take it too, so a button pressed during a slice waits for the slice to end instead
of changing a run under a worker's feet.

Limits (`lab.limits`): `session.limits` is the server's (environment variables, read once);
a session refuses settings that cost more than they allow, with the same notice as a bad value.

A session never raises on user input: `configure` turns a ConfigError (which names the field,
the value and the allowed range) or another ValueError into an error notice and keeps what it had.
"""
from __future__ import annotations

import abc
import functools
from typing import ClassVar

import pandas as pd

from lab.config import Config, ConfigError, shorten
from lab.limits import server_limits
from lab.records import COLUMNS
from lab.sessions.lock import SessionLock

NOTICE_KINDS = ("error", "warning", "info", "success")


class Notices:
    """Messages for the user, each shown once: (kind, text), kind one of NOTICE_KINDS."""

    def __init__(self):
        self._items: list[tuple[str, str]] = []

    def add(self, kind: str, text: str) -> None:
        if kind not in NOTICE_KINDS:
            raise ValueError(f"notice kind {kind!r}: use one of {', '.join(NOTICE_KINDS)}")
        if (kind, text) not in self._items:
            self._items.append((kind, text))

    def pop(self) -> list[tuple[str, str]]:
        """The notices, oldest first; afterwards there are none."""
        out, self._items = self._items, []
        return out

    def peek(self) -> list[tuple[str, str]]:
        return list(self._items)

    def clear(self) -> None:
        self._items = []

    def __len__(self) -> int:
        return len(self._items)


def exclusive(verb):
    """Run `verb` holding the session's lock (see the module docstring, "Threads")."""
    @functools.wraps(verb)
    def locked(self, *args, **kwargs):
        with self.lock:
            return verb(self, *args, **kwargs)
    return locked


class Session(abc.ABC):
    """Base of every session; see the module docstring for the verbs."""

    kind: ClassVar[str] = ""                 # the registry name: "playground", "forgetting", …
    Settings: ClassVar[type[Config]]         # what `configure` takes (a Config, or a dict of its fields)

    def __init__(self):
        self.lock = SessionLock()
        self.limits = server_limits()
        self.notices = Notices()
        self.revision = 0
        self.settings = self.Settings()

    # --- configure ---------------------------------------------------------------------------
    @exclusive
    def configure(self, settings: Config | dict | None = None, **changes) -> bool:
        """Validate `settings` (a Settings, a dict of its fields, or None = the current ones) with
        `changes` applied, and rebuild. On a bad value: an error notice, nothing changes, False."""
        try:
            if settings is None:
                settings = self.settings
            if isinstance(settings, dict):
                settings = self.Settings.from_dict(settings)
            if changes:
                settings = settings.replace(**changes)
            self._apply(settings)
        except ConfigError as err:
            self.notices.add("error", f"{self.refusal}: {shorten(err)}")
            return False
        except ValueError as err:
            self.notices.add("error", f"{self.refusal}: {shorten(err)}")
            return False
        self.settings = settings
        self.changed()
        return True

    refusal: ClassVar[str] = "This setting cannot be used, so nothing was changed"

    @abc.abstractmethod
    def _apply(self, settings: Config) -> None:
        """Build from valid settings; raise ConfigError / ValueError to refuse them."""

    # --- work ----------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Queued work is waiting for `advance`."""
        return False

    def advance(self, budget_s: float = 0.25) -> int:
        """Do about `budget_s` seconds of queued work; returns the units done (steps, runs …)."""
        return 0

    @property
    def wants_worker(self) -> bool:
        """Work for a worker of the pool is queued (`busy` also counts what a page animates)."""
        return self.busy

    def animate(self) -> None:
        """What a page does at each redraw itself (a replay moves on one frame); usually nothing."""

    def stop(self) -> None:
        """Drop the queued work (what is finished stays)."""

    @property
    def progress(self) -> tuple[float, str]:
        """(fraction done of the queued work, a label), for a progress bar."""
        return (1.0, "")

    def changed(self) -> None:
        self.revision += 1

    # --- reading -------------------------------------------------------------------------------
    def records(self) -> pd.DataFrame:
        """Tidy rows of what the session measured (lab.records.COLUMNS, possibly with more keys)."""
        return pd.DataFrame(columns=COLUMNS)

    @abc.abstractmethod
    def snapshot(self) -> dict:
        """Everything needed to come back to this state (an in-memory copy)."""

    @abc.abstractmethod
    def restore(self, snap: dict) -> None:
        ...
