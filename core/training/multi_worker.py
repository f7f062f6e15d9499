"""Training one run on several machines at once (``MultiWorkerMirroredStrategy`` under ``TF_CONFIG``): how
each worker takes its share of a global batch, and the two workarounds Keras 3.15's ``fit`` needs there.
Used by ``core.training.engine`` when the device set-up says ``multi_worker``."""

from __future__ import annotations

from typing import Any

from core.errors import TrainingError

# Keras versions the multi-worker workarounds below were written for and tested with.
MULTI_WORKER_KERAS = "3.15."


def shard_global_batches(strategy: Any, dataset: Any, global_batch: int) -> Any:
    """Each worker takes its share of every global batch (elements i, i+n, ... for worker i of n), so
    one step of the cluster sees exactly the batch one process would: the same training, spread out."""
    import tensorflow as tf

    def per_worker(context: Any) -> Any:
        size = context.get_per_replica_batch_size(global_batch)
        return dataset.unbatch().shard(context.num_input_pipelines, context.input_pipeline_id).batch(size)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
    return strategy.distribute_datasets_from_function(per_worker, options)


def build_for_multi_worker(model: Any, dataset: Any) -> None:
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
