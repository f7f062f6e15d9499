"""The batch size "auto": the largest candidate that fits, found before training, halved when a step runs out
of memory later; on a CPU today's default. Out-of-memory is TensorFlow's own ResourceExhaustedError,
raised at a chosen batch size (no GPU here to run out of)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from core.datasets.ingest import import_archive
from core.errors import TrainingError
from core.runs.config import AUTO_BATCH
from core.training.batch_fit import CANDIDATES, choose, largest_that_fits, probe
from core.training.jobs import train_here
from core.training.model import build_model
from tests.builders import TWO_COLOURS, make_zip, separable, tiny_config


def oom() -> tf.errors.ResourceExhaustedError:
    return tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor (injected)")


def test_the_largest_candidate_that_fits_is_chosen_and_none_fitting_says_so():
    tried = []

    def step(batch: int) -> None:
        tried.append(batch)
        if batch > 48:  # this "GPU" holds 48 images a step
            raise oom()

    assert largest_that_fits(step) == 32 and tried == [256, 128, 64, 32]
    with pytest.raises(TrainingError) as failed:
        largest_that_fits(lambda batch: (_ for _ in ()).throw(oom()))
    assert failed.value.key == "err.oom_auto" and failed.value.params["smallest"] == CANDIDATES[-1]


def test_the_probe_trains_one_real_step_and_leaves_the_model_as_it_was():
    built = build_model("mobilenet_v2_0.35", n_classes=2, size=32, weights="none", dropout=0.0, seed=0)
    before = [w.copy() for w in built.model.get_weights()]
    probe(built, 32, 2)(8)
    assert all(np.array_equal(a, b) for a, b in zip(before, built.model.get_weights(), strict=True))
    assert not built.base.trainable and built.model.get_layer("head").trainable
    config = tiny_config("d", batch_size=0)
    assert choose(config, built, 2, gpu=False) == AUTO_BATCH  # a CPU keeps today's default
    assert choose(tiny_config("d", batch_size=12), built, 2, gpu=True) == 12  # a size set is the size used


class OutOfMemoryOnce(keras.callbacks.Callback):
    """The first training step of the run runs out of memory, as a GPU shared with another job might."""

    raised = False

    def on_train_batch_begin(self, batch, logs=None):
        if not OutOfMemoryOnce.raised:
            OutOfMemoryOnce.raised = True
            raise oom()


@pytest.fixture
def colours(ws, tmp_path):
    import_archive(ws, make_zip(tmp_path / "c.zip", separable(TWO_COLOURS, 10)), name="颜色")
    OutOfMemoryOnce.raised = False
    return ws


def test_auto_halves_after_running_out_of_memory_and_records_it(colours):
    config = tiny_config("颜色", batch_size=0, head_epochs=2, fine_tune_epochs=1, feature_cache=False)
    run = train_here(colours, config, extra_callbacks=[OutOfMemoryOnce()])
    assert OutOfMemoryOnce.raised and run.status == "completed", run.error
    assert run.device["batch_auto"] and run.device["batch_size"] == AUTO_BATCH // 2
    assert run.device["batch_halved"] == [AUTO_BATCH // 2] and run.config.batch_size == 0


def test_a_batch_size_the_user_set_is_not_changed_behind_their_back(colours):
    run = train_here(colours, tiny_config("颜色", batch_size=8, head_epochs=1, fine_tune_epochs=0,
                                          feature_cache=False), extra_callbacks=[OutOfMemoryOnce()])  # fmt: skip
    assert run.status == "failed" and run.error["key"] == "err.oom" and run.error["params"]["batch"] == 8
