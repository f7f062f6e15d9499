"""What a foundation backbone's feature pass costs on this machine: images/s and peak memory of the frozen
base's pass (what the feature cache, the zero-shot scoring and the audit run) for DINOv2-S/14, DINOv2-B/14
and SigLIP 2 B/16 at 224 px, against MobileNetV2 x0.35 and ResNet50, through LabelTune's own model recipe.

    python bench/bench_foundation.py [--images 64] [--batch 16] [--only NAME]

No weights can be downloaded here, so each foundation model is KerasHub's real class at the real preset's
configuration (width, depth, heads, MLP, patch; SigLIP 2 with its 256,000-token text tower, which loading
the preset loads too) with random weights, saved as a local preset folder: the arithmetic and the memory are
the real preset's, the features are not. The preset folders are written first, each by a process of its
own; then each backbone loads and runs in a fresh process (peak RSS is that process's: the preset loaded,
the model built, the batches), a warm-up batch first, then ``--images`` random 224 px images timed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The real presets' configurations (KerasHub's dinov2 and siglip presets' config.json).
DINO = {"small": (384, 6, 1536), "base": (768, 12, 3072)}
BACKBONES = ("mobilenet_v2_0.35", "resnet50", "dinov2_small", "dinov2_base", "siglip2_base_patch16_224")


def _preset(name: str, folder: Path) -> str:
    """A local preset folder with ``name``'s architecture and random weights; a keras.applications name as is."""
    import keras_hub

    if name.startswith("dinov2"):
        width, heads, mlp = DINO[name.split("_")[1]]
        backbone = keras_hub.models.DINOV2Backbone(
            patch_size=14, num_layers=12, hidden_dim=width, num_heads=heads, intermediate_dim=mlp,
            layer_scale_init_value=1e-5, image_shape=(224, 224, 3), position_embedding_shape=(518, 518, 3),
        )  # fmt: skip
        converter = keras_hub.layers.DINOV2ImageConverter(image_size=(224, 224), scale=1 / 255)
    elif name.startswith("siglip2"):
        vision = keras_hub.models.SigLIPVisionEncoder(
            patch_size=16, hidden_dim=768, num_layers=12, num_heads=12, intermediate_dim=3072,
            image_shape=(224, 224, 3),
        )  # fmt: skip
        text = keras_hub.models.SigLIPTextEncoder(
            vocabulary_size=256_000, embedding_dim=768, hidden_dim=768, num_layers=12, num_heads=12,
            intermediate_dim=3072, max_sequence_length=64, projection_dim=768,
        )  # fmt: skip
        backbone = keras_hub.models.SigLIPBackbone(vision, text)
        converter = keras_hub.layers.SigLIPImageConverter(image_size=(224, 224), scale=1 / 127.5, offset=-1.0)
    else:
        return name
    backbone.save_to_preset(str(folder))
    converter.save_to_preset(str(folder))
    return str(folder)


def one(name: str, images: int, batch: int, presets: Path) -> dict[str, float]:
    """The feature pass of ``name`` in this process: images/s and this process's peak RSS."""
    import keras
    import numpy as np

    from core.training.features import extractor_of
    from core.training.model import build_model

    handle = str(presets / name) if (presets / name).is_dir() else name
    weights = "none" if handle == name else "imagenet"  # a preset's own (random) weights
    started = time.perf_counter()
    built = build_model(handle, n_classes=10, size=224, weights=weights, dropout=0.0, seed=0)
    load_s = time.perf_counter() - started
    extractor = extractor_of(built.model)
    x = np.random.default_rng(0).uniform(0, 255, (images, 224, 224, 3)).astype("float32")
    extractor.predict(x[:batch], batch_size=batch, verbose=0)  # trace
    started = time.perf_counter()
    features = extractor.predict(x, batch_size=batch, verbose=0)
    seconds = time.perf_counter() - started
    keras.backend.clear_session()
    return {
        "backbone": name,
        "img_s": round(images / seconds, 2),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        "dim": int(features.shape[1]),
        "build_s": round(load_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--only", help="one backbone, in this process (what the sweep runs per backbone)")
    parser.add_argument("--make", help="write this backbone's preset folder under --presets, and exit")
    parser.add_argument("--presets", type=Path, help="where the preset folders are")
    args = parser.parse_args()
    if args.make:
        _preset(args.make, args.presets / args.make)
        return
    if args.only:
        print(json.dumps(one(args.only, args.images, args.batch, args.presets or Path("/nonexistent"))))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in BACKBONES[2:]:
            subprocess.run(
                [sys.executable, __file__, "--make", name, "--presets", tmp], capture_output=True, check=True
            )
        for name in BACKBONES:
            cmd = [sys.executable, __file__, "--only", name, "--images", str(args.images), "--batch", str(args.batch),
                   "--presets", tmp]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["img_s"]
    print("\n| backbone | features | images/s | × MobileNetV2 x0.35's time | peak RSS (MB) | build (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['backbone']} | {r['dim']} | {r['img_s']} | {base / r['img_s']:.1f} | {r['peak_mb']:.0f} | {r['build_s']} |"
        )


if __name__ == "__main__":
    main()
