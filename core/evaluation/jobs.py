"""Computing a run's stored predictions in a background process, for runs saved before they were stored
or for the train split on request. The app never imports TensorFlow for this: it starts
``python -m core predictions RUN --split ...`` and polls the progress file the job writes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core.evaluation.predictions import PROGRESS_FILE
from core.store.workspace import Workspace
from core.training import runs
from core.training.side_jobs import ROOT

JOB_FILE = "predictions.job.json"


@dataclass(frozen=True)
class JobState:
    running: bool
    split: str | None = None
    done: int = 0
    total: int = 0


def start_prediction_job(ws: Workspace, run_id: str, splits: tuple[str, ...]) -> int:
    """Start the job unless one is running for this run; returns its pid."""
    state = job_state(ws, run_id)
    folder = runs.run_dir(ws, run_id)
    if state.running:
        return json.loads((folder / JOB_FILE).read_text())["pid"]
    args = [sys.executable, "-m", "core", "predictions", run_id, "--workspace", str(ws.root)]
    for split in splits:
        args += ["--split", split]
    log = open(folder / "predictions.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            args, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        log.close()
    runs.write_json_atomic(folder / JOB_FILE, {"pid": proc.pid, "splits": list(splits)})
    return proc.pid


def job_state(ws: Workspace, run_id: str) -> JobState:
    """Whether a prediction job of this run is alive, and how far it is."""
    folder: Path = runs.run_dir(ws, run_id)
    job = folder / JOB_FILE
    if not job.exists():
        return JobState(False)
    pid = json.loads(job.read_text())["pid"]
    if not runs.pid_alive(pid):
        return JobState(False)
    progress = folder / PROGRESS_FILE
    values = json.loads(progress.read_text()) if progress.exists() else {}
    return JobState(True, values.get("split"), values.get("done", 0), values.get("total", 0))
