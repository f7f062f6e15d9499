"""Verbs for before a run starts: ``estimate``, ``augment-preview``, ``lr-find``.

Each takes the same setting flags as ``train``, runs as the same job the Train page starts (so it shows
in the app's Jobs view), and caches its result in the workspace, where the Train page reads it.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.cli.jobs import add_detach_flag, run_here
from core.cli.training import add_setting_flags, config_from_args
from core.i18n import cli_language, tr
from core.jobs.store import JobStatus
from core.store.workspace import Workspace
from core.training.jobs import ESTIMATE, LR_FIND, PREVIEW, ConfigJob, plan_key


def add_planning_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:

    p = verbs.add_parser("estimate", parents=[common], help="how long a run with these settings will take here")
    add_setting_flags(p)
    p.add_argument("--remeasure", action="store_true", help="time the steps again even if this machine has")
    add_detach_flag(p)
    p.set_defaults(handler=cmd_estimate)

    p = verbs.add_parser("augment-preview", parents=[common], help="a picture of the augmentation on a few images")
    add_setting_flags(p)
    add_detach_flag(p)
    p.set_defaults(handler=cmd_augment_preview)

    p = verbs.add_parser("lr-find", parents=[common], help="sweep the head's learning rate and suggest one")
    add_setting_flags(p)
    p.add_argument("--steps", type=int, default=100, help="batches in the sweep (default: %(default)s)")
    add_detach_flag(p)
    p.set_defaults(handler=cmd_lr_find)


def _run(ws: Workspace, kind: Any, args: argparse.Namespace, **options: Any) -> dict[str, Any] | None:
    """The job's result; None (the job said) when it was only queued (``--detach``) or did not complete."""

    config = config_from_args(args, ws)
    job = run_here(ws, kind, ConfigJob(config, **options), args, dedupe=plan_key(kind, ws, config))
    if job.status is JobStatus.COMPLETED:
        return job.result
    if not args.json:
        print(
            tr(
                "cli.job_submitted",
                cli_language(),
                job=job.id,
                kind=job.kind,
                status=tr(f"status.{job.status}", cli_language()),
            )
        )
    return None


def cmd_estimate(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    result = _run(ws, ESTIMATE, args, remeasure=args.remeasure)
    if result and not args.json:
        minutes, seconds = divmod(int(result["total_s"]), 60)
        print(tr("cli.estimate", cli_language(), minutes=minutes, seconds=seconds, measured=result["measured_now"]))
        for part, value in result["parts"].items():
            print(f"  {part}: {value:.1f} s")
    return result or {}


def cmd_augment_preview(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    result = _run(ws, PREVIEW, args)
    if result and not args.json:
        print(result["path"])
    return result or {}


def cmd_lr_find(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    result = _run(ws, LR_FIND, args, steps=args.steps)
    if result and not args.json:
        print(tr("cli.lr_suggestion", cli_language(), lr=f"{result['suggestion']:.1e}"))
    return result or {}
