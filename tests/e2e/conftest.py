"""A real `streamlit run` on a free loopback port with its own workspace, and Chromium driven by Playwright.

A test that uses ``browser`` is skipped where Chromium (Debian's `chromium`) or `playwright` (pip) is
missing; `.ci/run` installs both.
Screenshots go to ``LABELTUNE_E2E_SHOTS`` (default ``e2e-shots/`` at the project root, the CI artifact
folder the README names)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    from playwright import sync_api
except ImportError:  # pragma: no cover - where playwright is missing the tests are skipped
    sync_api = None
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("LABELTUNE_E2E_SHOTS", ROOT / "e2e-shots"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-quic", "--disable-sync"]  # fmt: skip

# Requests to the server under test go straight to it, never through a proxy: proxies named in the
# environment (a CI machine's, or the dead one an offline test left in urllib's process-wide opener) do not
# serve loopback, and a refusal by the proxy would pass for a refusal by the server.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.slow)


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port from a range of our own: on one CI machine `bind(("127.0.0.1", 0))` answered port 9."""
    for _ in range(200):
        port = random.randint(20000, 29999)
        if _port_is_free(port):
            return port
    raise RuntimeError("no free loopback port in 20000-29999")


@dataclass
class Server:
    """`streamlit run streamlit_app.py` in a subprocess; its output goes to ``log``."""

    workspace: Path
    log: Path
    lang: str = "en"
    port: int = 0
    address: str | None = "127.0.0.1"  # None: the app's own setting (.streamlit/config.toml)
    proc: subprocess.Popen | None = field(default=None, repr=False)
    last_error: str = ""  # what the last health check met, for the message when the server does not start

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def errors_log(self) -> Path:
        """Where the app logs an unexpected error's traceback under the reference it shows."""
        return self.workspace / "logs" / "app-errors.log"

    def start(self, seconds: float = 90) -> Server:
        env = {**os.environ, "LABELTUNE_HOME": str(self.workspace), "LABELTUNE_LANG": self.lang}
        for _ in range(3):  # another process may take the port between the check and the bind
            self.port = self.port or free_port()
            command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
                       "--server.port", str(self.port)]  # fmt: skip
            if self.address:
                command += ["--server.address", self.address]
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            if self._healthy(seconds):
                return self
            self.stop()
            self.port = 0
        output = self.log.read_text(errors="replace")[-4000:]
        raise AssertionError(f"the server did not start (health check: {self.last_error}); its output:\n{output}")

    def _healthy(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with DIRECT.open(f"{self.url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        return True
            except OSError as error:
                self.last_error = f"{type(error).__name__}: {error}"
                time.sleep(0.5)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    running = Server(tmp_path / "ws", tmp_path / "server.log").start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One Chromium for every browser test of a test process; each test opens its own context or page.
    (Each keeps its own server: the deep links need a freshly started one, the restart stops its own, the
    flow imports and trains in its workspace, the sharing test starts one with the app's own address.)"""
    if sync_api is None or not Path(CHROMIUM).exists():
        pytest.skip("needs Chromium (Debian's chromium) and playwright (pip)")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
