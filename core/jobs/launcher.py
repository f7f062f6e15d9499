"""How the scheduler starts a worker: the unit of work is a command, ``python -m core worker JOB``.

By default it runs here, as a detached local process whose output goes to the job's log. A team with a
cluster scheduler sets a **launcher template** instead (the workspace setting ``queue.launcher``, or the
environment variable ``LABELTUNE_LAUNCHER``, which wins), and the command goes through it:

    sbatch --job-name labeltune-{job} --output {log} --wrap "{command}"
    kubectl create job labeltune-{job} --image=registry.example/labeltune -- python -m core worker {job} --workspace {workspace}

Placeholders: ``{command}`` (the worker command, shell-quoted), ``{job}``, ``{kind}``, ``{workspace}``,
``{log}``, ``{python}``. The template is split like a shell line; the launcher command must return once
the work is handed over (as ``sbatch`` and ``kubectl create`` do). Workers on other nodes need the store
in PostgreSQL (``LABELTUNE_DATABASE_URL``, passed to the launcher command and the worker in their
environment: Slurm hands it on by default) and the workspace folder on storage every node mounts at the
same path: SQLite's file is for processes on one host.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from core.errors import JobError
from core.jobs.store import Job, log_path
from core.store.db import DATABASE_ENV
from core.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]  # the repository root, where `python -m core` resolves
SETTING = "queue.launcher"
ENV_VAR = "LABELTUNE_LAUNCHER"
LAUNCH_TIMEOUT_S = 120  # a launcher command hands the work over and returns (sbatch takes about a second)


def template(ws: Workspace) -> str:
    """The launcher template in force: the environment's, else the workspace's, else "" (a local process)."""
    return os.environ.get(ENV_VAR) or ws.get_setting(SETTING, "") or ""


def set_template(ws: Workspace, value: str) -> None:
    """Set (or, with "", clear) the workspace's launcher template, checking its placeholders first."""
    value = value.strip()
    if value:
        _fill(value, ws, 0, "train")
    ws.set_setting(SETTING, value)


def worker_env(ws: Workspace) -> dict[str, str]:
    """The environment a worker starts with: this one, with the workspace's database (none: its SQLite
    file). The URL travels in the environment, never on a command line others can read."""
    env = {k: v for k, v in os.environ.items() if k != DATABASE_ENV}
    if ws.database:
        env[DATABASE_ENV] = ws.database
    return env


def worker_command(ws: Workspace, job_id: int) -> list[str]:
    return [sys.executable, "-m", "core", "worker", str(job_id), "--workspace", str(ws.root)]


def _fill(value: str, ws: Workspace, job_id: int, kind: str) -> list[str]:
    """The template with its placeholders filled, split like a shell line."""
    fields = {
        "command": shlex.join(worker_command(ws, job_id)),
        "job": str(job_id),
        "kind": kind,
        "workspace": str(ws.root),
        "log": str(log_path(ws, job_id)),
        "python": sys.executable,
    }
    try:
        return shlex.split(value.format(**fields))
    except (KeyError, IndexError, ValueError) as exc:
        raise JobError("err.launcher_template", template=value, detail=str(exc)) from exc


def launch(ws: Workspace, job: Job) -> int | None:
    """Start a worker for ``job``. Returns the local worker's pid, or None when a launcher command handed
    it to another scheduler (its liveness is then judged by its heartbeat)."""
    chosen = template(ws)
    if not chosen:
        return _local(ws, job)
    command = _fill(chosen, ws, job.id, job.kind)
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=worker_env(ws), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise JobError("err.launcher_failed", command=command[0], detail=str(exc)) from exc
    with open(log_path(ws, job.id), "a", encoding="utf-8") as log:
        log.write(f"$ {shlex.join(command)}\n{done.stdout}{done.stderr}")
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()[-1]
        raise JobError("err.launcher_failed", command=command[0], detail=detail)
    return None


def _local(ws: Workspace, job: Job) -> int:
    """``python -m core worker JOB``, detached (it outlives the page's script run); output to its log."""
    log = open(log_path(ws, job.id), "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            worker_command(ws, job.id),
            cwd=ROOT,
            env=worker_env(ws),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise JobError("err.launcher_failed", command=sys.executable, detail=str(exc)) from exc
    finally:
        log.close()
    return proc.pid
