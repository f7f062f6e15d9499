"""Every registry entry builds, preprocesses like Keras, and trains one step."""

import keras
import numpy as np
import pytest

from core.errors import ConfigError
from core.runs.backbones import BACKBONES, get_backbone
from core.training.model import Preprocess, build_model

KERAS_PREPROCESS = {
    "caffe": keras.applications.resnet50.preprocess_input,
    "tf": keras.applications.mobilenet_v2.preprocess_input,
    "none": keras.applications.efficientnet.preprocess_input,
}


@pytest.mark.parametrize("mode", ["caffe", "tf", "none"])
def test_preprocess_layer_matches_keras(mode):
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = KERAS_PREPROCESS[mode](x.copy())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(Preprocess(mode)(x)), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_the_resnet50_model_feeds_its_base_caffe_pixels_not_scaled_ones():
    """What LabelTune builds for ResNet50 (the default backbone) hands its base exactly what Keras'
    ResNet50 preprocessing makes of 0-255 RGB (BGR, minus the ImageNet means, never /255)."""
    assert get_backbone("resnet50").default_size == 224
    model = build_model("resnet50", n_classes=3, size=32, weights="none", dropout=0.2, seed=0).model
    base_input = keras.Model(model.inputs, model.get_layer("preprocess").output)
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    fed = keras.ops.convert_to_numpy(base_input(x))
    np.testing.assert_allclose(fed, keras.applications.resnet50.preprocess_input(x.copy()), rtol=1e-5, atol=1e-3)
    assert fed.min() < -100  # caffe means subtracted: a [0, 1] or [-1, 1] scaling would fail here


def test_names_and_unknown_backbone():
    assert {"resnet50", "mobilenet_v2_0.35", "mobilenet_v2_1.4", "efficientnet_b3", "convnext_tiny"} <= set(BACKBONES)
    assert all(name == name.lower() for name in BACKBONES)
    with pytest.raises(ConfigError, match="Unknown backbone “resnet51”"):
        get_backbone("resnet51")
    with pytest.raises(ConfigError, match="image_size"):
        get_backbone("inception_v3").check_size(32)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, b in BACKBONES.items() if not b.foundation))
def test_every_backbone_builds_and_trains_one_step(name):
    """The keras.applications table (KerasHub's presets need their configs downloaded: the foundation
    families build and train from local preset folders in test_foundation.py)."""
    backbone = BACKBONES[name]
    size = backbone.min_size
    built = build_model(name, n_classes=3, size=size, weights="none", dropout=0.2, seed=0)
    model = built.model
    assert model.input_shape == (None, size, size, 3) and model.output_shape == (None, 3)
    assert built.weights_used == "none" and not built.base.trainable
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 2]]
    before = [w.copy() for w in model.get_layer("head").get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = model.get_layer("head").get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    keras.backend.clear_session()
