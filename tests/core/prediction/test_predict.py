"""Predicting new images with a run's model: the training pixels, top-k, bad files, zips, CSV, safe loading."""

import hashlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.errors import DatasetRejected, ImageRejected, PredictionError
from core.prediction.predict import Predictor, model_pixels, predict_zip, to_csv
from core.runs import store as runs
from core.runs.folder import RunFolder
from core.store.workspace import Workspace
from core.training.model import load_run_model
from core.training.pipeline import Split, load_training_data, make_dataset
from tests.builders import TWO_COLOURS, image_bytes, make_zip, separable, trained_colour_run
from tests.core.datasets.test_odd_archives import png_header_only

pytestmark = pytest.mark.slow  # trains a tiny model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    ws = Workspace.open(root / "ws")
    run = trained_colour_run(ws, root, TWO_COLOURS, 12, "colours")
    assert run.final["val_accuracy"] == 1.0, run.final
    return ws, run, Predictor.for_run(ws, run.id)


def solid(colour, size=(50, 40), mode="RGB", fmt="PNG") -> bytes:
    return image_bytes(Image.new("RGB", size, colour).convert(mode), fmt)


def test_an_upload_gets_exactly_the_pixels_training_used(trained, tmp_path):
    ws, run, _ = trained
    data = load_training_data(ws, "colours")
    path = data.train.paths[0]
    with open(path, "rb") as fh:
        stored = fh.read()
    split = Split([path], [0], [0])
    ds = make_dataset(split, n_classes=2, size=32, resize="crop", batch_size=1, training=False, seed=0, cache=False)
    trained_pixels = next(iter(ds))[0].numpy()[0]
    # The same image as a user would upload it: the archive's bytes, whose SHA-256 names the stored file.
    original = next(d for _, d in separable(TWO_COLOURS, 12) if hashlib.sha256(d).hexdigest() in path)
    np.testing.assert_array_equal(model_pixels(original, "up.png", 32, "crop").astype(np.float32), trained_pixels)
    np.testing.assert_array_equal(model_pixels(stored, "stored.png", 32, "crop").astype(np.float32), trained_pixels)


def test_the_jpeg_fast_path_gives_the_normalised_pixels_and_catches_a_broken_body():
    from core.datasets.images import normalise_image, stored_as_is
    from core.training.pipeline import pixels_from_bytes
    from tests.builders import jpeg

    photo = jpeg((120, 80, 40), size=(90, 70))
    assert stored_as_is(photo, "p.jpg") and not stored_as_is(solid((1, 2, 3)), "p.png")
    full = pixels_from_bytes(normalise_image(photo, "p.jpg").data, 32, "crop")
    np.testing.assert_array_equal(model_pixels(photo, "p.jpg", 32, "crop"), full)
    with pytest.raises(ImageRejected) as caught:
        model_pixels(photo[: len(photo) // 2], "half.jpg", 32, "crop")  # header intact, body cut
    assert "half.jpg" in caught.value.message("en")


def test_top_k_probabilities_and_the_not_sure_flag(trained):
    _, _, predictor = trained
    new = dict(separable(TWO_COLOURS, 16))  # images 12 to 15 of each class: drawn alike, never seen
    (red, blue) = predictor.predict([("r.png", new["红/14.png"]), ("b.png", new["蓝/15.png"])], 2)
    assert red.top[0][0] == "红" and blue.top[0][0] == "蓝", (red.top, blue.top)
    assert [p for _, p in red.top] == sorted((p for _, p in red.top), reverse=True)
    assert sum(p for _, p in red.top) == pytest.approx(1.0, abs=1e-5)
    (sure,) = predictor.predict([("r.png", solid((200, 60, 60)))], 1, threshold=0.0)
    (unsure,) = predictor.predict([("r.png", solid((200, 60, 60)))], 1, threshold=1.01)
    assert not sure.not_sure and unsure.not_sure


def test_bad_and_odd_inputs_give_results_not_exceptions(trained):
    _, _, predictor = trained
    grey16 = image_bytes(Image.fromarray(np.full((30, 30), 50000, np.uint16)), "PNG")
    rgba = image_bytes(Image.new("RGBA", (30, 30), (200, 60, 60, 128)), "PNG")
    cmyk = solid((200, 60, 60), mode="CMYK", fmt="JPEG")
    items = [
        ("corrupt.jpg", solid((1, 2, 3), fmt="JPEG")[:200]),
        ("notes.png", b"this is text"),
        ("empty.png", b""),
        ("bomb.png", png_header_only(20_000, 20_000)),
        ("grey16.png", grey16),
        ("alpha.png", rgba),
        ("cmyk.jpg", cmyk),
        ("grey.png", solid((90, 90, 90), mode="L")),
    ]
    results = {r.image: r for r in predictor.predict(items)}
    for bad in ("corrupt.jpg", "notes.png", "empty.png", "bomb.png"):
        assert results[bad].error and not results[bad].top, bad
    assert "20000×20000" in results["bomb.png"].to_json("en")["error"]
    assert "bomb.png" in results["bomb.png"].to_json("zh")["error"]
    for fine in ("grey16.png", "alpha.png", "cmyk.jpg", "grey.png"):
        assert results[fine].error is None and len(results[fine].top) == 2, fine


def test_a_zip_is_read_with_the_import_rules(trained, tmp_path):
    _, _, predictor = trained
    new = dict(separable(TWO_COLOURS, 16))
    entries = [("a/red.png", new["红/13.png"]), ("b/blue.png", new["蓝/13.png"]), ("bad.jpg", b"xx")]
    entries += [("notes.txt", b"x"), ("__MACOSX/._red.png", b"junk")]
    results = predict_zip(predictor, str(make_zip(tmp_path / "batch.zip", entries)), "batch.zip")
    by_name = {r.image: r for r in results}
    assert set(by_name) == {"a/red.png", "b/blue.png", "bad.jpg", "notes.txt"}
    assert by_name["a/red.png"].top[0][0] == "红" and by_name["notes.txt"].error
    text = to_csv(results)
    assert text.splitlines()[0] == "file,top1,probability,top_k,not_sure,error"
    assert "a/red.png,红," in text and len(text.splitlines()) == 5
    evil = make_zip(tmp_path / "evil.zip", [("../../x.png", solid((1, 1, 1)))])
    with pytest.raises(DatasetRejected):
        predict_zip(predictor, str(evil), "evil.zip")


def test_models_load_only_from_the_runs_own_folder(trained, tmp_path):
    ws, run, _ = trained
    assert runs.model_file(ws, run.id).parent == RunFolder.of(ws, run.id).path.resolve()
    outside = tmp_path / "elsewhere.keras"
    outside.write_bytes(runs.model_file(ws, run.id).read_bytes())
    runs.update_run(ws, run.id, model_path=str(outside))  # a tampered row
    try:
        with pytest.raises(PredictionError):
            load_run_model(ws, run.id)
    finally:
        runs.update_run(ws, run.id, model_path=run.model_path)
    assert zipfile.is_zipfile(io.BytesIO(runs.model_file(ws, run.id).read_bytes()))  # a .keras file
