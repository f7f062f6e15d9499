"""The training verbs of ``python -m core``: train, distill, runs, stop, resume, cancel, move-up, and the
app's worker.

``train`` and ``resume`` train in this process (a server's job scheduler sees the work where it
asked for it); when another run is training they wait for their turn in the queue first.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import Field, fields
from typing import Any

from core.i18n import cli_language, render, tr
from core.store.workspace import Workspace
from core.training import runs, scheduler
from core.training.config import TrainConfig, settings


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {value!r}")
    return value == "on"


def _flag(f: Field) -> str:
    return "--" + (f.metadata["flag"] or f.name).replace("_", "-")


# ``distill`` takes every setting but these from its teacher run unless given (its backbone is --student).
TEACHER_FIXED = ("backbone", "teacher")


def add_setting_flags(parser: argparse.ArgumentParser, inherit: bool = False) -> None:
    """One flag per ``TrainConfig`` field, with its type, choices, default and help from the field.

    ``inherit``: for ``distill``, every flag but the dataset's, backbone's and teacher's, defaulting to
    None (the teacher run's value); ``--distill-alpha`` is also ``--alpha``."""
    if not inherit:
        parser.add_argument("--dataset", required=True, help=tr("help.dataset", "en"))
    for f in settings():
        if inherit and f.name in TEACHER_FIXED:
            continue
        meta, default = f.metadata, f.default
        text = tr(f"help.{f.name}", "en").replace("%", "%%") + " (default: %(default)s)"
        if inherit:
            default, text = None, text.replace("%(default)s", "the teacher's")
        kwargs: dict[str, Any] = {"dest": f.name, "default": default, "help": text}
        if isinstance(f.default, bool):
            text = text.replace("%(default)s", "on" if default else "off")
            kwargs.update(type=_on_off, nargs="?", const=True, metavar="on|off", help=text)
        elif meta["choices"] is not None:
            kwargs.update(choices=meta["choices"])
            if len(meta["choices"]) > 8:
                kwargs["metavar"] = "NAME"
                kwargs["help"] = text + "; one of " + ", ".join(meta["choices"])
        else:
            kwargs["type"] = type(f.default)
        names = [_flag(f), "--alpha"] if inherit and f.name == "distill_alpha" else [_flag(f)]
        parser.add_argument(*names, **kwargs)


def add_training_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("train", parents=[common], help="fine-tune a classifier on a dataset")
    add_setting_flags(p)
    p.add_argument(
        "--create-only",
        action="store_true",
        help="record the run without starting it (for several machines: then `worker RUN` on each)",
    )
    p.set_defaults(handler=cmd_train)

    p = verbs.add_parser("runs", parents=[common], help="list training runs, the queue with its positions")
    p.add_argument("--dataset")
    p.set_defaults(handler=cmd_runs)

    for verb, text, handler in (
        ("stop", "ask a running run to stop after its current batch", cmd_stop),
        ("resume", "resume a stopped, failed or interrupted run", cmd_resume),
        ("cancel", "take a queued run off the queue before it starts", cmd_cancel),
        ("move-up", "move a queued run one place up the queue", cmd_move_up),
        ("worker", "(used by the app) train a queued run in this process", cmd_worker),
    ):
        p = verbs.add_parser(verb, parents=[common], help=text)
        p.add_argument("run")
        p.set_defaults(handler=handler)

    p = verbs.add_parser("distill", parents=[common], help="train a smaller student on a completed run's predictions")
    p.add_argument("run", help="the teacher: a completed run")
    p.add_argument("--student", default="mobilenet_v2_0.35", help="the student's backbone (default: %(default)s)")
    add_setting_flags(p, inherit=True)
    p.set_defaults(handler=cmd_distill)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


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
        "error": render(run.error, cli_language()) or None,
    }
    if not as_json:
        lang = cli_language()
        print(tr("cli.run_done", lang, run=run.id, status=run.status, weights=run.weights_used, epochs=run.epochs_run))
        for key in ("best_val_accuracy", "val_accuracy", "test_accuracy"):
            if payload[key] is not None:
                print(f"  {key}: {payload[key]:.4f}")
        if run.error:
            print(f"  error: {payload['error']}", file=sys.stderr)
    return payload


def _exit_code(run: runs.Run) -> int:
    return 1 if run.status == "failed" else 0


def _waiting(as_json: bool) -> Any:
    """``on_wait`` for a run waiting in the queue: says its position once each time it changes."""
    said: list[int | None] = []

    def on_wait(position: int | None) -> None:
        if not as_json and position is not None and (not said or said[-1] != position):
            print(tr("cli.run_queued", cli_language(), position=position), file=sys.stderr)
        said.append(position)

    return on_wait


def _execute(ws: Workspace, run_id: str, as_json: bool) -> tuple[dict[str, Any], int]:
    """Train ``run_id`` in this process once it is its turn; then start the next queued run's worker."""
    from core.training.devices import is_chief
    from core.training.engine import execute_run

    started = time.perf_counter()
    try:
        run = execute_run(ws, run_id, [] if as_json else [_progress_callback()], on_wait=_waiting(as_json))
    finally:
        if is_chief():  # in a cluster, the chief alone looks after the queue
            scheduler.schedule(ws)
    return _report(run, time.perf_counter() - started, as_json), _exit_code(run)


def cmd_train(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    from core.training.launcher import create_run

    config = config_from_args(args)
    run_id = create_run(ws, config)
    if args.create_only:
        scheduler.cancel(ws, run_id)  # kept off the queue: its workers start it
        if not args.json:
            print(tr("cli.run_created", cli_language(), run=run_id))
        return {"run": run_id, "status": "stopped"}, 0
    if not args.json:
        print(tr("cli.run_started", cli_language(), run=run_id, dataset=config.dataset, backbone=config.backbone))
    return _execute(ws, run_id, args.json)


def cmd_resume(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    scheduler.requeue(ws, args.run)
    return _execute(ws, args.run, args.json)


def cmd_worker(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    return _execute(ws, args.run, args.json)


def cmd_distill(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    from core.training.launcher import create_run

    teacher = runs.get_run(ws, args.run)
    given = {f.name: getattr(args, f.name) for f in settings() if f.name not in TEACHER_FIXED}
    overrides = {k: v for k, v in given.items() if v is not None}
    config = TrainConfig.from_dict({**teacher.config, **overrides, "backbone": args.student, "teacher": teacher.id})
    run_id = create_run(ws, config)
    if not args.json:
        print(tr("cli.run_started", cli_language(), run=run_id, dataset=config.dataset, backbone=config.backbone))
    payload, code = _execute(ws, run_id, args.json)
    student = runs.get_run(ws, run_id)
    payload["teacher"], payload["student"] = _model_facts(ws, teacher), _model_facts(ws, student)
    if not args.json:
        for role in ("teacher", "student"):
            facts = payload[role]
            print(
                f"{role}\t{facts['backbone']}\ttest {facts['test_accuracy']}\t{facts['size_mb']} MB\t{facts['latency_ms']} ms"
            )
    return payload, code


def _model_facts(ws: Workspace, run: runs.Run) -> dict[str, Any]:
    """Test accuracy, model size and one-image latency: what a student is compared with its teacher on."""
    import numpy as np

    from core.prediction.models import latency_ms, load_run_model

    facts: dict[str, Any] = {"run": run.id, "backbone": run.config.get("backbone"),
                             "test_accuracy": run.final.get("test_accuracy")}  # fmt: skip
    if not run.model_path:
        return facts
    model = load_run_model(ws, run.id)
    size = int(model.input_shape[1])
    facts["latency_ms"] = latency_ms(model.predict_on_batch, np.zeros((1, size, size, 3), np.float32))
    facts["size_mb"] = round((ws.root / run.model_path).stat().st_size / 1e6, 2)
    facts["params"] = int(model.count_params())
    return facts


def cmd_cancel(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    scheduler.cancel(ws, args.run)
    return {"run": args.run, "status": runs.get_run(ws, args.run).status}


def cmd_move_up(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    scheduler.move_up(ws, args.run)
    return {"run": args.run, "position": scheduler.position(ws, args.run)}


def cmd_stop(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    runs.request_stop(ws, args.run)
    return {"run": args.run, "stop_requested": True}


def cmd_runs(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    scheduler.schedule(ws)  # an explicit look at the queue: mark dead workers, start the next run
    queued = [r.id for r in scheduler.queue(ws)]
    items = [
        {
            "run": r.id,
            "title": r.title,
            "dataset": r.dataset_name,
            "status": r.status,
            "position": queued.index(r.id) + 1 if r.id in queued else None,
            "backbone": r.config.get("backbone"),
            "weights": r.weights_used,
            "epochs_run": r.epochs_run,
            "best_val_accuracy": r.best.get("val_accuracy"),
            "test_accuracy": r.final.get("test_accuracy"),
            "created_at": r.created_at,
            "train_seconds": round(r.train_seconds, 1),
            "estimate_seconds": (r.estimate or {}).get("total_s"),
            "note": r.note,
            "error": render(r.error, cli_language()) or None,
        }
        for r in runs.list_runs(ws, args.dataset)
    ]
    if not args.json:
        for r in items:
            acc = r["best_val_accuracy"]
            status = f"queued #{r['position']}" if r["position"] else r["status"]
            print(f"{r['run']}\t{r['dataset']}\t{r['backbone']}\t{status}\t{'-' if acc is None else f'{acc:.3f}'}")
    return {"runs": items}
