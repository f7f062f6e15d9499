"""What running heavy work as jobs costs, and what light jobs beside a training run cost it.

    python bench/bench_jobs.py import [--data ../shared/data/clothing-small] [--rounds 3]
    python bench/bench_jobs.py beside [--data ../shared/data/clothing-small]

``import``, whole calls, in rounds that alternate the three (each first in turn) so a slow spell on this
shared machine lands on all of them:
- bare: ``core.datasets.ingest.import_archive`` called in this process (what bench_import.py measures);
- cli: ``python -m core import ZIP`` from start to exit (a job run in the foreground: interpreter start,
  the job's row, heartbeat, progress);
- app: what the Dataset page does, from the click to the job's completion (the upload spooled to the
  staging folder, the job queued, a worker process started by the scheduler, the import in it).

``beside``: a training run's speed (images/s over its epochs after the first, from its own metrics) alone,
then with light jobs running beside it all along, as the app starts them (batch predictions of the
training split, in workers niced to 10), then with the same work not niced (``python -m core
predictions`` in the foreground, as a user's terminal would run it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clothing-small"


def zip_of(data: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"}):
            zf.write(path, path.relative_to(data).as_posix())
    return target


def bench_import(args: argparse.Namespace) -> dict:
    from core.datasets.ingest import import_archive
    from core.datasets.jobs import start_import
    from core.jobs.processes import pid_alive
    from core.jobs.store import get_job
    from core.store.workspace import Workspace

    times: dict[str, list[float]] = {"bare": [], "cli": [], "app": []}
    with tempfile.TemporaryDirectory() as tmp:
        archive = zip_of(args.data, Path(tmp) / "clothing.zip")
        images = 0
        order = list(times)
        for round_ in range(args.rounds):
            for how in order[round_ % 3 :] + order[: round_ % 3]:  # each goes first once: no warm-up favours one
                ws_root = Path(tmp) / f"{how}-{round_}"
                started = time.perf_counter()
                if how == "bare":
                    images = import_archive(Workspace.open(ws_root), archive, name="bench").images
                elif how == "cli":
                    command = [sys.executable, "-m", "core", "import", str(archive), "--name", "bench", "--workspace",
                               str(ws_root), "--json"]  # fmt: skip
                    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
                else:
                    ws = Workspace.open(ws_root)
                    with open(archive, "rb") as upload:
                        job_id = start_import(ws, upload, archive.name, name="bench")
                    while get_job(ws, job_id).live:
                        time.sleep(0.02)
                    assert get_job(ws, job_id).result["images"] == images
                times[how].append(time.perf_counter() - started)
                if how == "app":  # the worker ends just after its job: let it go before its folder does
                    while pid_alive(get_job(ws, job_id).pid):
                        time.sleep(0.02)
                shutil.rmtree(ws_root)
    median = {how: statistics.median(values) for how, values in times.items()}
    return {
        "images": images,
        "seconds": {how: round(v, 2) for how, v in median.items()},
        "images_per_s": {how: round(images / v, 1) for how, v in median.items()},
        "cli_over_bare": round(median["cli"] / median["bare"], 3),
        "app_over_bare": round(median["app"] / median["bare"], 3),
        "rounds": args.rounds,
    }


def _speed(ws, run_id: str) -> float:
    from core.runs import store as runs

    rates = [m["images_per_s"] for m in runs.read_metrics(ws, run_id)][1:]  # the first epoch traces
    return statistics.median(rates)


def bench_beside(args: argparse.Namespace) -> dict:
    from core.jobs.store import list_jobs
    from core.prediction.jobs import start_batch
    from core.runs import store as runs
    from core.runs.config import TrainConfig
    from core.store.workspace import Workspace
    from core.training.jobs import start_run
    from tests.jobs import wait_for

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        command = [sys.executable, "-m", "core", "import", str(zip_of(args.data, Path(tmp) / "c.zip")), "--name",
                   "bench", "--workspace", str(ws.root), "--json"]  # fmt: skip
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        config = TrainConfig(dataset="bench", backbone="mobilenet_v2_0.35", weights="none", image_size=args.size,
                             batch_size=32, head_epochs=args.epochs, fine_tune_epochs=0, feature_cache=False,
                             augment="none", early_stopping=0)  # fmt: skip
        out: dict[str, object] = {"size": args.size, "epochs": args.epochs, "cpus": os.cpu_count()}
        alone = start_run(ws, config)
        wait_for(ws, runs.get_run(ws, alone).job.id, lambda j: not j.live, seconds=3600)
        out["alone_images_per_s"] = round(_speed(ws, alone), 1)
        for label in ("niced_jobs", "not_niced_cli"):
            run_id = start_run(ws, TrainConfig(**{**config.to_dict(), "seed": 7 if label == "niced_jobs" else 8}))
            job = runs.get_run(ws, run_id).job.id
            wait_for(ws, job, lambda j: j.status.value == "running", seconds=600)
            beside = 0
            foreground = None
            while runs.get_run(ws, run_id).live:
                if label == "niced_jobs":
                    if not list_jobs(ws, kinds=("predict_batch",), live_only=True):
                        start_batch(ws, alone, split="train")
                        beside += 1
                elif foreground is None or foreground.poll() is not None:
                    foreground = subprocess.Popen(
                        [sys.executable, "-m", "core", "predictions", alone, "--split", "train", "--workspace",
                         str(ws.root), "--json"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    beside += 1
                time.sleep(0.5)
            if foreground is not None:
                foreground.wait()
            out[f"{label}_images_per_s"] = round(_speed(ws, run_id), 1)
            out[f"{label}_light_jobs_started"] = beside
        for label in ("niced_jobs", "not_niced_cli"):
            out[f"{label}_slowdown"] = round(1 - out[f"{label}_images_per_s"] / out["alone_images_per_s"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["import", "beside"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    result = bench_import(args) if args.which == "import" else bench_beside(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
