"""Running jobs from the tests: in this process (:func:`run_job`), or through real worker processes to show
the job mechanism survives what users and machines do to it (:func:`lifecycle`: once for an exclusive
job, a training run, and once for a light one, predictions over a split), and each kind of job's own
handling of a death, a cancel and an end through the same runner in this process (:func:`lifecycle_here`:
no interpreter and TensorFlow start per job)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from core.i18n import render
from core.jobs import launcher, queue, runner
from core.jobs.processes import HOST
from core.jobs.runner import STEP_DELAY_ENV, JobKind
from core.jobs.store import Job, JobStatus, get_job, log_path
from core.runs import store as runs
from core.store.workspace import Workspace


def run_job(ws: Workspace, kind: JobKind[Any], params: Any, **options: Any) -> Job:
    """Queue a job of ``kind`` and run it in this process now (its error stored, not raised)."""
    return runner.execute(ws, kind.submit(ws, params, attached=True, **options), kind)


def cancelled(ws: Workspace, run_id: str) -> str:
    """A run created attached (no worker starts for it), taken off the queue: a run that exists and never
    trained, for tests about pages and datasets rather than training. Returns its id."""
    assert queue.cancel(ws, runs.get_run(ws, run_id).job.id) is JobStatus.CANCELLED
    return run_id


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


class Killed(BaseException):
    """Ends a job's handler mid-way as a SIGKILL ends its worker: no ``except`` of the runner's catches it,
    so the job's end is never stored."""


def _mid_way(act: Callable[[], None]) -> Callable[[int, int, dict | None], None]:
    """A progress hook that calls ``act`` once, at the first report with work done and work left."""
    acted = []

    def hook(done: int, total: int, phase: dict | None) -> None:
        if not acted and 0 < done < total:
            acted.append(True)
            act()

    return hook


def lifecycle_here(ws: Workspace, start: Callable[[int], int], monkeypatch: Any) -> Job:
    """Three jobs of one kind, queued as the app queues them (``start(n)`` returns the n-th job's id), each
    run in this process through the runner the worker uses (``core.jobs.runner.execute``); the scheduler
    hands them to a launcher that starts nothing, as a cluster's would.

    1. Its process dies mid-way (:class:`Killed` from a progress report; then its pid is a dead one): the
       sweep marks it interrupted with the reason, and nothing it owned is left behind.
    2. Cancelled mid-way: it ends cancelled at its next step, having made nothing.
    3. Left alone: it completes. Returned, for the caller to check its result (and that 1 and 2 left
       nothing half-made: the kind's own part)."""
    from core.cli.jobs import KINDS  # the table the worker looks a job's handler up in

    with monkeypatch.context() as patched:  # for these three jobs only
        patched.setenv(launcher.ENV_VAR, "true")  # "handed over": no worker process starts
        return _three_here(ws, start, KINDS)


def _three_here(ws: Workspace, start: Callable[[int], int], kinds: dict) -> Job:
    first = start(0)
    kind = kinds[get_job(ws, first).kind]
    try:
        runner.execute(ws, first, kind, on_progress=_mid_way(lambda: _raise(Killed())))
        raise AssertionError(f"job {first} never reported progress mid-way")
    except Killed:
        pass
    gone = subprocess.Popen(["true"])
    gone.wait()
    with ws.connect() as conn:  # the row as a dead worker leaves it: running, its pid gone
        conn.execute("UPDATE jobs SET pid = ?, host = ? WHERE id = ?", (gone.pid, HOST, first))
    assert first in queue.sweep(ws)
    ended = get_job(ws, first)
    assert ended.status is JobStatus.INTERRUPTED and ended.error["key"] == "err.worker_died", ended
    assert not (ws.jobs_dir / str(first)).exists()

    second = start(1)

    def cancel() -> None:
        assert queue.cancel(ws, second) is JobStatus.RUNNING
        time.sleep(runner.STOP_POLL_S + 0.05)  # past the runner's next look at the stop request

    cancelled = runner.execute(ws, second, kind, on_progress=_mid_way(cancel))
    assert cancelled.status is JobStatus.CANCELLED, cancelled

    done = runner.execute(ws, start(2), kind)
    assert done.status is JobStatus.COMPLETED, done
    assert done.done == done.total > 0 and done.started_at and done.ended_at
    return done


def _raise(exc: BaseException) -> None:
    raise exc
