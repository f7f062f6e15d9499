from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.store.workspace import Workspace

# Keep TensorFlow quiet and single-machine friendly in every test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "ws")
