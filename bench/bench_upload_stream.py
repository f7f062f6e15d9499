"""Server memory while the streaming uploader (LabelTune's route, tus-js-client in Chromium) sends big
dataset zips, and what a resume after a killed browser sends twice (issue 29).

    python bench/bench_upload_stream.py [--big-gib 4] [--pair-gib 2]

In one `streamlit run` with its own workspace, nothing else running: (1) one browser uploads a --big-gib
zip through the Dataset page's streaming uploader and imports it; (2) two browser contexts upload a
--pair-gib zip each at once and import them; (3) a browser with a profile on disk starts the big zip,
is killed when the server holds about half of it, starts again with the same profile, and the same file
is chosen: the upload resumes. The zips hold real images (noise PNGs of 2048 x 1366 px, stored, about 8 MB
each, each with a patch of its own so none is a duplicate). Reported: the server's resident memory
idle and at its peak while the bytes arrive and while the imports run (sampled every 0.25 s), as MB
above idle; the import's outcome; for the resume, the bytes the first browser had sent, the offset the
server resumed from, and the bytes sent twice as a share of the file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_load import Sampler, rss_mb  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402

FRAME = "iframe[title*='labeltune_uploader'] >> visible=true"


def image_zip(path: Path, gib: float, seed: int) -> Path:
    """About ``gib`` GiB of distinct stored PNGs in two class folders."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (1366, 2048, 3), dtype=np.uint8)
    one = 2048 * 1366 * 3
    count = max(2, int(gib * 2**30 / one))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for i in range(count):
            base[:32, :32] = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)  # this image's own patch
            out = zf.open(f"{'ab'[i % 2]}/{seed}_{i}.png", "w", force_zip64=True)
            Image.fromarray(base).save(out, format="PNG", compress_level=0)
            out.close()
    return path


def part_bytes(ws: Path) -> int:
    return sum(p.stat().st_size for p in (ws / "staging" / "uploads").glob("*.part"))


def state(page) -> str:
    return page.frame_locator(FRAME).locator("#state").inner_text()


def wait_text(page, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while text not in state(page):
        assert time.monotonic() < deadline, f"waited {seconds} s for {text!r}: {state(page)!r}"
        time.sleep(0.5)


def upload_and_import(pages_and_files: list, seconds: float = 3600) -> float:
    """Choose each file in its page at once, wait until every one is on the server, press Import in each,
    wait until each says Imported. Returns the seconds the bytes took."""
    began = time.monotonic()
    for page, path in pages_and_files:
        page.frame_locator(FRAME).locator("#file").set_input_files(str(path))
    for page, _ in pages_and_files:
        wait_text(page, "is on the server", seconds)
    arrived = time.monotonic() - began
    for page, _ in pages_and_files:
        page.wait_for_timeout(2000)
        page.get_by_role("button", name="Import the uploaded zip").click()
    for page, _ in pages_and_files:
        page.get_by_text("Imported").first.wait_for(timeout=seconds * 1000)
    return arrived


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-gib", type=float, default=4.0)
    parser.add_argument("--pair-gib", type=float, default=2.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_upload_stream_"))
    began = time.monotonic()
    big = image_zip(tmp / "big.zip", args.big_gib, 0)
    pair = [image_zip(tmp / f"pair{i}.zip", args.pair_gib, i + 1) for i in range(2)]
    print(json.dumps({"zips_made_s": round(time.monotonic() - began)}), file=sys.stderr, flush=True)
    server = Server(tmp / "ws", tmp / "server.log").start()
    out: dict = {"big_gib": round(big.stat().st_size / 2**30, 2), "pair_gib": round(pair[0].stat().st_size / 2**30, 2)}
    try:
        time.sleep(3)
        idle = rss_mb(server.proc.pid)
        out["idle_mb"] = round(idle)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

            def fresh_page(folded: bool):
                page = browser.new_context().new_page()
                page.goto(server.url)
                page.get_by_role("heading", name="Dataset").first.wait_for(timeout=60_000)
                if folded:  # a dataset exists: the import section is folded
                    page.locator("summary", has_text="Import a zip").click()
                page.frame_locator(FRAME).locator("#file").wait_for(timeout=60_000, state="attached")
                return page

            for name, work in (("big", [big]), ("pair", pair)):
                sampler = Sampler(server.proc.pid)
                sampler.start()
                pages = []
                for path in work:
                    pages.append((fresh_page(folded=name == "pair"), path))
                seconds = upload_and_import(pages)
                sampler.running = False
                out[name] = {"upload_s": round(seconds, 1), "peak_above_idle_mb": round(sampler.peak - idle),
                             "after_above_idle_mb": round(rss_mb(server.proc.pid) - idle)}  # fmt: skip
                print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
                for page, _ in pages:
                    page.context.close()
            browser.close()

            # The resume: a browser with its profile on disk, killed half-way, started again.
            profile = tmp / "profile"
            context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = context.new_page()
            page.goto(server.url)
            page.locator("summary", has_text="Import a zip").click()
            page.frame_locator(FRAME).locator("#file").set_input_files(str(big))
            size = big.stat().st_size
            while part_bytes(server.workspace) < size / 2:
                time.sleep(0.1)
            sent_text = state(page)  # "N of M MB sent": what the browser had sent
            context.close()  # killed: its requests die with it
            held = part_bytes(server.workspace)
            context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = context.new_page()
            page.goto(server.url)
            page.locator("summary", has_text="Import a zip").click()
            page.frame_locator(FRAME).locator("#file").set_input_files(str(big))
            began = time.monotonic()
            wait_text(page, "is on the server", 3600)
            sent_mb = float(sent_text.split(" of ")[0]) if " of " in sent_text else 0.0
            resent = max(sent_mb * 2**20 - held, 0.0)
            out["resume"] = {"file_mb": round(size / 2**20), "browser_had_sent_mb": sent_mb,
                             "server_held_mb": round(held / 2**20, 1),
                             "sent_twice_mb": round(resent / 2**20, 1), "sent_twice_share": round(resent / size, 4),
                             "rest_s": round(time.monotonic() - began, 1)}  # fmt: skip
            context.close()
    finally:
        server.stop()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
