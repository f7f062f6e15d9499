"""Recipe choices measured on clothing-small, each a ratio or a difference against the balanced recipe in
the same run, over seeds.

    python bench/bench_recipe.py epochs [--train-images 245] [--seeds 2] [--size 160]
    python bench/bench_recipe.py options [--seeds 3] [--size 160]

epochs: on a small training set, does a short recipe (5 + 3 epochs) beat the balanced 15 + 10
  (``core.training.advice.recipe_epochs`` keeps what wins)? clothing-small's training split cut to
  ``--train-images`` images (a seeded sample; validation and test whole).
options: fastai's recipe options against the balanced recipe on the whole dataset: test-time
  augmentation (horizontal flip averaged, on each balanced run's saved model); the one-cycle schedule and
  layer-wise fine-tuning rates were measured at commit 9ce63ea and removed (they did not help).

MobileNetV2 x0.35 with the bundled ImageNet weights, standard augmentation, the head on cached features
then fine-tuning. Reports validation and test accuracy and training seconds per run, and the means.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATA = ROOT.parent / "shared" / "data" / "clothing-small"
WEIGHTS = ROOT / "core" / "training" / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


def subset_zip(data: Path, target: Path, train_images: int, seed: int = 0) -> Path:
    """Every validation and test image, and ``train_images`` training images in the classes' proportions."""
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    train = [p for p in files if p.relative_to(data).parts[0] == "train"]
    keep = set(random.Random(seed).sample(train, train_images)) if train_images < len(train) else set(train)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in files:
            if path in keep or path.relative_to(data).parts[0] != "train":
                zf.write(path, path.relative_to(data).as_posix())
    return target


def _tta(ws, run_id: str) -> dict[str, float]:
    """Validation and test accuracy of the run's saved model with flip-averaged predictions."""
    from bench_default import tta

    return tta(ws, run_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["epochs", "options"])
    parser.add_argument("--train-images", type=int, default=245)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()

    from core.datasets.ingest import import_archive
    from core.runs.config import TrainConfig
    from core.store.workspace import Workspace
    from core.training.advice import BALANCED
    from core.training.jobs import train_here

    if args.which == "epochs":
        recipes = {
            "balanced 15+10": {"head_epochs": BALANCED.head_epochs, "fine_tune_epochs": BALANCED.fine_tune_epochs},
            "short 5+3": {"head_epochs": 5, "fine_tune_epochs": 3},
        }
    else:
        args.train_images = 10**9  # the whole training split
        # One-cycle (schedule "one_cycle") and layer-wise rates (layer_lr_ratio 10) ran here too, at commit
        # 9ce63ea; neither helped (BENCHMARKS.md) and both were removed. Check out that commit to rerun them.
        recipes = {"balanced": {}}
    out: dict = {"train_images": args.train_images, "size": args.size, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        import_archive(ws, subset_zip(args.data, Path(tmp) / "d.zip", args.train_images), name="bench")
        for seed in range(args.seeds):  # seed by seed: a cut-short benchmark still compares like with like
            for name, epochs in recipes.items():
                config = TrainConfig(dataset="bench", backbone="mobilenet_v2_0.35", weights=str(WEIGHTS),
                                     image_size=args.size, seed=seed, **epochs)  # fmt: skip
                run = train_here(ws, config)
                assert run.status == "completed", run.error
                out["runs"].append({"recipe": name, **epochs, "seed": seed,
                                    "val_accuracy": round(run.final["val_accuracy"], 4),
                                    "test_accuracy": round(run.final["test_accuracy"], 4),
                                    "train_seconds": round(run.train_seconds, 1)})  # fmt: skip
                if args.which == "options" and name == "balanced":
                    out["runs"].append({"recipe": "tta flip", "seed": seed, "train_seconds": 0.0,
                                        **_tta(ws, run.id)})  # fmt: skip
                print(json.dumps(out["runs"][-1]), file=sys.stderr)
    for name in [*recipes, *(["tta flip"] if args.which == "options" else [])]:
        rows = [r for r in out["runs"] if r["recipe"] == name]
        out[name] = {
            k: round(statistics.mean(r[k] for r in rows), 4) for k in ("val_accuracy", "test_accuracy", "train_seconds")
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
