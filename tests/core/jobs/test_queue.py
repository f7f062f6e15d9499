"""The queue and liveness rules (core.jobs.queue) and the runner (core.jobs.runner): real SQLite, real
processes racing, real worker processes; no TensorFlow."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.datasets.jobs import IMPORT, ImportJob
from core.errors import DatasetRejected, JobError
from core.i18n import render
from core.jobs import launcher, queue, runner, store
from core.jobs.processes import HOST, process_identity
from core.jobs.runner import JobContext, JobKind
from core.jobs.store import JobStatus, Resource, get_job, log_path, scratch_dir
from core.store.workspace import Workspace
from tests.builders import make_zip, separable

pytestmark = pytest.mark.both_backends

ROOT = Path(__file__).resolve().parents[3]


def submit(ws: Workspace, resource: Resource = Resource.EXCLUSIVE, kind: str = "train", **options) -> int:
    """A queued job no worker is started for (the tests claim and run jobs themselves)."""
    return queue.submit(ws, kind, resource, {}, start=False, **options)


def set_row(ws: Workspace, job_id: int, **values) -> None:
    with ws.connect() as conn:
        sets = ", ".join(f"{k} = ?" for k in values)
        conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*values.values(), job_id))


def mine() -> dict:
    """The row values that say this process runs (or will run) a job."""
    return {"host": HOST, "pid": os.getpid(), "proc_start": process_identity(os.getpid())}


def test_queue_order_move_up_and_cancel(ws):
    a, b, c = (submit(ws) for _ in range(3))
    assert [j.id for j in queue.queue(ws)] == [a, b, c]
    queue.move_up(ws, c)
    assert [j.id for j in queue.queue(ws)] == [a, c, b] and queue.position(ws, c) == 2
    queue.move_up(ws, a)  # already first: stays
    assert queue.position(ws, a) == 1
    assert queue.cancel(ws, c) is JobStatus.CANCELLED
    assert get_job(ws, c).status is JobStatus.CANCELLED and queue.position(ws, c) is None
    assert [j.id for j in queue.queue(ws)] == [a, b]
    with pytest.raises(JobError) as info:
        queue.move_up(ws, c)
    assert info.value.key == "err.job_not_queued"
    with pytest.raises(JobError) as info:
        queue.cancel(ws, c)  # already ended
    assert info.value.key == "err.job_not_cancellable"
    light = submit(ws, Resource.LIGHT, kind="estimate")
    assert queue.position(ws, light) == 1  # each resource has its own queue


def test_an_exclusive_job_runs_alone_and_light_jobs_run_beside_it_up_to_their_slots(ws):
    a, b, c = (submit(ws) for _ in range(3))
    set_row(ws, a, **mine(), dispatched_at=time.time())
    assert not queue.claim(ws, c)  # a is earlier in the queue and its process is on its way
    assert queue.claim(ws, a) and get_job(ws, a).status is JobStatus.RUNNING
    assert not queue.claim(ws, b) and get_job(ws, b).status is JobStatus.QUEUED  # a trains: b waits
    light = [submit(ws, Resource.LIGHT, kind="estimate") for _ in range(3)]
    assert queue.slots(ws) == {Resource.EXCLUSIVE: 1, Resource.LIGHT: 2}
    assert [queue.claim(ws, j) for j in light] == [True, True, False]  # beside the training run, two at once
    queue.set_slots(ws, Resource.LIGHT, 3)
    assert queue.claim(ws, light[2])
    with pytest.raises(JobError) as info:
        queue.claim(ws, a)
    assert info.value.key == "err.job_not_queued"
    with pytest.raises(JobError) as info:
        queue.set_slots(ws, Resource.LIGHT, 0)
    assert info.value.key == "err.job_slots"
    set_row(ws, a, status="completed")
    assert queue.claim(ws, b)


def test_claims_racing_from_several_processes_never_run_two(ws):
    ids = [submit(ws) for _ in range(4)]
    go = time.time() + 4  # every process claims at the same instant, after importing
    script = textwrap.dedent(
        """
        import sys, time
        from core.store.workspace import Workspace
        from core.jobs import queue
        ws = Workspace.open(sys.argv[1])
        time.sleep(max(float(sys.argv[3]) - time.time(), 0))
        print(queue.claim(ws, int(sys.argv[2])), flush=True)
        time.sleep(3)  # alive while the others claim, as a training process would be
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(ws.root), str(job_id), str(go)],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for job_id in ids
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert sorted(out.strip() for out, _ in results) == ["False", "False", "False", "True"], results
    assert [get_job(ws, j).status for j in ids].count(JobStatus.RUNNING) == 1


def test_a_stale_heartbeat_interrupts_the_job_in_the_sweep_not_on_reading(ws):
    job = submit(ws)
    set_row(ws, job, status="running", **mine(), heartbeat_at=time.time())
    assert queue.sweep(ws) == [] and get_job(ws, job).status is JobStatus.RUNNING  # alive and beating
    set_row(ws, job, heartbeat_at=time.time() - queue.STALE_S - 5)
    assert get_job(ws, job).status is JobStatus.RUNNING  # reading does not write
    assert queue.sweep(ws) == [job]
    ended = get_job(ws, job)
    assert ended.status is JobStatus.INTERRUPTED and "unexpectedly" in render(ended.error, "en")
    assert render(ended.error, "zh") != render(ended.error, "en")


def test_a_reused_pid_does_not_keep_a_dead_job_alive_and_another_machine_is_judged_by_its_heartbeat(ws):
    job, remote = submit(ws), submit(ws, Resource.LIGHT, kind="estimate")
    me = os.getpid()  # alive, but not the process that ran it: its start time differs
    set_row(ws, job, status="running", host=HOST, pid=me, proc_start="boot-before-the-reboot", heartbeat_at=time.time())
    set_row(ws, remote, status="running", host="node-17", pid=2**22 + 1, heartbeat_at=time.time())
    assert queue.sweep(ws) == [job] and get_job(ws, job).status is JobStatus.INTERRUPTED
    assert get_job(ws, remote).status is JobStatus.RUNNING  # its pid means nothing here; it beats


def test_a_sqlite_store_refuses_a_second_machine_and_postgresql_takes_it(ws):
    """The workspace on a network filesystem: a job runs on node-17 while a worker here claims another. On
    SQLite that worker stops with the way out (PostgreSQL); on PostgreSQL it runs."""
    remote, mine_ = submit(ws, Resource.LIGHT, kind="estimate"), submit(ws, Resource.LIGHT, kind="estimate")
    set_row(ws, remote, status="running", host="node-17", pid=2**22 + 1, heartbeat_at=time.time())
    if ws.database is None:
        with pytest.raises(JobError) as refused:
            queue.claim(ws, mine_)
        assert refused.value.key == "err.sqlite_one_host" and "node-17" in refused.value.message("en")
        assert "move-store" in refused.value.message("zh") and get_job(ws, mine_).status is JobStatus.QUEUED
    else:
        assert queue.claim(ws, mine_) and get_job(ws, mine_).status is JobStatus.RUNNING


def test_a_dead_pid_and_a_worker_that_never_claimed_leave_nothing_behind(ws, tmp_path):
    upload = tmp_path / "upload.zip"
    upload.write_bytes(b"an uploaded archive the job owns")
    a, b = submit(ws), submit(ws, Resource.LIGHT, kind="import", owned=(str(upload),))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    set_row(ws, a, status="running", host=HOST, pid=gone.pid, heartbeat_at=time.time())
    set_row(ws, b, host=HOST, pid=gone.pid, dispatched_at=time.time())  # a worker started for b, died at start
    scratch_dir(ws, b).mkdir(parents=True)
    (scratch_dir(ws, b) / "staged.png").write_bytes(b"x")
    assert sorted(queue.sweep(ws)) == sorted([a, b])
    assert get_job(ws, a).status is JobStatus.INTERRUPTED
    failed = get_job(ws, b)
    assert failed.status is JobStatus.FAILED and f"jobs/{b}.log" in render(failed.error, "en")
    assert not upload.exists() and not scratch_dir(ws, b).exists()


def test_a_job_handed_to_a_warm_worker_that_died_goes_back_to_the_queue(ws):
    """A warm worker (core.jobs.runner.serve_warm) dies as the scheduler hands it a job: the job never
    started, so the sweep puts it back in the queue (a new worker that crashes at start fails it, above)
    and forgets the worker; a live idle warm worker is handed the next light job instead of a new process."""
    queue.set_slots(ws, Resource.LIGHT, 1)  # one light job at a time: the second waits its turn
    handed, other = submit(ws, Resource.LIGHT, kind="estimate"), submit(ws, Resource.LIGHT, kind="estimate")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with ws.connect() as conn:
        conn.execute("INSERT INTO warm_workers VALUES (?, ?, NULL, NULL, 0)", (HOST, gone.pid))
        store.hand_to_warm(conn, handed, gone.pid, None, time.time())
    assert queue.sweep(ws) == []  # nothing failed or interrupted
    back = get_job(ws, handed)
    assert back.status is JobStatus.QUEUED and back.dispatched_at is None and back.pid is None
    store.register_warm(ws, os.getpid())  # this process waits as a warm worker
    assert queue.schedule(ws)[0] == handed  # handed over, no process started for it ...
    assert store.warm_job(ws, os.getpid()) == handed and get_job(ws, handed).pid == os.getpid()
    assert queue.claim(ws, handed)  # ... and this process may claim it as a started worker would
    with ws.connect() as conn:
        assert [r["pid"] for r in store.warm_workers(conn)] == [os.getpid()]
    assert get_job(ws, other).dispatched_at is None  # its turn comes when the slot frees


def test_a_warm_worker_dying_as_its_job_is_handed_gives_the_job_back_instead_of_failing_it(ws, monkeypatch):
    """The warm worker judged alive as a warm worker, then dead as the process of the job just handed to it, in
    one sweep (it died between the two looks: seen in a full run under load). One verdict per process and sweep:
    the job stays queued, and the next sweep gives it back to the queue for another worker."""
    job = submit(ws, Resource.LIGHT, kind="estimate")
    with ws.connect() as conn:
        conn.execute(
            "INSERT INTO warm_workers (host, pid, proc_start, job_id, since) VALUES (?, ?, ?, ?, ?)",
            (HOST, 2**22 + 3, "t0", job, time.time()),
        )
    set_row(ws, job, host=HOST, pid=2**22 + 3, proc_start="t0", dispatched_at=time.time())
    looks = []
    monkeypatch.setattr(queue, "_owner_alive", lambda *owner: looks.append(owner) or len(looks) == 1)
    assert queue.sweep(ws) == [] and get_job(ws, job).status is JobStatus.QUEUED  # alive at its one look
    assert queue.sweep(ws) == []  # dead at the next: forgotten, and its job back in the queue
    back = get_job(ws, job)
    assert back.status is JobStatus.QUEUED and back.dispatched_at is None and back.pid is None


def test_the_heartbeat_beats_and_passes_a_stop_request_on(ws):
    job = submit(ws)
    assert queue.claim(ws, job)
    first = get_job(ws, job).heartbeat_at
    ctx = JobContext(ws, get_job(ws, job))
    with runner.Heartbeat(ws, job, ctx, period=0.05):
        time.sleep(0.3)
        assert not ctx.stop_requested
        assert queue.cancel(ws, job) is JobStatus.RUNNING  # a running job is asked, not killed
        time.sleep(0.3)
    assert get_job(ws, job).heartbeat_at > first and ctx.stop_requested
    with pytest.raises(runner.JobCancelled):
        ctx.check()


def _kind(handler) -> JobKind:
    return JobKind("test", Resource.LIGHT, dict, handler)


def test_the_runner_stores_the_result_the_error_the_cancel_and_the_unexpected(ws):
    def ok(ctx, params):
        ctx.progress(1, 2, "job.import_images")
        ctx.progress(2, 2)
        return {"answer": 42}

    def rejected(ctx, params):
        raise DatasetRejected("err.no_images", archive="x.zip", skipped=3)

    def cancelled(ctx, params):
        ctx.request_stop()  # as the heartbeat does when someone clicks Cancel
        ctx.progress(1, 10, "job.import_images")
        raise AssertionError("not reached: progress ends a job that was asked to stop")

    def bug(ctx, params):
        raise ZeroDivisionError("division by zero")

    done = runner.execute(ws, submit(ws, Resource.LIGHT, kind="test"), _kind(ok))
    assert done.status is JobStatus.COMPLETED and done.result == {"answer": 42} and (done.done, done.total) == (2, 2)
    assert render(done.phase, "zh") and done.started_at and done.ended_at
    failed = runner.execute(ws, submit(ws, Resource.LIGHT, kind="test"), _kind(rejected))
    assert failed.status is JobStatus.FAILED and failed.error["key"] == "err.no_images"
    assert "x.zip" in render(failed.error, "zh")
    assert runner.execute(ws, submit(ws, Resource.LIGHT, kind="test"), _kind(cancelled)).status is JobStatus.CANCELLED
    job = submit(ws, Resource.LIGHT, kind="test")
    with pytest.raises(ZeroDivisionError):
        runner.execute(ws, job, _kind(bug))
    assert get_job(ws, job).status is JobStatus.FAILED and "ZeroDivisionError" in render(get_job(ws, job).error)


def test_submit_finds_the_live_job_with_the_same_key(ws, tmp_path):
    first = submit(ws, Resource.LIGHT, kind="estimate", dedupe="k")
    spare = tmp_path / "second-upload.zip"
    spare.write_bytes(b"x")
    assert submit(ws, Resource.LIGHT, kind="estimate", dedupe="k", owned=(str(spare),)) == first
    assert not spare.exists()  # the second copy of the input is not kept: the live job has its own
    queue.cancel(ws, first)
    assert submit(ws, Resource.LIGHT, kind="estimate", dedupe="k") != first


@pytest.mark.slow
def test_a_launcher_template_starts_the_worker_through_a_cluster_scheduler(ws, tmp_path):
    """A stand-in for ``sbatch --wrap``: a script that records how it was called, then starts the command
    detached and returns at once, as a cluster scheduler does. The job runs through it to the end."""
    called = tmp_path / "called.txt"
    fake = tmp_path / "fake_sbatch.py"
    fake.write_text(
        textwrap.dedent(
            f"""
            import shlex, subprocess, sys
            args = sys.argv[1:]
            command = args[args.index("--wrap") + 1]
            open({str(called)!r}, "w").write(" ".join(args))
            subprocess.Popen(command, shell=True, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print("Submitted batch job 4242")
            """
        )
    )
    launcher.set_template(
        ws, f'{sys.executable} {fake} --job-name labeltune-{{job}} --output {{log}} --wrap "{{command}}"'
    )
    archive = make_zip(tmp_path / "c.zip", separable({"红": (200, 60, 60), "蓝": (60, 60, 200)}, 6))
    job_id = IMPORT.submit(ws, ImportJob(str(archive), "c.zip", "颜色"))
    deadline = time.monotonic() + 120
    while get_job(ws, job_id).live and time.monotonic() < deadline:
        time.sleep(0.2)
    job = get_job(ws, job_id)
    assert job.status is JobStatus.COMPLETED, (job.error, log_path(ws, job_id).read_text())
    assert job.result["images"] == 12 and job.host == HOST
    assert f"labeltune-{job_id}" in called.read_text() and f"worker {job_id} --workspace" in called.read_text()
    assert "Submitted batch job 4242" in log_path(ws, job_id).read_text()
    with pytest.raises(JobError) as info:
        launcher.set_template(ws, "sbatch --wrap {commmand}")  # a misspelt placeholder
    assert info.value.key == "err.launcher_template" and "commmand" in info.value.message("en")


def test_a_failing_launcher_fails_the_job_with_its_message(ws, tmp_path):
    launcher.set_template(ws, f"{sys.executable} -c \"import sys; sys.exit('sbatch: error: invalid partition')\"")
    job_id = queue.submit(ws, "estimate", Resource.LIGHT, {})
    job = get_job(ws, job_id)
    assert job.status is JobStatus.FAILED and "invalid partition" in render(job.error, "en")
