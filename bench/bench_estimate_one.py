"""The Quick look shape's estimate against its run, for a tree given by path: a same-run comparison of two
checkouts (``git worktree add /tmp/old REV``), which ``bench_estimate.py`` cannot make.

    python bench/bench_estimate_one.py /tmp/old && python bench/bench_estimate_one.py .
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "clothing-small"

from bench.bench_train import workspace_with  # noqa: E402
from core.runs.config import TrainConfig  # noqa: E402
from core.training.jobs import train_here  # noqa: E402
from core.training.pipeline import load_training_data  # noqa: E402
from core.training.step_timer import measure_and_store  # noqa: E402

OVERRIDES = {"backbone": "mobilenet_v2_0.35", "image_size": 224, "head_epochs": 15, "fine_tune_epochs": 0}

with tempfile.TemporaryDirectory() as tmp:
    ws = workspace_with(DATA, Path(tmp))
    data = load_training_data(ws, "bench")
    config = TrainConfig(dataset="bench", weights="none", early_stopping=0, batch_size=32, **OVERRIDES)
    guess = measure_and_store(ws, config, data)
    run = train_here(ws, config)
    row = {"tree": str(ROOT), "estimate_s": round(guess.total_s, 1), "actual_s": round(run.train_seconds, 1),
           "ratio": round(run.train_seconds / guess.total_s, 2), "parts": guess.parts}  # fmt: skip
    print(json.dumps(row))
