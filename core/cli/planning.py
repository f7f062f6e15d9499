"""Verbs for before a run starts: ``estimate``, ``augment-preview``, ``lr-find``.

Each takes the same setting flags as ``train`` and caches its result in the workspace, where the
Train page (which runs these verbs in a subprocess, keeping TensorFlow out of its own process)
reads it.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.i18n import cli_language, tr
from core.store.workspace import Workspace
from core.training import estimate, lr_finder, lr_sweeps, preview
from core.training.pipeline import load_training_data


def add_planning_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    from core.cli.training import add_setting_flags

    p = verbs.add_parser("estimate", parents=[common], help="how long a run with these settings will take here")
    add_setting_flags(p)
    p.add_argument("--remeasure", action="store_true", help="time the steps again even if this machine has")
    p.set_defaults(handler=cmd_estimate)

    p = verbs.add_parser("augment-preview", parents=[common], help="a picture of the augmentation on a few images")
    add_setting_flags(p)
    p.set_defaults(handler=cmd_augment_preview)

    p = verbs.add_parser("lr-find", parents=[common], help="sweep the head's learning rate and suggest one")
    add_setting_flags(p)
    p.add_argument("--steps", type=int, default=100, help="batches in the sweep (default: %(default)s)")
    p.set_defaults(handler=cmd_lr_find)


def _config(args: argparse.Namespace) -> Any:
    from core.cli.training import config_from_args

    return config_from_args(args)


def cmd_estimate(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    from core.training import step_timer

    config = _config(args)
    data = load_training_data(ws, config.dataset)
    counts = data.counts()
    found = None if args.remeasure else estimate.cached_estimate(ws, config, counts)
    result = found or step_timer.measure_and_store(ws, config, counts, len(data.classes))
    if not args.json:
        minutes, seconds = divmod(int(result.total_s), 60)
        print(tr("cli.estimate", cli_language(), minutes=minutes, seconds=seconds, measured=not found))
        for part, value in result.parts.items():
            print(f"  {part}: {value:.1f} s")
    return {**result.to_dict(), "measured_now": found is None}


def cmd_augment_preview(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    config = _config(args)
    path = preview.preview_path(ws, config)
    if not path.exists():
        from core.training.augment import write_preview

        path = write_preview(ws, config)
    if not args.json:
        print(path)
    return {"path": str(path)}


def cmd_lr_find(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    config = _config(args)
    sweep = lr_finder.find_lr(ws, config, steps=args.steps)
    path = lr_sweeps.store_sweep(ws, config, sweep)
    if not args.json:
        print(tr("cli.lr_suggestion", cli_language(), lr=f"{sweep.suggestion:.1e}"))
    return {"suggestion": sweep.suggestion, "rates": sweep.rates, "losses": sweep.losses, "path": str(path)}
