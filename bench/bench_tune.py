"""A 5-minute tune against the Balanced default, each as a whole command-line call, over seeds.

    python bench/bench_tune.py [--budget 5m] [--seeds 3] [--data ../shared/data/clothing-small]

For each seed, in a fresh workspace each (so the tune pays for its own feature extraction): the default
run (``python -m core train --dataset bench --seed S``: the advice for this machine, the balanced recipe),
and ``python -m core tune --dataset bench --budget 5m --seed S``. Reports test accuracy and the wall time
of each call (start to exit), the tune's trials and chosen settings, and whether the tune stayed within
its budget + 10 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATA = ROOT.parent / "shared" / "data" / "clothing-small"


def call(ws: Path, *args: str) -> tuple[dict, float]:
    command = [sys.executable, "-m", "core", *args, "--workspace", str(ws), "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="5m")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()

    from bench_train import zip_folder

    from core.training.tune import parse_budget

    budget_s = parse_budget(args.budget)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        archive = zip_folder(args.data, Path(tmp) / "data.zip")
        for seed in range(args.seeds):
            row: dict = {"seed": seed}
            for what in ("default", "tune"):
                ws = Path(tmp) / f"{what}-{seed}"
                call(ws, "import", str(archive), "--name", "bench")
                if what == "default":
                    report, seconds = call(ws, "train", "--dataset", "bench", "--seed", str(seed))
                    row["default"] = {"test_accuracy": report["test_accuracy"], "val_accuracy": report["val_accuracy"],
                                      "seconds": round(seconds, 1)}  # fmt: skip
                    row["default_config"] = _config(ws, report["run"])
                else:
                    report, seconds = call(
                        ws, "tune", "--dataset", "bench", "--budget", args.budget, "--seed", str(seed)
                    )
                    run = report["run"]
                    row["tune"] = {"test_accuracy": run["test_accuracy"], "val_accuracy": run["val_accuracy"],
                                   "seconds": round(seconds, 1), "within_budget_10pct": seconds <= 1.1 * budget_s,
                                   "trials": len(report["trials"]),
                                   "failed_trials": sum(t["state"] == "failed" for t in report["trials"]),
                                   "best": report["best"], "fine_tune_epochs": _config(ws, run["run"])["fine_tune_epochs"]}  # fmt: skip
                print(json.dumps({what: row[what], "seed": seed}), file=sys.stderr, flush=True)
            rows.append(row)
    out = {"budget_s": budget_s, "rows": rows}
    for what in ("default", "tune"):
        out[f"{what}_mean_test_accuracy"] = round(statistics.mean(r[what]["test_accuracy"] for r in rows), 4)
        out[f"{what}_max_seconds"] = max(r[what]["seconds"] for r in rows)
    print(json.dumps(out, indent=2))


def _config(ws: Path, run_id: str) -> dict:
    from core.runs import store as runs
    from core.store.workspace import Workspace

    return runs.get_run(Workspace.open(ws), run_id).config.to_dict()


if __name__ == "__main__":
    main()
