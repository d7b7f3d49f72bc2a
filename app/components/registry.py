"""The one list of pages. Registering a page is one line here; main.py and the tests read it.

`live=True` marks a page with a Play button whose charts change while it plays: the browser
tests press Play on it and wait for a chart to change.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent.parent / "views"


@dataclass(frozen=True)
class PageSpec:
    file: str          # in app/views/
    title: str
    icon: str
    url_path: str
    live: bool = False

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.file

    @property
    def route(self) -> str:
        """Where the page is served: the default page (the first) at the root, others at /url_path."""
        return "" if self == PAGES[0] else self.url_path


PAGES: tuple[PageSpec, ...] = (
    PageSpec("home.py", "Home", ":material/home:", "home"),
    PageSpec("playground.py", "Playground", ":material/science:", "playground", live=True),
    PageSpec("forgetting.py", "Forgetting", ":material/compare_arrows:", "forgetting"),
    PageSpec("associative_memory.py", "Associative memory", ":material/hub:", "associative-memory"),
    PageSpec("sleep.py", "Sleep", ":material/bedtime:", "sleep", live=False),
    PageSpec("claims.py", "Claims", ":material/fact_check:", "claims"),
    PageSpec("lesson.py", "Lessons", ":material/school:", "lessons"),
    PageSpec("classroom.py", "Join a class", ":material/groups:", "class"),
)
