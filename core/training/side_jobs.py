"""Short TensorFlow jobs the Train page needs before a run starts (time estimate, augmentation
preview, learning-rate sweep), each run as ``python -m core VERB ... --json`` in a subprocess so
TensorFlow never loads in the Streamlit process. The verb writes its result to the workspace (a
cache the page reads next time) and prints it as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from core.errors import TrainingError
from core.store.workspace import Workspace
from core.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]  # the repository root, where `python -m core` resolves
TIMEOUT_S = 900


def config_args(config: TrainConfig) -> list[str]:
    """``config`` as the ``python -m core train`` flags that rebuild it (see ``core.cli.training``)."""
    out = []
    for f in fields(TrainConfig):
        value = getattr(config, f.name)
        flag = "--" + (f.metadata["flag"] or f.name).replace("_", "-")
        out += [flag, ("on" if value else "off") if isinstance(value, bool) else str(value)]
    return out


def run_verb(ws: Workspace, verb: str, args: list[str], timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Run ``python -m core VERB ARGS --json`` on ``ws``; its JSON answer, or a TrainingError with its
    error message."""
    command = [sys.executable, "-m", "core", verb, *args, "--workspace", str(ws.root), "--json"]
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TrainingError("err.side_job_timeout", verb=verb, seconds=int(timeout)) from None
    try:
        payload = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        payload = {}
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["?"]
        raise TrainingError("err.side_job_failed", verb=verb, detail=lines[-1].removeprefix("error: "))
    return payload
