"""The store on SQLite and on PostgreSQL, measured in the same run, each against a bare baseline on its
own backend.

    python bench/bench_store.py [--data ../shared/data/clothing-small] [--repeat 8] [--jobs 400] [--workers 8]

claims: ``--workers`` processes poll the queue of ``--jobs`` light jobs (``--workers`` light slots) and
  claim them as workers do (``core.jobs.queue.claim``: the write lock, the sweep, the slot count, the
  update), ending each claimed job at once. Latency of a successful claim (median, 95th percentile) and
  claims a second for all workers together; baseline: the same processes each running a bare write
  transaction (the write lock and one UPDATE) as fast as they can. Also counted: the most jobs ever
  running at once (must not pass the slots).
gallery: the Label page's gallery at 10,000 images (clothing-small ``--repeat`` times over, imported into
  SQLite, then moved to PostgreSQL with ``move-store``, so both hold the same rows): one page in the
  middle, unfiltered and filtered by class, with its count; baseline: a bare ``SELECT 1`` on a new
  connection of the same backend (what any page pays before it reads anything).

PostgreSQL is a throwaway local cluster (``tests/postgres.py``): on loopback, fsync off, as in the tests.
A team's server over a network adds its round trip to every statement.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clothing-small"


def _ms(values: list[float]) -> dict:
    values = sorted(values)
    return {"median_ms": round(statistics.median(values) * 1000, 2),
            "p95_ms": round(values[int(len(values) * 0.95) - 1] * 1000, 2), "n": len(values)}  # fmt: skip


def _claimer(root: str, database: str | None, out: mp.Queue, go: mp.Event) -> None:
    from core.errors import JobError
    from core.jobs import queue
    from core.jobs.store import JobStatus, Resource, end_job
    from core.store.workspace import Workspace

    ws = Workspace(Path(root), database)
    latencies, attempts = [], 0
    go.wait()
    while True:
        waiting = [j.id for j in queue.queue(ws, Resource.LIGHT)]
        if not waiting:
            break
        job_id = random.choice(waiting[:8])
        attempts += 1
        start = time.perf_counter()
        try:
            ok = queue.claim(ws, job_id)
        except JobError:  # another worker took it first
            continue
        if ok:
            latencies.append(time.perf_counter() - start)
            with ws.connect() as conn:
                end_job(conn, job_id, JobStatus.COMPLETED)
    out.put({"latencies": latencies, "attempts": attempts})


def _bare_writer(root: str, database: str | None, out: mp.Queue, go: mp.Event, count: int) -> None:
    from core.store.workspace import Workspace

    ws = Workspace(Path(root), database)
    latencies = []
    go.wait()
    for i in range(count):
        start = time.perf_counter()
        with ws.connect() as conn:
            conn.begin_write()
            conn.execute("UPDATE settings SET value = ? WHERE key = ?", (str(i), "bench.counter"))
        latencies.append(time.perf_counter() - start)
    out.put({"latencies": latencies})


def _watch_running(root: str, database: str | None, stop: mp.Event, out: mp.Queue) -> None:
    from core.store.workspace import Workspace

    ws, most = Workspace(Path(root), database), 0
    while not stop.is_set():
        with ws.connect() as conn:
            most = max(most, conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'running'").fetchone()[0])
        time.sleep(0.002)
    out.put(most)


def _in_processes(target, ws, workers: int, *extra) -> tuple[list[dict], float]:
    ctx = mp.get_context("spawn")
    out, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=target, args=(str(ws.root), ws.database, out, go, *extra)) for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(3)  # every process up and imported
    start = time.perf_counter()
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    return results, elapsed


def bench_claims(ws, jobs: int, workers: int) -> dict:
    from core.jobs import queue
    from core.jobs.store import Resource

    queue.set_slots(ws, Resource.LIGHT, workers)
    ws.set_setting("bench.counter", "0")
    for _ in range(jobs):
        queue.submit(ws, "estimate", Resource.LIGHT, {}, start=False)
    ctx = mp.get_context("spawn")
    stop, seen = ctx.Event(), ctx.Queue()
    watcher = ctx.Process(target=_watch_running, args=(str(ws.root), ws.database, stop, seen))
    watcher.start()
    results, elapsed = _in_processes(_claimer, ws, workers)
    stop.set()
    most = seen.get(timeout=60)
    watcher.join()
    claims = [x for r in results for x in r["latencies"]]
    bare, bare_elapsed = _in_processes(_bare_writer, ws, workers, jobs // workers)
    writes = [x for r in bare for x in r["latencies"]]
    return {
        "claim": _ms(claims), "claims_per_s": round(len(claims) / elapsed, 1),
        "attempts": sum(r["attempts"] for r in results), "most_running_at_once": most, "slots": workers,
        "bare_write": _ms(writes), "bare_writes_per_s": round(len(writes) / bare_elapsed, 1),
        "claim_over_bare_median": round(statistics.median(claims) / statistics.median(writes), 2),
    }  # fmt: skip


def bench_gallery(stores: dict, rounds: int) -> dict:
    """``stores``: backend name → workspace, the same rows in each; rounds alternate between them."""
    from core.datasets.catalog import load_dataset
    from core.datasets.gallery import GalleryFilter, gallery_page
    from core.store.workspace import Workspace

    summary = load_dataset(next(iter(stores.values())), "bench")
    middle = summary.images // 60 // 2
    label = max(summary.classes, key=summary.classes.get)
    times = {name: {"page": [], "filtered_page": [], "bare_select": []} for name in stores}
    for ws in stores.values():
        gallery_page(ws, "bench", GalleryFilter(), middle)  # connections and caches warm
    for _ in range(rounds):
        for name, ws in stores.items():
            start = time.perf_counter()
            images, total = gallery_page(ws, "bench", GalleryFilter(), middle)
            times[name]["page"].append(time.perf_counter() - start)
            start = time.perf_counter()
            gallery_page(ws, "bench", GalleryFilter(label=label), 1)
            times[name]["filtered_page"].append(time.perf_counter() - start)
            start = time.perf_counter()
            with Workspace(ws.root, ws.database).connect() as conn:
                conn.execute("SELECT 1").fetchone()
            times[name]["bare_select"].append(time.perf_counter() - start)
            assert len(images) == 60 and total == summary.images
    out = {"images": summary.images}
    for name, t in times.items():
        out[name] = {k: _ms(v) for k, v in t.items()}
        out[name]["page_over_bare_median"] = round(
            statistics.median(t["page"]) / statistics.median(t["bare_select"]), 2
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    from bench.bench_train import workspace_with
    from core.store.move import move_store
    from core.store.workspace import Workspace
    from tests import postgres

    report: dict = {"workers": args.workers, "jobs": args.jobs}
    with tempfile.TemporaryDirectory() as tmp, postgres.cluster() as server:
        tmp = Path(tmp)
        lite = workspace_with(args.data, tmp / "gallery", args.repeat)
        url = postgres.create_database(server)
        start = time.perf_counter()
        moved = move_store(lite, url)
        report["move_store"] = {"seconds": round(time.perf_counter() - start, 2), "rows": sum(moved["rows"].values())}
        # The SQLite file keeps every row (marked moved: Workspace.open would refuse it, a bare connection reads it).
        report["gallery"] = bench_gallery({"sqlite": Workspace(lite.root), "postgresql": Workspace(lite.root, url)},
                                          args.rounds)  # fmt: skip
        for name, database in (("sqlite", None), ("postgresql", postgres.create_database(server))):
            ws = Workspace.open(tmp / f"claims-{name}", database)
            report.setdefault("claims", {})[name] = bench_claims(ws, args.jobs, args.workers)
            print(name, json.dumps(report["claims"][name]), flush=True)
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
