"""Jobs in the store: what a job is (kind, typed parameters, status, progress, result, error) and the
plain reads and writes of its row. Who runs next and whether a worker still lives is ``core.jobs.queue``.

Every heavy task (training, an import, an export, predictions over a split, a time estimate, ...) is one
row of the ``jobs`` table. A job is queued, then claimed by one worker process, which beats a heartbeat
while it runs and records how far it is (``done``/``total`` and a phrase, stored as a message key and
parameters), then ends as completed, failed (with its error as key and parameters), stopped (asked to stop
and kept what it made: a training run), cancelled (asked to stop, or taken off the queue) or interrupted
(its process died: only the sweep says so).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import IO, Any

from core.errors import JobError
from core.jobs.processes import HOST, process_identity
from core.store.db import Connection, Row
from core.store.workspace import Workspace, utc_now


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"  # asked to stop and kept what it made (a training run keeps its best model)
    INTERRUPTED = "interrupted"  # its process died or stopped beating: judged by the sweep only
    CANCELLED = "cancelled"  # taken off the queue, or asked to stop and made nothing to keep

    def __str__(self) -> str:  # "queued", not "JobStatus.QUEUED", in f-strings and translation keys
        return self.value


LIVE = (JobStatus.QUEUED, JobStatus.RUNNING)  # the statuses of a job that has not ended


class Resource(str, Enum):
    """What a job holds while it runs; ``core.jobs.queue`` keeps each within its slots."""

    EXCLUSIVE = "exclusive"  # the accelerator or every core: training, distillation, a search
    LIGHT = "light"  # runs beside those, niced: an import, an estimate, a preview, predictions, an export

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    resource: Resource
    params: dict[str, Any]
    run_id: str | None
    status: JobStatus
    created_at: str
    queue_pos: float | None = None  # order among queued jobs of its resource (lower starts first)
    dedupe: str | None = None  # a live job with the same kind and key is reused instead of queued twice
    host: str | None = None  # the machine of the process that runs it (or is about to)
    pid: int | None = None
    proc_start: str | None = None  # that process's start time: a reused pid is told apart
    heartbeat_at: float | None = None  # epoch seconds of the worker's last sign of life
    dispatched_at: float | None = None  # queued: when a process was started (or attached) to run it
    held: bool = False  # queued for processes started by hand (a cluster's workers), not for the scheduler
    stop_requested: bool = False
    done: int = 0
    total: int = 0
    phase: dict[str, Any] | None = None  # stored message: what it is doing now
    result: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None  # stored message (key, params); render with core.i18n.render
    started_at: str | None = None
    ended_at: str | None = None

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def log_path(self, ws: Workspace) -> Path:
        return log_path(ws, self.id)


def log_path(ws: Workspace, job_id: int) -> Path:
    """The job's worker output (standard output and error)."""
    return ws.jobs_dir / f"{job_id}.log"


def _message(text: str) -> dict[str, Any] | None:
    return json.loads(text) if text else None


# Columns read into a Job as they are; the others need converting (enums, JSON, a flag).
_PLAIN_COLUMNS = ("id", "kind", "run_id", "created_at", "queue_pos", "dedupe", "host", "pid", "proc_start",
                  "heartbeat_at", "dispatched_at", "done", "total", "started_at", "ended_at")  # fmt: skip


def row_to_job(row: Row) -> Job:
    return Job(
        **{column: row[column] for column in _PLAIN_COLUMNS},
        resource=Resource(row["resource"]),
        params=json.loads(row["params_json"]),
        status=JobStatus(row["status"]),
        stop_requested=bool(row["stop_requested"]),
        held=bool(row["held"]),
        phase=_message(row["phase_json"]),
        result=json.loads(row["result_json"]),
        error=_message(row["error_json"]),
    )


def insert(
    conn: Connection,
    kind: str,
    resource: Resource,
    params: dict[str, Any],
    *,
    run_id: str | None = None,
    dedupe: str | None = None,
    owned: tuple[str, ...] = (),
    attached: bool = False,
    held: bool = False,
) -> int:
    """A new queued job at the back of the queue (on ``conn``, in the caller's transaction); returns its id.

    ``owned``: files the job owns (an uploaded archive): removed when it ends, however it ends.
    ``attached``: this process will run it (it waits for its turn itself; the scheduler starts no worker).
    ``held``: processes started by hand will run it (the scheduler starts none, and it is not in the
    queue's order until one claims it)."""
    pid = os.getpid() if attached else None
    return conn.insert(
        "INSERT INTO jobs (kind, resource, params_json, run_id, dedupe, status, queue_pos, owned_json, created_at,"
        " held, host, pid, proc_start, dispatched_at)"
        " VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(queue_pos), 0) + 1 FROM jobs), ?, ?, ?, ?, ?, ?, ?)",
        (kind, resource, json.dumps(params, ensure_ascii=False), run_id, dedupe, JobStatus.QUEUED,
         json.dumps(list(owned)), utc_now(), held, HOST if attached else None, pid,
         process_identity(pid) if pid else None, time.time() if attached else None),
    )  # fmt: skip


def refuse_live_jobs(conn: Connection) -> None:
    """Refuse (a JobError naming them) while jobs are queued or running: what a move of the store would
    leave behind (their workers write to the store they started with)."""
    rows = conn.execute("SELECT id FROM jobs WHERE status IN (?, ?) ORDER BY id", LIVE).fetchall()
    if rows:
        raise JobError("err.move_live_jobs", count=len(rows), jobs=", ".join(str(r[0]) for r in rows[:5]))


def live_duplicate(conn: Connection, kind: str, dedupe: str) -> int | None:
    row = conn.execute(
        "SELECT id FROM jobs WHERE kind = ? AND dedupe = ? AND status IN (?, ?) ORDER BY id LIMIT 1",
        (kind, dedupe, *LIVE),
    ).fetchone()
    return None if row is None else int(row[0])


def get_job(ws: Workspace, job_id: int) -> Job:
    """The job as stored. Reading never writes: a dead worker's job is marked only by the sweep."""
    with ws.connect() as conn:
        return read_job(conn, job_id)


def read_job(conn: Connection, job_id: int) -> Job:
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
    if row is None:
        raise JobError("err.job_unknown", job=job_id)
    return row_to_job(row)


def list_jobs(
    ws: Workspace,
    *,
    kinds: tuple[str, ...] = (),
    run_id: str | None = None,
    live_only: bool = False,
    limit: int = 100,
) -> list[Job]:
    """Jobs newest first, of some kinds, of one run, or only the queued and running ones."""
    where, args = ["1 = 1"], []
    if kinds:
        where.append(f"kind IN ({','.join('?' * len(kinds))})")
        args += list(kinds)
    if run_id is not None:
        where.append("run_id = ?")
        args.append(run_id)
    if live_only:
        where.append("status IN (?, ?)")
        args += list(LIVE)
    with ws.connect() as conn:
        rows = conn.execute(
            f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*args, conn.limit(limit))
        ).fetchall()
    return [row_to_job(r) for r in rows]


def live_jobs(ws: Workspace) -> list[Job]:
    """Running jobs first, then the queue in the order it will start."""
    with ws.connect() as conn:
        rows = conn.execute(
            "SELECT * FROM jobs WHERE status IN (?, ?) ORDER BY status = ?, queue_pos, id", (*LIVE, JobStatus.QUEUED)
        ).fetchall()
    return [row_to_job(r) for r in rows]


def find_live(ws: Workspace, kind: str, dedupe: str) -> Job | None:
    """The queued or running job of ``kind`` with this key, if any (a page coming back finds its job)."""
    with ws.connect() as conn:
        found = live_duplicate(conn, kind, dedupe)
        return None if found is None else read_job(conn, found)


def record_progress(ws: Workspace, job_id: int, done: int, total: int, phase: dict[str, Any] | None) -> None:
    with ws.connect() as conn:
        conn.execute(
            "UPDATE jobs SET done = ?, total = ?, phase_json = ? WHERE id = ?",
            (done, total, json.dumps(phase, ensure_ascii=False) if phase else "", job_id),
        )


def finish(
    ws: Workspace,
    job_id: int,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    """Record how the job ended (by its own worker: a live worker's word beats an earlier sweep's guess)."""
    with ws.connect() as conn:
        end_job(conn, job_id, status, result=result, error=error)


def end_job(
    conn: Connection,
    job_id: int,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    """The one write of a job's end, whoever records it (its worker, the sweep, a failed launch, a cancel
    while queued), in the caller's connection or transaction. A completed job did all its work, whatever
    its last report said (early stopping, a sweep that diverged before its last step): its progress says
    so."""
    conn.execute(
        "UPDATE jobs SET status = ?, result_json = ?, error_json = ?, ended_at = ?, dispatched_at = NULL,"
        " done = CASE WHEN ? = 1 AND total > 0 THEN total ELSE done END WHERE id = ?",
        (status, json.dumps(result or {}, ensure_ascii=False), json.dumps(error, ensure_ascii=False) if error else "",
         utc_now(), status is JobStatus.COMPLETED, job_id),
    )  # fmt: skip


def beat(ws: Workspace, job_id: int) -> bool:
    """A running job's heartbeat: its time now, and whether it was asked to stop."""
    with ws.connect() as conn:
        conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (time.time(), job_id))
        row = conn.execute("SELECT stop_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return bool(row and row[0])


def owned_paths(conn: Connection, job_id: int) -> list[str]:
    row = conn.execute("SELECT owned_json FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return json.loads(row[0]) if row else []


SPOOL_CHUNK = 1 << 20  # bytes copied at a time from an upload to its file


def spool(ws: Workspace, upload: IO[bytes], suffix: str = ".zip") -> Path:
    """Copy an uploaded file (a job's input) into the workspace's staging folder a chunk at a time; the job
    that takes it owns it (``owned``), so it is removed when that job ends."""
    path = ws.staging_dir / f"upload-{uuid.uuid4().hex}{suffix}"
    upload.seek(0)
    with open(path, "wb") as out:
        shutil.copyfileobj(upload, out, SPOOL_CHUNK)
    return path


def scratch_dir(ws: Workspace, job_id: int) -> Path:
    """A folder of the job's own while it runs (an import stages its images there): removed when it ends,
    however it ends (by its worker, or by the sweep when the worker died)."""
    return ws.jobs_dir / str(job_id)


def remove_owned(paths: list[str]) -> None:
    """Delete files a job owned (its uploaded input) once it no longer needs them."""
    for path in paths:
        Path(path).unlink(missing_ok=True)


def cleanup(ws: Workspace, job_id: int, owned: list[str]) -> None:
    """What an ended job leaves behind that nobody needs: its owned files and its scratch folder."""
    remove_owned(owned)
    shutil.rmtree(scratch_dir(ws, job_id), ignore_errors=True)


# Light workers that stay up between light jobs ("warm"): the rows of ``warm_workers``. A warm worker runs
# on this machine only (workers a launcher sends elsewhere start fresh each time).


def register_warm(ws: Workspace, pid: int) -> None:
    """This process waits for light jobs (none handed to it yet)."""
    with ws.connect() as conn:
        conn.execute(
            "INSERT INTO warm_workers (host, pid, proc_start, job_id, since) VALUES (?, ?, ?, NULL, ?)"
            " ON CONFLICT (host, pid) DO UPDATE SET proc_start = excluded.proc_start, job_id = NULL, since = excluded.since",
            (HOST, pid, process_identity(pid), time.time()),
        )


def warm_job(ws: Workspace, pid: int) -> int | None:
    """The job handed to warm worker ``pid``, if any."""
    with ws.connect() as conn:
        row = conn.execute("SELECT job_id FROM warm_workers WHERE host = ? AND pid = ?", (HOST, pid)).fetchone()
    return row[0] if row else None


def release_warm(ws: Workspace, pid: int) -> None:
    """Warm worker ``pid`` ended its job and waits for the next one."""
    with ws.connect() as conn:
        conn.execute(
            "UPDATE warm_workers SET job_id = NULL, since = ? WHERE host = ? AND pid = ?", (time.time(), HOST, pid)
        )


def retire_warm(ws: Workspace, pid: int) -> bool:
    """Take warm worker ``pid`` off the list unless a job was handed to it meanwhile (then False: run it)."""
    with ws.connect() as conn:
        conn.begin_write()  # against a scheduler handing it a job at this moment
        row = conn.execute("SELECT job_id FROM warm_workers WHERE host = ? AND pid = ?", (HOST, pid)).fetchone()
        if row is not None and row[0] is not None:
            return False
        conn.execute("DELETE FROM warm_workers WHERE host = ? AND pid = ?", (HOST, pid))
    return True


def warm_workers(conn: Connection) -> list[Row]:
    """Every warm worker of this machine, idle (``job_id`` NULL) or busy; in the caller's transaction."""
    return conn.execute(
        "SELECT pid, proc_start, job_id FROM warm_workers WHERE host = ? ORDER BY since", (HOST,)
    ).fetchall()


def hand_to_warm(conn: Connection, job_id: int, pid: int, proc_start: str | None, now: float) -> None:
    """Dispatch queued ``job_id`` to the idle warm worker ``pid`` (in the scheduler's transaction): the job
    records that process, as a started worker's, so the sweep judges it the same way."""
    conn.execute(
        "UPDATE jobs SET dispatched_at = ?, host = ?, pid = ?, proc_start = ? WHERE id = ?",
        (now, HOST, pid, proc_start, job_id),
    )
    conn.execute("UPDATE warm_workers SET job_id = ? WHERE host = ? AND pid = ?", (job_id, HOST, pid))


def forget_warm(conn: Connection, pid: int) -> None:
    """A warm worker whose process is gone (the sweep's call)."""
    conn.execute("DELETE FROM warm_workers WHERE host = ? AND pid = ?", (HOST, pid))
