"""The run store: training runs, their recipe, figures and metrics, and the jobs that train them.

A run is what was asked (its :class:`~core.runs.config.TrainConfig`, dataset version and classes) and
what came of it (the weights it really used, its devices, best and final figures, its model, metrics).
Its status, liveness and error are those of its latest training job (``core.jobs``): a run is queued,
running, completed, stopped, failed, interrupted or cancelled as that job is, and resuming it queues a
new job. The training worker and the app talk only through these rows and the run's folder
(:class:`~core.runs.folder.RunFolder`).

Lower stages change runs only through this module: renaming or deleting a dataset calls
:func:`follow_dataset_rename` and :func:`delete_for_dataset` inside its own transaction.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.errors import PredictionError, TrainingError
from core.jobs import queue
from core.jobs.runner import FlatParams
from core.jobs.store import LIVE, Job, JobStatus, Resource, insert, row_to_job
from core.runs.config import TrainConfig
from core.runs.folder import RunFolder, write_json_atomic
from core.store.db import Connection, Row
from core.store.workspace import Workspace, utc_now

# The job that trains a run: its kind, resource and parameters, declared here once (the run store inserts
# it with the run); ``core.training.jobs.TRAIN`` adds its handler.
TRAIN_KIND = "train"
TRAIN_RESOURCE = Resource.EXCLUSIVE


@dataclass(frozen=True)
class RunJob(FlatParams):
    """Train (or resume) one run."""

    run: str


RESUMABLE = frozenset({JobStatus.STOPPED, JobStatus.FAILED, JobStatus.INTERRUPTED, JobStatus.CANCELLED})
WITH_MODEL = frozenset({JobStatus.COMPLETED, JobStatus.STOPPED})  # ended with a saved model to show


@dataclass(frozen=True)
class Run:
    id: str
    dataset_name: str
    dataset_version: int
    classes: list[str]
    config: TrainConfig
    job: Job  # the latest job that trains it: the run's status, liveness and error are this job's
    weights_used: str
    device: dict[str, Any]
    epochs_run: int
    # The epoch whose model was saved: ``val_objective`` (the loss the run minimises on validation, label
    # smoothing and distillation included: it decides which epoch is kept), ``val_accuracy``, ``epoch``,
    # ``phase``.
    best: dict[str, Any]
    # That saved model's predictions at the end of the run: ``val_accuracy``, ``val_log_loss`` (plain log
    # loss, comparable between runs whatever their smoothing), ``test_accuracy``, ``test_log_loss``.
    final: dict[str, Any]
    model_path: str
    created_at: str
    title: str = ""
    note: str = ""
    estimate: dict[str, Any] | None = None  # the time estimate made before it started (core.training.estimate)
    train_seconds: float = 0.0  # wall time spent training, over all its starts and resumes

    @property
    def status(self) -> JobStatus:
        return self.job.status

    @property
    def error(self) -> dict[str, Any] | None:
        """Why its latest job failed or was interrupted (a stored message; render with core.i18n.render)."""
        return self.job.error

    @property
    def started_at(self) -> str | None:
        return self.job.started_at

    @property
    def ended_at(self) -> str | None:
        return self.job.ended_at

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def label(self) -> str:
        """The run's name as people see it: its title, else its id."""
        return f"{self.title} · {self.id}" if self.title else self.id

    @property
    def planned_epochs(self) -> int:
        """Epochs the run will take at most (early stopping may end a phase sooner)."""
        return self.config.head_epochs + self.config.fine_tune_epochs


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def insert_run(
    ws: Workspace,
    *,
    dataset_id: int,
    version: int,
    classes: list[str],
    config: TrainConfig,
    attached: bool = False,
    held: bool = False,
    estimate: dict[str, Any] | None = None,
) -> str:
    """Record a run and its queued training job in one transaction; returns the run's id. ``attached``:
    this process will train it; ``held``: processes started by hand will (``core.jobs.store.insert``)."""
    run_id = new_run_id()
    folder = RunFolder.of(ws, run_id)
    folder.path.mkdir(parents=True)
    write_json_atomic(folder.config, {"config": config.to_dict(), "classes": classes, "dataset_version": version})
    with ws.connect() as conn:
        conn.execute(
            "INSERT INTO runs (id, dataset_id, dataset_name, dataset_version, classes_json, config_json, created_at,"
            " estimate_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, dataset_id, config.dataset, version, json.dumps(classes, ensure_ascii=False),
             json.dumps(config.to_dict(), ensure_ascii=False), utc_now(), json.dumps(estimate or {})),
        )  # fmt: skip
        _insert_job(conn, run_id, attached=attached, held=held)
    return run_id


def _insert_job(conn: Connection, run_id: str, *, attached: bool = False, held: bool = False) -> int:
    """The run's training job, as its kind is declared above (``core.training.jobs.TRAIN`` runs it)."""
    return insert(
        conn, TRAIN_KIND, TRAIN_RESOURCE, RunJob(run_id).to_dict(), run_id=run_id, attached=attached, held=held
    )


def _row_to_run(row: Row, job: Job) -> Run:
    return Run(
        id=row["id"],
        dataset_name=row["dataset_name"],
        dataset_version=row["dataset_version"],
        classes=json.loads(row["classes_json"]),
        config=TrainConfig.from_dict(json.loads(row["config_json"])),
        job=job,
        weights_used=row["weights_used"],
        device=json.loads(row["device_json"]),
        epochs_run=row["epochs_run"],
        best=json.loads(row["best_json"]),
        final=json.loads(row["final_json"]),
        model_path=row["model_path"],
        created_at=row["created_at"],
        title=row["title"],
        note=row["note"],
        estimate=json.loads(row["estimate_json"]) or None,
        train_seconds=row["train_seconds"],
    )


def _read(conn: Connection, where: str, args: tuple[Any, ...]) -> list[Run]:
    """Runs matching ``where`` (on ``runs r``), newest first, each with its latest training job."""
    rows = conn.execute(f"SELECT r.* FROM runs r WHERE {where} ORDER BY r.created_at DESC, r.id DESC", args).fetchall()
    if not rows:
        return []
    jobs = {
        j["run_id"]: row_to_job(j)
        for j in conn.execute(
            "SELECT * FROM jobs WHERE id IN (SELECT MAX(id) FROM jobs WHERE kind = ? AND run_id IS NOT NULL"
            " GROUP BY run_id)",
            (TRAIN_KIND,),
        )
    }
    return [_row_to_run(r, jobs[r["id"]]) for r in rows]


def get_run(ws: Workspace, run_id: str) -> Run:
    """The run as stored. Reading never writes: a run whose worker died is marked interrupted only by the
    job queue's sweep."""
    with ws.connect() as conn:
        found = _read(conn, "r.id = ?", (run_id,))
    if not found:
        raise TrainingError("err.run_unknown", run=run_id)
    return found[0]


def list_runs(ws: Workspace, dataset_name: str | None = None) -> list[Run]:
    """Runs, newest first (of one dataset, or all), in two queries."""
    with ws.connect() as conn:
        return _read(conn, "? IS NULL OR r.dataset_name = ?", (dataset_name, dataset_name))


def live_runs(ws: Workspace) -> list[Run]:
    """Queued and running runs across datasets: the running ones first, then the queue in its order."""
    live = [r for r in list_runs(ws) if r.live]
    return sorted(live, key=lambda r: (r.status is JobStatus.QUEUED, r.job.queue_pos or 0, r.job.id))


def model_runs(ws: Workspace, dataset_name: str | None = None) -> list[Run]:
    """Runs that ended with a saved model (completed or stopped), newest first: what Evaluate and Predict offer."""
    return [r for r in list_runs(ws, dataset_name) if r.status in WITH_MODEL and r.model_path]


def model_file(ws: Workspace, run_id: str) -> Path:
    """The run's ``model.keras``; refuses a run without one, or a recorded path that leaves the run's own
    folder (nothing but the workspace's own run folders is ever loaded as a model)."""
    run = get_run(ws, run_id)
    if not run.model_path:
        raise PredictionError("err.no_model", run=run_id, status=str(run.status))
    folder = RunFolder.of(ws, run_id).path.resolve()
    path = (ws.root / run.model_path).resolve()
    if folder not in path.parents or not path.is_file():
        raise PredictionError("err.no_model", run=run_id, status=str(run.status))
    return path


_JSON_COLUMNS = {"device": "device_json", "best": "best_json", "final": "final_json", "estimate": "estimate_json"}
_COLUMNS = {"weights_used", "epochs_run", "model_path", "title", "note", "config", *_JSON_COLUMNS}


def update_run(ws: Workspace, run_id: str, **fields: Any) -> None:
    """Record what came of a run: ``device``, ``best``, ``final``, ``estimate`` (JSON), ``weights_used``,
    ``epochs_run``, ``model_path``, ``title``, ``note``; ``config``: the size and epochs a measured plan
    settled (``core.training.measured_plan``), before the run trains."""
    unknown = set(fields) - _COLUMNS
    if unknown:
        raise ValueError(f"not a run field: {sorted(unknown)}")
    if "config" in fields:
        config = fields.pop("config")
        fields["config_json"] = json.dumps(config.to_dict(), ensure_ascii=False)
        folder = RunFolder.of(ws, run_id)  # the folder's record says the same
        write_json_atomic(folder.config, {**json.loads(folder.config.read_text(encoding="utf-8")),
                                          "config": config.to_dict()})  # fmt: skip
    sets = [f"{_JSON_COLUMNS.get(k, k)} = ?" for k in fields]
    values = [json.dumps(v, ensure_ascii=False) if k in _JSON_COLUMNS else v for k, v in fields.items()]
    with ws.connect() as conn:
        conn.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ?", (*values, run_id))


def add_train_seconds(ws: Workspace, run_id: str, seconds: float) -> None:
    with ws.connect() as conn:
        conn.execute("UPDATE runs SET train_seconds = train_seconds + ? WHERE id = ?", (seconds, run_id))


def record_metrics(ws: Workspace, run_id: str, kind: str, phase: str, epoch: int, step: int, values: dict) -> None:
    """One batch's or epoch's figures, in the run's metrics file and the store; an epoch's also updates
    the run's ``epochs_run`` (the distinct epochs recorded, both phases, across resumes)."""
    row = {"kind": kind, "phase": phase, "epoch": epoch, "step": step, **values}
    with open(RunFolder.of(ws, run_id).metrics, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    with ws.connect() as conn:
        conn.execute(
            "INSERT INTO run_metrics (run_id, kind, phase, epoch, step, values_json, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, kind, phase, epoch, step, json.dumps(values), utc_now()),
        )
        if kind == "epoch":  # counted as epochs end, so a run in its twelfth epoch says 11, not 0
            conn.execute(
                "UPDATE runs SET epochs_run = (SELECT COUNT(*) FROM (SELECT DISTINCT phase, epoch FROM run_metrics"
                " WHERE run_id = ? AND kind = 'epoch') AS e) WHERE id = ?",
                (run_id, run_id),
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


def requeue(ws: Workspace, run_id: str, attached: bool = False) -> int:
    """Queue a new training job for a stopped, failed, interrupted or cancelled run (it resumes from its
    last epoch), at the back of the queue. Returns the job's id."""
    with ws.connect() as conn:
        conn.begin_write()
        found = _read(conn, "r.id = ?", (run_id,))
        if not found:
            raise TrainingError("err.run_unknown", run=run_id)
        if found[0].status not in RESUMABLE:
            raise TrainingError("err.run_not_resumable", run=run_id, status=str(found[0].status))
        return _insert_job(conn, run_id, attached=attached)


def request_stop(ws: Workspace, run_id: str) -> None:
    """Stop a run: a queued run leaves the queue (cancelled), a running one stops after its current batch
    and keeps its best model (stopped)."""
    run = get_run(ws, run_id)
    if not run.live:
        raise TrainingError("err.run_not_cancellable", run=run_id, status=str(run.status))
    queue.cancel(ws, run.job.id)


def delete_run(ws: Workspace, run_id: str) -> None:
    """Delete a run: its row, its jobs, its metrics and its folder (model, checkpoints, predictions). A
    queued or running run must be cancelled or stopped first."""
    run = get_run(ws, run_id)
    if run.live:
        raise TrainingError("err.run_live_delete", run=run_id, status=str(run.status))
    with ws.connect() as conn:
        conn.execute("DELETE FROM run_metrics WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))  # its jobs go with it (ON DELETE CASCADE)
    shutil.rmtree(RunFolder.of(ws, run_id).path, ignore_errors=True)


def annotate_run(ws: Workspace, run_id: str, title: str | None = None, note: str | None = None) -> None:
    """Give a run a title (shown instead of its id) and/or a note."""
    get_run(ws, run_id)
    fields = {k: v.strip() for k, v in (("title", title), ("note", note)) if v is not None}
    if "title" in fields and len(fields["title"]) > 80:
        raise TrainingError("err.run_title_long", length=len(fields["title"]))
    if fields:
        update_run(ws, run_id, **fields)


# What a dataset's rename and delete do to its runs, on the dataset's own connection and transaction.


def live_on_dataset(conn: Connection, dataset_id: int) -> list[str]:
    """Runs of the dataset that are queued or training (they need it under its name until they end)."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT r.id FROM runs r JOIN jobs j ON j.run_id = r.id AND j.kind = ? WHERE r.dataset_id = ?"
            " AND j.status IN (?, ?) ORDER BY r.created_at",
            (TRAIN_KIND, dataset_id, *LIVE),
        )
    ]


def follow_dataset_rename(conn: Connection, dataset_id: int, new_name: str) -> None:
    """The dataset's runs name it by its new name (their rows and their configs)."""
    conn.execute(
        f"UPDATE runs SET dataset_name = ?, config_json = {conn.json_with('config_json', 'dataset')} WHERE dataset_id = ?",
        (new_name, new_name, dataset_id),
    )


def delete_for_dataset(conn: Connection, dataset_id: int) -> list[str]:
    """Delete the dataset's runs' rows (their jobs and metrics go with them); returns their ids, whose
    folders :func:`remove_folders` deletes once the transaction is committed."""
    ids = [r[0] for r in conn.execute("SELECT id FROM runs WHERE dataset_id = ?", (dataset_id,))]
    conn.executemany("DELETE FROM run_metrics WHERE run_id = ?", [(i,) for i in ids])
    conn.executemany("DELETE FROM runs WHERE id = ?", [(i,) for i in ids])
    return ids


def remove_folders(ws: Workspace, run_ids: list[str]) -> None:
    for run_id in run_ids:
        shutil.rmtree(RunFolder.of(ws, run_id).path, ignore_errors=True)
