"""Label-page benchmarks on a 10,000-image dataset, each against a bare baseline in the same run.

    python bench/bench_label.py [--data ../shared/data/clothing-small] [--repeat 8] [--rounds 20]

gallery: one page of 60 thumbnails as the page gets it (the filtered, paged query, then the 60 thumbnail
  files read) against reading the same 60 files straight from disk. Target: at most 1.5 times.
relabel: one relabel of 1,000 selected images (one transaction, version bump, change log). Target: < 1 s.
queue: the labeling page's own time per image (AppTest: click a class button, the page reruns with the
  next image), and the images per minute that leaves for the human.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clothing-small"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    from bench.bench_train import workspace_with
    from core.datasets import editing
    from core.datasets.catalog import load_dataset
    from core.datasets.gallery import UNLABELED_FILTER, GalleryFilter, gallery_page, matching_ids

    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace_with(args.data, Path(tmp), args.repeat)
        total = load_dataset(ws, "bench").images
        page = total // 60 // 2  # a page in the middle: OFFSET has to skip half the dataset
        f = GalleryFilter(label="t-shirt")
        gallery, bare = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            images, _ = gallery_page(ws, "bench", GalleryFilter(), page)
            for image in images:
                image.thumb.read_bytes()
            gallery.append(time.perf_counter() - start)
            start = time.perf_counter()
            for path in [image.thumb for image in images]:
                path.read_bytes()
            bare.append(time.perf_counter() - start)
        filtered = [0.0] * args.rounds
        for i in range(args.rounds):
            start = time.perf_counter()
            gallery_page(ws, "bench", f, 1)
            filtered[i] = time.perf_counter() - start
        ids = matching_ids(ws, "bench", GalleryFilter())[:1000]
        relabels = []
        for i in range(5):
            start = time.perf_counter()
            editing.relabel(ws, "bench", ids, "shirt" if i % 2 else "pants")
            relabels.append(time.perf_counter() - start)
        # The labeling queue: a few hundred images made unlabeled, then labeled by clicking as a user would.
        editing.relabel(ws, "bench", ids[:40], None)
        os.environ["LABELTUNE_HOME"] = str(ws.root)
        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
        at.run()
        at.switch_page("pages/label.py").run()
        at.button_group(key="label_view").set_value("queue").run()
        clicks = []
        for _ in range(20):
            start = time.perf_counter()
            at.button(key="q_0").click().run()
            clicks.append(time.perf_counter() - start)
        left = len(matching_ids(ws, "bench", GalleryFilter(UNLABELED_FILTER)))
    g, b = statistics.median(gallery), statistics.median(bare)
    per_image = statistics.median(clicks)
    print(
        json.dumps(
            {
                "images": total,
                "gallery_page_ms": round(1000 * g, 2),
                "bare_read_60_thumbs_ms": round(1000 * b, 2),
                "gallery_ratio": round(g / b, 2),
                "gallery_target_max": 1.5,
                "filtered_page_query_ms": round(1000 * statistics.median(filtered), 2),
                "relabel_1000_ms": round(1000 * statistics.median(relabels), 1),
                "relabel_target_ms": 1000,
                "queue_page_s_per_image": round(per_image, 3),
                "queue_images_left_of_40": left,
                "queue_page_limit_per_minute": round(60 / per_image, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
