"""The queue and liveness rules (core.training.scheduler): real SQLite, real processes racing; no TensorFlow
except in the test that trains two real runs from two command lines at once."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.datasets.ingest import import_archive
from core.errors import TrainingError
from core.i18n import render
from core.store.workspace import Workspace
from core.training import runs, scheduler
from core.training.config import TrainConfig
from core.training.launcher import create_run
from tests.builders import make_zip, separable

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    import_archive(ws, make_zip(tmp_path / "c.zip", separable({"red": (200, 60, 60), "blue": (60, 60, 200)}, 10)))
    return ws


def config(**overrides) -> TrainConfig:
    base = dict(dataset="c", backbone="vgg16", weights="none", image_size=32, batch_size=8, head_epochs=2,
                fine_tune_epochs=0, augment="none", jit_compile="off", lr=0.01, early_stopping=0)  # fmt: skip
    return TrainConfig(**{**base, **overrides})


def queued(ws: Workspace, n: int) -> list[str]:
    return [create_run(ws, config(seed=i)) for i in range(n)]


def set_row(ws: Workspace, run_id: str, **values) -> None:
    with ws.connect() as conn:
        sets = ", ".join(f"{k} = ?" for k in values)
        conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*values.values(), run_id))


def test_queue_order_move_up_and_cancel(ws):
    a, b, c = queued(ws, 3)
    assert [r.id for r in scheduler.queue(ws)] == [a, b, c]
    scheduler.move_up(ws, c)
    assert [r.id for r in scheduler.queue(ws)] == [a, c, b] and scheduler.position(ws, c) == 2
    scheduler.move_up(ws, a)  # already first: stays
    assert scheduler.position(ws, a) == 1
    scheduler.cancel(ws, c)
    assert runs.get_run(ws, c).status == "stopped" and scheduler.position(ws, c) is None
    assert [r.id for r in scheduler.queue(ws)] == [a, b]
    with pytest.raises(TrainingError) as info:
        scheduler.move_up(ws, c)
    assert info.value.key == "err.run_not_queued"
    scheduler.requeue(ws, c)  # a cancelled run can be queued again: at the back
    assert [r.id for r in scheduler.queue(ws)] == [a, b, c]


def test_claim_is_one_at_a_time_and_keeps_the_queue_order(ws):
    a, b, c = queued(ws, 3)
    set_row(ws, a, pid=os.getpid(), proc_start=scheduler.process_identity(os.getpid()), dispatched_at=time.time())
    assert not scheduler.claim(ws, c)  # a is earlier in the queue and its process is on its way
    assert scheduler.claim(ws, a) and runs.get_run(ws, a).status == "running"
    assert not scheduler.claim(ws, b) and runs.get_run(ws, b).status == "queued"  # a trains: b waits
    with pytest.raises(TrainingError) as info:
        scheduler.claim(ws, a)
    assert info.value.key == "err.run_not_queued"
    with pytest.raises(TrainingError) as info:
        scheduler.cancel(ws, a)
    assert info.value.key == "err.run_not_cancellable"
    set_row(ws, a, status="completed")
    assert scheduler.claim(ws, b)


def test_claims_racing_from_several_processes_never_run_two(ws):
    ids = queued(ws, 4)
    go = time.time() + 4  # every process claims at the same instant, after importing
    script = textwrap.dedent(
        """
        import sys, time
        from core.store.workspace import Workspace
        from core.training import scheduler
        ws = Workspace.open(sys.argv[1])
        time.sleep(max(float(sys.argv[3]) - time.time(), 0))
        print(scheduler.claim(ws, sys.argv[2]), flush=True)
        time.sleep(3)  # alive while the others claim, as a training process would be
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(ws.root), run_id, str(go)],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for run_id in ids
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert sorted(out.strip() for out, _ in results) == ["False", "False", "False", "True"], results
    assert [r.status for r in runs.list_runs(ws)].count("running") == 1


def test_a_stale_heartbeat_interrupts_the_run_in_the_sweep_not_on_reading(ws):
    (run_id,) = queued(ws, 1)
    me = os.getpid()
    set_row(ws, run_id, status="running", pid=me, proc_start=scheduler.process_identity(me), heartbeat_at=time.time())
    assert scheduler.sweep(ws) == [] and runs.get_run(ws, run_id).status == "running"  # alive and beating
    set_row(ws, run_id, heartbeat_at=time.time() - scheduler.STALE_S - 5)
    assert runs.get_run(ws, run_id).status == "running"  # reading does not write
    assert [r.status for r in runs.live_runs(ws)] == ["running"]
    assert scheduler.sweep(ws) == [run_id]
    run = runs.get_run(ws, run_id)
    assert run.status == "interrupted" and "unexpectedly" in render(run.error, "en")
    assert run.status in runs.RESUMABLE


def test_a_reused_pid_does_not_keep_a_dead_run_alive(ws):
    (run_id,) = queued(ws, 1)
    me = os.getpid()  # alive, but not the process that trained: its start time differs
    set_row(ws, run_id, status="running", pid=me, proc_start="boot-before-the-reboot", heartbeat_at=time.time())
    assert scheduler.sweep(ws) == [run_id] and runs.get_run(ws, run_id).status == "interrupted"


def test_a_dead_pid_and_a_worker_that_never_claimed(ws):
    a, b = queued(ws, 2)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    set_row(ws, a, status="running", pid=gone.pid, heartbeat_at=time.time())
    set_row(ws, b, pid=gone.pid, dispatched_at=time.time())  # a worker started for b, and died at start
    assert sorted(scheduler.sweep(ws)) == sorted([a, b])
    assert runs.get_run(ws, a).status == "interrupted"
    failed = runs.get_run(ws, b)
    assert failed.status == "failed" and "worker.log" in render(failed.error, "en")


def test_the_heartbeat_thread_beats(ws):
    (run_id,) = queued(ws, 1)
    assert scheduler.claim(ws, run_id)
    first = runs.get_run(ws, run_id).heartbeat_at
    with scheduler.Heartbeat(ws, run_id, period=0.05):
        time.sleep(0.4)
    assert runs.get_run(ws, run_id).heartbeat_at > first


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


def test_runs_verb_shows_queue_positions(ws, capsys):
    from core.cli.main import main

    a, b = queued(ws, 2)
    set_row(ws, a, status="running", pid=os.getpid(), proc_start=scheduler.process_identity(os.getpid()),
            heartbeat_at=time.time())  # fmt: skip
    assert main(["runs", "--workspace", str(ws.root), "--json"]) == 0
    listed = {r["run"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    assert listed[a]["status"] == "running" and listed[a]["position"] is None
    assert listed[b]["status"] == "queued" and listed[b]["position"] == 1
    assert main(["cancel", b, "--workspace", str(ws.root)]) == 0
    assert runs.get_run(ws, b).status == "stopped"


def test_delete_and_annotate_runs(ws):
    a, b = queued(ws, 2)
    with pytest.raises(TrainingError) as info:
        runs.delete_run(ws, a)  # queued: cancel it first
    assert info.value.key == "err.run_live_delete" and runs.run_dir(ws, a).exists()
    scheduler.cancel(ws, a)
    runs.record_metrics(ws, a, "epoch", "head", 0, 1, {"loss": 1.0})
    runs.delete_run(ws, a)
    assert [r.id for r in runs.list_runs(ws)] == [b] and not runs.run_dir(ws, a).exists()
    with ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM run_metrics WHERE run_id = ?", (a,)).fetchone()[0] == 0
    runs.annotate_run(ws, b, title=" 第一次 ResNet50 ", note="lr 太高？")
    run = runs.get_run(ws, b)
    assert run.title == "第一次 ResNet50" and run.note == "lr 太高？" and run.label == f"第一次 ResNet50 · {b}"
    runs.annotate_run(ws, b, note="")  # the title stays
    assert runs.get_run(ws, b).title == "第一次 ResNet50" and runs.get_run(ws, b).note == ""
    with pytest.raises(TrainingError) as info:
        runs.annotate_run(ws, b, title="x" * 81)
    assert info.value.key == "err.run_title_long"


def test_train_create_only_records_a_run_off_the_queue(ws, capsys):
    from core.cli.main import main

    flags = ["--dataset", "c", "--backbone", "vgg16", "--weights", "none", "--image-size", "32"]
    assert main(["train", *flags, "--create-only", "--workspace", str(ws.root), "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run"]
    run = runs.get_run(ws, run_id)
    assert run.status == "stopped" and scheduler.queue(ws) == [] and run.config["image_size"] == 32
    assert scheduler.schedule(ws) is None  # nothing for the scheduler to start: its workers will
