from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty workspace the app opens (LABELTUNE_HOME), run from the project root. Modules with a
    prepared workspace define their own ``home``."""
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "ws"))
    monkeypatch.chdir(ROOT)
    return tmp_path / "ws"
