from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from core.store.workspace import Workspace

# Keep TensorFlow quiet and single-machine friendly in every test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A light job's worker waits this long for the next light job (core.jobs.queue.warm_idle_s): long enough
# for a test's next job to find it, short enough that the workers of tests already done do not pile up.
os.environ.setdefault("LABELTUNE_WARM_IDLE_S", "15")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "ws")


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """No network, whatever the machine: every proxy points at a port nothing listens on, and Keras looks
    for weights in an empty ``KERAS_HOME`` (returned). urllib builds its process-wide opener, proxies
    included, on its first request (Keras downloads through it): it is dropped afterwards, or every later
    request in this process (the browser tests' health checks) would go to the dead proxy."""
    keras_home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    urllib.request.install_opener(None)
    yield keras_home
    urllib.request.install_opener(None)
