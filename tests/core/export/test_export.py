"""Export with a real tiny model: every format written, loaded back and checked against the app's model;
the bytes signature on a JPEG and a PNG; int8 with its representative dataset; predict.py in a
subprocess; the model card; the CLI verb."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.datasets.editing import describe_class
from core.errors import ConfigError
from core.export.config import VARIANTS, ExportConfig, variant_of
from core.export.exporter import FORMATS, Checked, _check, export_folder, export_run, last_export
from tests.builders import image_bytes
from tests.conftest import copy_of_trained

ROOT = Path(__file__).resolve().parents[3]


def test_every_variant_has_one_format_with_its_own_file():
    assert tuple(FORMATS) == VARIANTS  # the exporter's table and the config's vocabulary, in one order
    files = [f.file for f in FORMATS.values()]
    assert len(set(files)) == len(files) and FORMATS["keras"].file == "model.keras"


def test_formats_and_quantisation_name_variants_and_bad_ones_are_refused():
    assert variant_of("keras") == "keras" and variant_of("tflite", "int8") == "tflite_int8"
    assert variant_of("tflite") == "tflite_float32"
    with pytest.raises(ConfigError) as info:
        variant_of("savedmodel", "int8")
    assert info.value.key == "err.export_quantize_tflite"
    with pytest.raises(ConfigError):
        ExportConfig("r", ("coreml",))
    assert ExportConfig("r", ("onnx",)).variants == ("onnx",) and variant_of("onnx") == "onnx"
    with pytest.raises(ConfigError):
        ExportConfig("r", ())
    from core.cli.export import variants_from_args

    assert variants_from_args(None, None) == VARIANTS
    assert variants_from_args(["tflite"], ["float16", "int8"]) == ("tflite_float16", "tflite_int8")
    assert variants_from_args(["keras", "tflite"], None) == ("keras", "tflite_float32")
    assert variants_from_args(["onnx"], None) == ("onnx",)


def test_a_float_format_under_the_bar_is_not_offered_and_int8_always_shows_its_figures():
    reference, labels = np.array([0, 1, 2, 0]), np.array([0, 1, 2, 1])
    probs = np.eye(3)[[0, 1, 1, 0]]  # one of four disagrees
    f16 = Checked("tflite_float16", "model_float16.tflite")
    _check(f16, probs, reference, labels, 0.99)
    assert not f16.offered and f16.agreement == 0.75 and f16.reason["key"] == "exp.parity_failed"
    int8 = Checked("tflite_int8", "model_int8.tflite")
    _check(int8, probs, reference, labels, 0.99)
    assert int8.offered and int8.agreement == 0.75 and int8.accuracy == 0.5


@pytest.fixture(scope="module")
def exported(trained_once, tmp_path_factory):
    ws, run = copy_of_trained(trained_once, tmp_path_factory.mktemp("export") / "ws")
    describe_class(ws, "颜色", "红", "红色的衣服，包括粉红")
    return ws, run, export_run(ws, ExportConfig(run.id))


@pytest.mark.slow
def test_every_format_is_written_checked_and_offered(exported):
    ws, run, result = exported
    folder = export_folder(ws, run.id)
    assert [c.variant for c in result.checked] == list(VARIANTS)
    for c in result.checked:
        assert (folder / c.file).exists() and c.size_bytes > 0 and c.latency_ms > 0, c
        if c.variant != "tflite_int8":
            assert c.offered and c.agreement >= 0.99, c
    sizes = {c.variant: c.size_bytes for c in result.checked}
    assert (
        sizes["tflite_float16"] < 0.6 * sizes["tflite_float32"]
        and sizes["tflite_int8"] < 0.35 * sizes["tflite_float32"]
    )
    int8 = next(c for c in result.checked if c.variant == "tflite_int8")
    assert int8.agreement is not None and int8.accuracy is not None  # measured, shown, never hidden
    assert result.predict_py["agrees"], result.predict_py
    assert last_export(ws, run.id).to_dict() == result.to_dict()
    with zipfile.ZipFile(ws.root / result.zip_path) as zf:
        names = {n.split("/", 1)[1] for n in zf.namelist()}
    assert {
        "model.keras",
        "model_float16.tflite",
        "model.onnx",
        "labels.json",
        "preprocessing.json",
        "model_card.md",
        "predict.py",
    } <= names
    assert any(n.startswith("saved_model/") for n in names)


@pytest.mark.slow
def test_the_bytes_signature_takes_a_jpeg_and_a_png_and_agrees_with_the_keras_model(exported):
    import tensorflow as tf

    from core.training.model import load_run_model
    from core.training.pipeline import pixels_from_bytes

    ws, run, _ = exported
    serve = tf.saved_model.load(str(export_folder(ws, run.id) / "saved_model")).signatures["serving_default"]
    model = load_run_model(ws, run.id)
    for colour, fmt in (((205, 55, 60), "JPEG"), ((55, 60, 205), "PNG")):
        data = image_bytes(Image.new("RGB", (50, 41), colour), fmt)
        out = serve(image_bytes=tf.constant([data]))
        expected = model.predict(pixels_from_bytes(data, 32, "crop")[None].astype(np.float32), verbose=0)
        np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-4)
        label = out["label"].numpy()[0].decode()
        assert label == run.classes[int(expected.argmax())]
        assert [c.decode() for c in out["classes"].numpy()[0]] == run.classes


@pytest.mark.slow
def test_predict_py_runs_with_the_savedmodel_and_with_tflite_and_prints_the_apps_top1(exported, tmp_path):
    ws, run, _ = exported
    folder = export_folder(ws, run.id)
    photo = tmp_path / "红衣服.jpg"
    photo.write_bytes(image_bytes(Image.new("RGB", (60, 45), (210, 50, 55)), "JPEG"))
    for model in ("saved_model", "model_float32.tflite", "model_int8.tflite", "model.onnx"):
        proc = subprocess.run([sys.executable, str(folder / "predict.py"), str(photo), "--model", str(folder / model)],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.splitlines()[0].split("\t")[0] == "红", (model, proc.stdout)
    missing = subprocess.run([sys.executable, str(folder / "predict.py"), str(tmp_path / "none.jpg")],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert missing.returncode == 2 and "none.jpg" in missing.stderr


@pytest.mark.slow
def test_the_model_card_and_the_labels_carry_the_descriptions_and_the_test_figures(exported):
    ws, run, result = exported
    folder = export_folder(ws, run.id)
    card = (folder / "model_card.md").read_text(encoding="utf-8")
    assert "红色的衣服，包括粉红" in card and "## Evaluation" in card and "Weakest class" in card
    assert "accuracy **" in card and "tflite_int8" in card and "Intended use and limits" in card
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    assert labels["classes"] == run.classes
    assert next(x for x in labels["labels"] if x["name"] == "红")["description"] == "红色的衣服，包括粉红"
    prep = json.loads((folder / "preprocessing.json").read_text(encoding="utf-8"))
    assert prep["input_size"] == 32 and prep["resize"] == "crop" and prep["backbone_preprocessing"] == "caffe"


@pytest.mark.slow
def test_the_cli_exports_one_format_with_int8_figures(exported, tmp_path):
    ws, run, _ = exported
    proc = subprocess.run(
        [sys.executable, "-m", "core", "export", run.id, "--format", "tflite", "--quantize", "int8",
         "--out", str(tmp_path), "--workspace", str(ws.root), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    payload = json.loads(proc.stdout)
    assert [f["format"] for f in payload["formats"]] == ["tflite_int8"]
    assert payload["int8_accuracy"] is not None and "int8_accuracy_drop" in payload
    assert Path(payload["zip"]).parent == tmp_path and Path(payload["zip"]).exists()
