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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import TrainingError
from core.jobs import queue
from core.jobs.runner import JobContext, JobResult
from core.jobs.store import JobStatus
from core.runs import store as runs
from core.runs.config import TrainConfig
from core.runs.folder import RunFolder
from core.store.vocabulary import EVALUATED_SPLITS
from core.store.workspace import Workspace
from core.training.callbacks import BestCheckpoint, Deadline, NanGuard, RunReporter, StopFlag, save_atomic
from core.training.devices import cluster_task
from core.training.head import compile_model, fit_head_on_vectors, schedule
from core.training.inference import predict_splits, save_split_probs
from core.training.pipeline import TrainingData, load_training_data, make_dataset
from core.training.plan import plan_run

# Keras versions the multi-worker workarounds below were written for and tested with.
MULTI_WORKER_KERAS = "3.15."


@dataclass
class Pipelines:
    """The input pipelines of one run: batches of (image, one-hot label[, weight])."""

    train: Any
    val: Any
    steps: int  # training batches per epoch


@dataclass
class Session:
    """One execution of a run (a start or a resume), handed from step to step."""

    ws: Workspace
    run_id: str
    config: TrainConfig
    data: TrainingData
    strategy: Any
    plan: Any  # devices.Devices
    memory_cache: bool
    built: Any  # model.Built: the classifier, its base and the weights it really started from
    make_pipelines: Callable[[], Pipelines]  # built on first use: a head-only run on cached features needs none
    extra_callbacks: list[Any]
    chief: bool  # writes the run (metrics, checkpoints, model); False for the other workers of a cluster
    stop: StopFlag
    nan: NanGuard
    best: BestCheckpoint  # keeps the run's one model: the lowest validation loss over both phases
    deadline: Deadline  # the run's time limit (``max_minutes``), counted from the start of this execution
    progress: Callable[[int, str], None] | None = None  # (epochs done, phase) to the training job
    # The head phase on cached features: the vectors, the head-only model trained on them and the weights
    # of its best epoch, as long as the saved model is exactly the frozen base with that head (any later
    # save clears ``best_head``), so the run's final predictions can come from the vectors.
    features: Any = None
    feature_head: Any = None
    best_head: list[Any] | None = None
    built_pipelines: Pipelines | None = None

    @property
    def pipelines(self) -> Pipelines:
        if self.built_pipelines is None:
            self.built_pipelines = self.make_pipelines()
        return self.built_pipelines

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
        return self.built.model

    @property
    def jit(self) -> bool:
        return self.plan.jit_compile

    @property
    def halted(self) -> bool:
        """Stopped by the user, by a NaN loss or by the time limit: no further phase starts."""
        return self.stop.stopped or self.nan.where is not None or self.deadline.reached

    def device_record(self, **extra: Any) -> dict[str, Any]:
        return {**self.plan.to_dict(), "memory_cache": self.memory_cache, **extra}


def _callbacks(ctx: Session, phase: str, steps: int, epochs: int, offset: int) -> list[Any]:
    import keras

    folder = ctx.folder
    backup = folder.backup / phase
    if not ctx.chief:  # every worker of a cluster backs up its own state, apart from the chief's
        backup = folder.backup / f"worker-{cluster_task()[1]}" / phase  # type: ignore[index]
    out: list[Any] = [keras.callbacks.BackupAndRestore(str(backup), save_freq="epoch", delete_checkpoint=False)]
    if ctx.chief:
        reporter = RunReporter(ctx.ws, ctx.run_id, phase, steps, epochs, ctx.config.batch_size, offset, ctx.progress)
        out.append(reporter)
    out += [ctx.stop, ctx.nan, ctx.deadline]
    if ctx.config.early_stopping:
        out.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=ctx.config.early_stopping, restore_best_weights=True
            )
        )
    ctx.best.phase, ctx.best.epoch_offset = phase, offset
    out.append(ctx.best)
    if ctx.config.tensorboard:
        out.append(keras.callbacks.TensorBoard(log_dir=str(folder.tensorboard / phase)))
    return out + ctx.extra_callbacks


def _head_on_features(ctx: Session) -> None:
    """The head phase on cached base features. The best epoch's head is kept in memory and the full model
    is written once, when the phase ends (a save per improving epoch cost more than the phase itself);
    its figures are recorded with that save, so the run's figures are always those of its saved model."""
    from core.training import features
    from core.training.model import HEAD_LAYER

    config = ctx.config
    model = ctx.model
    feats = features.load_or_build(ctx.ws, config, ctx.data, model, ctx.memory_cache)
    ctx.features = feats
    steps = math.ceil(len(feats.train_x) / config.batch_size)

    def keep_head() -> None:
        ctx.best_head = [w.copy() for w in ctx.feature_head.get_layer(HEAD_LAYER).get_weights()]

    ctx.best.save, ctx.best.hold = keep_head, True
    weights = ctx.data.class_weights() if config.class_weights == "auto" else None
    try:
        ctx.feature_head = fit_head_on_vectors(
            feats,
            config,
            len(ctx.data.classes),
            ctx.jit,
            _callbacks(ctx, "head", steps, config.head_epochs, 0),
            weights,
            on_built=lambda head: setattr(ctx, "feature_head", head),
        )
    finally:
        ctx.best.hold = False
        if ctx.best.held is not None:  # the phase's best epoch beat the run's best: it is the run's model now
            model.get_layer(HEAD_LAYER).set_weights(ctx.best_head)
            save_atomic(model, ctx.folder.model)
            ctx.best.record(ctx.best.held)
            ctx.best.held = None
    model.get_layer(HEAD_LAYER).set_weights(ctx.feature_head.get_layer(HEAD_LAYER).get_weights())


def _save_model(ctx: Session) -> None:
    """Save the full model as the run's: from here on it is no longer the frozen base with the head trained
    on features (if it ever was), so the final predictions must come from the images."""
    save_atomic(ctx.model, ctx.writes.model)
    ctx.best_head = None


def _fit(ctx: Session, phase: str, lr: float, epochs: int, offset: int) -> None:
    config, pipelines = ctx.config, ctx.pipelines
    steps = pipelines.steps
    ctx.best.save = lambda: _save_model(ctx)
    compile_model(ctx.model, schedule(lr, steps * epochs, config), config, ctx.jit)
    # Keras' BackupAndRestore sets the model's starting epoch when it restores a phase (a resumed run);
    # the attribute outlives that fit, so without this a resume during the head phase would start the
    # fine-tuning phase at the head phase's epoch and skip it.
    ctx.model._initial_epoch = None
    train = pipelines.train.repeat() if config.steps_per_epoch else pipelines.train
    if ctx.plan.strategy == "multi_worker":
        _build_for_multi_worker(ctx.model, pipelines.train)
        train = _shard_global_batches(ctx.strategy, train, config.batch_size)
    ctx.model.fit(
        train,
        validation_data=pipelines.val,
        epochs=epochs,
        steps_per_epoch=config.steps_per_epoch or None,
        shuffle=False,  # the tf.data pipeline shuffles (seeded) itself
        verbose=0,
        callbacks=_callbacks(ctx, phase, steps, epochs, offset),
    )


def _shard_global_batches(strategy: Any, dataset: Any, global_batch: int) -> Any:
    """Each worker takes its share of every global batch (elements i, i+n, ... for worker i of n), so
    one step of the cluster sees exactly the batch one process would: the same training, spread out."""
    import tensorflow as tf

    def per_worker(context: Any) -> Any:
        size = context.get_per_replica_batch_size(global_batch)
        return dataset.unbatch().shard(context.num_input_pipelines, context.input_pipeline_id).batch(size)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
    return strategy.distribute_datasets_from_function(per_worker, options)


def _build_for_multi_worker(model: Any, dataset: Any) -> None:
    """Two workarounds for Keras 3.15's ``fit`` under MultiWorkerMirroredStrategy (keras-team/keras#20585,
    open), which otherwise fails before its first step:

    * it builds the model by all-reducing a distributed batch: build it from one local batch here and
      let ``fit`` skip its own build (it still trains under the strategy's scope);
    * it averages the workers' logs with ``strategy.reduce("MEAN", v, axis=0)``, which fails on scalars:
      reduce scalars across the workers with ``axis=None`` instead (the same mean, over replicas).

    Both reach into Keras' internals, so they are applied only to the Keras versions they were written
    and tested for (:data:`MULTI_WORKER_KERAS`); another version fails here, saying so, rather than
    training wrongly.
    """
    import keras
    import tensorflow as tf

    if not keras.__version__.startswith(MULTI_WORKER_KERAS):
        raise TrainingError("err.multi_worker_keras", version=keras.__version__, tested=MULTI_WORKER_KERAS + "x")
    from keras.src.backend.tensorflow import trainer as tf_trainer

    model._symbolic_build(data_batch=next(iter(dataset)))
    model._distribute_strategy = None
    original = tf_trainer.reduce_per_replica
    if getattr(original, "labeltune_patch", False):
        return

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction in ("auto", "mean") and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return tf.nest.map_structure(
                lambda v: (
                    strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues) else v
                ),
                values,
            )
        return original(values, strategy, reduction)

    reduce_per_replica.labeltune_patch = True  # type: ignore[attr-defined]
    tf_trainer.reduce_per_replica = reduce_per_replica


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
    config = runs.get_run(ws, run_id).config
    started = time.perf_counter()
    planned = config.head_epochs + config.fine_tune_epochs
    try:
        session = prepare(ws, run_id, config, list(extra_callbacks or []), should_stop=lambda: ctx.stop_requested)
        session.progress = lambda done, phase: ctx.progress(done, planned, f"job.train_{phase}", stop_here=False)
        with session.strategy.scope():
            train_head(session)
            fine_tune(session)
        stopped = finish(session)
    except tf.errors.ResourceExhaustedError as exc:
        raise TrainingError("err.oom", batch=config.batch_size, size=config.size) from exc
    finally:
        keras.mixed_precision.set_global_policy("float32")
        runs.add_train_seconds(ws, run_id, time.perf_counter() - started)
    run = runs.get_run(ws, run_id)
    result = {"run": run_id, "epochs_run": run.epochs_run, **run.final}
    return JobResult(result, JobStatus.STOPPED if stopped else JobStatus.COMPLETED)


def train_as_worker(ws: Workspace, run_id: str, extra_callbacks: list[Any] | None = None) -> runs.Run:
    """A non-chief worker of a ``TF_CONFIG`` cluster: trains its share of every step alongside the chief
    (MultiWorkerMirroredStrategy all-reduces the gradients) and writes nothing to the run; the chief
    claims its job, reports it and saves its model. It stops when the run's job is asked to stop."""
    run = runs.get_run(ws, run_id)
    session = prepare(ws, run_id, run.config, list(extra_callbacks or []), _polled_stop(ws, run.job.id), chief=False)
    with session.strategy.scope():
        train_head(session)
        fine_tune(session)
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
) -> Session:
    """The data as the run recorded it, the devices, the model and the input pipelines."""

    from core.training.augment import build_augmenter
    from core.training.model import prepare_model

    config.check_files()  # e.g. its weights file was moved since the run was created
    run = runs.get_run(ws, run_id)
    data = load_training_data(ws, config.dataset)
    if data.classes != run.classes or data.version != run.dataset_version:
        raise TrainingError("err.dataset_changed", run=run_id, dataset=config.dataset)
    prepared = prepare_model(config, data)
    strategy, plan, built, memory_cache = prepared.strategy, prepared.device_plan, prepared.built, prepared.memory_cache
    common = {
        "n_classes": len(data.classes),
        "size": config.size,
        "resize": config.resize,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "cache": memory_cache,
    }
    weights = prepared.class_weights
    augmenter = build_augmenter(config.augment_config)
    soft_train = soft_val = None
    if config.teacher:  # distillation: the teacher's soft targets beside the labels
        from core.training.distill import teacher_targets

        soft_train, soft_val = teacher_targets(ws, config, data)

    def make_pipelines() -> Pipelines:
        return Pipelines(
            train=make_dataset(
                data.train, training=True, augmenter=augmenter, class_weights=weights, soft=soft_train, **common
            ),
            val=make_dataset(data.val, training=False, soft=soft_val, **common),
            steps=config.steps_per_epoch or math.ceil(len(data.train) / config.batch_size),
        )

    session = Session(
        ws=ws,
        run_id=run_id,
        config=config,
        data=data,
        strategy=strategy,
        plan=plan,
        memory_cache=memory_cache,
        built=built,
        make_pipelines=make_pipelines,
        extra_callbacks=extra_callbacks,
        chief=chief,
        stop=StopFlag(should_stop),
        nan=NanGuard(),
        deadline=Deadline(time.monotonic() + 60 * config.max_minutes if config.max_minutes else None),
        best=BestCheckpoint(
            run.best.get("val_objective", math.inf), _recorder(ws, run_id) if chief else lambda _: None
        ),
    )
    if chief:
        runs.update_run(ws, run_id, weights_used=built.weights_used, device=session.device_record())
    return session


def train_head(s: Session) -> None:
    """Phase 1: the base frozen, only the head learns (on cached base features when it can)."""
    config = s.config
    if s.folder.read_state().get("head_done"):  # a resumed run: the head phase finished before
        if s.folder.head_weights.exists():  # not written when no fine-tuning follows
            s.model.load_weights(s.folder.head_weights)
        return
    if not config.head_epochs:
        return
    if plan_run(config, s.plan.replicas).head_on_features:
        _head_on_features(s)
    else:
        _fit(s, "head", config.lr, config.head_epochs, 0)
    if config.fine_tune_epochs:  # where fine-tuning starts from on a resume
        s.model.save_weights(s.writes.head_weights)
    if s.chief:
        s.folder.write_state(head_done=not s.halted)


def fine_tune(s: Session) -> None:
    """Phase 2: the top of the base unfrozen (BatchNorm stays frozen), at the lower fine-tuning rate."""
    from core.training.model import set_unfrozen

    config = s.config
    if not config.fine_tune_epochs or s.halted:
        return
    unfrozen = set_unfrozen(s.built.base, config.unfreeze)
    if s.chief:
        runs.update_run(s.ws, s.run_id, device=s.device_record(unfrozen_layers=unfrozen))
    _fit(s, "fine_tune", config.fine_tune_lr, config.fine_tune_epochs, config.head_epochs)


def _recorder(ws: Workspace, run_id: str) -> Any:
    """Stores the figures of each new best checkpoint as the run's, with the model's path."""
    model_path = str(RunFolder.of(ws, run_id).model.relative_to(ws.root))
    return lambda figures: runs.update_run(ws, run_id, best=figures, model_path=model_path)


def finish(s: Session) -> bool:
    """The saved checkpoint is the run's model: predict validation and test with exactly it, store the
    predictions, and record their figures (which match the checkpoint's: same model, same images).
    When that model is the frozen base with the head trained here on cached features, the predictions
    come from the cached vectors through that head: the same probabilities, without decoding the images
    and running the base again. Returns whether the run was stopped before its planned end."""

    if s.nan.where:
        epoch, batch = s.nan.where
        raise TrainingError("err.nan_loss", epoch=epoch + 1, batch=batch + 1)
    path = s.folder.model
    if not path.exists():  # stopped before any epoch ended: keep what there is
        _save_model(s)
        _recorder(s.ws, s.run_id)({})
    if s.best_head is not None:
        found = save_split_probs(s.ws, s.run_id, _head_probabilities(s), s.data)
    else:
        from core.training.model import load_model_file

        found = predict_splits(s.ws, s.run_id, EVALUATED_SPLITS, model=load_model_file(path), data=s.data)
    final = {}
    for split, predictions in found.items():
        if len(predictions):
            final[f"{split}_accuracy"], final[f"{split}_log_loss"] = predictions.accuracy, predictions.log_loss
    epochs = len({(m["phase"], m["epoch"]) for m in runs.read_metrics(s.ws, s.run_id)})
    runs.update_run(s.ws, s.run_id, epochs_run=epochs, final=final)
    return s.stop.stopped


def _head_probabilities(s: Session) -> dict[str, Any]:
    """Validation and test probabilities of the saved model, from the cached vectors through its head."""

    from core.training.model import HEAD_LAYER

    s.feature_head.get_layer(HEAD_LAYER).set_weights(s.best_head)
    out = {}
    for split in EVALUATED_SPLITS:
        x, _ = s.features.split(split)
        out[split] = np.asarray(s.feature_head(x, training=False), dtype=np.float32)
    return out
