"""Time estimates against real runs: for each configuration, time a few steps on this machine
(``python -m core estimate``'s measurement), estimate the run, then train it and compare.

    python bench/bench_estimate.py [--data ../shared/data/clothing-small]

Prints one row per configuration: estimate, actual training time and their ratio (target: within
±30 %, i.e. a ratio between 0.7 and 1.3). Weights are "none": timing does not depend on them, and it
keeps the benchmark offline.
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

from bench.bench_train import DEFAULT_DATA, workspace_with  # noqa: E402

CONFIGS = (
    # The "Quick look" preset's shape: the head alone on cached features, at 224 px.
    {"backbone": "mobilenet_v2_0.35", "image_size": 224, "head_epochs": 15, "fine_tune_epochs": 0},
    # Head on cached features, then three fine-tuning epochs at 160 px.
    {"backbone": "mobilenet_v2_0.35", "image_size": 160, "head_epochs": 5, "fine_tune_epochs": 3},
    # No feature cache: both phases on images, a heavier backbone at a small size.
    {"backbone": "efficientnet_b0", "image_size": 96, "head_epochs": 2, "fine_tune_epochs": 2, "feature_cache": False},
    # ResNet50 (the default backbone) at 64 px, one epoch of ten steps in each phase.
    {
        "backbone": "resnet50",
        "image_size": 64,
        "head_epochs": 1,
        "fine_tune_epochs": 1,
        "feature_cache": False,
        "steps_per_epoch": 10,
    },
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    from core.runs.config import TrainConfig
    from core.training.jobs import train_here
    from core.training.pipeline import load_training_data
    from core.training.step_timer import measure_and_store

    with tempfile.TemporaryDirectory() as tmp:
        ws, name = workspace_with(args.data, Path(tmp)), "bench"
        data = load_training_data(ws, name)
        rows = []
        for overrides in CONFIGS:
            config = TrainConfig(dataset=name, weights="none", early_stopping=0, batch_size=32, **overrides)
            started = time.perf_counter()
            guess = measure_and_store(ws, config, data)
            measuring = time.perf_counter() - started
            run = train_here(ws, config)
            row = {
                "config": overrides,
                "estimate_s": round(guess.total_s, 1),
                "actual_s": round(run.train_seconds, 1),
                "ratio": round(run.train_seconds / guess.total_s, 2),
                "measuring_s": round(measuring, 1),
                "parts": guess.parts,
                "status": run.status,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
        print(json.dumps({"images": data.counts(), "within_30_percent": sum(0.7 <= r["ratio"] <= 1.3 for r in rows),
                          "configs": len(rows)}))  # fmt: skip


if __name__ == "__main__":
    main()
