"""Freezing, unfreezing, BatchNorm and weights: the recipe does what it says."""

import keras
import numpy as np
import pytest

from core.errors import TrainingError
from core.training.model import build_model, set_unfrozen, weights_identity

pytestmark = pytest.mark.slow  # real backbones and training


def trainable_count(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.fixture(scope="module")
def mobilenet():
    return build_model("mobilenet_v2_0.35", n_classes=4, size=32, weights="none", dropout=0.0, seed=1)


def test_base_is_frozen_and_only_the_head_trains(mobilenet):
    head = mobilenet.model.get_layer("head")
    assert trainable_count(mobilenet.model) == 1280 * 4 + 4
    assert [w.name for w in mobilenet.model.trainable_weights] == [w.name for w in head.trainable_weights]


def test_unfreezing_top_layers_keeps_batchnorm_frozen(mobilenet):
    base = mobilenet.base
    assert set_unfrozen(mobilenet, "5") == 5
    trainable = [layer for layer in base.layers if layer.trainable and layer.weights]
    assert len(trainable) == 5 and trainable[-1].name == "Conv_1"
    assert not any(isinstance(layer, keras.layers.BatchNormalization) and layer.trainable for layer in base.layers)
    assert [layer.name for layer in trainable] == [
        "block_15_project", "block_16_expand", "block_16_depthwise", "block_16_project", "Conv_1",
    ]  # fmt: skip
    # Worked by hand from MobileNetV2 x0.35 (no biases before BatchNorm): 1x1 336->56, 1x1 56->336, 3x3
    # depthwise over 336, 1x1 336->112, 1x1 112->1280; then the head's 1280x4 kernel and 4 biases.
    unfrozen = 336 * 56 + 56 * 336 + 3 * 3 * 336 + 336 * 112 + 112 * 1280
    assert unfrozen == 221_648 and trainable_count(mobilenet.model) == unfrozen + 1280 * 4 + 4
    n_all = set_unfrozen(mobilenet, "all")
    bn = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert n_all == len([layer for layer in base.layers if layer.weights]) - len(bn)
    assert not any(layer.trainable for layer in bn)


def test_batchnorm_statistics_do_not_move_while_fine_tuning():
    built = build_model("mobilenet_v2_0.35", n_classes=2, size=32, weights="none", dropout=0.0, seed=1)
    set_unfrozen(built, "all")
    bn = next(layer for layer in built.base.layers if isinstance(layer, keras.layers.BatchNormalization))
    before = [w.copy() for w in bn.get_weights()]
    built.model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    built.model.train_on_batch(x, np.eye(2, dtype="float32")[[0, 1, 0, 1]])
    for a, b in zip(before, bn.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # gamma, beta, moving mean and variance all untouched


def test_local_weights_file_is_loaded_and_identified(tmp_path):
    source = build_model("mobilenet_v2_0.35", n_classes=2, size=32, weights="none", dropout=0.0, seed=3).base
    path = tmp_path / "my_base.weights.h5"
    source.save_weights(path)
    built = build_model("mobilenet_v2_0.35", n_classes=2, size=32, weights=str(path), dropout=0.0, seed=9)
    for a, b in zip(source.get_weights(), built.base.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert built.weights_used.startswith("file:my_base.weights.h5#") and built.weights_used == weights_identity(
        str(path)
    )


def test_wrong_and_missing_weights_files(tmp_path):
    path = tmp_path / "vgg.weights.h5"
    build_model("vgg16", n_classes=2, size=32, weights="none", dropout=0.0, seed=0).base.save_weights(path)
    with pytest.raises(TrainingError) as info:
        build_model("mobilenet_v2_0.35", n_classes=2, size=32, weights=str(path), dropout=0.0, seed=0)
    assert info.value.key == "err.weights_mismatch" and "vgg.weights.h5" in str(info.value)
    with pytest.raises(TrainingError, match="does not exist"):
        build_model("mobilenet_v2_0.35", n_classes=2, size=32, weights=str(tmp_path / "nope.h5"), dropout=0.0, seed=0)


def test_imagenet_offline_names_the_file_and_the_alternatives(offline):
    with pytest.raises(TrainingError) as info:
        build_model("resnet50", n_classes=2, size=32, weights="imagenet", dropout=0.0, seed=0)
    message = str(info.value)
    assert info.value.key == "err.weights_offline"
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(offline / "models") in message and "--weights PATH" in message


def test_offline_the_bundled_mobilenet_weights_serve_every_input_size(tmp_path, offline):
    """Keras names a MobileNetV2 weights file per input size; offline, the bundled 224 px no-top file is
    loaded at 96 px (every no-top weight's shape is size-free), and the run says so."""
    from core.training.model import BUNDLED_WEIGHTS

    built = build_model("mobilenet_v2_0.35", n_classes=2, size=96, weights="imagenet", dropout=0.0, seed=0)
    assert built.weights_used.startswith("imagenet (bundled mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224")
    assert built.weights_used.endswith(", at 96 px)")
    at_224 = build_model("mobilenet_v2_0.35", n_classes=2, size=224, weights="imagenet", dropout=0.0, seed=0)
    assert "at 224 px" not in at_224.weights_used
    # The very weights of the file, at the other size.
    file = next(BUNDLED_WEIGHTS.glob("*_0.35_224_no_top.h5"))
    kernels = [w for w in built.base.weights if "kernel" in w.path]
    reference = [w for w in at_224.base.weights if "kernel" in w.path]
    assert len(kernels) == len(reference) > 50 and file.is_file()
    for ours, theirs in zip(kernels, reference, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
