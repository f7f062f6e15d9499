"""``python -m core``: the command-line interface over the same core as the app.

Every verb takes ``--workspace`` and ``--json``. Domain errors print one line
on stderr (no traceback) and exit with the error's code: 3 for a rejected
archive, 1 for other problems, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from core.datasets.catalog import list_datasets
from core.datasets.ingest import import_archive
from core.datasets.splits import SplitConfig
from core.errors import LabelTuneError
from core.i18n import cli_language, tr
from core.store.workspace import Workspace


def _common(default: Any) -> argparse.ArgumentParser:
    """``--workspace`` and ``--json``, accepted before or after the verb."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace", default=default, help="workspace folder (default: $LABELTUNE_HOME or ./workspace)"
    )
    common.add_argument("--json", action="store_true", default=default, help="print one JSON object instead of text")
    return common


def build_parser() -> argparse.ArgumentParser:
    # The verbs' copies must not overwrite a value given before the verb, hence SUPPRESS.
    common = _common(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="python -m core", description="LabelTune, headless.", parents=[_common(None)])
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = verbs.add_parser("import", parents=[common], help="import a zip of images as a new dataset")
    p.add_argument("zip", help="path to the .zip")
    p.add_argument("--name", help="dataset name (default: the zip's file name)")
    p.add_argument("--val", type=float, default=SplitConfig.val, help="validation fraction when the zip has no split")
    p.add_argument("--test", type=float, default=SplitConfig.test, help="test fraction when the zip has no split")
    p.add_argument("--seed", type=int, default=SplitConfig.seed, help="split seed")
    p.set_defaults(handler=cmd_import)

    p = verbs.add_parser("datasets", parents=[common], help="list datasets")
    p.set_defaults(handler=cmd_datasets)

    from core.cli.training import add_training_verbs

    add_training_verbs(verbs, common)
    return parser


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
    split = SplitConfig(train=round(1.0 - args.val - args.test, 6), val=args.val, test=args.test, seed=args.seed)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.json = bool(args.json)
    handler: Callable[[argparse.Namespace, Workspace], Any] = args.handler
    code = 0
    try:
        ws = Workspace.open(args.workspace)
        payload = handler(args, ws)
        if isinstance(payload, tuple):  # (payload, exit code): a run that failed still reports itself
            payload, code = payload
    except LabelTuneError as exc:
        print(f"error: {exc.message(cli_language())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(payload, ensure_ascii=False))
    return code
