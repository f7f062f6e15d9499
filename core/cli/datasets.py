"""The dataset verbs of ``python -m core``: import, datasets."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.datasets.catalog import list_datasets
from core.datasets.ingest import import_archive
from core.datasets.splits import SplitConfig
from core.i18n import cli_language, tr
from core.store.workspace import Workspace


def add_dataset_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("import", parents=[common], help="import a zip of images as a new dataset")
    p.add_argument("zip", help="path to the .zip")
    p.add_argument("--name", help="dataset name (default: the zip's file name)")
    p.add_argument("--val", type=float, default=SplitConfig.val, help="validation fraction when the zip has no split")
    p.add_argument("--test", type=float, default=SplitConfig.test, help="test fraction when the zip has no split")
    p.add_argument("--seed", type=int, default=SplitConfig.seed, help="split seed")
    p.set_defaults(handler=cmd_import)

    p = verbs.add_parser("datasets", parents=[common], help="list datasets")
    p.set_defaults(handler=cmd_datasets)


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total == 0:
            return
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def cmd_import(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    split = SplitConfig.held_out(args.val, args.test, args.seed)
    result = import_archive(
        ws, args.zip, name=args.name, split=split, progress=None if args.json else _Progress("import")
    )
    if not args.json:
        lang = cli_language()
        print(
            tr(
                "cli.imported",
                lang,
                images=result.images,
                dataset=result.dataset,
                classes=len(result.classes),
                skipped=len(result.skipped),
                seconds=result.seconds,
            )
        )
        for name, count in result.classes.items():
            print(f"  {name}: {count}")
        print("  " + ", ".join(f"{k}={v}" for k, v in result.splits.items()))
        for skipped in result.skipped:
            print(f"  skipped {skipped.entry}: {skipped.reason(lang)}")
        for warning in result.warnings:
            print(f"  ! {tr(warning['code'], lang, **warning['params'])}")
    return result.to_json()


def cmd_datasets(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    datasets = [
        {
            "name": d.name,
            "images": d.images,
            "classes": d.classes,
            "splits": d.splits,
            "unlabeled": d.unlabeled,
            "layout": d.layout,
            "created_at": d.created_at,
        }
        for d in list_datasets(ws)
    ]
    if not args.json:
        if not datasets:
            print(tr("cli.no_datasets", cli_language(), path=ws.root))
        for d in datasets:
            print(f"{d['name']}\t{d['images']} images\t{len(d['classes'])} classes\t{d['created_at']}")
    return {"workspace": str(ws.root), "datasets": datasets}
