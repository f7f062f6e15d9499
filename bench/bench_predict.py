"""Prediction benchmarks, each a ratio against a bare baseline in the same run.

    python bench/bench_predict.py [--data ../shared/data/clothing-small] [--rounds 3]

single: one image through the app's path (file bytes in: normalisation as at import, the training
  decode and resize, the cached model, top-k out) against a bare ``model(x)`` on the same image already
  prepared as a tensor, same model (target: at most 1.2 times), and against the bare compiled call
  ``model.predict_on_batch(x)``. Median per image over the test split.
batch: images/s of batch prediction from file bytes (``Predictor.predict``) against a bare
  ``model.predict`` over the same images preloaded as tensors, batch 32 (target: at least 0.9), and
  against the bare way from bytes: a ``tf.data`` map of the same decode and resize into ``model.predict``.
gradcam: time of one Grad-CAM heatmap beside one plain prediction of the same image.

The model is MobileNetV2 x0.35 at 224 px (ImageNet weights from ../shared/weights when present:
inference costs the same whatever the weights), ten classes, as a clothing-small run would have.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
DEFAULT_DATA = SHARED / "data" / "clothing-small"
MOBILENET_FILE = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
SIZE = 224


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import numpy as np

    from core.evaluation.gradcam import gradcam
    from core.prediction.predict import Predictor
    from core.training.model import build_model

    weights = str(MOBILENET_FILE) if MOBILENET_FILE.exists() else "none"
    model = build_model("mobilenet_v2_0.35", n_classes=10, size=SIZE, weights=weights, dropout=0.2, seed=0).model
    predictor = Predictor(model, [f"c{i}" for i in range(10)], SIZE, "crop")
    files = sorted(p for p in (args.data / "test").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    items = [(p.name, p.read_bytes()) for p in files]
    tensors = np.stack([predictor.pixels(data, name) for name, data in items]).astype(np.float32)

    def decoded_batches():
        """The bare way from bytes: a tf.data map of the same decode and resize, batched, prefetched."""
        import tensorflow as tf

        from core.training.pipeline import load_pixels

        ds = tf.data.Dataset.from_tensor_slices([data for _, data in items])
        ds = ds.map(lambda b: tf.cast(load_pixels(b, SIZE, "crop"), tf.float32), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(32).prefetch(tf.data.AUTOTUNE)

    predictor.predict(items[:40])  # warm up both paths
    model.predict(decoded_batches(), verbose=0)
    model.predict(tensors[:64], batch_size=32, verbose=0)
    for x in tensors[:5]:
        model(x[None], training=False)

    rounds = []
    for _ in range(args.rounds):
        app = [timed(predictor.predict, [item], 3)[0] for item in items]
        bare = [timed(model, tensors[i : i + 1], training=False)[0] for i in range(len(items))]
        compiled = [timed(model.predict_on_batch, tensors[i : i + 1])[0] for i in range(len(items))]
        batch_app, _ = timed(predictor.predict, items, 3)
        batch_bare, _ = timed(model.predict, tensors, batch_size=32, verbose=0)
        batch_decode, _ = timed(model.predict, decoded_batches(), verbose=0)
        cams = [timed(gradcam, model, tensors[i])[0] for i in range(20)]
        plain = [timed(model, tensors[i : i + 1], training=False)[0] for i in range(20)]
        rounds.append(
            {
                "single_app_ms": 1000 * statistics.median(app),
                "single_bare_ms": 1000 * statistics.median(bare),
                "single_bare_compiled_ms": 1000 * statistics.median(compiled),
                "batch_app_img_s": len(items) / batch_app,
                "batch_bare_img_s": len(items) / batch_bare,
                "batch_bare_decode_img_s": len(items) / batch_decode,
                "gradcam_ms": 1000 * statistics.median(cams),
                "plain_ms": 1000 * statistics.median(plain),
            }
        )
    median = {k: round(statistics.median(r[k] for r in rounds), 2) for k in rounds[0]}
    out = {
        "images": len(items),
        "weights": "imagenet file" if weights != "none" else "none",
        **median,
        "single_ratio": round(median["single_app_ms"] / median["single_bare_ms"], 3),
        "single_target_max": 1.2,
        "single_ratio_vs_compiled": round(median["single_app_ms"] / median["single_bare_compiled_ms"], 3),
        "batch_ratio": round(median["batch_app_img_s"] / median["batch_bare_img_s"], 3),
        "batch_target_min": 0.9,
        "batch_ratio_vs_bare_decode": round(median["batch_app_img_s"] / median["batch_bare_decode_img_s"], 3),
        "gradcam_over_plain": round(median["gradcam_ms"] / median["plain_ms"], 2),
        "rounds": [{k: round(v, 2) for k, v in r.items()} for r in rounds],
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
