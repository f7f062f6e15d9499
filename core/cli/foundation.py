"""The foundation-model verbs of ``python -m core``: ``zero-shot`` (a model from the class descriptions)
and ``fetch-preset`` (a KerasHub preset saved as a folder to carry to a machine without internet)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.jobs import add_detach_flag
from core.cli.training import train_attached
from core.i18n import cli_language, tr
from core.jobs import queue
from core.runs import store as runs
from core.runs.backbones import BACKBONES, DEFAULT_IMAGE_TEXT, IMAGE_TEXT, get_backbone
from core.store.workspace import Workspace
from core.training import jobs as training_jobs
from core.training.zero_shot import dataset_prompts, zero_shot_config


def add_foundation_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "zero-shot", parents=[common],
        help="a model from the class names and descriptions alone (an image-text backbone), scored on val and test",
    )  # fmt: skip
    p.add_argument("--dataset", required=True)
    p.add_argument(
        "--model", default=DEFAULT_IMAGE_TEXT,
        help=f"an image-text preset ({', '.join(IMAGE_TEXT)}), a local preset folder or a KerasHub handle "
        "(default: %(default)s, multilingual)",
    )  # fmt: skip
    p.add_argument("--template", default="", help="the prompt: {name} and {description} (default: per language)")
    add_detach_flag(p)
    p.set_defaults(handler=cmd_zero_shot)

    p = verbs.add_parser(
        "fetch-preset", parents=[common],
        help="download a KerasHub preset and save it as a folder (to copy to a machine without internet)",
    )  # fmt: skip
    p.add_argument("preset", help=f"one of {', '.join(n for n, b in BACKBONES.items() if b.foundation)}, or a handle")
    p.add_argument("--to", type=Path, help="the folder to write (default: the preset's name here)")
    p.set_defaults(handler=cmd_fetch_preset)


def cmd_zero_shot(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    config = zero_shot_config(args.dataset, args.model, args.template)
    prompts = dataset_prompts(ws, args.dataset, args.template)
    run_id = training_jobs.create_run(ws, config, attached=not args.detach)
    if args.detach:
        queue.schedule(ws)
        return {"run": run_id, "prompts": prompts, "status": str(runs.get_run(ws, run_id).status)}, 0
    if not args.json:
        print(tr("cli.zero_shot_started", cli_language(), run=run_id, dataset=args.dataset, model=args.model))
        for name, text in prompts.items():
            print(f"  {name}\t{text}")
    payload, code = train_attached(ws, run_id, runs.get_run(ws, run_id).job.id, args.json)
    return {**payload, "prompts": prompts}, code


def cmd_fetch_preset(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    from core.training.foundation import fetch_preset

    backbone = get_backbone(args.preset)
    target = fetch_preset(backbone, (args.to or Path(backbone.preset.split("/")[-1])).resolve())
    if not args.json:
        print(tr("cli.preset_fetched", cli_language(), preset=args.preset, folder=str(target)))
    return {"preset": args.preset, "folder": str(target)}, 0
