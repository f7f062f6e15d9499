"""Import throughput and memory against a bare Pillow loop, in one run.

    python bench/bench_import.py [--data ../shared/data/clothing-small] [--repeat 4]

Each measurement runs in its own child process (so peak RSS is its own):
- baseline: a bare single-threaded Pillow loop over the same JPEG files on disk: open, full
  decode, 256 px thumbnail. Nothing else (no hashing, no writes, no database).
- import: `core.datasets.ingest.import_archive` of the same files zipped, into a fresh workspace.
- import xN: the same images repeated N times in one zip, to show peak memory does not grow
  with the number of images (streaming).
Prints a JSON summary; BENCHMARKS.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def image_files(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def child_baseline(data: Path) -> dict:
    from PIL import Image

    files = image_files(data)
    start = time.perf_counter()
    for path in files:
        with Image.open(path) as img:
            img.load()
            img.thumbnail((256, 256))
    seconds = time.perf_counter() - start
    return {"images": len(files), "seconds": seconds}


def child_import(zip_path: Path) -> dict:
    from core.datasets.ingest import import_archive
    from core.store.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.open(Path(tmp) / "ws")
        start = time.perf_counter()
        result = import_archive(ws, zip_path, name="bench")
        seconds = time.perf_counter() - start
    return {"images": result.images, "seconds": seconds}


def build_zip(data: Path, target: Path, repeat: int) -> Path:
    files = image_files(data)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for copy in range(repeat):
            for path in files:
                rel = path.relative_to(data)
                name = rel.as_posix() if copy == 0 else f"{rel.parent.as_posix()}/copy{copy}_{rel.name}"
                zf.write(path, name)
    return target


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clothing-small")
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"))
    args = parser.parse_args()
    if args.child:
        mode, path = args.child
        result = child_baseline(Path(path)) if mode == "baseline" else child_import(Path(path))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        once = build_zip(args.data, Path(tmp) / "once.zip", 1)
        many = build_zip(args.data, Path(tmp) / "many.zip", args.repeat)
        baseline = run_child("baseline", str(args.data))
        imported = run_child("import", str(once))
        imported_many = run_child("import", str(many))
    rate = {k: v["images"] / v["seconds"] for k, v in (("baseline", baseline), ("import", imported))}
    summary = {
        "cpus": os.cpu_count(),
        "images": imported["images"],
        "baseline_images_per_s": round(rate["baseline"], 1),
        "import_images_per_s": round(rate["import"], 1),
        "throughput_ratio": round(rate["import"] / rate["baseline"], 3),
        "target_ratio": 0.7,
        "peak_rss_mb_import": round(imported["peak_rss_mb"], 1),
        f"peak_rss_mb_import_x{args.repeat}": round(imported_many["peak_rss_mb"], 1),
        f"images_x{args.repeat}": imported_many["images"],
        "peak_rss_growth": round(imported_many["peak_rss_mb"] / imported["peak_rss_mb"], 3),
        "peak_rss_mb_baseline": round(baseline["peak_rss_mb"], 1),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
