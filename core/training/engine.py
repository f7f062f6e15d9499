"""Two-phase fine-tuning of a run, from its stored config to a saved ``.keras`` model.

Phase ``head``: the base is frozen and only the head learns (on cached features
when ``feature_cache`` is on). Phase ``fine_tune``: the top layers of the base
are unfrozen (BatchNorm stays frozen), the model is recompiled with a lower
rate (``fine_tune_lr``, 10x below ``lr`` by default), and training continues. Each phase can be skipped.

A run talks to the outside only through the workspace: its row in ``runs``,
its metrics, its folder, and its training job (progress, a stop request). :func:`execute`
is the training job's handler (``core.training.jobs.TRAIN``): the worker process and
``python -m core train`` run it through ``core.jobs.runner``, which claims the job, beats its
heartbeat and stores how it ended.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.errors import TrainingError
from core.jobs import queue
from core.jobs.runner import JobContext, JobResult
from core.jobs.store import JobStatus
from core.runs import store as runs
from core.runs.config import Planning, TrainConfig
from core.runs.folder import RunFolder
from core.store.vocabulary import EVALUATED_SPLITS
from core.store.workspace import Workspace
from core.training import features, measured_plan
from core.training.advice import median_short_side
from core.training.augment import build_augmenter
from core.training.batch_fit import choose as choose_batch
from core.training.callbacks import BestCheckpoint, Deadline, NanGuard, RunReporter, StopFlag, save_atomic
from core.training.devices import cluster_task
from core.training.distill import teacher_targets
from core.training.head import compile_model, fit_head_on_vectors, schedule
from core.training.inference import predict_splits, save_split_probs
from core.training.model import HEAD_LAYER, load_model_file, prepare_model, set_unfrozen
from core.training.multi_worker import build_for_multi_worker, shard_global_batches
from core.training.pipeline import TrainingData, load_training_data, make_dataset
from core.training.plan import plan_run, wants_measuring


@dataclass(frozen=True)
class Pipelines:
    """The input pipelines of one run: batches of (image, one-hot label[, weight])."""

    train: Any
    val: Any
    steps: int  # training batches per epoch


@dataclass(frozen=True)
class Session:
    """One execution of a run (a start or a resume): what every phase reads. Made once by :func:`prepare`;
    the phases take it with their own inputs and return their results."""

    ws: Workspace
    run_id: str
    config: TrainConfig
    data: TrainingData
    prepared: Any  # model.Prepared: strategy, devices, the built classifier, memory cache, class weights
    pipelines: Callable[[], Pipelines]  # built on the first call: a head-only run on cached features needs none
    extra_callbacks: list[Any]
    chief: bool  # writes the run (metrics, checkpoints, model); False for the other workers of a cluster
    stop: StopFlag
    nan: NanGuard
    deadline: Deadline  # the run's time limit (``max_minutes``), counted from the start of this execution
    progress: Callable[[int, str], None] | None  # (epochs done, phase) to the training job
    record: Callable[[dict[str, Any]], None]  # stores a new best checkpoint's figures as the run's
    batch: dict[str, Any] = field(default_factory=dict)  # the batch size used, whether auto, its halvings
    plan: dict[str, Any] | None = None  # what a measured plan chose and why (core.training.measured_plan)

    @property
    def folder(self) -> RunFolder:
        return RunFolder.of(self.ws, self.run_id)

    @property
    def writes(self) -> RunFolder:
        """Where this process saves models and weights: the run's folder for the chief; for the other
        workers of a cluster a folder of their own (they must save too, at the same moments: saving
        reads synchronised variables, a collective every worker joins)."""
        if self.chief:
            return self.folder
        own = self.folder.backup / f"worker-{cluster_task()[1]}"  # type: ignore[index]
        own.mkdir(parents=True, exist_ok=True)
        return RunFolder(own)

    @property
    def model(self) -> Any:
        return self.prepared.built.model

    @property
    def jit(self) -> bool:
        return self.prepared.device_plan.jit_compile

    @property
    def halted(self) -> bool:
        """Stopped by the user, by a NaN loss or by the time limit: no further phase starts."""
        return self.stop.stopped or self.nan.where is not None or self.deadline.reached

    def device_record(self, **extra: Any) -> dict[str, Any]:
        plan = self.prepared.device_plan.to_dict()
        measured = {"plan": self.plan} if self.plan else {}
        return {**plan, "memory_cache": self.prepared.memory_cache, **self.batch, **measured, **extra}


@dataclass(frozen=True)
class HeadOnVectors:
    """What the head phase on cached features leaves while the saved model is exactly the frozen base with
    that phase's best head (a later save ends this): the run's final predictions then come from the
    vectors through the head, without decoding the images and running the base again."""

    features: Any  # features.Features
    head: Any  # the head-only model trained on them
    best_weights: list[Any]  # its best epoch's weights, the saved model's head


def _callbacks(s: Session, phase: str, steps: int, epochs: int, offset: int, best: BestCheckpoint) -> list[Any]:
    import keras

    backup = s.folder.backup / phase
    if not s.chief:  # every worker of a cluster backs up its own state, apart from the chief's
        backup = s.folder.backup / f"worker-{cluster_task()[1]}" / phase  # type: ignore[index]
    out: list[Any] = [keras.callbacks.BackupAndRestore(str(backup), save_freq="epoch", delete_checkpoint=False)]
    if s.chief:
        out.append(RunReporter(s.ws, s.run_id, phase, steps, epochs, s.config.batch_size, offset, s.progress))
    out += [s.stop, s.nan, s.deadline]
    if s.config.early_stopping:
        out.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=s.config.early_stopping, restore_best_weights=True
            )
        )
    out.append(best)
    if s.config.tensorboard:
        out.append(keras.callbacks.TensorBoard(log_dir=str(s.folder.tensorboard / phase)))
    return out + s.extra_callbacks


def _head_on_features(s: Session, best: float) -> tuple[float, HeadOnVectors | None]:
    """The head phase on cached base features. The best epoch's head is kept in memory and the full model
    is written once, when the phase ends (a save per improving epoch cost more than the phase itself);
    its figures are recorded with that save, so the run's figures are always those of its saved model.
    Returns the run's best validation loss after the phase, and the vectors with the head when the
    phase's best became the run's model."""

    config, model = s.config, s.model
    feats = features.load_or_build(s.ws, config, s.data, model, s.prepared.memory_cache)
    steps = math.ceil(len(feats.train_x) / config.batch_size)
    built: list[Any] = []  # the head-only model, once fit_head_on_vectors has made it
    best_weights: list[Any] = []

    def keep_head() -> None:
        best_weights[:] = [w.copy() for w in built[0].get_layer(HEAD_LAYER).get_weights()]

    checkpoint = BestCheckpoint(best, s.record, phase="head", epoch_offset=0, save=keep_head, hold=True)
    try:
        head = fit_head_on_vectors(
            feats,
            config,
            len(s.data.classes),
            s.jit,
            _callbacks(s, "head", steps, config.head_epochs, 0, checkpoint),
            s.prepared.class_weights,
            on_built=built.append,
            start=model.get_layer(HEAD_LAYER).get_weights() if config.text_head else None,
        )
    finally:
        if checkpoint.held is not None:  # the phase's best epoch beat the run's best: it is the run's model now
            model.get_layer(HEAD_LAYER).set_weights(best_weights)
            save_atomic(model, s.folder.model)
            s.record(checkpoint.held)
    model.get_layer(HEAD_LAYER).set_weights(head.get_layer(HEAD_LAYER).get_weights())
    return checkpoint.best, HeadOnVectors(feats, head, best_weights) if checkpoint.held is not None else None


def _fit(s: Session, phase: str, lr: float, epochs: int, offset: int, best: float) -> BestCheckpoint:
    """One phase on the images; its best checkpoint (the run's best loss after it, whether it saved)."""
    config, pipelines = s.config, s.pipelines()
    steps = pipelines.steps
    checkpoint = BestCheckpoint(
        best, s.record, phase=phase, epoch_offset=offset, save=lambda: save_atomic(s.model, s.writes.model)
    )
    compile_model(s.model, schedule(lr, steps * epochs, config), config, s.jit)
    # Keras' BackupAndRestore sets the model's starting epoch when it restores a phase (a resumed run);
    # the attribute outlives that fit, so without this a resume during the head phase would start the
    # fine-tuning phase at the head phase's epoch and skip it.
    s.model._initial_epoch = None
    train = pipelines.train.repeat() if config.steps_per_epoch else pipelines.train
    if s.prepared.device_plan.strategy == "multi_worker":
        build_for_multi_worker(s.model, pipelines.train)
        train = shard_global_batches(s.prepared.strategy, train, config.batch_size)
    s.model.fit(
        train,
        validation_data=pipelines.val,
        epochs=epochs,
        steps_per_epoch=config.steps_per_epoch or None,
        shuffle=False,  # the tf.data pipeline shuffles (seeded) itself
        verbose=0,
        callbacks=_callbacks(s, phase, steps, epochs, offset, checkpoint),
    )
    return checkpoint


def execute(ctx: JobContext, run_id: str, extra_callbacks: list[Any] | None = None) -> JobResult:
    """Train (or resume) ``run_id`` to its end in this process, as its training job ``ctx``.

    The steps: prepare (data, devices, model, pipelines), train the head with the base frozen, fine-tune
    with the top of the base unfrozen, finish (predict validation and test with the saved model, record
    the figures). The job ends stopped when a stop was asked for (the best model so far is kept), failed
    with the reason when something the user can act on went wrong (raised as a :class:`TrainingError`).
    """
    import keras
    import tensorflow as tf

    ws = ctx.ws
    run = runs.get_run(ws, run_id)
    config = run.config
    started, began = time.perf_counter(), time.monotonic()
    plan = run.device.get("plan")
    batch, halved = None, []  # an auto batch size, once chosen; and its halvings
    try:
        if plan is None and wants_measuring(config) and cluster_task() is None:  # a cluster's workers would differ
            config, plan = _measure_plan(ctx, run_id, config, began)
        elif plan is None and config.planning == Planning.MEASURED:
            # A measured plan that cannot measure here (a teacher, a text head, a cluster) trains its settings
            # as given: its time limit was the plan's budget (the advice's figure), not a stop of its own.
            config = replace(config, planning=Planning.FIXED, max_minutes=0.0)
            runs.update_run(ws, run_id, config=config)
        planned = config.head_epochs + config.fine_tune_epochs
        while True:
            session = prepare(
                ws, run_id, config, list(extra_callbacks or []), should_stop=lambda: ctx.stop_requested,
                progress=lambda done, phase: ctx.progress(done, planned, f"job.train_{phase}", stop_here=False),
                batch=batch, halved=halved, plan=plan, began=began,
            )  # fmt: skip
            try:
                with session.prepared.strategy.scope():
                    best, vectors = train_head(session, runs.get_run(ws, run_id).best.get("val_objective", math.inf))
                    _, vectors = fine_tune(session, best, vectors)
                break
            except tf.errors.ResourceExhaustedError as exc:
                used = session.config.batch_size
                if config.batch_size or used <= 1:  # a batch size the user set: theirs to change
                    raise TrainingError("err.oom", batch=used, size=config.size) from exc
                batch = used // 2  # auto: halve, and resume from the last epoch each phase backed up
                halved.append(batch)
                keras.backend.clear_session()
        stopped = finish(session, vectors)
    except tf.errors.ResourceExhaustedError as exc:
        raise TrainingError("err.oom", batch=config.batch_size, size=config.size) from exc
    finally:
        keras.mixed_precision.set_global_policy("float32")
        runs.add_train_seconds(ws, run_id, time.perf_counter() - started)
    run = runs.get_run(ws, run_id)
    result = {"run": run_id, "epochs_run": run.epochs_run, **run.final}
    return JobResult(result, JobStatus.STOPPED if stopped else JobStatus.COMPLETED)


def _measure_plan(ctx: JobContext, run_id: str, config: TrainConfig, began: float) -> tuple[TrainConfig, dict]:
    """A measured plan's size and fine-tuning epochs, recorded in the run's config before it trains (so the
    run's figures, predictions and exports are at the size it trained at), and the plan in its device record."""
    ws = ctx.ws
    data = load_training_data(ws, config.dataset)
    config, plan = measured_plan.measure(
        ws, config, data, median_short_side(ws, data.dataset_id), began, should_stop=lambda: ctx.stop_requested,
        progress=lambda done, sizes: ctx.progress(done, sizes, "job.train_sizes", stop_here=False),
    )  # fmt: skip
    runs.update_run(ws, run_id, config=config, device={**runs.get_run(ws, run_id).device, "plan": plan})
    return config, plan


def train_as_worker(ws: Workspace, run_id: str, extra_callbacks: list[Any] | None = None) -> runs.Run:
    """A non-chief worker of a ``TF_CONFIG`` cluster: trains its share of every step alongside the chief
    (MultiWorkerMirroredStrategy all-reduces the gradients) and writes nothing to the run; the chief
    claims its job, reports it and saves its model. It stops when the run's job is asked to stop."""
    run = runs.get_run(ws, run_id)
    session = prepare(ws, run_id, run.config, list(extra_callbacks or []), _polled_stop(ws, run.job.id), chief=False)
    with session.prepared.strategy.scope():
        best, vectors = train_head(session, run.best.get("val_objective", math.inf))
        fine_tune(session, best, vectors)
    return runs.get_run(ws, run_id)


def _polled_stop(ws: Workspace, job_id: int) -> Callable[[], bool]:
    """Whether the job was asked to stop, read from the store at most every heartbeat period."""
    seen = {"at": 0.0, "stop": False}

    def should_stop() -> bool:
        if not seen["stop"] and time.monotonic() - seen["at"] >= queue.HEARTBEAT_S:
            seen["at"], seen["stop"] = time.monotonic(), queue.stop_requested(ws, job_id)
        return seen["stop"]

    return should_stop


def prepare(
    ws: Workspace,
    run_id: str,
    config: TrainConfig,
    extra_callbacks: list[Any],
    should_stop: Callable[[], bool],
    chief: bool = True,
    progress: Callable[[int, str], None] | None = None,
    batch: int | None = None,
    halved: list[int] | None = None,
    plan: dict[str, Any] | None = None,
    began: float | None = None,
) -> Session:
    """The data as the run recorded it, the devices, the model and the input pipelines. ``batch``: the batch
    size to use (an auto one already chosen, or halved); else the config's, or for auto the one that fits
    (``core.training.batch_fit``). The session's config carries the batch size it trains with. ``plan``: a
    measured plan's record; ``began``: when this execution started (``max_minutes`` counts from it)."""

    config.check_files()  # e.g. its weights file was moved since the run was created
    run = runs.get_run(ws, run_id)
    data = load_training_data(ws, config.dataset, zero_shot=config.zero_shot)
    if data.classes != run.classes or data.version != run.dataset_version:
        raise TrainingError("err.dataset_changed", run=run_id, dataset=config.dataset)
    prepared = prepare_model(config, data)
    auto = not config.batch_size
    config = replace(config, batch_size=batch or choose_batch(config, prepared.built, len(data.classes),
                                                              gpu=prepared.device_plan.gpus > 0))  # fmt: skip
    common = {
        "n_classes": len(data.classes),
        "size": config.size,
        "resize": config.resize,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "cache": prepared.memory_cache,
    }
    augmenter = build_augmenter(config.augment_config)
    soft_train = soft_val = None
    if config.teacher:  # distillation: the teacher's soft targets beside the labels
        soft_train, soft_val = teacher_targets(ws, config, data)

    @functools.cache
    def pipelines() -> Pipelines:
        return Pipelines(
            train=make_dataset(
                data.train,
                training=True,
                augmenter=augmenter,
                class_weights=prepared.class_weights,
                soft=soft_train,
                **common,
            ),
            val=make_dataset(data.val, training=False, soft=soft_val, **common),
            steps=config.steps_per_epoch or math.ceil(len(data.train) / config.batch_size),
        )

    session = Session(
        ws=ws,
        run_id=run_id,
        config=config,
        data=data,
        prepared=prepared,
        pipelines=pipelines,
        extra_callbacks=extra_callbacks,
        chief=chief,
        stop=StopFlag(should_stop),
        nan=NanGuard(),
        deadline=Deadline((began or time.monotonic()) + 60 * config.max_minutes if config.max_minutes else None),
        progress=progress,
        record=_recorder(ws, run_id) if chief else lambda _: None,
        batch={"batch_size": config.batch_size, "batch_auto": auto, **({"batch_halved": halved} if halved else {})},
        plan=plan,
    )
    if chief:
        runs.update_run(ws, run_id, weights_used=prepared.built.weights_used, device=session.device_record())
    return session


def train_head(s: Session, best: float) -> tuple[float, HeadOnVectors | None]:
    """Phase 1: the base frozen, only the head learns (on cached base features when it can). Takes the
    run's best validation loss so far; returns it after the phase, with the vectors and head when the
    saved model is the frozen base with the head trained on them."""
    config = s.config
    if s.folder.read_state().get("head_done"):  # a resumed run: the head phase finished before
        if s.folder.head_weights.exists():  # not written when no fine-tuning follows
            s.model.load_weights(s.folder.head_weights)
        return best, None
    if not config.head_epochs:
        return best, None
    vectors = None
    if plan_run(config, s.prepared.device_plan.replicas).head_on_features:
        best, vectors = _head_on_features(s, best)
    else:
        best = _fit(s, "head", config.lr, config.head_epochs, 0, best).best
    if config.fine_tune_epochs:  # where fine-tuning starts from on a resume
        s.model.save_weights(s.writes.head_weights)
    if s.chief:
        s.folder.write_state(head_done=not s.halted)
    return best, vectors


def fine_tune(s: Session, best: float, vectors: HeadOnVectors | None) -> tuple[float, HeadOnVectors | None]:
    """Phase 2: the top of the base unfrozen (BatchNorm stays frozen), at the lower fine-tuning rate.
    Returns the run's best validation loss after it, and ``vectors`` unless it saved a better model."""
    config = s.config
    if not config.fine_tune_epochs or s.halted:
        return best, vectors
    unfrozen = set_unfrozen(s.prepared.built, config.unfreeze)
    if s.chief:
        runs.update_run(s.ws, s.run_id, device=s.device_record(unfrozen_layers=unfrozen))
    checkpoint = _fit(s, "fine_tune", config.fine_tune_lr, config.fine_tune_epochs, config.head_epochs, best)
    return checkpoint.best, None if checkpoint.saved else vectors


def _recorder(ws: Workspace, run_id: str) -> Callable[[dict[str, Any]], None]:
    """Stores the figures of each new best checkpoint as the run's, with the model's path."""
    model_path = str(RunFolder.of(ws, run_id).model.relative_to(ws.root))
    return lambda figures: runs.update_run(ws, run_id, best=figures, model_path=model_path)


def finish(s: Session, vectors: HeadOnVectors | None) -> bool:
    """The saved checkpoint is the run's model: predict validation and test with exactly it, store the
    predictions, and record their figures (which match the checkpoint's: same model, same images).
    When that model is the frozen base with the head trained here on cached features (``vectors``), the
    predictions come from the cached vectors through that head: the same probabilities, without decoding
    the images and running the base again. Returns whether the run was stopped before its planned end."""
    if s.nan.where:
        epoch, batch = s.nan.where
        raise TrainingError("err.nan_loss", epoch=epoch + 1, batch=batch + 1)
    path = s.folder.model
    if not path.exists():  # stopped before any epoch ended: keep what there is
        save_atomic(s.model, s.writes.model)
        s.record({})
        vectors = None
    if vectors is not None:
        found = save_split_probs(s.ws, s.run_id, _head_probabilities(vectors), s.data)
    else:
        found = predict_splits(s.ws, s.run_id, EVALUATED_SPLITS, model=load_model_file(path), data=s.data)
    final = {}
    for split, predictions in found.items():
        if len(predictions):
            final[f"{split}_accuracy"], final[f"{split}_log_loss"] = predictions.accuracy, predictions.log_loss
    epochs = len({(m["phase"], m["epoch"]) for m in runs.read_metrics(s.ws, s.run_id)})
    runs.update_run(s.ws, s.run_id, epochs_run=epochs, final=final)
    return s.stop.stopped


def _head_probabilities(vectors: HeadOnVectors) -> dict[str, Any]:
    """Validation and test probabilities of the saved model, from the cached vectors through its head."""

    vectors.head.get_layer(HEAD_LAYER).set_weights(vectors.best_weights)
    out = {}
    for split in EVALUATED_SPLITS:
        x, _ = vectors.features.split(split)
        out[split] = np.asarray(vectors.head(x, training=False), dtype=np.float32)
    return out
