"""The training verbs of ``python -m core``: train, distill, runs, stop, resume.

``train`` and ``resume`` train in this process (a server's job scheduler sees the work where it asked
for it), as the run's training job: it shows in the app, and when another run is training it waits for
its turn in the queue first. With ``--detach`` the run is queued and a worker process trains it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from typing import Any

import numpy as np

from core.cli.jobs import add_detach_flag, execute_here
from core.cli.progress import ProgressBar
from core.errors import LabelTuneError
from core.i18n import cli_language, render, stored, tr
from core.jobs import queue
from core.jobs.runner import JobKind
from core.jobs.store import JobStatus
from core.prediction.predict import latency_ms
from core.runs import store as runs
from core.runs.backbones import BACKBONES, get_backbone
from core.runs.config import Planning, TrainConfig, flag_name
from core.store.workspace import Workspace
from core.training import jobs as training_jobs
from core.training.advice import ADVISED_FIELDS, CHOSEN_BY_HAND, advise_dataset
from core.training.plan import plan_line


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {value!r}")
    return value == "on"


# ``distill`` takes every setting but these from its teacher run unless given (its backbone is --student).
TEACHER_FIXED = ("backbone", "teacher")


def add_setting_flags(parser: argparse.ArgumentParser, inherit: bool = False) -> None:
    """One flag per ``TrainConfig`` field, with its type, choices, default and help from the field.

    ``inherit``: for ``distill``, every flag but the dataset's, backbone's and teacher's, defaulting to
    None (the teacher run's value); ``--distill-alpha`` is also ``--alpha``."""
    if not inherit:
        parser.add_argument("--dataset", required=True, help=tr("help.dataset", "en"))
    for f in TrainConfig.user_fields():
        if inherit and f.name in TEACHER_FIXED:
            continue
        default = f.default
        text = tr(f"help.{f.name}", "en").replace("%", "%%") + " (default: %(default)s)"
        if inherit:
            default, text = None, text.replace("%(default)s", "the teacher's")
        elif f.name in ADVISED_FIELDS:
            default, text = None, text.replace("%(default)s", "as advised for the dataset on this machine")
        names = [flag_name(f), "--alpha"] if inherit and f.name == "distill_alpha" else [flag_name(f)]
        add_field_flag(parser, f, default, text, names)


def add_field_flag(parser: argparse.ArgumentParser, f: Any, default: Any, text: str, names: list[str]) -> None:
    """The flag of one config field (``core.runs.config.setting``): on/off for a bool, its choices, or
    its type; ``text`` is its help with ``%(default)s`` where the default goes."""
    meta = f.metadata
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
    if f.name == "backbone":  # a name of the table, a preset folder or a hub handle: the names listed
        kwargs.update(metavar="NAME|FOLDER|HANDLE", help=text + "; the table's names: " + ", ".join(BACKBONES))
    parser.add_argument(*names, **kwargs)


def add_training_verbs(verbs: Any, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser("train", parents=[common], help="fine-tune a classifier on a dataset")
    add_setting_flags(p)
    p.add_argument(
        "--create-only",
        action="store_true",
        help="record the run without starting it (for several machines: then `worker RUN` on each)",
    )
    add_detach_flag(p)
    p.set_defaults(handler=cmd_train)

    p = verbs.add_parser("runs", parents=[common], help="list training runs, the queue with its positions")
    p.add_argument("--dataset")
    p.set_defaults(handler=cmd_runs)

    for verb, text, handler in (
        ("stop", "stop a run: off the queue, or after its current batch keeping its best model", cmd_stop),
        ("resume", "resume a stopped, failed, interrupted or cancelled run", cmd_resume),
    ):
        p = verbs.add_parser(verb, parents=[common], help=text)
        p.add_argument("run")
        if verb == "resume":
            add_detach_flag(p)
        p.set_defaults(handler=handler)

    p = verbs.add_parser("distill", parents=[common], help="train a smaller student on a completed run's predictions")
    p.add_argument("run", help="the teacher: a completed run")
    p.add_argument("--student", default="mobilenet_v2_0.35", help="the student's backbone (default: %(default)s)")
    add_setting_flags(p, inherit=True)
    p.set_defaults(handler=cmd_distill)


def config_from_args(args: argparse.Namespace, ws: Workspace) -> TrainConfig:
    """The settings given, and for the advised ones not given (backbone, size, weights, epochs, the measured
    plan and its time limit) the advice for the dataset on this machine (``core.training.advice``), as the
    Train page's form starts. A backbone, size, weights or epochs given by hand are trained as given: the
    plan is then fixed and has no time limit unless those flags are given too."""
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig)}
    by_hand = {"planning": Planning.FIXED, "max_minutes": 0.0}  # the settings as given, not a plan
    if any(values[name] is not None for name in CHOSEN_BY_HAND):
        values = {k: by_hand[k] if v is None and k in by_hand else v for k, v in values.items()}
    if any(values[name] is None for name in ADVISED_FIELDS):
        advised = advise_dataset(ws, args.dataset).values()
        if values["backbone"] is not None and values["image_size"] is None:  # the advised size, for this backbone
            advised["image_size"] = get_backbone(values["backbone"]).fit_size(advised["image_size"])
        values = {k: advised[k] if v is None and k in advised else v for k, v in values.items()}
    return TrainConfig(**values)


def _epoch_lines(bar: ProgressBar) -> Any:
    """A Keras callback feeding the progress bar with live loss and accuracy, and one line per epoch."""
    import keras

    class EpochLines(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            shown = {k: float(logs[k]) for k in ("loss", "accuracy") if k in logs}
            phase = stored("cli.epoch", epoch=self.epoch + 1, epochs=self.params.get("epochs"))
            bar(batch + 1, self.params.get("steps") or 0, phase, **shown)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            # Keras' "loss" is the run's objective (label smoothing, distillation included): named as such.
            names = {
                "loss": "objective",
                "accuracy": "accuracy",
                "val_loss": "val_objective",
                "val_accuracy": "val_accuracy",
            }
            figures = " ".join(f"{names[k]} {float(logs[k]):.4f}" for k in names
                               if k in logs)  # fmt: skip
            bar.line(f"epoch {epoch + 1}/{self.params.get('epochs')} {figures}")

    return EpochLines()


def _report(run: runs.Run, seconds: float, as_json: bool) -> dict[str, Any]:
    payload = {
        "run": run.id,
        "job": run.job.id,
        "status": str(run.status),
        "weights": run.weights_used,
        "epochs_run": run.epochs_run,
        "best_val_accuracy": run.best.get("val_accuracy"),
        "best_val_objective": run.best.get("val_objective"),
        "val_accuracy": run.final.get("val_accuracy"),
        "val_log_loss": run.final.get("val_log_loss"),
        "test_accuracy": run.final.get("test_accuracy"),
        "test_log_loss": run.final.get("test_log_loss"),
        "seconds": round(seconds, 2),
        "image_size": run.config.size,
        "fine_tune_epochs": run.config.fine_tune_epochs,
        "plan": plan_line(run.device.get("plan"), cli_language()) or None,
        "device": run.device,
        "model": run.model_path,
        "error": render(run.error, cli_language()) or None,
    }
    if not as_json:
        lang = cli_language()
        print(tr("cli.run_done", lang, run=run.id, status=tr(f"status.{run.status}", lang), weights=run.weights_used,
                 epochs=run.epochs_run))  # fmt: skip
        if payload["plan"]:
            print(f"  {payload['plan']}")
        for key in ("best_val_accuracy", "best_val_objective", "val_accuracy", "val_log_loss", "test_accuracy",
                    "test_log_loss"):  # fmt: skip
            if payload[key] is not None:
                print(f"  {key}: {payload[key]:.4f}")
        if run.error:
            print(f"  error: {payload['error']}", file=sys.stderr)
    return payload


def train_attached(ws: Workspace, run_id: str, job_id: int, as_json: bool) -> tuple[dict[str, Any], int]:
    """Train ``run_id`` in this process as its attached job ``job_id``, once it is its turn."""
    started = time.perf_counter()
    bar = ProgressBar(not as_json)
    lines = [] if as_json else [_epoch_lines(bar)]
    train = training_jobs.TRAIN
    kind = JobKind(train.name, train.resource, train.params, lambda ctx, p: train.handler(ctx, p, lines))
    try:
        execute_here(ws, job_id, kind, as_json, bar)
    except LabelTuneError:
        pass  # stored as the run's error: reported below with the rest
    run = runs.get_run(ws, run_id)
    return _report(run, time.perf_counter() - started, as_json), 1 if run.status is JobStatus.FAILED else 0


def _detached(ws: Workspace, run_id: str) -> dict[str, Any]:
    queue.schedule(ws)
    run = runs.get_run(ws, run_id)
    return {"run": run_id, "job": run.job.id, "status": str(run.status)}


def cmd_train(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    config = config_from_args(args, ws)
    attached = not (args.create_only or args.detach)
    run_id = training_jobs.create_run(ws, config, held=args.create_only, attached=attached)
    if args.create_only:  # held for its workers, started by hand
        if not args.json:
            print(tr("cli.run_created", cli_language(), run=run_id))
        return {"run": run_id, "status": str(JobStatus.QUEUED), "held": True}, 0
    if args.detach:
        return _detached(ws, run_id), 0
    if not args.json:
        print(tr("cli.run_started", cli_language(), run=run_id, dataset=config.dataset, backbone=config.backbone))
    return train_attached(ws, run_id, runs.get_run(ws, run_id).job.id, args.json)


def cmd_resume(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    if args.detach:
        training_jobs.resume_run(ws, args.run)
        return _detached(ws, args.run), 0
    job_id = runs.requeue(ws, args.run, attached=True)
    return train_attached(ws, args.run, job_id, args.json)


def cmd_distill(args: argparse.Namespace, ws: Workspace) -> tuple[dict[str, Any], int]:
    teacher = runs.get_run(ws, args.run)
    given = {f.name: getattr(args, f.name) for f in TrainConfig.user_fields() if f.name not in TEACHER_FIXED}
    overrides = {k: v for k, v in given.items() if v is not None}
    # the teacher's size and epochs as it trained them (a measured plan's), without its time limit
    fixed = {"planning": Planning.FIXED, "max_minutes": 0.0}
    config = TrainConfig.from_dict(
        {**teacher.config.to_dict(), **fixed, **overrides, "backbone": args.student, "teacher": teacher.id}
    )
    run_id = training_jobs.create_run(ws, config, attached=True)
    if not args.json:
        print(tr("cli.run_started", cli_language(), run=run_id, dataset=config.dataset, backbone=config.backbone))
    payload, code = train_attached(ws, run_id, runs.get_run(ws, run_id).job.id, args.json)
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

    from core.training.model import load_run_model

    facts: dict[str, Any] = {"run": run.id, "backbone": run.config.backbone,
                             "test_accuracy": run.final.get("test_accuracy")}  # fmt: skip
    if not run.model_path:
        return facts
    model = load_run_model(ws, run.id)
    size = int(model.input_shape[1])
    facts["latency_ms"] = latency_ms(model.predict_on_batch, np.zeros((1, size, size, 3), np.float32))
    facts["size_mb"] = round((ws.root / run.model_path).stat().st_size / 1e6, 2)
    facts["params"] = int(model.count_params())
    return facts


def cmd_stop(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    runs.request_stop(ws, args.run)
    return {"run": args.run, "stop_requested": True}


def cmd_runs(args: argparse.Namespace, ws: Workspace) -> dict[str, Any]:
    queue.schedule(ws)  # an explicit look at the queue: mark dead workers, start the next run
    queued = [j.id for j in queue.queue(ws)]
    items = [
        {
            "run": r.id,
            "job": r.job.id,
            "title": r.title,
            "dataset": r.dataset_name,
            "status": str(r.status),
            "position": queued.index(r.job.id) + 1 if r.job.id in queued else None,
            "backbone": r.config.backbone,
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
