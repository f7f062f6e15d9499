"""Queueing a run and starting it in its own process, so nothing trains in the Streamlit script thread.

Nothing here imports TensorFlow: the app creates and starts runs through this
module and the worker process (``python -m core worker RUN``) does the training.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.errors import TrainingError
from core.store.workspace import Workspace
from core.training import runs
from core.training.config import TrainConfig
from core.training.pipeline import load_training_data

ROOT = Path(__file__).resolve().parents[2]  # the repository root, where `python -m core` resolves


def create_run(ws: Workspace, config: TrainConfig) -> str:
    """Check the dataset can train and record a queued run; returns its id."""
    data = load_training_data(ws, config.dataset)
    return runs.insert_run(
        ws,
        dataset_id=data.dataset_id,
        dataset_name=config.dataset,
        version=data.version,
        classes=data.classes,
        config=config.to_dict(),
    )


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


def start_run(ws: Workspace, config: TrainConfig) -> str:
    """Queue a run for ``config`` and start its worker process; returns the run id."""
    run_id = create_run(ws, config)
    start_worker(ws, run_id)
    return run_id


def resume_run(ws: Workspace, run_id: str) -> None:
    """Start a worker that resumes a stopped, failed or interrupted run from its last epoch."""
    run = runs.get_run(ws, run_id)
    if run.status not in runs.RESUMABLE:
        raise TrainingError("err.run_not_resumable", run=run_id, status=run.status)
    runs.update_run(ws, run_id, status="queued", pid=None, error="")  # the old pid is dead: not "interrupted"
    start_worker(ws, run_id)
