"""Starting a run in its own process, so nothing trains in the Streamlit script thread."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core import runs
from core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def start_worker(ws: Workspace, run_id: str) -> int:
    """Launch ``python -m core worker RUN`` detached; returns its pid. Output goes to the run's ``worker.log``."""
    log = open(runs.run_dir(ws, run_id) / "worker.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core", "worker", run_id, "--workspace", str(ws.root)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()
    runs.update_run(ws, run_id, pid=proc.pid)
    return proc.pid
