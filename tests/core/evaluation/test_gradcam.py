"""Grad-CAM through the nested backbone, for one backbone of each family, and on a task where the answer is known."""

import keras
import numpy as np
import pytest

from core.evaluation.gradcam import gradcam, overlay
from core.training.model import Preprocess, build_model, head_layers

pytestmark = pytest.mark.slow  # builds real backbones


def two_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 255, (size, size, 3)).astype(np.float32)
    b = np.zeros((size, size, 3), np.float32)
    b[: size // 2, : size // 2] = 255  # a bright quarter on black
    return a, b


@pytest.mark.parametrize(
    "backbone,size",
    [
        ("resnet50", 96),
        ("mobilenet_v2_0.35", 96),
        ("mobilenet_v3_small", 96),
        ("efficientnet_b0", 96),
        ("vgg16", 96),
        ("inception_v3", 139),
        ("convnext_tiny", 96),
    ],
)
def test_every_family_gives_a_finite_varying_map_of_the_feature_maps_shape(backbone, size):
    # The base's random weights come from Keras' global seed (build_model seeds only the head): seeded
    # here, or they depend on the tests this process ran before (under xdist, inception_v3's 3x3 map
    # came out all zero once).
    keras.utils.set_random_seed(1)
    built = build_model(backbone, n_classes=3, size=size, weights="none", dropout=0.0, seed=1)
    fmap_shape = tuple(built.base.output.shape[1:3])
    a, b = two_images(size)
    cam_a, class_a = gradcam(built.model, a)  # the predicted class: its score is the highest
    cam_b, _ = gradcam(built.model, b)
    assert cam_a.shape == fmap_shape and class_a in (0, 1, 2)
    assert np.isfinite(cam_a).all() and np.isfinite(cam_b).all()
    assert cam_a.max() > cam_a.min() or cam_b.max() > cam_b.min()  # not constant
    assert not np.allclose(cam_a, cam_b)  # depends on the image
    assert overlay(b, cam_b).shape == (size, size, 3)


def corner_model(size: int = 32) -> keras.Model:
    """The classifier's own nesting (preprocess -> base -> pool -> dropout -> head) with a tiny base."""
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    base = keras.Model(inp, keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x), name="tiny_base")
    inputs = keras.Input((size, size, 3))
    y = base(Preprocess("tf", name="preprocess")(inputs), training=False)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    return keras.Model(inputs, head_layers(2, 0.0, 0)(y))


def corner_data(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 has a bright 8x8 square in the top-left corner; class 0 does not. Both have noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 90, (n, size, size, 3)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, 2:10, 2:10] = 255
    return x, y


def test_the_heatmap_peaks_where_the_class_is_decided():
    keras.utils.set_random_seed(0)
    model = corner_model()
    x, y = corner_data(256)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    test_x, test_y = corner_data(20, seed=1)
    assert (model.predict(test_x, verbose=0).argmax(1) == test_y).mean() == 1.0
    for image in test_x[test_y == 1][:5]:
        cam, cls = gradcam(model, image)
        assert cls == 1
        row, col = np.unravel_index(cam.argmax(), cam.shape)
        assert row < cam.shape[0] // 2 and col < cam.shape[1] // 2, cam.round(2)
        other, _ = gradcam(model, image, 0)  # asked about the other class: another map, not the same one
        assert not np.allclose(cam, other)
