"""Visits opened and closed one after another: the server's memory (a measurement, not a test).

    python -m tests.browser.measure_visits            # VISITS=50 by default; prints JSON

A fresh server, one visit to warm it, then VISITS visits to the Playground (each presses Play and
closes its tab after 2 s). RSS after the first visit, after the last, and once Streamlit's 120 s
reconnect TTL has passed, one more visit has closed (the session store drops expired sessions
only when it changes) and the training pool's collection (every 30 s) has run.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from lab.bench import rss_mb

ROOT = Path(__file__).resolve().parents[2]
VISITS = int(os.environ.get("VISITS", "50"))
CHROMIUM = os.environ.get("NLL_CHROMIUM", "/usr/bin/chromium")
RECONNECT_TTL_S = 120                 # Streamlit's server.disconnectedSessionTTL default


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
         "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=2)
            return server, url
        except OSError:
            time.sleep(0.5)


def main() -> None:
    server, url = start_server()
    figures = {"visits": VISITS}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])

        def visit() -> None:
            page = browser.new_page()
            page.goto(f"{url}/playground", wait_until="domcontentloaded")
            page.get_by_text("Colours (colour-blind safe)").wait_for(timeout=120_000)
            page.get_by_role("button", name="Play", exact=True).click()
            page.wait_for_timeout(2000)
            page.close()

        visit()
        time.sleep(5)
        figures["rss_mib_after_first_visit"] = rss_mb(server.pid)
        for _ in range(VISITS):
            visit()
        figures["rss_mib_after_visits"] = rss_mb(server.pid)
        time.sleep(RECONNECT_TTL_S + 10)
        visit()
        time.sleep(40)
        figures["rss_mib_after_ttl_and_one_more_visit"] = rss_mb(server.pid)
        browser.close()
    server.terminate()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
