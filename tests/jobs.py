"""Running jobs from the tests: in this process (:func:`run_job`), or through real worker processes to show
a kind of job survives what users and machines do to it (:func:`lifecycle`)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

from core.i18n import render
from core.jobs import queue, runner
from core.jobs.runner import STEP_DELAY_ENV, JobKind
from core.jobs.store import Job, JobStatus, get_job, log_path
from core.store.workspace import Workspace


def run_job(ws: Workspace, kind: JobKind[Any], params: Any, **options: Any) -> Job:
    """Queue a job of ``kind`` and run it in this process now (its error stored, not raised)."""
    return runner.execute(ws, kind.submit(ws, params, attached=True, **options), kind)


def wait_for(ws: Workspace, job_id: int, done: Callable[[Job], bool], seconds: float = 300) -> Job:
    """Look at the job as a page's poll does (the scheduler sweeps and starts workers) until ``done``."""
    deadline = time.monotonic() + seconds
    while True:
        queue.schedule(ws)
        job = get_job(ws, job_id)
        if done(job):
            return job
        log = log_path(ws, job_id)
        assert time.monotonic() < deadline, (job, log.read_text()[-3000:] if log.exists() else "")
        time.sleep(0.1)


def _progressing(job: Job) -> bool:
    """Mid-way: running, some of its work done and some still to do (so a stop has a next step to land in)."""
    return job.status is JobStatus.RUNNING and 0 < job.done < job.total


def kill(ws: Workspace, job: Job) -> Job:
    """SIGKILL the running ``job``'s worker: the sweep marks it interrupted with the reason (it is never
    left "running"), and its scratch folder goes with it. Returns the job as it ended."""
    os.kill(job.pid, signal.SIGKILL)
    ended = wait_for(ws, job.id, lambda j: not j.live, seconds=30)
    assert ended.status is JobStatus.INTERRUPTED and ended.error["key"] == "err.worker_died", ended
    assert str(job.id) in render(ended.error, "zh")
    assert not (ws.jobs_dir / str(job.id)).exists()  # its scratch folder went with it
    return ended


def lifecycle(
    ws: Workspace,
    start: Callable[[int], int],
    monkeypatch: Any,
    *,
    when_cancelled: JobStatus = JobStatus.CANCELLED,
    delay: float = 1.0,
    together: bool = True,
) -> Job:
    """Three jobs of one kind, each in a real worker process the scheduler starts. ``start(n)`` queues the
    n-th (each a different job) and returns its id.

    1. Seen making progress, then killed with SIGKILL: the sweep marks it interrupted with a reason (it is
       never left "running") and nothing it owned is left behind.
    2. Seen making progress, then cancelled: it ends ``when_cancelled`` (cancelled; stopped for a training
       run, which keeps its best model).
    3. Left alone: it completes. Returned, for the caller to check its result.

    The first two run slowed down (``LABELTUNE_JOB_STEP_DELAY``) so that there is a "mid-way" to act in;
    ``together``: side by side (light jobs: two slots), else one after the other (a training run)."""
    warm = os.environ.get(queue.WARM_IDLE_ENV, "0")
    monkeypatch.setenv(STEP_DELAY_ENV, str(delay))
    monkeypatch.setenv(queue.WARM_IDLE_ENV, "0")  # a slowed-down worker must not stay up for the third job
    first = start(0)
    second = start(1) if together else None
    kill(ws, wait_for(ws, first, _progressing))

    cancelled = wait_for(ws, second if second is not None else start(1), _progressing)
    assert queue.cancel(ws, cancelled.id) is JobStatus.RUNNING  # asked; it ends at its next step
    ended = wait_for(ws, cancelled.id, lambda j: not j.live, seconds=120)
    assert ended.status is when_cancelled, (ended, log_path(ws, ended.id).read_text()[-3000:])

    monkeypatch.delenv(STEP_DELAY_ENV)
    monkeypatch.setenv(queue.WARM_IDLE_ENV, warm)  # the third may go to a warm worker
    done = wait_for(ws, start(2), lambda j: not j.live)
    assert done.status is JobStatus.COMPLETED, (done, log_path(ws, done.id).read_text()[-3000:])
    assert done.done == done.total > 0 and done.started_at and done.ended_at
    return done
