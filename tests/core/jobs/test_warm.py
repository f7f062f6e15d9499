"""Warm light workers (core.jobs.runner.serve_warm, handed jobs by core.jobs.queue.schedule): real worker
processes, real TensorFlow, real SQLite."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from core.datasets.ingest import import_archive
from core.jobs import queue
from core.jobs.processes import pid_alive
from core.jobs.store import JobStatus, log_path, warm_workers
from core.runs.config import TrainConfig
from core.store.workspace import Workspace
from core.training.jobs import LR_FIND, start_plan_job
from tests.builders import TWO_COLOURS, make_zip, separable
from tests.jobs import wait_for

pytestmark = pytest.mark.slow  # real worker processes with TensorFlow


def sweep_of(ws: Workspace, **settings) -> tuple[int, int, dict]:
    """An LR sweep of a tiny config, run by whatever worker the scheduler picks: (job id, pid, result)."""
    config = TrainConfig(dataset="c", backbone="vgg16", weights="none", image_size=32, **settings)
    job_id = start_plan_job(ws, LR_FIND, config, steps=12)
    done = wait_for(ws, job_id, lambda j: not j.live, seconds=180)
    log = log_path(ws, job_id)
    assert done.status is JobStatus.COMPLETED, (done, log.read_text()[-2000:] if log.exists() else "no log")
    return job_id, done.pid, done.result


def idle_workers(ws: Workspace) -> list[int]:
    with ws.connect() as conn:
        return [row["pid"] for row in warm_workers(conn) if row["job_id"] is None]


def until(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_light_jobs_share_a_warm_worker_and_get_what_fresh_workers_get(tmp_path, monkeypatch):
    """Two LR sweeps with different settings, one after the other: the second goes to the first's worker
    (no new process), and its result equals the one a fresh worker gives for the same job alone. A warm
    worker idle past its time exits and leaves no row behind."""
    monkeypatch.setenv(queue.WARM_IDLE_ENV, "60")
    warm = Workspace.open(tmp_path / "warm")
    import_archive(warm, make_zip(tmp_path / "c.zip", separable(TWO_COLOURS, 10)), name="c")
    shutil.copytree(warm.root, tmp_path / "fresh")  # the same dataset, nothing cached yet

    _, first_pid, first = sweep_of(warm, seed=1, batch_size=8, dropout=0.2)
    until(lambda: idle_workers(warm) == [first_pid], "the worker to wait for the next light job")
    job, second_pid, second = sweep_of(warm, seed=7, batch_size=4, dropout=0.0, label_smoothing=0.1)
    assert second_pid == first_pid  # handed to the warm worker: no interpreter, no TensorFlow import
    assert log_path(warm, job).exists()  # its output went to its own log
    assert first["losses"] != pytest.approx(second["losses"], rel=1e-3)  # the settings did differ

    monkeypatch.setenv(queue.WARM_IDLE_ENV, "1")  # the reference in a fresh process, which then waits 1 s
    alone = Workspace.open(tmp_path / "fresh")
    _, fresh_pid, reference = sweep_of(alone, seed=7, batch_size=4, dropout=0.0, label_smoothing=0.1)
    assert fresh_pid != first_pid
    assert second["rates"] == reference["rates"]
    assert second["losses"] == pytest.approx(reference["losses"], rel=1e-5)
    assert second["suggestion"] == pytest.approx(reference["suggestion"], rel=1e-5)

    until(lambda: not pid_alive(fresh_pid) and not idle_workers(alone), "the idle warm worker to exit")
    assert pid_alive(first_pid)  # the other still waits (60 s): handed nothing, it keeps its slot
    os.kill(first_pid, signal.SIGKILL)  # a warm worker killed while idle: the next light job is not lost
    _, after_pid, _ = sweep_of(warm, seed=3)  # the sweep forgot the dead worker; a new process ran it
    assert after_pid != first_pid and first_pid not in idle_workers(warm)
