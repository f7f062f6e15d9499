"""The training verbs of ``python -m core``: train, runs, stop, resume, and the app's worker."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from core.i18n import cli_language, tr
from core.store.workspace import Workspace
from core.training import runs
from core.training.backbones import BACKBONES
from core.training.config import AUGMENT_PRESETS, DEFAULTS, TrainConfig


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {value!r}")
    return value == "on"


def add_training_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("train", parents=[common], help="fine-tune a classifier on a dataset")
    p.add_argument("--dataset", required=True)
    p.add_argument("--backbone", default=DEFAULTS["backbone"], choices=list(BACKBONES), metavar="NAME")
    p.add_argument("--weights", default=DEFAULTS["weights"], help="imagenet, none, or a path to a weights file")
    p.add_argument("--image-size", type=int, default=0, help="pixels per side (default: the backbone's)")
    p.add_argument("--resize", default=DEFAULTS["resize"], choices=["crop", "pad", "stretch"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--head-epochs", type=int, default=DEFAULTS["head_epochs"])
    p.add_argument("--fine-tune-epochs", type=int, default=DEFAULTS["fine_tune_epochs"])
    p.add_argument("--unfreeze", default=DEFAULTS["unfreeze"], help="N layers from the top of the base, or all")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--fine-tune-lr", type=float, default=DEFAULTS["fine_tune_lr"])
    p.add_argument("--schedule", default=DEFAULTS["schedule"], choices=["cosine", "constant"])
    p.add_argument("--dropout", type=float, default=DEFAULTS["dropout"])
    p.add_argument("--label-smoothing", type=float, default=DEFAULTS["label_smoothing"])
    p.add_argument("--class-weights", default=DEFAULTS["class_weights"], choices=["auto", "off"])
    p.add_argument("--augment", default=DEFAULTS["augment"], choices=list(AUGMENT_PRESETS))
    p.add_argument("--feature-cache", type=_on_off, default=True, metavar="on|off")
    p.add_argument("--feature-views", type=int, default=DEFAULTS["feature_views"])
    p.add_argument("--early-stopping", type=int, default=DEFAULTS["early_stopping"], help="patience; 0 = off")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--mixed-precision", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--xla", default="auto", choices=["auto", "on", "off"], help="jit_compile")
    p.add_argument("--steps-per-epoch", type=int, default=0)
    p.add_argument("--tensorboard", action="store_true")
    p.set_defaults(handler=cmd_train)

    p = verbs.add_parser("runs", parents=[common], help="list training runs")
    p.add_argument("--dataset")
    p.set_defaults(handler=cmd_runs)

    p = verbs.add_parser("stop", parents=[common], help="ask a running run to stop after its current batch")
    p.add_argument("run")
    p.set_defaults(handler=cmd_stop)

    p = verbs.add_parser("resume", parents=[common], help="resume a stopped, failed or interrupted run")
    p.add_argument("run")
    p.set_defaults(handler=cmd_resume)

    p = verbs.add_parser("worker", parents=[common], help=argparse.SUPPRESS)
    p.add_argument("run")
    p.set_defaults(handler=cmd_worker)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        dataset=args.dataset,
        backbone=args.backbone,
        weights=args.weights,
        image_size=args.image_size,
        resize=args.resize,
        batch_size=args.batch_size,
        head_epochs=args.head_epochs,
        fine_tune_epochs=args.fine_tune_epochs,
        unfreeze=args.unfreeze,
        lr=args.lr,
        fine_tune_lr=args.fine_tune_lr,
        schedule=args.schedule,
        dropout=args.dropout,
        label_smoothing=args.label_smoothing,
        class_weights=args.class_weights,
        augment=args.augment,
        feature_cache=args.feature_cache,
        feature_views=args.feature_views,
        early_stopping=args.early_stopping,
        seed=args.seed,
        mixed_precision=args.mixed_precision,
        jit_compile=args.xla,
        steps_per_epoch=args.steps_per_epoch,
        tensorboard=args.tensorboard,
    )


def _progress_callback() -> Any:
    import keras

    class Progress(keras.callbacks.Callback):
        """A progress bar on stderr with live loss and accuracy; one line per epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.tty = sys.stderr.isatty()
            self.steps = 0
            self.epoch = 0

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.steps = self.params.get("steps") or 0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if not self.tty:
                return
            logs = logs or {}
            done = batch + 1
            width = 24
            filled = int(width * done / self.steps) if self.steps else 0
            sys.stderr.write(
                f"\repoch {self.epoch + 1}/{self.params.get('epochs')} [{'#' * filled}{'.' * (width - filled)}]"
                f" {done}/{self.steps or '?'} loss {logs.get('loss', float('nan')):.4f}"
                f" acc {logs.get('accuracy', float('nan')):.3f}"
            )
            sys.stderr.flush()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            line = " ".join(
                f"{k} {v:.4f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_loss", "val_accuracy")
            )
            sys.stderr.write(("\r" if self.tty else "") + f"epoch {epoch + 1}/{self.params.get('epochs')} {line}\n")
            sys.stderr.flush()

    return Progress()


def _report(run: runs.Run, seconds: float, as_json: bool) -> dict[str, Any]:
    payload = {
        "run": run.id,
        "status": run.status,
        "weights": run.weights_used,
        "epochs_run": run.epochs_run,
        "best_val_accuracy": run.best.get("val_accuracy"),
        "val_accuracy": run.final.get("val_accuracy"),
        "test_accuracy": run.final.get("test_accuracy"),
        "seconds": round(seconds, 2),
        "device": run.device,
        "model": run.model_path,
        "error": run.error,
    }
    if not as_json:
        lang = cli_language()
        print(tr("cli.run_done", lang, run=run.id, status=run.status, weights=run.weights_used, epochs=run.epochs_run))
        for key in ("best_val_accuracy", "val_accuracy", "test_accuracy"):
            if payload[key] is not None:
                print(f"  {key}: {payload[key]:.4f}")
        if run.error:
            print(f"  error: {run.error}", file=sys.stderr)
    return payload


def _exit_code(run: runs.Run) -> int:
    return 1 if run.status == "failed" else 0


def cmd_train(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    from core.training.engine import execute_run
    from core.training.launcher import create_run

    config = config_from_args(args)
    started = time.perf_counter()
    run_id = create_run(ws, config)
    if not args.json:
        print(tr("cli.run_started", cli_language(), run=run_id, dataset=config.dataset, backbone=config.backbone))
    run = execute_run(ws, run_id, [] if args.json else [_progress_callback()])
    return _report(run, time.perf_counter() - started, args.json), _exit_code(run)


def cmd_resume(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    from core.training.engine import execute_run

    started = time.perf_counter()
    run = execute_run(ws, args.run, [] if args.json else [_progress_callback()])
    return _report(run, time.perf_counter() - started, args.json), _exit_code(run)


def cmd_worker(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    return cmd_resume(args, ws)


def cmd_stop(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    runs.request_stop(ws, args.run)
    return {"run": args.run, "stop_requested": True}


def cmd_runs(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    items = [
        {
            "run": r.id,
            "dataset": r.dataset_name,
            "status": r.status,
            "backbone": r.config.get("backbone"),
            "weights": r.weights_used,
            "epochs_run": r.epochs_run,
            "best_val_accuracy": r.best.get("val_accuracy"),
            "test_accuracy": r.final.get("test_accuracy"),
            "created_at": r.created_at,
            "error": r.error,
        }
        for r in runs.list_runs(ws, args.dataset)
    ]
    if not args.json:
        for r in items:
            acc = r["best_val_accuracy"]
            print(f"{r['run']}\t{r['dataset']}\t{r['backbone']}\t{r['status']}\t{'-' if acc is None else f'{acc:.3f}'}")
    return {"runs": items}
