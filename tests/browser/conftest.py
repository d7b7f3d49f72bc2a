"""One Streamlit server and one headless Chromium for all browser tests.

The server is `streamlit run app/main.py --server.headless true` on a free port, ready when
`/_stcore/health` answers. Chromium is Debian's /usr/bin/chromium driven through Playwright,
with a fresh profile. When no browser can be started the tests are skipped, unless
NLL_REQUIRE_BROWSER=1 (as in .ci/run), in which case they fail.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = os.environ.get("NLL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REQUIRE = os.environ.get("NLL_REQUIRE_BROWSER") == "1"


def _unavailable(reason: str):
    if REQUIRE:
        pytest.fail(f"NLL_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The server: {"url": …, "pid": …} (a test may read its memory from /proc)."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("streamlit") / "server.log").open("w")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while not _healthy(url):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"the Streamlit server did not become healthy; see {log.name}")
        time.sleep(0.3)
    yield {"url": url, "pid": server.pid}
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="session")
def app_url(app_server):
    return app_server["url"]


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM}")
    manager = sync_playwright().start()
    try:
        context = manager.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1440, "height": 2400})
    except Exception as err:  # noqa: BLE001 - any launch failure means "no browser here"
        manager.stop()
        _unavailable(f"Chromium could not be started: {err}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield context
    context.close()
    manager.stop()


# Opened at /<page>, Streamlit's frontend first looks for its server under that path (a base URL
# the app might be served from) and gets a 404 before it falls back to "/": expected, not an error.
BASE_PATH_PROBE = re.compile(r"/[^/?]+/_stcore/(health|host-config)$")
RESOURCE_404 = "Failed to load resource: the server responded with a status of 404"


class Tab:
    """A fresh page that records console errors, uncaught page errors and failed requests."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        self.probes = 0
        self.bad_responses: list[str] = []
        page.on("console", lambda msg: self.console.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda err: self.console.append(f"uncaught: {err}"))
        page.on("response", self._response)

    def _response(self, response) -> None:
        if response.status < 400:
            return
        path = urllib.parse.urlsplit(response.url).path
        if response.status == 404 and BASE_PATH_PROBE.search(path):
            self.probes += 1
        else:
            self.bad_responses.append(f"{response.status} {response.url}")

    def errors(self) -> list[str]:
        """Console errors and failed requests, less the 404s of Streamlit's base-path probe."""
        out, allowed = [], self.probes
        for text in self.console:
            if allowed and text.startswith(RESOURCE_404):
                allowed -= 1
                continue
            out.append(text)
        return out + self.bad_responses


@pytest.fixture
def page(browser_context):
    tab = Tab(browser_context.new_page())
    yield tab
    tab.page.close()
