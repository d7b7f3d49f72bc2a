"""AppTest helpers, generic over the registered pages (app.components.registry.PAGES)."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.components.registry import PAGES, PageSpec
from app.components.shell import PANEL_FAILED
from lab.sessions.pool import pool

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "app" / "main.py"
TIMEOUT = 120
FAST = {"model": "transformer", "preset": "tiny", "steps": "12", "tasks": "2"}   # a run that builds in a blink


def open_page(spec: PageSpec | str, query: dict | None = None) -> AppTest:
    """The app started from main.py (as `streamlit run` does), on one registered page."""
    if isinstance(spec, str):
        spec = next(p for p in PAGES if p.url_path == spec)
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT)
    at.query_params.update(query or {})
    at.run()
    at.switch_page(f"views/{spec.file}")
    return at.run()


def charts(at: AppTest) -> dict[str, dict]:
    """Every plotly chart on the page by its key, as the figure dict the browser receives."""
    return {el.key: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


def trace_lengths(figure: dict) -> list[int]:
    return [len(t.get("x") or t.get("z") or []) for t in figure.get("data", [])]


def shown(markdown: str) -> str:
    """What a reader sees of a Markdown body whose special characters were escaped (notices are
    shown as text: app.components.sessions.as_text)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u200b", "")     # as_text's autolink breaker


def errors(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.error]


def assert_healthy(at: AppTest) -> None:
    """No exception element and no panel that failed to draw."""
    assert not at.exception, [e.message for e in at.exception]
    failed = [text for text in errors(at) if PANEL_FAILED in text]
    assert not failed, failed


def session(at: AppTest, kind: str = "playground"):
    """The session object a page keeps in st.session_state (lab.sessions)."""
    return at.session_state[f"session:{kind}"]


def finish(at: AppTest, kind: str, timeout: float = TIMEOUT) -> AppTest:
    """Wait until the server's training pool has done `kind`'s queued work, asking for it as the
    page's fragment would (the heartbeat), then rerun the page as its fragment does when done."""
    work = session(at, kind)
    workers = pool()
    deadline = time.monotonic() + timeout
    while work.busy:
        if time.monotonic() > deadline:
            raise AssertionError(f"the {kind} work did not finish in {timeout} s: {work.progress}")
        with work.lock:
            if work.wants_worker:
                workers.want(work)
        time.sleep(0.02)
    return at.run()
