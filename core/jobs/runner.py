"""Running one job in this process: claim it, beat, report progress, honour a stop request, store the end.

A kind of job (:class:`JobKind`) is declared by the stage that does the work (``core.training.jobs``,
``core.datasets.jobs``, ...): its name, the resource it holds, its typed parameters and its handler,
``handler(ctx, params) -> result``. The handler talks to the outside only through its
:class:`JobContext`: ``ctx.progress(done, total, key, **params)`` and ``ctx.check()`` (raises
:class:`JobCancelled` once a stop was asked for). Whatever it returns is stored as the job's result; a
:class:`~core.errors.LabelTuneError` it raises is stored as the job's error (key and parameters), in the
reader's language when shown; anything else is stored as an unexpected error and raised again (its
traceback goes to the job's log).

``python -m core worker JOB`` (started by the scheduler) and the command-line verbs that work in the
foreground (``python -m core train``, ``import``, ...) both run jobs through :func:`execute`, so a job
started from either shows in the app and can be cancelled from either.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from core.errors import JobError, LabelTuneError
from core.i18n import stored
from core.jobs import queue
from core.jobs.store import (
    Job,
    JobStatus,
    Resource,
    beat,
    cleanup,
    finish,
    get_job,
    log_path,
    owned_paths,
    record_progress,
    register_warm,
    release_warm,
    retire_warm,
    scratch_dir,
    warm_job,
)
from core.store.db import DATABASE_ERRORS, TRANSIENT
from core.store.workspace import Workspace

# Seconds between two progress writes (the last one of a phase is always written).
PROGRESS_WRITE_S = 0.5
# Seconds between two looks at the job's stop request from the work itself (the heartbeat also looks).
STOP_POLL_S = 0.25
# Niceness of a light job's worker: beside a training run it takes about a tenth of a busy core.
LIGHT_NICENESS = 10
# Slows every job step by this many seconds: for tests that cancel or kill a job mid-way, and for watching
# progress by eye. Never set in normal use.
STEP_DELAY_ENV = "LABELTUNE_JOB_STEP_DELAY"


class JobCancelled(Exception):  # noqa: N818 - a signal, not an error
    """Raised by :meth:`JobContext.check` once a stop was asked for; ends the job as cancelled."""


class Params(Protocol):
    """A job's typed parameters: a frozen dataclass that round-trips through JSON."""

    def to_dict(self) -> dict[str, Any]: ...


P = TypeVar("P", bound=Params)


class FlatParams:
    """For a job's parameters that are a frozen dataclass of plain JSON values: stored as its fields, and
    read back from them."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})  # type: ignore[arg-type]


@dataclass(frozen=True)
class JobResult:
    """What a handler returns when the job does not simply complete (a training run that was stopped)."""

    value: dict[str, Any]
    status: JobStatus = JobStatus.COMPLETED


@dataclass(frozen=True)
class JobKind(Generic[P]):
    name: str
    resource: Resource
    params: Callable[[dict[str, Any]], P]  # from stored JSON to typed parameters (``Params.from_dict``)
    handler: Callable[[JobContext, P], dict[str, Any] | JobResult]

    def submit(self, ws: Workspace, params: P, **options: Any) -> int:
        """Queue a job of this kind with typed ``params``; the scheduler starts its worker when it is its
        turn. ``options``: those of :func:`core.jobs.queue.submit` (``run_id``, ``dedupe``, ``owned``,
        ``start``, ``attached``: this process runs it). Returns its id."""
        if options.get("attached"):
            options["start"] = False
        return queue.submit(ws, self.name, self.resource, params.to_dict(), **options)


class JobContext:
    """What a running job's handler sees of the outside: its workspace, its job, progress and stop."""

    def __init__(
        self, ws: Workspace, job: Job, on_progress: Callable[[int, int, dict | None], None] | None = None
    ) -> None:
        self.ws, self.job, self.on_progress = ws, job, on_progress
        self._stop = threading.Event()
        self._last_write = self._last_look = 0.0
        self._last_phase: dict[str, Any] | None = None
        self._delay = float(os.environ.get(STEP_DELAY_ENV) or 0)

    @property
    def stop_requested(self) -> bool:
        """True once someone asked the job to stop: seen within ``STOP_POLL_S`` of asking while the work
        asks (a training batch, an image), and by the heartbeat in any case."""
        now = time.monotonic()
        if not self._stop.is_set() and now - self._last_look >= STOP_POLL_S:
            self._last_look = now
            try:
                if queue.stop_requested(self.ws, self.job.id):
                    self._stop.set()
            except TRANSIENT:
                pass  # busy: the next look, or the heartbeat, will see it
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def scratch(self) -> Path:
        """A folder of this job's own, removed when it ends however it ends (``core.jobs.store.scratch_dir``)."""
        folder = scratch_dir(self.ws, self.job.id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def check(self) -> None:
        if self.stop_requested:
            raise JobCancelled

    def progress(self, done: int, total: int, key: str | None = None, *, stop_here: bool = True, **params: Any) -> None:
        """How far the job is: ``done`` of ``total`` units, doing what ``key`` says (a message key). With
        ``stop_here`` (the default) a stop request ends the job here (:class:`JobCancelled`); work that
        stops in its own way (a training run keeps its best model) passes False and asks
        :attr:`stop_requested` itself."""
        phase = stored(key, **params) if key else self._last_phase
        if self.on_progress:
            self.on_progress(done, total, phase)
        now = time.monotonic()
        if done >= total or phase != self._last_phase or now - self._last_write >= PROGRESS_WRITE_S:
            try:
                record_progress(self.ws, self.job.id, done, total, phase)
                self._last_write, self._last_phase = now, phase
            except TRANSIENT:
                pass  # the database was busy past its timeout: the next report will do
        if self._delay:
            time.sleep(self._delay)
        if stop_here:
            self.check()


class Heartbeat:
    """While a job runs, write its heartbeat every ``HEARTBEAT_S`` seconds from a daemon thread (a thread,
    so a 13-second ResNet50 step on a CPU does not look like a dead worker) and pass a stop request on."""

    def __init__(self, ws: Workspace, job_id: int, ctx: JobContext | None = None, period: float = 0.0) -> None:
        self.ws, self.job_id, self.ctx = ws, job_id, ctx
        self.period = period or queue.HEARTBEAT_S
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)

    def _beat(self) -> None:
        while not self._done.wait(self.period):
            try:
                stop = beat(self.ws, self.job_id)
            except (*DATABASE_ERRORS, LabelTuneError):
                continue  # a locked database now and then: the next beat will do
            if self.ctx is not None and stop:
                self.ctx.request_stop()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def execute(
    ws: Workspace,
    job_id: int,
    kind: JobKind[Any],
    *,
    on_wait: Callable[[int | None], None] | None = None,
    raise_errors: bool = False,
    nice: bool = False,
    on_progress: Callable[[int, int, dict | None], None] | None = None,
    on_end: Callable[[], None] | None = None,
) -> Job:
    """Run queued ``job_id`` here to its end; returns the job as stored afterwards.

    With ``on_wait`` this process waits for the job's turn (calling ``on_wait(position)`` while it waits);
    without it, a job that is not its turn stays queued and is returned at once. ``raise_errors``: after
    storing a domain error, raise it too (the command line prints it and exits with its code). ``nice``:
    lower this process's priority for a light job (the scheduler's workers do). ``on_progress(done, total,
    phase)``: each progress report, as it is made (a command line's progress bar). ``on_end()``: once the
    job's end is stored, before the scheduler looks for the next job (a warm worker says it is free)."""
    turn = queue.wait_for_turn(ws, job_id, on_wait) if on_wait else queue.claim(ws, job_id)
    if not turn:
        return get_job(ws, job_id)
    job = get_job(ws, job_id)
    if nice and job.resource is Resource.LIGHT and hasattr(os, "nice"):
        os.nice(LIGHT_NICENESS)
    ctx = JobContext(ws, job, on_progress)
    try:
        with Heartbeat(ws, job_id, ctx):
            out = kind.handler(ctx, kind.params(job.params))
        outcome = out if isinstance(out, JobResult) else JobResult(out)
        finish(ws, job_id, outcome.status, result=outcome.value)
    except JobCancelled:
        finish(ws, job_id, JobStatus.CANCELLED)
    except LabelTuneError as exc:
        finish(ws, job_id, JobStatus.FAILED, error=exc.stored())
        if raise_errors:
            raise
    except KeyboardInterrupt:
        finish(ws, job_id, JobStatus.INTERRUPTED, error=stored("err.job_interrupted", job=job_id))
        raise
    except Exception as exc:  # a bug or an unforeseen failure: stored with its type, then raised (traceback to the log)
        finish(ws, job_id, JobStatus.FAILED, error=stored("err.unexpected", kind=type(exc).__name__, detail=str(exc)))
        raise
    finally:
        with ws.connect() as conn:
            owned = owned_paths(conn, job_id)
        cleanup(ws, job_id, owned)
        if on_end is not None:
            on_end()
        queue.schedule(ws)  # this job's slot is free: start the next one
    return get_job(ws, job_id)


# Seconds between two looks of an idle warm worker for a job handed to it: a light job starts within this.
WARM_POLL_S = 0.1


def serve_warm(
    ws: Workspace, kinds: Mapping[str, JobKind[Any]], *, idle_s: float, fresh_state: Callable[[], None]
) -> int:
    """After its first light job, a local worker waits up to ``idle_s`` seconds for the scheduler to hand it
    the next light job (``core.jobs.queue.schedule``), runs it as :func:`execute` does, and waits again; it
    exits once it has waited ``idle_s`` with nothing to do. Before each job ``fresh_state()`` puts the
    process as a new one would be (Keras' session, dtype policy: a job's result must not depend on what ran
    before it here), and the job's output goes to its own log. An unforeseen error ends the worker (the next
    job gets a fresh process). Returns how many jobs it ran."""
    pid, ran = os.getpid(), 0
    register_warm(ws, pid)
    idle_since = time.monotonic()
    while True:
        job_id = warm_job(ws, pid)
        if job_id is None:
            if time.monotonic() - idle_since >= idle_s and retire_warm(ws, pid):
                return ran
            time.sleep(WARM_POLL_S)
            continue
        _log_to(log_path(ws, job_id))
        fresh_state()
        job = get_job(ws, job_id)
        kind = kinds.get(job.kind)
        if kind is None or job.status is not JobStatus.QUEUED:  # cancelled meanwhile, or not ours to run
            release_warm(ws, pid)
            continue
        try:
            done = execute(ws, job_id, kind, on_end=lambda: release_warm(ws, pid))
        except JobError:  # it left the queue between the look above and the claim
            release_warm(ws, pid)
            continue
        except Exception:  # stored as the job's error by execute; this process may be in a bad state: end it
            retire_warm(ws, pid)
            raise
        if done.status is JobStatus.QUEUED:  # not its turn yet (a slot frees soon): look again
            time.sleep(WARM_POLL_S)
            continue
        ran += 1
        idle_since = time.monotonic()


def _log_to(path: Path) -> None:
    """This process's output (and its children's) from now on goes to ``path`` (a job's log)."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)
