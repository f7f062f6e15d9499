"""Classify images with this exported LabelTune model. Needs only one of:

- TensorFlow (for ``saved_model/``: the image bytes go in as they are; decoding, resizing and
  preprocessing happen inside the model), or
- a TensorFlow Lite runtime (``pip install ai-edge-litert``, or ``tflite-runtime``) plus Pillow and
  NumPy (for ``model_*.tflite``: the image is resized here as ``preprocessing.json`` says), or
- ONNX Runtime (``pip install onnxruntime``) plus Pillow and NumPy (for ``model.onnx``, resized the same).

Neither needs Keras or KerasHub, whatever the backbone (a foundation model's layers are plain TensorFlow
operations in both); ``model.keras`` does (``preprocessing.json``, "needs").

    python predict.py photo.jpg [more.jpg ...] [--model saved_model|model_int8.tflite|model.onnx] [--top-k 3]

Prints, for each image, its top-k classes with their probabilities, one per line (class<TAB>probability),
then a blank line. This file is copied unchanged from LabelTune's core/export/predict_template.py (whose
exporter uses its ``invoke`` too, so the app checks TFLite exactly as this script runs it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent


def saved_model_probs(model: Path, images: list[Path]) -> list[list[float]]:
    import tensorflow as tf

    serve = tf.saved_model.load(str(model)).signatures["serving_default"]
    out = serve(image_bytes=tf.constant([p.read_bytes() for p in images]))
    return out["probabilities"].numpy().tolist()


def pixels(image: Path, size: int, resize: str):
    """0-255 RGB pixels as the model was trained on them (EXIF orientation applied, as at import)."""

    with Image.open(image) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        w, h = img.size
        if resize == "stretch":
            img = img.resize((size, size), Image.BILINEAR)
        elif resize == "pad":
            scale = size / max(w, h)
            inner = img.resize((max(round(w * scale), 1), max(round(h * scale), 1)), Image.BILINEAR)
            img = Image.new("RGB", (size, size))
            img.paste(inner, ((size - inner.width) // 2, (size - inner.height) // 2))
        else:  # crop: the shorter side to size, then the centre
            scale = size / min(w, h)
            img = img.resize((max(math.ceil(w * scale), size), max(math.ceil(h * scale), size)), Image.BILINEAR)
            left, top = (img.width - size) // 2, (img.height - size) // 2
            img = img.crop((left, top, left + size, top + size))
        return np.asarray(img, dtype=np.float32)


def tflite_probs(model: Path, images: list[Path], size: int, resize: str) -> list[list[float]]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter  # noqa: N806
    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    return [invoke(interpreter, pixels(image, size, resize)) for image in images]


def onnx_probs(model: Path, images: list[Path], size: int, resize: str) -> list[list[float]]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [[float(v) for v in session.run(None, {name: pixels(image, size, resize)[None]})[0][0]] for image in images]


def invoke(interpreter, image) -> list[float]:
    """Probabilities for one image's 0-255 pixels (size, size, 3), quantising in and out for int8."""

    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x = np.asarray(image, dtype=np.float32)[None]
    if inp["dtype"] == np.uint8:
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale + zero), 0, 255).astype(np.uint8)
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])[0]
    if out["dtype"] == np.uint8:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return [float(v) for v in y]


def main() -> int:
    parser = argparse.ArgumentParser(description="Classify images with this exported LabelTune model.")
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, help="saved_model (default when present), a .tflite or a .onnx file")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()
    classes = json.loads((HERE / "labels.json").read_text(encoding="utf-8"))["classes"]
    prep = json.loads((HERE / "preprocessing.json").read_text(encoding="utf-8"))
    found = (HERE / n for n in ("saved_model", "model_float32.tflite", "model.onnx") if (HERE / n).exists())
    model = args.model or next(found, None)
    if model is None:
        print("no model found beside predict.py: pass --model", file=sys.stderr)
        return 2
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        print(f"no such image: {', '.join(missing)}", file=sys.stderr)
        return 2
    if model.suffix == ".tflite":
        probs = tflite_probs(model, args.images, prep["input_size"], prep["resize"])
    elif model.suffix == ".onnx":
        probs = onnx_probs(model, args.images, prep["input_size"], prep["resize"])
    else:
        probs = saved_model_probs(model, args.images)
    for row in probs:
        ranked = sorted(range(len(row)), key=lambda i: -row[i])[: args.top_k]
        for i in ranked:
            print(f"{classes[i]}\t{row[i]:.4f}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
