"""Training runs in the store: their config, status, metrics and stop flag.

The training worker and the UI talk only through these rows and the run folder
(``runs/<id>/``: ``config.json``, ``metrics.jsonl``, ``STOP``, checkpoints, model).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.errors import TrainingError
from core.store.workspace import Workspace, utc_now

STATUSES = ("queued", "running", "completed", "stopped", "failed", "interrupted")
RESUMABLE = ("stopped", "failed", "interrupted")
LIVE = ("queued", "running")  # a worker owns the run (or is about to)
STOP_FLAG = "STOP"


@dataclass(frozen=True)
class Run:
    id: str
    dataset_name: str
    dataset_version: int
    classes: list[str]
    config: dict[str, Any]
    status: str
    error: dict[str, Any] | str | None  # stored message (key, params); render with core.i18n.render
    weights_used: str
    device: dict[str, Any]
    pid: int | None
    epochs_run: int
    best: dict[str, Any]
    final: dict[str, Any]
    model_path: str
    created_at: str
    started_at: str | None
    ended_at: str | None
    queue_pos: float | None = None  # order among queued runs (lower starts first)
    heartbeat_at: float | None = None  # epoch seconds of the worker's last sign of life
    proc_start: str | None = None  # the worker process's start time, to tell a reused pid apart
    dispatched_at: float | None = None  # queued: when the process that will train it last said it waits
    title: str = ""
    note: str = ""
    estimate: dict[str, Any] | None = None  # the time estimate made before it started (core.training.estimate)
    train_seconds: float = 0.0  # wall time spent training, over all its starts and resumes

    @property
    def label(self) -> str:
        """The run's name as people see it: its title, else its id."""
        return f"{self.title} · {self.id}" if self.title else self.id


def run_dir(ws: Workspace, run_id: str) -> Path:
    return ws.runs_dir / run_id


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def insert_run(
    ws: Workspace, *, dataset_id: int, dataset_name: str, version: int, classes: list[str], config: dict[str, Any]
) -> str:
    run_id = new_run_id()
    folder = run_dir(ws, run_id)
    folder.mkdir(parents=True)
    write_json_atomic(folder / "config.json", {"config": config, "classes": classes, "dataset_version": version})
    with ws.connect() as conn:
        conn.execute(
            "INSERT INTO runs (id, dataset_id, dataset_name, dataset_version, classes_json, config_json, status,"
            " created_at, queue_pos) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?,"
            " (SELECT COALESCE(MAX(queue_pos), 0) + 1 FROM runs))",
            (
                run_id,
                dataset_id,
                dataset_name,
                version,
                json.dumps(classes, ensure_ascii=False),
                json.dumps(config),
                utc_now(),
            ),
        )
    return run_id


def _row_to_run(row: Any) -> Run:
    return Run(
        id=row["id"],
        dataset_name=row["dataset_name"],
        dataset_version=row["dataset_version"],
        classes=json.loads(row["classes_json"]),
        config=json.loads(row["config_json"]),
        status=row["status"],
        error=_load_error(row["error"]),
        weights_used=row["weights_used"],
        device=json.loads(row["device_json"]),
        pid=row["pid"],
        epochs_run=row["epochs_run"],
        best=json.loads(row["best_json"]),
        final=json.loads(row["final_json"]),
        model_path=row["model_path"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        queue_pos=row["queue_pos"],
        heartbeat_at=row["heartbeat_at"],
        proc_start=row["proc_start"],
        dispatched_at=row["dispatched_at"],
        title=row["title"],
        note=row["note"],
        estimate=json.loads(row["estimate_json"]) or None,
        train_seconds=row["train_seconds"],
    )


def _load_error(text: str) -> dict[str, Any] | str | None:
    """The stored error: a message (key and parameters), or plain text from before messages were keys."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, dict) else None


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        # A worker this process started and that has exited is a zombie until reaped; reap it.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: ask the system below
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def get_run(ws: Workspace, run_id: str) -> Run:
    """The run as stored. Reading never writes: a run whose worker died is marked interrupted only by
    the scheduler's sweep (``core.training.scheduler``)."""
    with ws.connect() as conn:
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise TrainingError("err.run_unknown", run=run_id)
    return _row_to_run(row)


def list_runs(ws: Workspace, dataset_name: str | None = None) -> list[Run]:
    """Runs, newest first (of one dataset, or all), in one query."""
    with ws.connect() as conn:
        rows = conn.execute(
            "SELECT * FROM runs WHERE (? IS NULL OR dataset_name = ?) ORDER BY created_at DESC, id DESC",
            (dataset_name, dataset_name),
        ).fetchall()
    return [_row_to_run(r) for r in rows]


def live_runs(ws: Workspace) -> list[Run]:
    """Queued and running runs across datasets: the running one first, then the queue in its order."""
    with ws.connect() as conn:
        rows = conn.execute(
            "SELECT * FROM runs WHERE status IN (?, ?) ORDER BY status = 'queued', queue_pos, id", LIVE
        ).fetchall()
    return [_row_to_run(r) for r in rows]


_JSON_COLUMNS = {
    "device": "device_json",
    "best": "best_json",
    "final": "final_json",
    "error": "error",
    "estimate": "estimate_json",
}


def update_run(ws: Workspace, run_id: str, **fields: Any) -> None:
    sets, values = [], []
    for key, value in fields.items():
        column = _JSON_COLUMNS.get(key, key)
        sets.append(f"{column} = ?")
        if key == "error" and not value:
            values.append("")  # no error
        else:
            values.append(json.dumps(value, ensure_ascii=False) if key in _JSON_COLUMNS else value)
    with ws.connect() as conn:
        conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*values, run_id))


def add_train_seconds(ws: Workspace, run_id: str, seconds: float) -> None:
    with ws.connect() as conn:
        conn.execute("UPDATE runs SET train_seconds = train_seconds + ? WHERE id = ?", (seconds, run_id))


def record_metrics(ws: Workspace, run_id: str, kind: str, phase: str, epoch: int, step: int, values: dict) -> None:
    row = {"kind": kind, "phase": phase, "epoch": epoch, "step": step, **values}
    with open(run_dir(ws, run_id) / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    with ws.connect() as conn:
        conn.execute(
            "INSERT INTO run_metrics (run_id, kind, phase, epoch, step, values_json, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, kind, phase, epoch, step, json.dumps(values), utc_now()),
        )


def read_metrics(ws: Workspace, run_id: str, kind: str = "epoch") -> list[dict[str, Any]]:
    with ws.connect() as conn:
        rows = conn.execute(
            "SELECT phase, epoch, step, values_json FROM run_metrics WHERE run_id = ? AND kind = ? ORDER BY id",
            (run_id, kind),
        ).fetchall()
    return [{"phase": p, "epoch": e, "step": s, **json.loads(v)} for p, e, s, v in rows]


def latest_metrics(ws: Workspace, run_id: str) -> dict[str, Any]:
    """The newest metrics row of a run, batch or epoch (empty before its first batch)."""
    with ws.connect() as conn:
        row = conn.execute(
            "SELECT kind, phase, epoch, step, values_json FROM run_metrics WHERE run_id = ? ORDER BY id DESC LIMIT 1",
            (run_id,),
        ).fetchone()
    if row is None:
        return {}
    kind, phase, epoch, step, values = row
    return {"kind": kind, "phase": phase, "epoch": epoch, "step": step, **json.loads(values)}


def planned_epochs(run: Run) -> int:
    """Epochs the run will take at most (early stopping may end a phase sooner)."""
    return int(run.config.get("head_epochs", 0)) + int(run.config.get("fine_tune_epochs", 0))


def request_stop(ws: Workspace, run_id: str) -> None:
    """Ask a running worker to stop at the end of its current batch."""
    get_run(ws, run_id)
    (run_dir(ws, run_id) / STOP_FLAG).touch()


def clear_stop(ws: Workspace, run_id: str) -> None:
    (run_dir(ws, run_id) / STOP_FLAG).unlink(missing_ok=True)


def delete_run(ws: Workspace, run_id: str) -> None:
    """Delete a run: its row, its metrics and its folder (model, checkpoints, predictions). A queued
    or running run must be cancelled or stopped first."""
    run = get_run(ws, run_id)
    if run.status in LIVE:
        raise TrainingError("err.run_live_delete", run=run_id, status=run.status)
    with ws.connect() as conn:
        conn.execute("DELETE FROM run_metrics WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM runs WHERE id = ? AND status NOT IN (?, ?)", (run_id, *LIVE))
    shutil.rmtree(run_dir(ws, run_id), ignore_errors=True)


def annotate_run(ws: Workspace, run_id: str, title: str | None = None, note: str | None = None) -> None:
    """Give a run a title (shown instead of its id) and/or a note."""
    get_run(ws, run_id)
    fields = {k: v.strip() for k, v in (("title", title), ("note", note)) if v is not None}
    if "title" in fields and len(fields["title"]) > 80:
        raise TrainingError("err.run_title_long", length=len(fields["title"]))
    if fields:
        update_run(ws, run_id, **fields)


def write_json_atomic(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def model_runs(ws: Workspace, dataset_name: str | None = None) -> list[Run]:
    """Runs that ended with a saved model (completed or stopped), newest first: what Evaluate and Predict offer."""
    return [r for r in list_runs(ws, dataset_name) if r.status in ("completed", "stopped") and r.model_path]
