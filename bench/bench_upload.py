"""Server memory while browsers upload zips and then import them (issue 21 §4: uploads and memory).

Streamlit receives an upload into the server's memory (its upload endpoint reads the whole file, and its
uploaded-file manager keeps the bytes); nothing in the app can change that while the bytes arrive. What
LabelTune controls is what happens next: Import spools the upload to the workspace's staging folder (the
import job owns that copy) and lets go of Streamlit's (``ui.uploader.hand_over``). This measures both:

    python bench/bench_upload.py [--mb 1024] [--sessions 2]

Each of ``--sessions`` browser sessions (one Chromium, one context each) uploads its own zip of ``--mb``
MB (random bytes, stored: a valid zip the import then rejects for holding no image) at the same time,
then presses Import. Reported: the server's resident memory idle, at its peak while the uploads arrive
(sampled every 0.25 s), once every upload has arrived, and after Import; each as MB above idle and as a
ratio to the bytes uploaded (the bare baseline: what holding every upload once costs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_load import Sampler, rss_mb  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402


def make_zip(path: Path, mb: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        with zf.open("blob/data.bin", "w", force_zip64=True) as out:
            for _ in range(mb):
                out.write(os.urandom(2**20))
    return path


async def upload(browser, url: str, archive: Path) -> tuple[object, object]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(url)
    await page.locator(".st-key-upload input[type=file]").set_input_files(str(archive))
    await page.locator(".st-key-import button:not([disabled])").wait_for(timeout=600_000)  # arrived
    return context, page


async def run(url: str, archives: list[Path], server_pid: int) -> dict[str, float]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        began = time.monotonic()
        sessions = await asyncio.gather(*(upload(browser, url, a) for a in archives))
        arrived_s = time.monotonic() - began
        await asyncio.sleep(2)
        arrived = rss_mb(server_pid)
        for _, page in sessions:
            await page.locator(".st-key-import button").click()
        for _, page in sessions:  # the uploader starts over, empty: the job has its copy
            await page.locator(".st-key-upload_1").wait_for(timeout=120_000)
        await asyncio.sleep(3)
        after = rss_mb(server_pid)
        await browser.close()
    return {"arrived_mb": arrived, "after_import_mb": after, "upload_s": arrived_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1024, help="size of each upload")
    parser.add_argument("--sessions", type=int, default=2, help="browser sessions uploading at once")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_upload_"))
    archives = [make_zip(tmp / f"upload{i}.zip", args.mb) for i in range(args.sessions)]
    uploaded_mb = sum(a.stat().st_size for a in archives) / 2**20
    server = Server(tmp / "ws", tmp / "server.log").start()
    try:
        time.sleep(3)
        idle = rss_mb(server.proc.pid)
        sampler = Sampler(server.proc.pid)
        sampler.start()
        figures = asyncio.run(run(server.url, archives, server.proc.pid))
        sampler.running = False
    finally:
        server.stop()
    peak = max(sampler.peak, figures["arrived_mb"])
    result = {
        "sessions": args.sessions,
        "uploaded_mb": round(uploaded_mb),
        "idle_mb": round(idle),
        "peak_above_idle_mb": round(peak - idle),
        "peak_ratio_to_uploaded": round((peak - idle) / uploaded_mb, 2),
        "arrived_above_idle_mb": round(figures["arrived_mb"] - idle),
        "after_import_above_idle_mb": round(figures["after_import_mb"] - idle),
        "after_import_ratio_to_uploaded": round((figures["after_import_mb"] - idle) / uploaded_mb, 2),
        "upload_s": round(figures["upload_s"], 1),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
