"""ResNet50 (and DINOv2-B/14, a foundation backbone) at 224 px on a GPU: images/s of the head phase, fine-tuning and prediction over a batch sweep,
with and without mixed precision and XLA, and the feature cache's speed-up there.

    python bench/bench_gpu.py [--batches 32,64,128,256] [--images 2048] [--quick]

Synthetic images (random pixels, held in GPU-friendly tensors) so the figures are the model's, not the
disk's; the feature-cache row uses the engine itself on clothing-small (../shared/data/clothing-small)
when present. Each configuration fits one epoch to trace and compile, then times a second one; prediction
times ``model.predict`` after a warm-up call. Without a GPU it says so and exits (the CPU figures are in
BENCHMARKS.md's other sections). ``--quick``: one batch size and fewer images, to check the script.

What it reports, per (precision, xla, batch): ``head_img_s`` (base frozen, BatchNorm in inference mode,
as the engine's head phase on images), ``fine_img_s`` (everything unfrozen but BatchNorm), and
``predict_img_s``; then ``feature_cache``: whole head phases (10 epochs) on clothing-small, plain against
the feature cache built in the run, with their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATA = ROOT.parent / "shared" / "data" / "clothing-small"


def _rates(batch: int, images: int, mixed: bool, xla: bool, backbone: str = "resnet50") -> dict[str, float]:
    """``backbone``: a name of the table, or a foundation model's preset folder (its preset's own weights)."""
    import keras
    import numpy as np

    from core.training.model import build_model, set_unfrozen

    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(0, 255, (images, 224, 224, 3)).astype("float32")
    y = np.eye(10, dtype="float32")[np.arange(images) % 10]
    weights = "imagenet" if Path(backbone).is_dir() else "none"
    built = build_model(backbone, n_classes=10, size=224, weights=weights, dropout=0.2, seed=0)
    out = {}
    for phase in ("head", "fine"):
        if phase == "fine":
            set_unfrozen(built, "all")
        built.model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=xla)
        built.model.fit(x[: batch * 2], y[: batch * 2], batch_size=batch, epochs=1, verbose=0)  # trace, compile
        start = time.perf_counter()
        built.model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        out[f"{phase}_img_s"] = round(images / (time.perf_counter() - start), 1)
    built.model.predict(x[:batch], batch_size=batch, verbose=0)
    start = time.perf_counter()
    built.model.predict(x, batch_size=batch, verbose=0)
    out["predict_img_s"] = round(images / (time.perf_counter() - start), 1)
    keras.mixed_precision.set_global_policy("float32")
    return out


def _auto_batch() -> dict[str, int]:
    """What the batch size "auto" picks here for ResNet50 at 224 px (core.training.batch_fit), float32 and mixed."""
    import keras

    from core.training.batch_fit import largest_that_fits, probe
    from core.training.model import build_model

    out = {}
    for policy in ("float32", "mixed_float16"):
        keras.mixed_precision.set_global_policy(policy)
        built = build_model("resnet50", n_classes=10, size=224, weights="none", dropout=0.2, seed=0)
        out[policy] = largest_that_fits(probe(built, 224, 10))
        keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    return out


def _feature_cache() -> dict[str, float] | None:
    """Whole runs of 10 head epochs on clothing-small at 224 px, ResNet50 from scratch weights (the speed
    is the same as ImageNet's), plain against the feature cache built in the run."""
    if not DATA.is_dir():
        return None
    from bench_train import workspace_with

    from core.runs.config import TrainConfig
    from core.training.jobs import train_here

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace_with(DATA, Path(tmp))
        for label, cache in (("plain_s", False), ("feature_cache_s", True)):
            config = TrainConfig(dataset="bench", backbone="resnet50", weights="none", image_size=224,
                                 head_epochs=10, fine_tune_epochs=0, early_stopping=0, augment="none",
                                 feature_cache=cache, batch_size=64)  # fmt: skip
            start = time.perf_counter()
            run = train_here(ws, config)
            assert run.status == "completed", run.error
            out[label] = round(time.perf_counter() - start, 1)
    out["ratio"] = round(out["plain_s"] / out["feature_cache_s"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", default="32,64,128,256")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        print(json.dumps({"gpu": None, "note": "no GPU visible to TensorFlow: nothing measured"}))
        return
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    batches = [64] if args.quick else [int(b) for b in args.batches.split(",")]
    images = 512 if args.quick else args.images
    out: dict = {"gpu": tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU"),
                 "gpus": len(gpus), "tensorflow": tf.__version__, "rows": []}  # fmt: skip
    for mixed, xla in ((False, False), (True, False), (True, True)):
        for batch in batches:
            try:
                rates = _rates(batch, images, mixed, xla)
            except tf.errors.ResourceExhaustedError:
                rates = {"error": "out of memory"}
            out["rows"].append({"mixed_precision": mixed, "xla": xla, "batch": batch, **rates})
            print(json.dumps(out["rows"][-1]), file=sys.stderr, flush=True)
    # A foundation backbone: DINOv2-B/14 at its real configuration with random weights (bench_foundation.py)
    from bench_foundation import _preset

    with tempfile.TemporaryDirectory() as tmp:
        folder = _preset("dinov2_base", Path(tmp) / "dinov2_base")
        for batch in batches[:2]:
            try:
                rates = _rates(batch, images, True, False, folder)
            except tf.errors.ResourceExhaustedError:
                rates = {"error": "out of memory"}
            out["rows"].append({"backbone": "dinov2_base", "mixed_precision": True, "xla": False, "batch": batch,
                                **rates})  # fmt: skip
            print(json.dumps(out["rows"][-1]), file=sys.stderr, flush=True)
    out["auto_batch"] = _auto_batch()
    out["feature_cache"] = None if args.quick else _feature_cache()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
