"""The export verb of ``python -m core``: a run's model in deployable formats, each checked first."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from core.cli.jobs import add_detach_flag, job_json, run_here
from core.errors import DatasetError
from core.export.config import FORMATS, QUANTIZE, VARIANTS, ExportConfig, variant_of
from core.export.exporter import last_export
from core.export.jobs import EXPORT
from core.i18n import cli_language, render, tr
from core.jobs.store import JobStatus
from core.store.workspace import Workspace


def add_export_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("export", parents=[common], help="export a run's model (Keras, SavedModel, TFLite), checked")
    p.add_argument("run")
    p.add_argument("--format", action="append", choices=FORMATS, help="repeatable; default: every format")
    p.add_argument("--quantize", action="append", choices=QUANTIZE, help="TFLite only, repeatable (default: none)")
    p.add_argument(
        "--out", type=Path, help="copy the zip of the offered files here: a .zip file, or a folder (made if missing)"
    )
    p.add_argument("--parity-images", type=int, default=200, help="test images every format predicts")
    p.add_argument("--flip", action="store_true", help=tr("help.export_flip", "en"))
    add_detach_flag(p)
    p.set_defaults(handler=cmd_export)


def variants_from_args(formats: list[str] | None, quantize: list[str] | None) -> tuple[str, ...]:
    if not formats:
        return VARIANTS if not quantize else tuple(variant_of("tflite", q) for q in quantize)
    out = []
    for fmt in formats:
        for q in (quantize or ["none"]) if fmt == "tflite" else ["none"]:
            out.append(variant_of(fmt, q))
    if quantize and "tflite" not in formats and any(q != "none" for q in quantize):
        variant_of(formats[0], next(q for q in quantize if q != "none"))  # raises: quantize needs tflite
    return tuple(dict.fromkeys(out))


def export_target(out: Path, name: str) -> Path:
    """Where ``--out`` puts the zip: a path ending in ``.zip`` is the file itself; anything else is a
    folder (made if missing) that gets the zip under its own name ``name``."""
    return out if out.suffix.lower() == ".zip" else out / name


def cmd_export(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:

    variants = variants_from_args(args.format, args.quantize)
    config = ExportConfig(args.run, variants, parity_images=args.parity_images, flip=args.flip)
    lang = cli_language()
    job = run_here(ws, EXPORT, config, args, run_id=config.run, dedupe=config.run)
    result = last_export(ws, args.run)
    if job.status is not JobStatus.COMPLETED or result is None:
        if not args.json:
            print(tr("cli.job_submitted", lang, job=job.id, kind=job.kind, status=tr(f"status.{job.status}", lang)))
        return job_json(job, lang), 0 if job.status is not JobStatus.FAILED else 1
    zip_path = ws.root / result.zip_path
    if args.out:
        target = export_target(args.out, zip_path.name)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(zip_path, target)
        except OSError as exc:
            raise DatasetError("err.export_unwritable", path=str(target), reason=exc.strerror or str(exc)) from exc
        zip_path = target
    payload = {
        "run": result.run,
        "zip": str(zip_path),
        "images": result.images,
        "app_accuracy": result.app_accuracy,
        "formats": [
            {
                "format": c.variant,
                "file": c.file,
                "size_bytes": c.size_bytes,
                "agreement": c.agreement,
                "accuracy": c.accuracy,
                "latency_ms": c.latency_ms,
                "offered": c.offered,
                "reason": render(c.reason, lang) if c.reason else None,
            }
            for c in result.checked
        ],
        "predict_py": result.predict_py,
    }
    int8 = next((c for c in result.checked if c.variant == "tflite_int8"), None)
    if int8 is not None:
        payload["int8_accuracy"] = int8.accuracy
        payload["int8_accuracy_drop"] = round(result.app_accuracy - (int8.accuracy or 0), 4)
    if not args.json:
        for c in payload["formats"]:
            acc = "-" if c["accuracy"] is None else f"{c['accuracy']:.3f}"
            print(f"{c['format']}\t{c['size_bytes'] / 1e6:.2f} MB\t{c['latency_ms']} ms\tacc {acc}\t"
                  f"agree {c['agreement']:.3f}\t{'offered' if c['offered'] else c['reason']}")  # fmt: skip
        print(zip_path)
    return payload, 0 if all(c.offered for c in result.checked) else 1
