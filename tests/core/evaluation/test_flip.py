"""Flip-averaged predictions (test-time augmentation): one model that averages each image's probabilities
with its mirror image's, used alike by the stored predictions, the Predict path and the export, which
offers it only where it helped the run's validation images."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import ExportError
from core.export.config import ExportConfig
from core.export.exporter import export_run
from core.prediction.predict import Predictor
from core.runs.predictions import SplitPredictions, flip_helps, load_predictions, save_predictions, stored_splits
from core.training.inference import predict_splits
from core.training.model import flip_averaged, load_model_file, load_run_model
from core.training.pipeline import load_training_data, make_dataset
from tests.builders import image_bytes

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow  # loads, predicts and exports the session's trained model


def test_flip_averaged_predictions_are_the_mean_of_each_image_and_its_mirror(trained_copy):
    ws, run = trained_copy
    model = load_run_model(ws, run.id)
    data = load_training_data(ws, run.dataset_name)
    x, _ = next(iter(make_dataset(data.val, n_classes=3, size=32, resize=run.config.resize, batch_size=64,
                                  training=False, seed=0, cache=False)))  # fmt: skip
    by_hand = (model.predict_on_batch(x) + model.predict_on_batch(x[:, :, ::-1, :].numpy())) / 2
    np.testing.assert_allclose(flip_averaged(model).predict_on_batch(x), by_hand, atol=1e-6)

    plain = load_predictions(ws, run.id, "val")
    assert "val" not in stored_splits(ws, run.id, flip=True) and flip_helps(ws, run.id) is None
    found = predict_splits(ws, run.id, ("val", "test"), flip=True)
    np.testing.assert_allclose(found["val"].probs, by_hand, atol=1e-5)
    assert stored_splits(ws, run.id, flip=True) == ["val", "test"]
    np.testing.assert_array_equal(load_predictions(ws, run.id, "val").probs, plain.probs)  # the plain ones kept
    flipped = load_predictions(ws, run.id, "val", flip=True)
    assert flip_helps(ws, run.id) == ((flipped.accuracy, -flipped.log_loss) > (plain.accuracy, -plain.log_loss))
    # new plain predictions (a new model) leave no flip-averaged ones of the old model behind
    predict_splits(ws, run.id, ("val",))
    assert stored_splits(ws, run.id, flip=True) == ["test"]

    # the Predict path: the same arithmetic on an uploaded image's bytes
    photo = image_bytes(Image.new("RGB", (48, 40), (200, 60, 60)), "PNG")
    one = Predictor.for_run(ws, run.id, model=model, flip=True).predict([("red.png", photo)])[0]
    pixels = Predictor.for_run(ws, run.id, model=model).pixels(photo, "red.png")[None]
    expected = (model.predict_on_batch(pixels) + model.predict_on_batch(pixels[:, :, ::-1, :])) / 2
    np.testing.assert_allclose(one.probs, expected[0], atol=1e-5)


def test_export_offers_flip_averaging_only_where_it_helped(trained_copy):
    ws, run = trained_copy
    with pytest.raises(ExportError) as refused:  # not computed: not known to help
        export_run(ws, ExportConfig(run.id, ("keras", "tflite_float32"), parity_images=20, flip=True))
    assert refused.value.key == "err.export_flip"
    # A run whose plain validation predictions were no better than chance (stored so, as a constructed
    # record): its real flip-averaged ones beat them, so the export offers the flip-averaged model, and
    # checks that model's files against it as it checks every format.
    plain = load_predictions(ws, run.id, "val")
    chance = np.full_like(plain.probs, 1 / plain.probs.shape[1])
    save_predictions(ws, run.id, {"val": SplitPredictions("val", plain.classes, plain.ids, plain.labels, chance)})
    assert flip_helps(ws, run.id) is None
    predict_splits(ws, run.id, ("val",), flip=True)
    assert flip_helps(ws, run.id) is True
    result = export_run(ws, ExportConfig(run.id, ("keras", "tflite_float32"), parity_images=20, flip=True))
    assert result.flip and all(c.offered for c in result.checked), result.checked
    folder = ws.root / Path(result.zip_path).parent
    shipped = load_model_file(folder / "model.keras")
    assert shipped.name == "flip_averaged"
    info = json.loads((folder / "preprocessing.json").read_text(encoding="utf-8"))
    assert info["flip_averaged"] is True
    assert "flip-averaged" in (folder / "model_card.md").read_text(encoding="utf-8")
    assert result.predict_py["agrees"], result.predict_py  # the shipped script, with no LabelTune code


def test_the_command_line_computes_and_evaluates_flip_averaged_predictions(trained_copy):
    ws, run = trained_copy
    command = [sys.executable, "-m", "core", "--workspace", str(ws.root), "--json", "evaluate", run.id,
               "--split", "val", "--flip"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["flip"] is True
    assert report["accuracy"] == pytest.approx(load_predictions(ws, run.id, "val", flip=True).accuracy)
