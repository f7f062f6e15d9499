"""The evaluation and prediction verbs of ``python -m core``: evaluate, predict, and predictions (the
stored predictions of a run, as the job the Evaluate page starts)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.jobs import add_detach_flag, run_here
from core.errors import PredictionError
from core.evaluation import metrics
from core.evaluation.jobs import PREDICTIONS, PredictionsJob
from core.i18n import cli_language, tr
from core.prediction.predict import DEFAULT_THRESHOLD, DEFAULT_TOP_K, Prediction, Predictor, is_zip, predict_zip
from core.runs.predictions import UNLABELED, load_predictions, stored_splits
from core.store.vocabulary import EVALUATED_SPLITS
from core.store.workspace import SPLITS, Workspace


def add_evaluation_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("evaluate", parents=[common], help="metrics of a run on a split, from its saved model")
    p.add_argument("run")
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument("--flip", action="store_true", help=tr("help.flip", "en"))
    p.set_defaults(handler=cmd_evaluate)

    p = verbs.add_parser("predict", parents=[common], help="classify images or zips of images with a run's model")
    p.add_argument("run")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_ZIP")
    p.add_argument("--top-k", type=int, default=DEFAULT_TOP_K)
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="below it an image is 'not sure'")
    p.add_argument("--flip", action="store_true", help=tr("help.flip", "en"))
    p.set_defaults(handler=cmd_predict)

    p = verbs.add_parser("predictions", parents=[common], help="compute and store a run's predictions of splits")
    p.add_argument("run")
    p.add_argument("--split", action="append", choices=[*SPLITS, UNLABELED], help="repeatable (default: val, test)")
    p.add_argument("--flip", action="store_true", help=tr("help.flip", "en"))
    add_detach_flag(p)
    p.set_defaults(handler=cmd_predictions)


def cmd_evaluate(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:

    if args.split not in stored_splits(ws, args.run, args.flip):
        run_here(ws, PREDICTIONS, PredictionsJob(args.run, (args.split,), args.flip), args, run_id=args.run)
    found = load_predictions(ws, args.run, args.split, args.flip)
    out = {"run": args.run, "flip": args.flip, **metrics.report(found)}
    if not args.json:
        lang = cli_language()
        print(
            tr(
                "cli.evaluated",
                lang,
                run=args.run,
                split=args.split,
                images=out["images"],
                accuracy=out.get("accuracy", 0.0),
                f1=out.get("macro_f1", 0.0),
                ece=out.get("ece", 0.0),
            )
        )
        for name, row in out["per_class"].items():
            print(f"  {name}\tP {row['precision']:.3f}\tR {row['recall']:.3f}\tF1 {row['f1']:.3f}\tn {row['support']}")
    return out


def cmd_predict(args: argparse.Namespace, ws: Workspace) -> list[dict[str, Any]]:

    predictor = Predictor.for_run(ws, args.run, flip=args.flip)
    lang = cli_language()
    results: list[Prediction] = []
    for value in args.inputs:
        path = Path(value)
        try:
            data = path.read_bytes()
        except OSError as exc:
            error = PredictionError("err.input_unreadable", file=value, reason=exc.strerror or str(exc))
            results.append(Prediction(value, error=error.stored()))
            continue
        if is_zip(path.name, data):
            results += predict_zip(predictor, str(path), path.name, args.top_k, args.threshold)
        else:
            results += predictor.predict([(value, data)], args.top_k, args.threshold)
    payload = [r.to_json(lang) for r in results]
    if not args.json:
        for item in payload:
            if "error" in item:
                print(f"{item['image']}\t{tr('cli.error', lang)}: {item['error']}")
            else:
                top = "  ".join(f"{t['label']} {t['probability']:.3f}" for t in item["top"])
                flag = f"\t({tr('predict.not_sure_short', lang)})" if item["not_sure"] else ""
                print(f"{item['image']}\t{top}{flag}")
    return payload


def cmd_predictions(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    splits = tuple(args.split or EVALUATED_SPLITS)
    job = run_here(ws, PREDICTIONS, PredictionsJob(args.run, splits, args.flip), args, run_id=args.run)
    return {"run": args.run, "splits": list(splits), "flip": args.flip, "job": job.id, "status": str(job.status)}
