"""The run store (core.runs.store): a run's status is its training job's; queue, resume, stop, delete,
annotate; what a dataset's rename and delete do to its runs. Real SQLite, no TensorFlow."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.datasets import editing
from core.datasets.ingest import import_archive
from core.errors import DatasetError, TrainingError
from core.jobs import queue
from core.jobs.processes import HOST, process_identity
from core.jobs.store import JobStatus
from core.runs import store as runs
from core.runs.config import TrainConfig
from core.runs.folder import RunFolder
from core.store.workspace import Workspace
from core.training.jobs import create_run
from tests.builders import make_zip, separable
from tests.conftest import open_workspace

pytestmark = pytest.mark.both_backends

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def ws(request, tmp_path, monkeypatch):
    ws = open_workspace(request, tmp_path, monkeypatch)
    import_archive(ws, make_zip(tmp_path / "c.zip", separable({"red": (200, 60, 60), "blue": (60, 60, 200)}, 10)))
    return ws


def config(**overrides) -> TrainConfig:
    base = dict(dataset="c", backbone="vgg16", weights="none", image_size=32, batch_size=8, head_epochs=2,
                fine_tune_epochs=0, augment="none", jit_compile="off", lr=0.01, early_stopping=0)  # fmt: skip
    return TrainConfig(**{**base, **overrides})


def queued(ws: Workspace, n: int) -> list[str]:
    return [create_run(ws, config(seed=i)) for i in range(n)]


def running(ws: Workspace, run_id: str) -> None:
    """As if this process had claimed the run's job."""
    job = runs.get_run(ws, run_id).job
    with ws.connect() as conn:
        conn.execute(
            "UPDATE jobs SET status = 'running', host = ?, pid = ?, proc_start = ?, heartbeat_at = ? WHERE id = ?",
            (HOST, os.getpid(), process_identity(os.getpid()), time.time(), job.id),
        )


def test_a_run_is_as_its_latest_training_job_is(ws):
    (run_id,) = queued(ws, 1)
    run = runs.get_run(ws, run_id)
    assert (
        run.status is JobStatus.QUEUED and run.live and run.config == config(seed=0) and run.classes == ["blue", "red"]
    )
    runs.request_stop(ws, run_id)  # queued: it leaves the queue
    assert runs.get_run(ws, run_id).status is JobStatus.CANCELLED and run_id not in [r.id for r in runs.live_runs(ws)]
    first_job = runs.get_run(ws, run_id).job.id
    again = runs.requeue(ws, run_id)
    resumed = runs.get_run(ws, run_id)
    assert again != first_job and resumed.job.id == again and resumed.status is JobStatus.QUEUED
    with pytest.raises(TrainingError) as info:
        runs.requeue(ws, run_id)  # already queued
    assert info.value.key == "err.run_not_resumable"
    running(ws, run_id)
    runs.request_stop(ws, run_id)  # running: asked to stop after its batch
    assert runs.get_run(ws, run_id).job.stop_requested and runs.get_run(ws, run_id).status is JobStatus.RUNNING


def test_live_runs_put_the_running_one_first_then_the_queue(ws):
    a, b, c = queued(ws, 3)
    running(ws, c)
    queue.move_up(ws, runs.get_run(ws, b).job.id)
    assert [r.id for r in runs.live_runs(ws)] == [c, b, a]


def test_delete_and_annotate_runs(ws):
    a, b = queued(ws, 2)
    with pytest.raises(TrainingError) as info:
        runs.delete_run(ws, a)  # queued: cancel it first
    assert info.value.key == "err.run_live_delete" and RunFolder.of(ws, a).path.exists()
    runs.request_stop(ws, a)
    runs.record_metrics(ws, a, "epoch", "head", 0, 1, {"loss": 1.0})
    runs.delete_run(ws, a)
    assert [r.id for r in runs.list_runs(ws)] == [b] and not RunFolder.of(ws, a).path.exists()
    with ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM run_metrics WHERE run_id = ?", (a,)).fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM jobs WHERE run_id = ?", (a,)).fetchone()[0] == 0
    runs.annotate_run(ws, b, title=" 第一次 ResNet50 ", note="lr 太高？")
    run = runs.get_run(ws, b)
    assert run.title == "第一次 ResNet50" and run.note == "lr 太高？" and run.label == f"第一次 ResNet50 · {b}"
    runs.annotate_run(ws, b, note="")  # the title stays
    assert runs.get_run(ws, b).title == "第一次 ResNet50" and runs.get_run(ws, b).note == ""
    with pytest.raises(TrainingError) as info:
        runs.annotate_run(ws, b, title="x" * 81)
    assert info.value.key == "err.run_title_long"


def test_a_dataset_with_a_live_run_keeps_its_name_and_its_runs_follow_a_rename(ws):
    (run_id,) = queued(ws, 1)
    with pytest.raises(DatasetError) as info:
        editing.rename_dataset(ws, "c", "颜色")
    assert info.value.key == "err.dataset_in_use" and run_id in info.value.message("en")
    with pytest.raises(DatasetError):
        editing.delete_dataset(ws, "c", delete_runs=True)
    runs.request_stop(ws, run_id)
    editing.rename_dataset(ws, "c", "颜色")
    run = runs.get_run(ws, run_id)
    assert run.dataset_name == "颜色" and run.config.dataset == "颜色"
    assert editing.delete_dataset(ws, "颜色", delete_runs=True) == {"images": 20, "runs": 1}
    assert runs.list_runs(ws) == [] and not RunFolder.of(ws, run_id).path.exists()


def test_runs_verb_shows_queue_positions_and_cancel_takes_a_run_or_a_job(ws, capsys):
    from core.cli.main import main

    a, b, c = queued(ws, 3)
    running(ws, a)
    assert main(["runs", "--workspace", str(ws.root), "--json"]) == 0
    listed = {r["run"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    assert listed[a]["status"] == "running" and listed[a]["position"] is None
    assert listed[b]["status"] == "queued" and listed[b]["position"] == 1 and listed[c]["position"] == 2
    assert main(["cancel", b, "--workspace", str(ws.root)]) == 0
    assert runs.get_run(ws, b).status is JobStatus.CANCELLED
    assert main(["cancel", str(runs.get_run(ws, c).job.id), "--workspace", str(ws.root)]) == 0
    assert runs.get_run(ws, c).status is JobStatus.CANCELLED
    assert main(["cancel", c, "--workspace", str(ws.root)]) == 1  # ended: nothing to cancel, one line
    assert "nothing to cancel" in capsys.readouterr().err


def test_train_create_only_records_a_run_off_the_queue(ws, capsys):
    from core.cli.main import main

    flags = ["--dataset", "c", "--backbone", "vgg16", "--weights", "none", "--image-size", "32"]
    assert main(["train", *flags, "--create-only", "--workspace", str(ws.root), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run"]
    run = runs.get_run(ws, run_id)
    assert run.status is JobStatus.QUEUED and run.job.held and run.config.image_size == 32
    assert queue.queue(ws) == [] and queue.position(ws, run.job.id) is None  # not in the scheduler's queue
    assert queue.schedule(ws) == []  # nothing for the scheduler to start: its workers will


@pytest.mark.slow
def test_two_command_lines_started_together_train_one_after_the_other(ws):
    """Two `python -m core train` started at once: one trains, the other waits in the queue, then trains."""
    cmd = [sys.executable, "-m", "core", "train", "--workspace", str(ws.root), "--dataset", "c", "--backbone",
           "vgg16", "--weights", "none", "--image-size", "32", "--batch-size", "8", "--head-epochs", "2",
           "--fine-tune-epochs", "0", "--augment", "none", "--early-stopping", "0", "--xla", "off"]  # fmt: skip
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert sum("waits in the queue" in err for _, err in outputs) == 1  # exactly one of them waited
    done = runs.list_runs(ws)
    assert [r.status for r in done] == ["completed", "completed"]
    with ws.connect() as conn:
        order = [r[0] for r in conn.execute("SELECT run_id FROM run_metrics ORDER BY id")]
    first = order[0]
    assert order == [first] * order.count(first) + [r for r in order if r != first]  # no interleaving
    assert all(r.train_seconds > 0 for r in done)


def test_a_run_opens_on_its_first_split_with_images(ws):
    """Evaluate opens on test, else validation (a dataset without a test split), else train."""
    import numpy as np

    from core.runs.predictions import SplitPredictions, first_split_with_images, save_predictions

    run_id = create_run(ws, config())
    assert first_split_with_images(ws, run_id) == "test"  # nothing stored yet: the usual first
    RunFolder.of(ws, run_id).path.mkdir(parents=True, exist_ok=True)

    def stored(split: str, n: int) -> SplitPredictions:
        return SplitPredictions(split, ["red", "blue"], np.arange(n), np.zeros(n), np.full((n, 2), 0.5))

    save_predictions(ws, run_id, {"val": stored("val", 3), "test": stored("test", 0)})
    assert first_split_with_images(ws, run_id) == "val"
    save_predictions(ws, run_id, {"test": stored("test", 2)})
    assert first_split_with_images(ws, run_id) == "test"


def test_epochs_run_counts_epochs_as_they_end(ws):
    """`runs` showed 0 epochs for a run in its twelfth: the count was written only at the end."""
    run_id = create_run(ws, config())
    RunFolder.of(ws, run_id).path.mkdir(parents=True, exist_ok=True)
    runs.record_metrics(ws, run_id, "batch", "head", 0, 1, {"loss": 1.0})
    assert runs.get_run(ws, run_id).epochs_run == 0
    for phase, epoch in (("head", 0), ("head", 1), ("fine_tune", 2), ("fine_tune", 2)):  # a resumed epoch
        runs.record_metrics(ws, run_id, "epoch", phase, epoch, 4, {"loss": 1.0})
    assert runs.get_run(ws, run_id).epochs_run == 3
