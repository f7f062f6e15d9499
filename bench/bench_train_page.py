"""Train page rerun time (AppTest, no browser), with what one load of the dataset's training data costs.

    python bench/bench_train_page.py --workspace WS --dataset NAME [--reruns 7]

A workspace with a dataset and some runs (e.g. clothing-small imported and trained as in
BENCHMARKS.md). Prints the median rerun of the Train page and the cost of ``load_training_data``,
the work the page used to do four times per rerun.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--reruns", type=int, default=7)
    args = parser.parse_args()
    os.environ["LABELTUNE_HOME"] = args.workspace
    os.chdir(ROOT)
    from streamlit.testing.v1 import AppTest

    from core.store.workspace import Workspace
    from core.training.pipeline import load_training_data

    ws = Workspace.open(args.workspace)
    started = time.perf_counter()
    for _ in range(10):
        load_training_data(ws, args.dataset)
    load_ms = (time.perf_counter() - started) * 100
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="train_dataset").set_value(args.dataset).run()
    times = []
    for _ in range(args.reruns):
        started = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - started) * 1000)
    print(f"load_training_data: {load_ms:.1f} ms; Train page rerun: median {statistics.median(times):.0f} ms "
          f"({', '.join(f'{t:.0f}' for t in times)})")  # fmt: skip


if __name__ == "__main__":
    main()
