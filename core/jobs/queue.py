"""Who runs next, and whether a worker still lives: the rules of the job queue, whoever asks.

* **Resources, not one lock.** An exclusive job (training: it holds the accelerator or every core) runs
  alone: at most ``exclusive`` slots at once (1 unless a team runs workers on a cluster), in queue order.
  Light jobs (an import, an estimate, a preview, predictions, an export) run beside it, up to ``light``
  slots at once, each niced (``core.jobs.runner``) so a training run keeps the machine. See
  :func:`slots` for the defaults and why.
* A job is **claimed** (queued → running) inside one write transaction (``Connection.begin_write``:
  SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's transaction-scoped advisory lock) that first sweeps and
  checks its resource's slots; two processes racing for a slot never both get it, on one host or many.
  Not ``SELECT ... FOR UPDATE SKIP LOCKED``: it lets each worker take a different *row*, but the rule is
  over rows (at most N exclusive jobs running, in queue order): two workers locking two different queued
  rows would each see a slot free.
* :func:`schedule` starts a worker (``python -m core worker JOB``, through ``core.jobs.launcher``) for
  each queued job whose turn it is. It is called when a job is submitted, when a worker ends, and by
  anyone who looks at the queue (a page's poll, ``python -m core jobs``), so the queue moves on even
  after a crash.
* Liveness does not trust a bare pid. A worker writes a **heartbeat** every ``HEARTBEAT_S`` seconds from
  a thread; :func:`sweep` marks a running job interrupted when its heartbeat is older than ``STALE_S``, or
  when its pid (on this machine) is gone or now belongs to another process (a pid reused after a reboot).
  Reading a job never writes; marking happens only in the sweep.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

from core.errors import JobError
from core.i18n import stored
from core.jobs import launcher
from core.jobs.processes import HOST, pid_alive, process_identity
from core.jobs.store import (
    LIVE,
    Job,
    JobStatus,
    Resource,
    cleanup,
    end_job,
    forget_warm,
    hand_to_warm,
    insert,
    live_duplicate,
    owned_paths,
    read_job,
    remove_owned,
    row_to_job,
    warm_workers,
)
from core.store.db import DATABASE_ENV, Connection
from core.store.workspace import Workspace, utc_now

HEARTBEAT_S = 2.0  # a worker's heartbeat period (and how soon it sees a stop request)
STALE_S = 60.0  # a heartbeat older than this: the process is gone (or hung)
# A started worker has this long to claim its job (importing TensorFlow on a slow laptop takes a while).
START_GRACE_S = 300.0
# With a launcher command (a cluster's scheduler), a job may wait in that scheduler's own queue for long.
EXTERNAL_START_GRACE_S = 24 * 3600.0

EXCLUSIVE_SLOTS_SETTING = "queue.exclusive_slots"
LIGHT_SLOTS_SETTING = "queue.light_slots"
# Light jobs at once, by default. Two, so that a quick one (an estimate, a preview) is not stuck behind a
# long one (an export, an import of 20,000 photos); not more, because a TensorFlow job holds 0.5-1 GB of
# RAM and competes for cores (niced, light jobs beside a training run slowed it 7 %, not niced 18 %, on
# 2 cores: BENCHMARKS.md "Jobs"), and a laptop training at 224 px already uses 3-5 GB.
DEFAULT_LIGHT_SLOTS = 2
# How long a light job's worker stays up after its job, waiting for the next light job, before it exits.
# A warm worker has TensorFlow loaded: the next estimate, preview or prediction starts in well under a
# second instead of paying 5-30 s of interpreter and TensorFlow start-up (BENCHMARKS.md, "Warm jobs"). Two
# minutes covers the clicks of one session at the Train page (estimate, preview, LR finder) while an idle
# worker (0.5-1 GB with TensorFlow loaded) is not held for long. 0: every light job starts a new process.
WARM_IDLE_SETTING = "queue.warm_idle_s"
WARM_IDLE_ENV = "LABELTUNE_WARM_IDLE_S"  # wins over the setting (the tests set a short one)
DEFAULT_WARM_IDLE_S = 120.0


def _owner_alive(host: str | None, pid: int | None, identity: str | None) -> bool:
    """The recorded process runs and is the one recorded (same start time), as far as this machine can
    tell; a process on another machine (a cluster's node) is judged by its heartbeat alone."""
    if host is not None and host != HOST:
        return True
    if not pid_alive(pid):
        return False
    if identity is None:
        return True
    now = process_identity(pid)  # type: ignore[arg-type]
    return now is None or now == identity


def _immediate(conn: Connection) -> None:
    conn.begin_write()  # the write lock first: the checks below hold until commit


def _sweep(conn: Connection, now: float) -> list[int]:
    marked = []
    # Each process judged once per sweep: a warm worker dying between two looks (judged alive as a warm
    # worker, then dead as the process of the job just handed to it) would fail a job that was never its
    # to start, instead of giving it back to the queue at the next sweep.
    verdicts: dict[tuple[str | None, int | None, str | None], bool] = {}

    def owner_alive(host: str | None, pid: int | None, identity: str | None) -> bool:
        key = (host, pid, identity)
        if key not in verdicts:
            verdicts[key] = _owner_alive(host, pid, identity)
        return verdicts[key]

    for row in warm_workers(conn):
        if not owner_alive(HOST, row["pid"], row["proc_start"]):
            # A warm worker that died waiting, or as a job was handed to it: that job never started, and
            # goes back to the queue for another worker (a new process's crash at start fails it, below).
            forget_warm(conn, row["pid"])
            if row["job_id"] is not None:
                conn.execute(
                    "UPDATE jobs SET dispatched_at = NULL, host = NULL, pid = NULL, proc_start = NULL"
                    " WHERE id = ? AND status = ?",
                    (row["job_id"], JobStatus.QUEUED),
                )
    for row in conn.execute(
        "SELECT id, kind, host, pid, proc_start, heartbeat_at FROM jobs WHERE status = ?", (JobStatus.RUNNING,)
    ).fetchall():
        fresh = row["heartbeat_at"] is not None and now - row["heartbeat_at"] <= STALE_S
        if fresh and owner_alive(row["host"], row["pid"], row["proc_start"]):
            continue
        end_job(
            conn, row["id"], JobStatus.INTERRUPTED, error=stored("err.worker_died", job=row["id"], kind=row["kind"])
        )
        marked.append(row["id"])
    for row in conn.execute(
        "SELECT id, host, pid, proc_start, dispatched_at FROM jobs WHERE status = ? AND dispatched_at IS NOT NULL",
        (JobStatus.QUEUED,),
    ).fetchall():
        local = row["pid"] is not None
        grace = START_GRACE_S if local else EXTERNAL_START_GRACE_S
        alive = not local or owner_alive(row["host"], row["pid"], row["proc_start"])
        if alive and now - row["dispatched_at"] <= grace:
            continue
        # The process that was to run it ended (or hung) before claiming it: a crash at start, whose
        # reason is in its log, or a waiting command line that was killed.
        end_job(conn, row["id"], JobStatus.FAILED, error=stored("err.worker_never_started", job=row["id"]))
        marked.append(row["id"])
    return marked


def _text(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False)


def sweep(ws: Workspace) -> list[int]:
    """Mark jobs whose process is gone: running → interrupted, a started worker that never claimed its job
    → failed; remove the files they owned. Returns the ids it marked."""
    with ws.connect() as conn:
        _immediate(conn)
        marked = _sweep(conn, time.time())
        owned = {job_id: owned_paths(conn, job_id) for job_id in marked}
    for job_id, paths in owned.items():
        cleanup(ws, job_id, paths)
    return marked


def slots(ws: Workspace) -> dict[Resource, int]:
    """How many jobs of each resource may run at once: ``queue.exclusive_slots`` (default 1: one training at
    a time; more only when a launcher sends workers to other machines) and ``queue.light_slots`` (default
    :data:`DEFAULT_LIGHT_SLOTS`), from the workspace's settings (``python -m core jobs --set-slots``)."""
    with ws.connect() as conn:
        rows = dict(
            conn.execute(
                "SELECT key, value FROM settings WHERE key IN (?, ?)", (EXCLUSIVE_SLOTS_SETTING, LIGHT_SLOTS_SETTING)
            ).fetchall()
        )
    return {
        Resource.EXCLUSIVE: int(rows.get(EXCLUSIVE_SLOTS_SETTING, 1)),
        Resource.LIGHT: int(rows.get(LIGHT_SLOTS_SETTING, DEFAULT_LIGHT_SLOTS)),
    }


def warm_idle_s(ws: Workspace) -> float:
    """Seconds a light job's worker waits for the next light job before it exits (0: it exits at once).
    The environment's ``LABELTUNE_WARM_IDLE_S``, else the workspace's ``queue.warm_idle_s``, else
    :data:`DEFAULT_WARM_IDLE_S`. Never with a launcher template: a cluster's scheduler owns its workers."""
    if launcher.template(ws):
        return 0.0
    value = os.environ.get(WARM_IDLE_ENV) or ws.get_setting(WARM_IDLE_SETTING, "") or DEFAULT_WARM_IDLE_S
    return max(float(value), 0.0)


def set_warm_idle_s(ws: Workspace, seconds: float) -> None:
    if not 0 <= seconds <= 24 * 3600:
        raise JobError("err.warm_idle", value=seconds)
    ws.set_setting(WARM_IDLE_SETTING, str(seconds))


def may_stay_warm(ws: Workspace, pid: int) -> bool:
    """Whether light worker ``pid`` may wait for the next light job: warm workers are on (see
    :func:`warm_idle_s`) and fewer than the light slots wait already (each holds TensorFlow's memory)."""
    if warm_idle_s(ws) <= 0:
        return False
    with ws.connect() as conn:
        others = [row for row in warm_workers(conn) if row["pid"] != pid]
    return len(others) < slots(ws)[Resource.LIGHT]


def set_slots(ws: Workspace, resource: Resource, count: int) -> None:
    if not 1 <= count <= 64:
        raise JobError("err.job_slots", resource=str(resource), value=count)
    key = EXCLUSIVE_SLOTS_SETTING if resource is Resource.EXCLUSIVE else LIGHT_SLOTS_SETTING
    ws.set_setting(key, str(count))


def _busy(conn: Connection, resource: Resource) -> int:
    """Jobs of ``resource`` running, or with a process on its way to claim them."""
    return conn.execute(
        "SELECT COUNT(*) FROM jobs WHERE resource = ? AND (status = ? OR (status = ? AND dispatched_at IS NOT NULL))",
        (resource, JobStatus.RUNNING, JobStatus.QUEUED),
    ).fetchone()[0]


def _refuse_second_host(conn: Connection) -> None:
    """A SQLite store serves one host: a worker on another machine while one of this machine's jobs runs
    (the workspace on a network filesystem) would share the file over the network, where SQLite's locks
    do not hold. Refused, with the way to run on several machines (PostgreSQL)."""
    other = conn.execute(
        "SELECT host FROM jobs WHERE status = ? AND host IS NOT NULL AND host != ? LIMIT 1", (JobStatus.RUNNING, HOST)
    ).fetchone()
    if other:
        raise JobError("err.sqlite_one_host", host=HOST, other=other[0], env=DATABASE_ENV)


def claim(ws: Workspace, job_id: int) -> bool:
    """Make ``job_id`` (queued) the running job of this process, if its resource has a free slot and no job
    before it in the queue has a process about to claim that slot.

    Atomic across processes. False when it is not its turn (the job stays queued)."""
    limits = slots(ws)
    with ws.connect() as conn:
        _immediate(conn)
        now = time.time()
        _sweep(conn, now)
        job = read_job(conn, job_id)
        if job.status is not JobStatus.QUEUED:
            raise JobError("err.job_not_queued", job=job_id, status=str(job.status))
        if not conn.postgresql:
            _refuse_second_host(conn)
        running = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE resource = ? AND status = ?", (job.resource, JobStatus.RUNNING)
        ).fetchone()[0]
        ahead = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE id != ? AND resource = ? AND status = ?"
            " AND dispatched_at IS NOT NULL AND (queue_pos < ? OR (queue_pos = ? AND id < ?))",
            (job_id, job.resource, JobStatus.QUEUED, job.queue_pos, job.queue_pos, job_id),
        ).fetchone()[0]
        if running + ahead >= limits[job.resource]:
            return False
        pid = os.getpid()
        conn.execute(
            "UPDATE jobs SET status = ?, host = ?, pid = ?, proc_start = ?, heartbeat_at = ?,"
            " dispatched_at = NULL, started_at = ?, error_json = '' WHERE id = ?",
            (JobStatus.RUNNING, HOST, pid, process_identity(pid), now, utc_now(), job_id),
        )
    return True


def attach(ws: Workspace, job_id: int) -> None:
    """Record this process as the one that will run queued ``job_id`` (and that it is still waiting)."""
    pid = os.getpid()
    with ws.connect() as conn:
        conn.execute(
            "UPDATE jobs SET host = ?, pid = ?, proc_start = ?, dispatched_at = ? WHERE id = ? AND status = ?",
            (HOST, pid, process_identity(pid), time.time(), job_id, JobStatus.QUEUED),
        )


def wait_for_turn(
    ws: Workspace, job_id: int, on_wait: Callable[[int | None], None], poll_s: float = HEARTBEAT_S
) -> bool:
    """Claim ``job_id`` for this process, waiting in the queue for its turn; ``on_wait(position)`` is
    called at each look. False if the job left the queue meanwhile (cancelled, failed)."""
    attach(ws, job_id)
    while True:
        try:
            if claim(ws, job_id):
                return True
        except JobError as exc:
            if exc.key in ("err.job_not_queued", "err.job_unknown"):
                return False
            raise
        on_wait(position(ws, job_id))
        time.sleep(poll_s)
        attach(ws, job_id)  # still here: keeps the sweep from taking this process for dead
        schedule(ws)  # a job before this one may need its worker started


def submit(
    ws: Workspace,
    kind: str,
    resource: Resource,
    params: dict,
    *,
    run_id: str | None = None,
    dedupe: str | None = None,
    owned: tuple[str, ...] = (),
    start: bool = True,
    attached: bool = False,
) -> int:
    """Queue a job (or find the live one with the same ``kind`` and ``dedupe`` key) and, with ``start``,
    let the scheduler start its worker when it is its turn. Returns the job id at once.

    ``attached``: this process runs it (``core.jobs.runner.execute`` with ``on_wait``), no worker starts."""
    with ws.connect() as conn:
        _immediate(conn)
        found = live_duplicate(conn, kind, dedupe) if dedupe else None
        job_id = found or insert(
            conn, kind, resource, params, run_id=run_id, dedupe=dedupe, owned=owned, attached=attached
        )
    if found:
        remove_owned(list(owned))  # the live job has its own copy of the input
    if start:
        schedule(ws)
    return job_id


def schedule(ws: Workspace) -> list[int]:
    """Sweep, then start a worker for each queued job whose turn it is: the first queued exclusive job
    while an exclusive slot is free, and light jobs in queue order while light slots are free.

    A light job goes to an idle warm worker of this machine when there is one (:func:`warm_idle_s`), else
    to a new process. Returns the jobs it started or handed over. Cheap enough to call on every look at the queue: with nothing queued or
    running it only reads (no write lock on every page load)."""
    with ws.connect() as conn:
        if not conn.execute("SELECT 1 FROM jobs WHERE status IN (?, ?) LIMIT 1", tuple(LIVE)).fetchone():
            return []
    limits, warm = slots(ws), warm_idle_s(ws) > 0  # no warm workers with a launcher, or when turned off
    with ws.connect() as conn:
        _immediate(conn)
        now = time.time()
        marked = _sweep(conn, now)
        owned = {job_id: owned_paths(conn, job_id) for job_id in marked}
        chosen: list[Job] = []
        handed: list[int] = []
        for resource in Resource:
            free = limits[resource] - _busy(conn, resource)
            if free <= 0:
                continue
            rows = conn.execute(
                "SELECT * FROM jobs WHERE status = ? AND resource = ? AND dispatched_at IS NULL AND held = 0"
                " ORDER BY queue_pos, id LIMIT ?",
                (JobStatus.QUEUED, resource, free),
            ).fetchall()
            chosen += [row_to_job(row) for row in rows]
        idle = [row for row in warm_workers(conn) if row["job_id"] is None] if warm else []
        for job in [j for j in chosen if j.resource is Resource.LIGHT][: len(idle)]:
            worker = idle.pop(0)  # a light worker with TensorFlow loaded takes it: no process to start
            hand_to_warm(conn, job.id, worker["pid"], worker["proc_start"], now)
            chosen.remove(job)
            handed.append(job.id)
        for job in chosen:  # marked before the launch, so a second scheduler does not start them too
            conn.execute("UPDATE jobs SET dispatched_at = ?, host = NULL, pid = NULL WHERE id = ?", (now, job.id))
    for job_id, paths in owned.items():
        cleanup(ws, job_id, paths)
    started = handed
    for job in chosen:
        try:
            pid = launcher.launch(ws, job)
        except JobError as exc:
            _fail_launch(ws, job.id, exc)
            continue
        if pid is not None:
            with ws.connect() as conn:
                conn.execute(
                    "UPDATE jobs SET host = ?, pid = ?, proc_start = COALESCE(proc_start, ?) WHERE id = ?"
                    " AND status = ?",
                    (HOST, pid, process_identity(pid), job.id, JobStatus.QUEUED),
                )
        started.append(job.id)
    return started


def _fail_launch(ws: Workspace, job_id: int, exc: JobError) -> None:
    with ws.connect() as conn:
        end_job(conn, job_id, JobStatus.FAILED, error=exc.stored())
        owned = owned_paths(conn, job_id)
    cleanup(ws, job_id, owned)


def cancel(ws: Workspace, job_id: int) -> JobStatus:
    """Cancel a job: a queued one leaves the queue at once (cancelled); a running one is asked to stop and
    ends at its next step (cancelled, or stopped for a run that keeps its model). Returns its status now."""
    with ws.connect() as conn:
        _immediate(conn)
        job = read_job(conn, job_id)
        if job.status is JobStatus.QUEUED:
            end_job(conn, job_id, JobStatus.CANCELLED)
            owned = owned_paths(conn, job_id)
        elif job.status is JobStatus.RUNNING:
            conn.execute("UPDATE jobs SET stop_requested = 1 WHERE id = ?", (job_id,))
            owned = []
        else:
            raise JobError("err.job_not_cancellable", job=job_id, status=str(job.status))
    if job.status is JobStatus.QUEUED:
        cleanup(ws, job_id, owned)
    return JobStatus.CANCELLED if job.status is JobStatus.QUEUED else JobStatus.RUNNING


def stop_requested(ws: Workspace, job_id: int) -> bool:
    with ws.connect() as conn:
        row = conn.execute("SELECT stop_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return bool(row and row[0])


def queue(ws: Workspace, resource: Resource = Resource.EXCLUSIVE) -> list[Job]:
    """The queued jobs of ``resource`` in the order they will start."""
    with ws.connect() as conn:
        rows = conn.execute(  # one statement, not one per job: on PostgreSQL each is a round trip
            "SELECT * FROM jobs WHERE status = ? AND resource = ? AND held = 0 ORDER BY queue_pos, id",
            (JobStatus.QUEUED, resource),
        ).fetchall()
    return [row_to_job(r) for r in rows]


def position(ws: Workspace, job_id: int) -> int | None:
    """1 for the next job of its resource to start; None when the job is not queued."""
    with ws.connect() as conn:
        job = read_job(conn, job_id)
    if job.status is not JobStatus.QUEUED:
        return None
    ids = [j.id for j in queue(ws, job.resource)]
    return ids.index(job_id) + 1 if job_id in ids else None


def _queued_job(conn: Connection, job_id: int) -> Job:
    """The job, in a write transaction begun here; it must still be queued (its place is what changes)."""
    _immediate(conn)
    job = read_job(conn, job_id)
    if job.status is not JobStatus.QUEUED:
        raise JobError("err.job_not_queued", job=job_id, status=str(job.status))
    return job


def move_up(ws: Workspace, job_id: int) -> None:
    """Swap a queued job with the one before it in its resource's queue."""
    with ws.connect() as conn:
        job = _queued_job(conn, job_id)
        rows = conn.execute(
            "SELECT id, queue_pos FROM jobs WHERE status = ? AND resource = ? ORDER BY queue_pos, id",
            (JobStatus.QUEUED, job.resource),
        ).fetchall()
        i = [r["id"] for r in rows].index(job_id)
        if i == 0:
            return
        above, this = rows[i - 1], rows[i]
        conn.execute("UPDATE jobs SET queue_pos = ? WHERE id = ?", (this["queue_pos"], above["id"]))
        conn.execute("UPDATE jobs SET queue_pos = ? WHERE id = ?", (above["queue_pos"], this["id"]))


def to_front(ws: Workspace, job_id: int) -> None:
    """Put a queued job first in its resource's queue (the run a settings search ends with: its budget
    already runs)."""
    with ws.connect() as conn:
        job = _queued_job(conn, job_id)
        first = conn.execute(
            "SELECT MIN(queue_pos) FROM jobs WHERE status = ? AND resource = ?", (JobStatus.QUEUED, job.resource)
        ).fetchone()[0]
        conn.execute("UPDATE jobs SET queue_pos = ? WHERE id = ?", ((first or 0) - 1, job_id))
