"""In a real browser against `streamlit run`: the first visit to a freshly started server may be a deep
link (a bookmark, a link in a chat); every page answers at its own address through the app's navigation
(its sidebar and layout), not as a bare file from the `pages/` folder.

Needs Chromium (Debian's `chromium`) and `playwright` (pip); skipped where either is missing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium on this machine"),
]
ROOT = Path(__file__).resolve().parents[2]
APP_PAGES = ("Dataset", "Label", "Train", "Evaluate", "Predict", "Jobs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {**os.environ, "LABELTUNE_HOME": str(tmp_path / "ws"), "LABELTUNE_LANG": "en"}
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "the server did not start"
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_a_deep_link_first_opens_its_page_through_the_app(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        for path, header in (("label", "Label"), ("jobs", "Jobs"), ("", "Dataset")):
            page.goto(f"{server}/{path}")
            page.get_by_role("heading", name=header).first.wait_for(timeout=30_000)
            nav = page.locator("[data-testid=stSidebarNav]").inner_text()
            assert all(name in nav for name in APP_PAGES), nav  # the app's navigation, not the file list
            assert "streamlit app" not in nav.lower()
            assert page.url.rstrip("/") == f"{server}/{path}".rstrip("/")
            assert not page.locator("[data-testid=stException]").count()
        browser.close()
