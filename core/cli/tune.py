"""``python -m core tune --dataset D --budget 10m``: the best model in a time budget (``core.training.tune``).

The search runs as its ``tune`` job (the app shows it and its trials, and can cancel it); its best settings
become an ordinary run, which this command then trains in the foreground like ``train`` (``--detach``:
both only queued, the run first in the queue once the search ends).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from core.cli.jobs import add_detach_flag, run_here
from core.cli.training import train_attached
from core.i18n import cli_language, render, tr
from core.jobs.store import JobStatus
from core.runs import store as runs
from core.store.workspace import Workspace
from core.training.tune import TUNE, TuneJob, base_config, list_trials, parse_budget


def add_tune_verb(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("tune", parents=[common], help="the best model in a time budget: search, then one run")
    p.add_argument("--dataset", required=True, help=tr("help.dataset", "en"))
    p.add_argument("--budget", required=True, help="time for the whole tune, e.g. 10m, 90s, 1h (a number: minutes)")
    p.add_argument("--seed", type=int, default=0, help="the search's seed (default: %(default)s)")
    add_detach_flag(p)
    p.set_defaults(handler=cmd_tune)


def cmd_tune(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:

    started = time.perf_counter()
    params = TuneJob(args.dataset, parse_budget(args.budget), args.seed, attach_run=not args.detach)
    base_config(ws, args.dataset, args.seed)  # a dataset that cannot train is named here, before any job
    job = run_here(ws, TUNE, params, args)
    out: dict[str, Any] = {"job": job.id, "status": str(job.status)}
    if args.detach:
        return out, 0
    trials = list_trials(ws, job.id)
    out["trials"] = [
        {"number": t.number, "state": t.state, "val_log_loss": t.val_log_loss, "val_accuracy": t.val_accuracy,
         "seconds": round(t.seconds, 2), **t.params} for t in trials
    ]  # fmt: skip
    lang = cli_language()
    if job.status is not JobStatus.COMPLETED:
        out["error"] = render(job.error, lang) or None
        return out, 1
    out["best"] = job.result["best"]
    if not args.json:
        print(
            tr(
                "cli.tune_best",
                lang,
                trials=len(trials),
                settings=", ".join(f"{k} {v:.3g}" for k, v in out["best"].items()),
            )
        )
    run_id = job.result["run"]
    report, code = train_attached(ws, run_id, runs.get_run(ws, run_id).job.id, args.json)
    out.update(run=report, seconds=round(time.perf_counter() - started, 1), budget_s=params.budget_s)
    return out, code
