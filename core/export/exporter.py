"""Export a run's model (the saved ``model.keras``, the run's one model) and check every format before
it is offered.

Files go to the run's export folder (:attr:`RunFolder.export`), built beside it and moved into place
only once every file is written and checked (the previous export stays usable until then): ``model.keras``; ``saved_model/`` made with Keras' ``ExportArchive``,
whose ``serving_default`` signature takes encoded image bytes (JPEG, PNG, ...) and decodes, resizes and
preprocesses inside the graph, returning probabilities and labels (``serve_pixels`` takes 0-255 RGB
pixels); ``model_float32.tflite``, ``model_float16.tflite``, ``model_int8.tflite`` (full integer,
uint8 input and output, calibrated on training images); ``labels.json``, ``preprocessing.json``,
``model_card.md``, ``predict.py``; the checks in ``export.json``; all offered files in one zip.

The check: every format predicts the same test images (all of the split up to ``parity_images``) and
its top-1 is compared with the app's model; a float format under ``min_agreement`` is not offered, with
the reason. int8's agreement and accuracy are measured and shown. ``predict.py`` runs once in a
subprocess on a test image and must print the app's top-1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.datasets.catalog import load_dataset
from core.errors import DatasetError, ExportError
from core.export.card import model_card
from core.export.config import FLOAT_VARIANTS, ExportConfig
from core.export.predict_template import invoke
from core.i18n import stored
from core.prediction.predict import latency_ms
from core.runs import store as runs
from core.runs.backbones import get_backbone
from core.runs.folder import RunFolder, write_json_atomic
from core.runs.predictions import flip_helps
from core.store.workspace import Workspace, utc_now
from core.training.pipeline import load_pixels, load_training_data

RESULT_FILE = "export.json"
PREDICT_TEMPLATE = Path(__file__).with_name("predict_template.py")
CALIBRATION_IMAGES = 100  # training images for int8's representative dataset


@dataclass
class Checked:
    variant: str
    file: str  # relative to the export folder
    size_bytes: int = 0
    agreement: float | None = None  # top-1 agreement with the app's model on the sample
    accuracy: float | None = None
    latency_ms: float | None = None  # one image, median of LATENCY_CALLS
    offered: bool = False
    reason: dict[str, Any] | None = None  # stored message when not offered


@dataclass
class ExportResult:
    run: str
    images: int  # in the parity sample
    app_accuracy: float
    app_latency_ms: float
    checked: list[Checked]
    predict_py: dict[str, Any] = field(default_factory=dict)
    zip_path: str = ""
    created_at: str = ""
    flip: bool = False  # flip-averaged predictions built into every file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportResult:
        return cls(**{**data, "checked": [Checked(**c) for c in data["checked"]]})


def export_folder(ws: Workspace, run_id: str) -> Path:
    return RunFolder.of(ws, run_id).export


def _previous(folder: Path) -> Path:
    """Where the last export waits while a new one replaces it (see :func:`_publish`)."""
    return folder.with_name(folder.name + ".old")


def last_export(ws: Workspace, run_id: str) -> ExportResult | None:
    folder = export_folder(ws, run_id)
    if not folder.exists() and _previous(folder).exists():  # the process died between the two renames
        os.replace(_previous(folder), folder)
    path = folder / RESULT_FILE
    return ExportResult.from_dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None


def _publish(new: Path, folder: Path) -> None:
    """Put a complete export in place of the previous one: two renames, the previous kept until the second."""
    previous = _previous(folder)
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        os.replace(folder, previous)
    os.replace(new, folder)
    shutil.rmtree(previous, ignore_errors=True)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def preprocessing_info(run: runs.Run, flip: bool = False) -> dict[str, Any]:
    config = run.config
    backbone = get_backbone(config.backbone)
    return {
        # test-time augmentation inside the model: each image's probabilities averaged with its mirror's
        "flip_averaged": flip,
        "input_size": config.size,
        "resize": config.resize,
        "resize_help": {
            "crop": "scale the shorter side to input_size (bilinear, antialiased), then take the centre square",
            "pad": "scale the longer side to input_size, then pad to a square with black",
            "stretch": "resize to input_size x input_size ignoring the aspect ratio",
        }[config.resize],
        "input": "RGB, 0-255 (float32 for the float formats, uint8 for int8); the model preprocesses itself",
        "backbone": backbone.name,
        # applied inside the model: caffe, tf, none, or hub (the KerasHub preset's scale and offset)
        "backbone_preprocessing": backbone.preprocess,
        "color_order": "RGB",
        "needs": needs(backbone),
    }


def needs(backbone: Any) -> dict[str, str]:
    """What each format needs installed to run, by the backbone's family."""
    keras_file = "keras>=3.10 with LabelTune's core package (its preprocessing layer is LabelTune's)"
    if backbone.foundation:
        keras_file += ", and keras-hub>=0.32 (the backbone's layers are KerasHub's)"
    return {
        "saved_model": "tensorflow (nothing of Keras, KerasHub or LabelTune)",
        "tflite": "ai-edge-litert (or tflite-runtime), pillow, numpy",
        "onnx": "onnxruntime, pillow, numpy",
        "keras": keras_file,
    }


def labels_info(ws: Workspace, run: runs.Run) -> dict[str, Any]:

    try:
        descriptions = load_dataset(ws, run.dataset_name).descriptions
    except DatasetError:
        descriptions = {}
    return {
        "classes": run.classes,
        "labels": [{"index": i, "name": c, "description": descriptions.get(c, "")} for i, c in enumerate(run.classes)],
    }


def _sample(data: Any, limit: int) -> tuple[list[str], np.ndarray]:
    """The parity sample: the test split's images (the validation split's if it has none), up to ``limit``."""
    split = data.test if len(data.test) else data.val
    return split.paths[:limit], np.asarray(split.labels[:limit])


def _pixels(paths: list[str], size: int, resize: str) -> np.ndarray:
    import tensorflow as tf

    return np.stack([load_pixels(tf.io.read_file(p), size, resize).numpy() for p in paths]).astype(np.float32)


def _write_savedmodel(model: Any, run: runs.Run, size: int, resize: str, target: Path) -> None:
    import keras
    import tensorflow as tf

    classes = tf.constant(run.classes)

    def serve_bytes(images: Any) -> dict[str, Any]:
        pixels = tf.map_fn(
            lambda b: load_pixels(b, size, resize), images, fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8)
        )
        probs = model(tf.cast(pixels, tf.float32), training=False)
        return {
            "probabilities": probs,
            "label": tf.gather(classes, tf.argmax(probs, axis=-1)),
            "classes": tf.broadcast_to(classes, tf.shape(probs)),
        }

    def serve_pixels(pixels: Any) -> dict[str, Any]:
        return {"probabilities": model(pixels, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serve_bytes, [tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint(
        "serve_pixels", serve_pixels, [tf.TensorSpec([None, size, size, 3], tf.float32, name="pixels")]
    )
    archive.write_out(str(target), verbose=False)


def _convert_tflite(saved_model: Path, quantize: str, calibration: np.ndarray) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=["serve_pixels"])
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


def tflite_interpreter(path: Path) -> Any:
    """LiteRT's interpreter (``ai-edge-litert``) when installed, else TensorFlow's own."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806 - a class
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter


def tflite_predict(interpreter: Any, pixels: np.ndarray) -> np.ndarray:
    """Probabilities for 0-255 ``pixels`` (N, size, size, 3), one image per call, as predict.py runs it."""

    return np.asarray([invoke(interpreter, image) for image in pixels], dtype=np.float32)


def _check(checked: Checked, probs: np.ndarray, reference: np.ndarray, labels: np.ndarray, bar: float) -> None:
    top = probs.argmax(axis=1)
    checked.agreement = round(float((top == reference).mean()), 4)
    checked.accuracy = round(float((top == labels).mean()), 4) if len(labels) else None
    if checked.variant in FLOAT_VARIANTS and checked.agreement < bar:
        checked.reason = stored("exp.parity_failed", agreement=f"{checked.agreement:.1%}", bar=f"{bar:.0%}")
    else:
        checked.offered = True


STEPS = ("prepare", "savedmodel", "bundle")  # besides one step per variant: what progress counts


def export_run(ws: Workspace, config: ExportConfig, on_step: Any = None, workdir: Path | None = None) -> ExportResult:
    """Export and check every variant of ``config``; returns (and stores) the result. ``on_step(name, done,
    total)`` as each step starts: ``prepare``, ``savedmodel``, each variant, ``bundle``.

    The files are written in ``workdir`` (the export job's scratch folder, removed even if its process is
    killed; default: beside the run's export folder) and moved into place once complete."""
    final = export_folder(ws, config.run)
    folder = (workdir / "export") if workdir else final.with_name(f"{final.name}.new-{os.getpid()}")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        result = _export(ws, config, folder, final, on_step or (lambda name, done, total: None))
        _publish(folder, final)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def _export(ws: Workspace, config: ExportConfig, folder: Path, final: Path, on_step: Any) -> ExportResult:
    from core.training.model import flip_averaged, load_run_model

    run = runs.get_run(ws, config.run)
    if not run.model_path:
        raise ExportError("err.export_no_model", run=run.id)
    if config.flip and not flip_helps(ws, run.id):
        raise ExportError("err.export_flip", run=run.id)
    total = len(STEPS) + len(config.variants)
    done = iter(range(total))

    def step(name: str) -> None:
        on_step(name, next(done), total)

    step("prepare")
    info = preprocessing_info(run, config.flip)
    size, resize = info["input_size"], info["resize"]
    model = flip_averaged(load_run_model(ws, run.id)) if config.flip else load_run_model(ws, run.id)
    data = load_training_data(ws, run.dataset_name, zero_shot=run.config.zero_shot)
    paths, labels = _sample(data, config.parity_images)
    if not paths:
        raise ExportError("err.export_no_images", run=run.id)
    pixels = _pixels(paths, size, resize)
    app_probs = model.predict(pixels, verbose=0, batch_size=32)
    reference = app_probs.argmax(axis=1)
    result = ExportResult(
        run=run.id,
        images=len(paths),
        app_accuracy=round(float((reference == labels).mean()), 4),
        app_latency_ms=latency_ms(lambda x: model.predict_on_batch(x), pixels),
        checked=[],
        flip=config.flip,
    )
    wanted = list(config.variants)
    sources = Sources(model, run, size, resize, pixels, paths, folder / FORMATS["savedmodel"].file)
    step("savedmodel")
    if any(FORMATS[v].needs_savedmodel for v in wanted):
        _write_savedmodel(model, run, size, resize, sources.saved_model)
    if "tflite_int8" in wanted:
        train = data.train.paths
        sources.calibration = _pixels(
            train[:: max(len(train) // CALIBRATION_IMAGES, 1)][:CALIBRATION_IMAGES], size, resize
        )
    for variant in wanted:
        step(variant)
        fmt = FORMATS[variant]
        checked = Checked(variant, fmt.file)
        try:
            probs, one_by_one = fmt.write_and_load(sources, folder / fmt.file)
        except ExportError as exc:  # this format cannot carry this model: not offered, and why
            if exc.key != "exp.convert_failed":
                raise
            checked.reason = stored(exc.key, **exc.params)
            result.checked.append(checked)
            (folder / fmt.file).unlink(missing_ok=True)  # a file format: whatever the converter left
            continue
        checked.size_bytes = _size(folder / fmt.file)
        _check(checked, probs, reference, labels, config.min_agreement)
        checked.latency_ms = latency_ms(one_by_one, np.asarray(paths) if fmt.reads_files else pixels)
        result.checked.append(checked)
    if "savedmodel" not in wanted:
        shutil.rmtree(sources.saved_model, ignore_errors=True)
    step("bundle")
    _write_bundle(ws, run, folder, result, info)
    result.predict_py = _try_predict_py(folder, result, paths[0], run.classes[int(reference[0])])
    result.created_at = utc_now()
    result.zip_path = str((final / _zip(folder, run, result).name).relative_to(ws.root))
    write_json_atomic(folder / RESULT_FILE, result.to_dict())
    return result


@dataclass
class Sources:
    """What every format's writer starts from: the run's model as loaded, and the parity sample."""

    model: Any
    run: runs.Run
    size: int
    resize: str
    pixels: np.ndarray  # the sample's 0-255 pixels, as the app's model sees them
    paths: list[str]  # the sample's image files
    saved_model: Path  # written once for the SavedModel and every TFLite variant
    calibration: np.ndarray | None = None  # training images' pixels for int8's representative dataset


Predict = Callable[[Any], np.ndarray]  # a batch (pixels, or image files for the SavedModel) -> probabilities


def _keras(src: Sources, target: Path) -> tuple[np.ndarray, Predict]:
    """The run's model as loaded (no optimizer state: a third of the run's file), loaded back as shipped."""
    from core.training.model import load_model_file

    src.model.save(target)
    shipped = load_model_file(target)
    return shipped.predict(src.pixels, verbose=0, batch_size=32), shipped.predict_on_batch


def _savedmodel(src: Sources, target: Path) -> tuple[np.ndarray, Predict]:
    """The SavedModel (written before the variants) reloaded, fed the images' own bytes through its
    serving signature."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(target)).signatures["serving_default"]

    def predict(batch: Any) -> np.ndarray:
        data = [Path(p).read_bytes() for p in np.atleast_1d(batch)]
        return serve(image_bytes=tf.constant(data))["probabilities"].numpy()

    return np.concatenate([predict(src.paths[i : i + 32]) for i in range(0, len(src.paths), 32)]), predict


def _tflite(quantize: str) -> Callable[[Sources, Path], tuple[np.ndarray, Predict]]:
    def write(src: Sources, target: Path) -> tuple[np.ndarray, Predict]:
        calibration = src.calibration if src.calibration is not None else np.zeros((0, src.size, src.size, 3))
        target.write_bytes(_convert_tflite(src.saved_model, quantize, calibration))
        interpreter = tflite_interpreter(target)
        return tflite_predict(interpreter, src.pixels), lambda x: tflite_predict(interpreter, x)

    return write


def _onnx(src: Sources, target: Path) -> tuple[np.ndarray, Predict]:
    """Keras 3's own ONNX export (through tf2onnx), loaded back in ONNX Runtime: float32 0-255 pixels in,
    probabilities out, the preprocessing inside as in every other format."""
    try:
        src.model.export(str(target), format="onnx", verbose=False)
        session = onnx_session(target)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - tf2onnx and ONNX Runtime raise their own kinds for an op they lack
        raise ExportError("exp.convert_failed", format="ONNX", reason=str(exc).splitlines()[0][-300:]) from exc
    return onnx_predict(session, src.pixels), lambda x: onnx_predict(session, x)


def onnx_session(path: Path) -> Any:
    """An ONNX Runtime session on this CPU, with a clear message where ONNX Runtime is not installed."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ExportError("err.export_onnx_runtime", reason=str(exc)) from exc
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def onnx_predict(session: Any, pixels: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    batches = [pixels[i : i + 32] for i in range(0, len(pixels), 32)]
    return np.concatenate([session.run(None, {name: np.asarray(b, dtype=np.float32)})[0] for b in batches])


@dataclass(frozen=True)
class Format:
    """One export format: its file (or folder) in the export, how it is written and loaded back for the
    checks (the sample's probabilities, and a prediction function to time one image with)."""

    file: str
    write_and_load: Callable[[Sources, Path], tuple[np.ndarray, Predict]]
    needs_savedmodel: bool = False  # converted from the SavedModel
    reads_files: bool = False  # predicts from image files (their bytes), not from pixels


# Every variant of ``core.export.config.VARIANTS``, in the same order (a test holds them together).
FORMATS: dict[str, Format] = {
    "keras": Format("model.keras", _keras),
    "savedmodel": Format("saved_model", _savedmodel, needs_savedmodel=True, reads_files=True),
    "tflite_float32": Format("model_float32.tflite", _tflite("float32"), needs_savedmodel=True),
    "tflite_float16": Format("model_float16.tflite", _tflite("float16"), needs_savedmodel=True),
    "tflite_int8": Format("model_int8.tflite", _tflite("int8"), needs_savedmodel=True),
    "onnx": Format("model.onnx", _onnx),
}


def _write_bundle(ws: Workspace, run: runs.Run, folder: Path, result: ExportResult, info: dict[str, Any]) -> None:
    labels = labels_info(ws, run)
    (folder / "labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=2), encoding="utf-8")
    (folder / "preprocessing.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    shutil.copy2(PREDICT_TEMPLATE, folder / "predict.py")
    (folder / "model_card.md").write_text(model_card(ws, run, result, labels, info), encoding="utf-8")


def _try_predict_py(folder: Path, result: ExportResult, image: str, expected: str) -> dict[str, Any]:
    """Run the shipped ``predict.py`` once on a test image, with the SavedModel (or the float TFLite)."""
    offered = {c.variant for c in result.checked if c.offered}
    model = next(
        (FORMATS[v].file for v in ("savedmodel", "tflite_float32") if v in offered),
        None,
    )
    if model is None:
        return {}
    proc = subprocess.run(
        [sys.executable, str(folder / "predict.py"), image, "--model", str(folder / model), "--top-k", "3"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    top1 = lines[0].split("\t")[0] if lines and proc.returncode == 0 else ""
    return {"model": model, "image": Path(image).name, "top1": top1, "expected": expected, "agrees": top1 == expected,
            "output": proc.stdout[-500:] or proc.stderr[-500:]}  # fmt: skip


def _zip(folder: Path, run: runs.Run, result: ExportResult) -> Path:
    target = folder / f"labeltune-{run.id}.zip"
    offered = {c.file for c in result.checked if c.offered}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if (
                path.is_file()
                and path != target
                and (rel.parts[0] in offered or len(rel.parts) == 1 and rel.suffix in (".json", ".md", ".py"))
            ):
                zf.write(path, f"labeltune-{run.id}/{rel.as_posix()}")
    return target
