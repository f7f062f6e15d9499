"""The job verbs of ``python -m core``: ``jobs`` (list, and the queue's settings), ``cancel``, ``move-up``,
``worker`` (what the scheduler starts), and :func:`run_here`, through which every verb that does heavy
work (``train``, ``import``, ``export``, ...) runs its job in this process, so it shows in the app's Jobs
view and can be cancelled from there; with ``--detach`` it is left to the scheduler's worker instead.

Every kind of job is listed here once (:data:`KINDS`): the worker looks its handler up by name.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from core.audit.jobs import AUDIT
from core.cli.progress import ProgressBar
from core.datasets.jobs import EXPORT_DATASET, IMPORT
from core.errors import JobError
from core.evaluation.jobs import PREDICTIONS
from core.export.jobs import EXPORT
from core.i18n import cli_language, render, tr
from core.jobs import launcher, queue, runner
from core.jobs.runner import JobKind
from core.jobs.store import Job, JobStatus, Resource, get_job, list_jobs, live_jobs
from core.prediction.jobs import PREDICT_BATCH
from core.runs import store as runs
from core.store.workspace import Workspace
from core.training import jobs as training_jobs
from core.training.devices import fresh_keras_state, is_chief
from core.training.tune import TUNE

KINDS: dict[str, JobKind[Any]] = {
    k.name: k for k in (*training_jobs.KINDS, TUNE, PREDICTIONS, EXPORT, IMPORT, PREDICT_BATCH, AUDIT, EXPORT_DATASET)
}


def add_job_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("jobs", parents=[common], help="list running and recent jobs of every kind; queue settings")
    p.add_argument("--all", action="store_true", help="every job, not only live ones and the last 20")
    p.add_argument(
        "--launcher", metavar="TEMPLATE", help='how workers start, e.g. \'sbatch --wrap "{command}"\'; "" = here'
    )
    p.add_argument("--exclusive-slots", type=int, metavar="N", help="training-class jobs at once (default 1)")
    p.add_argument(
        "--light-slots", type=int, metavar="N", help=f"light jobs at once (default {queue.DEFAULT_LIGHT_SLOTS})"
    )
    p.add_argument(
        "--warm-seconds",
        type=float,
        metavar="S",
        help=f"how long a light job's worker waits for the next one (default {queue.DEFAULT_WARM_IDLE_S:g}; 0 = off)",
    )
    p.set_defaults(handler=cmd_jobs)

    for verb, text, handler in (
        ("cancel", "cancel a job (or a run's job): off the queue, or stopped at its next step", cmd_cancel),
        ("move-up", "move a queued job (or run) one place up its queue", cmd_move_up),
        ("worker", "(started by the scheduler) run a queued job, or a run's, in this process", cmd_worker),
    ):
        p = verbs.add_parser(verb, parents=[common], help=text)
        p.add_argument("job", metavar="JOB", help="a job id, or a run id (its training job)")
        p.set_defaults(handler=handler)


def add_detach_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--detach", action="store_true", help="queue the job and return its id; a worker process runs it"
    )


def resolve(ws: Workspace, target: str) -> Job:
    """A job by its id, or a run's latest training job by the run's id."""
    if target.isdigit():
        return get_job(ws, int(target))
    return runs.get_run(ws, target).job


def job_json(job: Job, lang: str) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": str(job.status),
        "resource": str(job.resource),
        "run": job.run_id,
        "done": job.done,
        "total": job.total,
        "phase": render(job.phase, lang) or None,
        "pid": job.pid,
        "host": job.host,
        "error": render(job.error, lang) or None,
        "result": job.result,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
    }


def cmd_jobs(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    if args.launcher is not None:
        launcher.set_template(ws, args.launcher)
    for resource, count in ((Resource.EXCLUSIVE, args.exclusive_slots), (Resource.LIGHT, args.light_slots)):
        if count is not None:
            queue.set_slots(ws, resource, count)
    if args.warm_seconds is not None:
        queue.set_warm_idle_s(ws, args.warm_seconds)
    queue.schedule(ws)  # an explicit look at the queue: mark dead workers, start what may start
    live = live_jobs(ws)
    recent = list_jobs(ws, limit=10_000 if args.all else 20)
    jobs = sorted({j.id: j for j in [*live, *recent]}.values(), key=lambda j: -j.id)
    lang = cli_language()
    items = [job_json(j, lang) for j in jobs]
    slots = queue.slots(ws)
    if not args.json:
        print(tr("cli.jobs_settings", lang, launcher=launcher.template(ws) or tr("cli.launcher_local", lang),
                 exclusive=slots[Resource.EXCLUSIVE], light=slots[Resource.LIGHT]))  # fmt: skip
        for j in items:
            where = f"{j['done']}/{j['total']}" if j["total"] else ""
            print(f"{j['id']}\t{j['kind']}\t{j['status']}\t{where}\t{j['run'] or ''}\t{j['error'] or j['phase'] or ''}")
    return {
        "jobs": items,
        "launcher": launcher.template(ws),
        "slots": {str(k): v for k, v in slots.items()},
    }


def cmd_cancel(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    job = resolve(ws, args.job)
    now = queue.cancel(ws, job.id)
    if not args.json:
        key = "cli.job_cancelled" if now is JobStatus.CANCELLED else "cli.job_stopping"
        print(tr(key, cli_language(), job=job.id))
    return {"job": job.id, "run": job.run_id, "status": str(get_job(ws, job.id).status)}


def cmd_move_up(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    job = resolve(ws, args.job)
    queue.move_up(ws, job.id)
    return {"job": job.id, "run": job.run_id, "position": queue.position(ws, job.id)}


def cmd_worker(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    """Run a job in this process: the job the scheduler started this worker for, or (several machines
    training one run under ``TF_CONFIG``) a run's, which every worker of the cluster is given."""
    job = resolve(ws, args.job)
    if job.kind == runs.TRAIN_KIND and not is_chief():
        from core.training.engine import train_as_worker

        train_as_worker(ws, job.run_id or "")
        return {"run": job.run_id, "worker": True}, 0
    if not args.job.isdigit() and job.status is not JobStatus.QUEUED:  # a run started by hand: queue it
        job = get_job(ws, runs.requeue(ws, job.run_id or "", attached=True))
    kind = KINDS.get(job.kind)
    if kind is None:
        raise JobError("err.job_kind_unknown", job=job.id, kind=job.kind)
    done = runner.execute(ws, job.id, kind, on_wait=lambda position: None, nice=True)
    if args.job.isdigit() and done.resource is Resource.LIGHT and queue.may_stay_warm(ws, os.getpid()):
        # Stay up for the next light job (TensorFlow loaded), then exit when idle: core.jobs.queue.warm_idle_s.
        runner.serve_warm(ws, KINDS, idle_s=queue.warm_idle_s(ws), fresh_state=fresh_keras_state)
    return job_json(done, cli_language()), 0 if done.status is not JobStatus.FAILED else 1


def run_here(
    ws: Workspace,
    kind: JobKind[Any],
    params: Any,
    args: argparse.Namespace,
    *,
    run_id: str | None = None,
    owned: tuple[str, ...] = (),
    dedupe: str | None = None,
) -> Job:
    """Queue ``params`` as a job of ``kind`` and run it in this process once it is its turn (saying so while
    it waits), with a progress bar; a domain error is stored and raised (one line, its exit code). With
    ``--detach``, only queue it (or find the same job queued, by ``dedupe``): the scheduler's worker runs
    it, and the job is returned queued."""

    if getattr(args, "detach", False):
        return get_job(ws, kind.submit(ws, params, run_id=run_id, owned=owned, dedupe=dedupe))
    job_id = kind.submit(ws, params, run_id=run_id, owned=owned, attached=True)
    return execute_here(ws, job_id, kind, args.json, ProgressBar(not args.json))


def execute_here(ws: Workspace, job_id: int, kind: JobKind[Any], as_json: bool, bar: Any) -> Job:
    """Run an attached job here, waiting for its turn (``run_here``, ``train``, ``resume``)."""
    try:
        return runner.execute(
            ws, job_id, kind, on_wait=waiting(as_json), raise_errors=True,
            on_progress=lambda done, total, phase: bar(done, total, phase),
        )  # fmt: skip
    finally:
        bar.close()


def waiting(as_json: bool) -> Any:
    """``on_wait`` for a job waiting in the queue: says its position once each time it changes."""
    said: list[int | None] = []

    def on_wait(position: int | None) -> None:
        if not as_json and position is not None and (not said or said[-1] != position):
            print(tr("cli.job_queued", cli_language(), position=position), file=sys.stderr)
        said.append(position)

    return on_wait
