"""How soon a light job shows progress, and how soon it ends, with and without a warm worker.

    python bench/bench_warm.py [--data ../shared/data/clothing-small] [--rounds 10] [--kind estimate]
    python bench/bench_warm.py --parts      # where the estimate's time goes, part by part, in this process

A light job (by default "Estimate the time" of the advised run, measured anew each time; the preview and
the LR sweep with a new seed each time, so that none is found cached) is started as
the Train page starts it (queued, then the scheduler) on an idle machine, ``--rounds`` times in each mode:

- cold: every light job starts its own worker process (``LABELTUNE_WARM_IDLE_S=0``: how every light job
  ran before warm workers);
- warm: the worker of the previous light job is still up (TensorFlow loaded) and is handed the job.

Reported per mode: the median (and min, max) seconds from the click to the job's first progress report,
and to its end. The two modes alternate round by round, so a slow spell of this shared machine lands on
both. The first warm round starts the worker that the later ones reuse: it is a cold start and is left
out of the warm figures (``--rounds`` warm figures are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clothing-small"

from bench.bench_jobs import zip_of  # noqa: E402
from core.datasets.ingest import import_archive  # noqa: E402
from core.jobs import queue  # noqa: E402
from core.jobs.store import JobStatus, get_job  # noqa: E402
from core.runs.config import TrainConfig  # noqa: E402
from core.store.workspace import Workspace  # noqa: E402
from core.training import jobs as training_jobs  # noqa: E402
from core.training.advice import advise_dataset  # noqa: E402

KINDS = {"estimate": training_jobs.ESTIMATE, "preview": training_jobs.PREVIEW, "lr_find": training_jobs.LR_FIND}


SEEDS = iter(range(1, 10_000))  # a new seed each time: a preview or a sweep is never found cached


def one(ws: Workspace, kind, config: TrainConfig) -> tuple[float, float, int]:
    """Seconds to the first progress report and to the end, and the worker's pid."""
    config = replace(config, seed=next(SEEDS))
    started = time.perf_counter()
    job_id = training_jobs.start_plan_job(ws, kind, config, remeasure=True)
    first = None
    while True:
        queue.schedule(ws)  # as the page's poll does
        job = get_job(ws, job_id)
        if first is None and (job.done > 0 or job.phase):
            first = time.perf_counter() - started
        if not job.live:
            break
        time.sleep(0.02)
    assert job.status is JobStatus.COMPLETED, job
    return first or time.perf_counter() - started, time.perf_counter() - started, job.pid


def parts(ws: Workspace, config: TrainConfig) -> None:
    """The estimate's timing, part by part: TensorFlow's import, then each part ``step_timer.measure``
    reports (build, frozen-base steps, inference, fine-tuning steps, save, decoding)."""
    started = time.perf_counter()
    import tensorflow  # noqa: F401 - its import is the first part timed

    imported = time.perf_counter() - started
    from core.training import step_timer
    from core.training.pipeline import load_training_data

    data = load_training_data(ws, config.dataset)
    stamps: list[float] = []
    began = time.perf_counter()
    times = step_timer.measure(config, data, lambda done, total: stamps.append(time.perf_counter() - began))
    names = ("build", "frozen-base steps", "inference", "fine-tuning steps", "save", "decoding")
    gaps = [b - a for a, b in zip([0.0, *stamps], stamps, strict=False)]
    print(json.dumps({"import_tensorflow_s": round(imported, 2),
                      **{f"{n}_s": round(g, 2) for n, g in zip(names, gaps, strict=True)},
                      "timing_total_s": round(stamps[-1], 2), "step_times": times.to_dict()}, indent=2))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--kind", choices=sorted(KINDS), default="estimate")
    parser.add_argument("--parts", action="store_true", help="time the estimate part by part, in this process")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-warm-"))
    ws = Workspace.open(tmp / "ws")
    import_archive(ws, zip_of(args.data, tmp / "data.zip"), name="d")
    advice = advise_dataset(ws, "d")
    config = TrainConfig(dataset="d", **advice.values())
    if args.parts:
        return parts(ws, config)
    print(f"{args.kind} of {config.backbone} at {config.size} px, {args.rounds} rounds per mode", flush=True)
    figures: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
    warm_pid = None
    for round_ in range(args.rounds + 1):
        for mode in ("cold", "warm") if round_ % 2 else ("warm", "cold"):
            os.environ[queue.WARM_IDLE_ENV] = "0" if mode == "cold" else "600"
            if mode == "cold" and round_ == args.rounds:
                continue  # the extra round is the warm worker's own start
            first, end, pid = one(ws, KINDS[args.kind], config)
            if mode == "warm" and pid != warm_pid:
                print(f"  warm worker started (pid {pid}): its own cold start, not counted", flush=True)
                warm_pid = pid
                continue
            figures[mode].append((first, end))
            print(f"  {mode}: first progress {first:.2f} s, end {end:.2f} s", flush=True)
    result = {}
    for mode, rows in figures.items():
        firsts, ends = [r[0] for r in rows], [r[1] for r in rows]
        result[mode] = {
            "first_progress_median_s": round(statistics.median(firsts), 2),
            "first_progress_range_s": [round(min(firsts), 2), round(max(firsts), 2)],
            "end_median_s": round(statistics.median(ends), 2),
            "rounds": len(rows),
        }
    print(json.dumps(result, indent=2))
    if warm_pid:
        os.kill(warm_pid, signal.SIGTERM)  # it would wait 10 minutes for another job


if __name__ == "__main__":
    main()
