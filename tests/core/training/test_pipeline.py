import numpy as np
import pytest
from PIL import Image

from core.datasets import catalog, editing
from core.datasets.images import normalise_image
from core.datasets.ingest import import_archive
from core.training import pipeline
from core.training.pipeline import Split, load_training_data, make_dataset, pixels_from_bytes, use_memory_cache
from tests.builders import class_folders, image_bytes, make_zip


def test_training_and_prediction_see_the_same_pixels(ws, tmp_path):
    import_archive(ws, make_zip(tmp_path / "d.zip", class_folders({"a": 5, "b": 5}, size=(60, 40))))
    data = load_training_data(ws, "d")
    split = Split(data.train.paths[:3], data.train.labels[:3])
    ds = make_dataset(split, n_classes=2, size=32, resize="crop", batch_size=3, training=False, seed=0, cache=False)
    batch = next(iter(ds))[0].numpy()
    for i, path in enumerate(split.paths):
        with open(path, "rb") as fh:
            direct = pixels_from_bytes(fh.read(), 32, "crop")
        np.testing.assert_array_equal(batch[i], direct.astype(np.float32))


def test_an_upload_goes_through_the_same_normalisation(tmp_path):
    rgba = Image.new("RGBA", (50, 30), (10, 20, 30, 0))
    stored = normalise_image(image_bytes(rgba, "PNG"), "x.png").data
    assert tuple(pixels_from_bytes(stored, 16, "stretch")[8, 8]) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["crop", "pad", "stretch"])
def test_resize_modes(mode):
    img = np.zeros((40, 80, 3), dtype=np.uint8)
    img[:, :40] = 255  # left half white, right half black
    out = pixels_from_bytes(image_bytes(Image.fromarray(img), "PNG"), 20, mode)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    if mode == "pad":
        assert out[0, 10].sum() == 0 and out[10, 2].min() == 255  # bars above, content kept whole
    if mode == "crop":
        assert out[10, 0].min() == 255 and out[10, 19].max() == 0  # centre crop of the square middle


def test_class_weights_and_cache_choice(ws, tmp_path):
    import_archive(ws, make_zip(tmp_path / "w.zip", class_folders({"big": 30, "small": 10})))
    data = load_training_data(ws, "w")
    weights = data.class_weights()
    counts = np.bincount(data.train.labels)
    assert data.classes == ["big", "small"] and counts[0] > 3 * counts[1]
    assert weights[1] / weights[0] == pytest.approx(counts[0] / counts[1])
    assert sum(weights[i] * counts[i] for i in range(2)) == pytest.approx(len(data.train))  # mean weight 1
    assert use_memory_cache("auto", 1000, 224) and not use_memory_cache("auto", 10_000, 224)
    assert use_memory_cache("memory", 10_000, 224) and not use_memory_cache("none", 10, 32)


def test_a_relabel_racing_the_data_load_gives_one_consistent_version(ws, tmp_path, monkeypatch):
    import_archive(ws, make_zip(tmp_path / "r.zip", class_folders({"a": 8, "b": 8})), name="r")
    moved = editing.class_images(ws, "r", "a")[:3]
    original = catalog.read_dataset

    def racing(conn, name):
        summary = original(conn, name)
        editing.relabel(ws, name, moved, "b")  # another editor writes between the two reads
        return summary

    monkeypatch.setattr(pipeline, "read_dataset", racing)  # the name the pipeline reads it by
    data = load_training_data(ws, "r")
    labels = data.train.labels + data.val.labels + data.test.labels
    assert labels.count(data.classes.index("b")) == 8  # the labels of the version it recorded
    monkeypatch.setattr(pipeline, "read_dataset", original)
    after = load_training_data(ws, "r")
    assert after.version == data.version + 1
    assert (after.train.labels + after.val.labels + after.test.labels).count(after.classes.index("b")) == 11
