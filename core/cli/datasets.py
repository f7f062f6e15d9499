"""The dataset verbs of ``python -m core``: import, datasets."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from core.cli.jobs import job_json, run_here
from core.datasets.catalog import list_datasets, load_dataset
from core.datasets.editing import labels_from_csv, relabel
from core.datasets.export_zip import export_dataset
from core.datasets.gallery import labels_of
from core.datasets.jobs import IMPORT, ImportJob
from core.datasets.sample import import_sample
from core.datasets.splits import SplitConfig
from core.errors import DatasetError
from core.i18n import cli_language, render, tr
from core.jobs.store import JobStatus
from core.store.server_paths import ENV_VAR as SERVER_ROOTS_ENV
from core.store.server_paths import SETTING as SERVER_ROOTS_SETTING
from core.store.server_paths import server_roots, set_server_roots
from core.store.workspace import Workspace


def add_dataset_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("import", parents=[common], help="import a zip (or a folder) of images as a new dataset")
    p.add_argument("zip", help="path to the .zip, or to a folder of class/image or split/class/image")
    p.add_argument("--name", help="dataset name (default: the zip's file name)")
    p.add_argument("--val", type=float, default=SplitConfig.val, help="validation fraction when the zip has no split")
    p.add_argument("--test", type=float, default=SplitConfig.test, help="test fraction when the zip has no split")
    p.add_argument("--seed", type=int, default=SplitConfig.seed, help="split seed")
    p.add_argument("--into", metavar="DATASET", help="add the zip's images to this existing dataset instead")
    p.set_defaults(handler=cmd_import)

    p = verbs.add_parser(
        "server-roots", parents=[common],
        help="the folders on this server whose zips and folders the app's users may import by path (none: off)",
    )  # fmt: skip
    p.add_argument("--set", nargs="+", metavar="FOLDER", help="replace them with these folders")
    p.add_argument("--clear", action="store_true", help="allow none (the app then takes no server path)")
    p.set_defaults(handler=cmd_server_roots)

    p = verbs.add_parser(
        "sample-dataset", parents=[common], help="import the bundled sample dataset (4 clothing classes)"
    )
    p.add_argument("--name", default="clothing-sample")
    p.set_defaults(handler=cmd_sample)

    p = verbs.add_parser("datasets", parents=[common], help="list datasets")
    p.set_defaults(handler=cmd_datasets)

    p = verbs.add_parser("classes", parents=[common], help="a dataset's classes: counts per split, descriptions")
    p.add_argument("dataset")
    p.set_defaults(handler=cmd_classes)

    p = verbs.add_parser("relabel", parents=[common], help="change labels: one image, or many from a CSV")
    p.add_argument("dataset")
    p.add_argument("--image", type=int, action="append", help="an image id (repeatable)")
    p.add_argument("--to", help="the class (new classes are created); empty: unlabeled")
    p.add_argument(
        "--from-csv",
        help="a CSV with columns label and image (an id) or file (as export-dataset's labels.csv names it)",
    )
    p.set_defaults(handler=cmd_relabel)

    p = verbs.add_parser("export-dataset", parents=[common], help="a zip of the dataset that import accepts again")
    p.add_argument("dataset")
    p.add_argument("--out", required=True, help="the .zip to write")
    p.set_defaults(handler=cmd_export_dataset)


def cmd_sample(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:

    result = import_sample(ws, args.name)
    if not args.json:
        print(tr("cli.imported", cli_language(), images=result.images, dataset=result.dataset,
                 classes=len(result.classes), skipped=len(result.skipped), seconds=result.seconds))  # fmt: skip
    return _rendered(result.to_json(), cli_language())


def cmd_server_roots(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    if args.clear:
        ws.set_setting(SERVER_ROOTS_SETTING, "")
    elif args.set:
        set_server_roots(ws, args.set)
    roots = [str(r) for r in server_roots(ws)]
    if not args.json:
        print("\n".join(roots) if roots else tr("cli.server_roots_none", cli_language(), env=SERVER_ROOTS_ENV))
    return {"roots": roots, "from_env": bool(os.environ.get(SERVER_ROOTS_ENV))}


def cmd_import(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    """The same import job the Dataset page starts, run here (or, ``--detach``, by a worker)."""

    split = SplitConfig.held_out(args.val, args.test, args.seed)
    params = ImportJob(str(Path(args.zip).resolve()), Path(args.zip).name, args.name, args.into, split)
    job = run_here(ws, IMPORT, params, args)
    lang = cli_language()
    if job.status is not JobStatus.COMPLETED:
        if not args.json:
            print(tr("cli.job_submitted", lang, job=job.id, kind=job.kind, status=tr(f"status.{job.status}", lang)))
        return job_json(job, lang)
    result = job.result
    if not args.json:
        print(tr("cli.imported", lang, images=result["images"], dataset=result["dataset"],
                 classes=len(result["classes"]), skipped=len(result["skipped"]), seconds=result["seconds"]))  # fmt: skip
        for name, count in result["classes"].items():
            print(f"  {name}: {count}")
        print("  " + ", ".join(f"{k}={v}" for k, v in result["splits"].items()))
        for skipped in result["skipped"]:
            print(f"  skipped {skipped['entry']}: {render(skipped, lang)}")
        for warning in result["warnings"]:
            print(f"  ! {render(warning, lang)}")
    return _rendered(result, lang)


def _rendered(result: dict[str, Any], lang: str) -> dict[str, Any]:
    """An import's result with its skip reasons and warnings as text in ``lang``."""
    return {**result, "skipped": [{"entry": s["entry"], "reason": render(s, lang)} for s in result["skipped"]],
            "warnings": [render(w, lang) for w in result["warnings"]]}  # fmt: skip


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


def cmd_classes(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:

    summary = load_dataset(ws, args.dataset)
    classes = [
        {
            "name": name,
            "images": summary.classes[name],
            **summary.by_split[name],
            "description": summary.descriptions[name],
        }
        for name in summary.classes
    ]
    if not args.json:
        for c in classes:
            print(f"{c['name']}\t{c['train']}/{c['val']}/{c['test']}\t{c['description']}")
    return {"dataset": args.dataset, "version": summary.version, "unlabeled": summary.unlabeled, "classes": classes}


def cmd_relabel(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:

    groups: dict[str | None, list[int]] = labels_from_csv(ws, args.dataset, args.from_csv) if args.from_csv else {}
    if args.image:
        groups.setdefault(args.to.strip() if args.to else None, []).extend(args.image)
    if not groups:
        raise DatasetError("err.relabel_nothing")
    now = labels_of(ws, [i for ids in groups.values() for i in ids])
    changes = {label: [i for i in ids if i not in now or now[i] != label] for label, ids in groups.items()}
    version = load_dataset(ws, args.dataset).version
    for label, ids in changes.items():
        if ids:  # only what differs: a spreadsheet of every label changes the few edited rows
            version = relabel(ws, args.dataset, ids, label)
    changed = sum(len(ids) for ids in changes.values())
    if not args.json:
        print(tr("cli.relabelled", cli_language(), count=changed, dataset=args.dataset, version=version))
    return {"dataset": args.dataset, "images": changed, "version": version}


def cmd_export_dataset(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:

    counts = export_dataset(ws, args.dataset, args.out)
    if not args.json:
        print(tr("cli.exported", cli_language(), dataset=args.dataset, out=args.out, **counts))
    return {"dataset": args.dataset, "out": str(args.out), **counts}
