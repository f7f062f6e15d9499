"""One training at a time: the queue of runs, who trains next, and whether a worker is still alive.

The rules live here, not in a page, so they hold whoever starts a run (an app tab, another tab,
the CLI):

* A run is **claimed** (queued → running) inside one ``BEGIN IMMEDIATE`` transaction that first
  checks no other run is running. Two processes racing to claim therefore never both train.
* :func:`schedule` starts a worker process for the first queued run when nothing runs. It is called
  when a run is submitted or resumed, when a worker ends, and by anyone who looks at the queue (the
  Train page's poll, ``python -m core runs``), so the queue moves on even after a crash.
* Liveness does not trust a bare pid. A training process writes a **heartbeat** (time, plus its
  process start time) every :data:`HEARTBEAT_S` seconds from a thread; :func:`sweep` marks a running
  run interrupted when that heartbeat is older than :data:`STALE_S`, or when its pid is gone or now
  belongs to another process (a pid reused after a reboot). Reading a run never writes; marking
  happens only in :func:`sweep`, which :func:`schedule` calls.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core.errors import TrainingError
from core.i18n import stored
from core.store.workspace import Workspace, utc_now
from core.training import runs
from core.training.side_jobs import ROOT

HEARTBEAT_S = 2.0  # a training process's heartbeat period
STALE_S = 60.0  # a heartbeat older than this: the process is gone (or hung)
# A started worker has this long to claim its run (importing TensorFlow on a slow laptop takes a while).
START_GRACE_S = 300.0


def process_identity(pid: int) -> str | None:
    """Something that tells this process apart from a later one with the same pid: its start time.

    Linux: the start tick in ``/proc/<pid>/stat`` (plus the boot time); elsewhere ``ps -o lstart``.
    None when it cannot be read (no such process, or no way to ask)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return f"{boot.split()[1]}+{stat.rsplit(')', 1)[1].split()[19]}"
    except (OSError, IndexError, StopIteration):
        pass
    if sys.platform.startswith("linux"):
        return None  # /proc answers for every live process here: it is gone
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _owner_alive(pid: int | None, identity: str | None) -> bool:
    """The process ``pid`` runs and is the one recorded (same start time), as far as the system tells."""
    if not runs.pid_alive(pid):
        return False
    if identity is None:
        return True
    now = process_identity(pid)  # type: ignore[arg-type]
    return now is None or now == identity


def _immediate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")  # the write lock first: the checks below hold until commit


def _sweep(conn: sqlite3.Connection, now: float) -> list[str]:
    marked = []
    for row in conn.execute("SELECT id, pid, proc_start, heartbeat_at FROM runs WHERE status = 'running'").fetchall():
        fresh = row["heartbeat_at"] is not None and now - row["heartbeat_at"] <= STALE_S
        if fresh and _owner_alive(row["pid"], row["proc_start"]):
            continue
        conn.execute(
            "UPDATE runs SET status = 'interrupted', error = ?, ended_at = ? WHERE id = ?",
            (_stored_text("err.worker_died"), utc_now(), row["id"]),
        )
        marked.append(row["id"])
    for row in conn.execute(
        "SELECT id, pid, proc_start, dispatched_at FROM runs WHERE status = 'queued' AND dispatched_at IS NOT NULL"
    ).fetchall():
        if _owner_alive(row["pid"], row["proc_start"]) and now - row["dispatched_at"] <= START_GRACE_S:
            continue
        # The process that was to train it ended (or hung) before claiming it: a crash at start, whose
        # reason is in its worker.log, or a waiting command line that was killed.
        conn.execute(
            "UPDATE runs SET status = 'failed', error = ?, ended_at = ?, dispatched_at = NULL WHERE id = ?",
            (_stored_text("err.worker_never_started", run=row["id"]), utc_now(), row["id"]),
        )
        marked.append(row["id"])
    return marked


def _stored_text(key: str, **params: object) -> str:
    return json.dumps(stored(key, **params), ensure_ascii=False)


def sweep(ws: Workspace) -> list[str]:
    """Mark runs whose process is gone: running → interrupted (resumable), a started worker that never
    claimed its run → failed. Returns the ids it marked."""
    with ws.connect() as conn:
        _immediate(conn)
        return _sweep(conn, time.time())


def claim(ws: Workspace, run_id: str) -> bool:
    """Make ``run_id`` (queued) the running run of this process, if it is its turn: no other run is
    running, and no run before it in the queue has a process about to claim it.

    Atomic across processes. False when it is not its turn (the run stays queued)."""
    with ws.connect() as conn:
        _immediate(conn)
        now = time.time()
        _sweep(conn, now)
        row = conn.execute("SELECT status, queue_pos FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise TrainingError("err.run_unknown", run=run_id)
        if row["status"] != "queued":
            raise TrainingError("err.run_not_queued", run=run_id, status=row["status"])
        blocked = conn.execute(
            "SELECT 1 FROM runs WHERE id != ? AND (status = 'running' OR (status = 'queued'"
            " AND dispatched_at IS NOT NULL AND (queue_pos < ? OR (queue_pos = ? AND id < ?))))",
            (run_id, row["queue_pos"], row["queue_pos"], run_id),
        ).fetchone()
        if blocked:
            return False
        pid = os.getpid()
        conn.execute(
            "UPDATE runs SET status = 'running', pid = ?, proc_start = ?, heartbeat_at = ?, dispatched_at = NULL,"
            " started_at = COALESCE(started_at, ?), ended_at = NULL, error = '' WHERE id = ?",
            (pid, process_identity(pid), now, utc_now(), run_id),
        )
    return True


def attach(ws: Workspace, run_id: str) -> None:
    """Record this process as the one that will train queued ``run_id`` (and that it is still waiting)."""
    pid = os.getpid()
    with ws.connect() as conn:
        conn.execute(
            "UPDATE runs SET pid = ?, proc_start = ?, dispatched_at = ? WHERE id = ? AND status = 'queued'",
            (pid, process_identity(pid), time.time(), run_id),
        )


def wait_for_turn(
    ws: Workspace, run_id: str, on_wait: Callable[[int | None], None], poll_s: float = HEARTBEAT_S
) -> bool:
    """Claim ``run_id`` for this process, waiting in the queue for its turn; ``on_wait(position)`` is
    called at each look. False if the run left the queue meanwhile (cancelled, deleted, failed)."""
    attach(ws, run_id)
    while True:
        try:
            if claim(ws, run_id):
                return True
        except TrainingError as exc:
            if exc.key in ("err.run_not_queued", "err.run_unknown"):
                return False
            raise
        on_wait(position(ws, run_id))
        time.sleep(poll_s)
        attach(ws, run_id)  # still here: keeps the sweep from taking this process for dead
        schedule(ws)  # a run before this one may need its worker started


def schedule(ws: Workspace) -> str | None:
    """Sweep, then, when no run is running and the first queued run has no process yet, start a worker
    for it.

    Returns the run it started, if any. Cheap enough to call on every look at the queue: with nothing
    queued or running it only reads (no write lock on every Train page load)."""
    with ws.connect() as conn:
        if not conn.execute("SELECT 1 FROM runs WHERE status IN ('queued', 'running') LIMIT 1").fetchone():
            return None
        _immediate(conn)
        now = time.time()
        _sweep(conn, now)
        if conn.execute("SELECT 1 FROM runs WHERE status = 'running'").fetchone():
            return None
        row = conn.execute(
            "SELECT id, dispatched_at FROM runs WHERE status = 'queued' ORDER BY queue_pos, id LIMIT 1"
        ).fetchone()
        if row is None or row["dispatched_at"] is not None:
            return None  # nothing queued, or the first run's process is already on its way
        run_id = row["id"]
        pid = _spawn_worker(ws, run_id)
        conn.execute(
            "UPDATE runs SET pid = ?, proc_start = ?, dispatched_at = ? WHERE id = ?",
            (pid, process_identity(pid), now, run_id),
        )
    return run_id


def _spawn_worker(ws: Workspace, run_id: str) -> int:
    """``python -m core worker RUN``, detached (it outlives the app's script run); output to ``worker.log``."""
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
    return proc.pid


def queue(ws: Workspace) -> list[runs.Run]:
    """The queued runs in the order they will start."""
    return [r for r in runs.live_runs(ws) if r.status == "queued"]


def position(ws: Workspace, run_id: str) -> int | None:
    """1 for the next run to start; None when the run is not queued."""
    ids = [r.id for r in queue(ws)]
    return ids.index(run_id) + 1 if run_id in ids else None


def requeue(ws: Workspace, run_id: str) -> None:
    """Put a stopped, failed or interrupted run at the back of the queue (to resume from its last epoch)."""
    with ws.connect() as conn:
        _immediate(conn)
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise TrainingError("err.run_unknown", run=run_id)
        if row["status"] not in runs.RESUMABLE:
            raise TrainingError("err.run_not_resumable", run=run_id, status=row["status"])
        conn.execute(
            "UPDATE runs SET status = 'queued', pid = NULL, proc_start = NULL, dispatched_at = NULL, error = '',"
            " ended_at = NULL, queue_pos = (SELECT COALESCE(MAX(queue_pos), 0) + 1 FROM runs) WHERE id = ?",
            (run_id,),
        )


def cancel(ws: Workspace, run_id: str) -> None:
    """Take a queued run off the queue before it starts; it stays in the history as stopped (resumable)."""
    with ws.connect() as conn:
        _immediate(conn)
        row = conn.execute("SELECT status, dispatched_at FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise TrainingError("err.run_unknown", run=run_id)
        if row["status"] != "queued" or row["dispatched_at"] is not None:
            raise TrainingError("err.run_not_cancellable", run=run_id, status=row["status"])
        conn.execute("UPDATE runs SET status = 'stopped', ended_at = ? WHERE id = ?", (utc_now(), run_id))


def move_up(ws: Workspace, run_id: str) -> None:
    """Swap a queued run with the one before it in the queue."""
    with ws.connect() as conn:
        _immediate(conn)
        rows = conn.execute("SELECT id, queue_pos FROM runs WHERE status = 'queued' ORDER BY queue_pos, id").fetchall()
        ids = [r["id"] for r in rows]
        if run_id not in ids:
            raise TrainingError("err.run_not_queued", run=run_id, status=runs.get_run(ws, run_id).status)
        i = ids.index(run_id)
        if i == 0:
            return
        above, this = rows[i - 1], rows[i]
        conn.execute("UPDATE runs SET queue_pos = ? WHERE id = ?", (this["queue_pos"], above["id"]))
        conn.execute("UPDATE runs SET queue_pos = ? WHERE id = ?", (above["queue_pos"], this["id"]))


class Heartbeat:
    """While training, write the run's heartbeat every ``HEARTBEAT_S`` seconds from a daemon thread
    (a thread, so a 13-second ResNet50 step on a CPU does not look like a dead worker)."""

    def __init__(self, ws: Workspace, run_id: str, period: float = HEARTBEAT_S) -> None:
        self.ws, self.run_id, self.period = ws, run_id, period
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def _beat(self) -> None:
        while not self._done.wait(self.period):
            try:
                with self.ws.connect() as conn:
                    conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), self.run_id))
            except sqlite3.Error:
                continue  # a locked database now and then: the next beat will do

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
