"""A bounded load test on loopback: 10 browser sessions browse the Label gallery and the Evaluate page of a
10,000-image dataset while a run trains.

    python bench/bench_load.py [--sessions 10] [--images 10000] [--seconds 120]

One `streamlit run` on a free loopback port, its own temporary workspace; Chromium (Debian's, through
playwright) with one browser context per session (separate cookies and websocket sessions). Each session
opens the app, then goes back and forth between Label (the gallery's first page of thumbnails) and
Evaluate (figures and confusion matrix of a trained run) through the sidebar, as a person does; a page's
time is from the click until its heading is drawn and Streamlit's script state reads "notRunning" again.
Meanwhile a second run trains in its worker (MobileNetV2 ×0.35 from scratch at 32 px, 10 steps an epoch,
no feature cache, so every epoch costs the same); its epochs per minute are measured over the same length
of time first without the browsers (the baseline), then with them. The server's memory is its resident set
(VmRSS from /proc), sampled every 0.25 s. Any Streamlit exception box or failed request counts as an error.

Prints one JSON object: the page times (p50, p95, max) per page, the number of page loads and errors,
the server's RSS idle and peak, and the training run's epochs per minute without and with the load.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.datasets.ingest import import_archive  # noqa: E402
from core.jobs import queue  # noqa: E402
from core.runs import store as runs  # noqa: E402
from core.runs.config import TrainConfig  # noqa: E402
from core.store.workspace import Workspace  # noqa: E402
from core.training.jobs import start_run, train_here  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402

CLASSES = 10


def make_dataset(path: Path, images: int) -> Path:
    """``images`` distinct 64 px JPEGs in ten colour classes (noise over a class colour)."""
    rng = np.random.default_rng(0)
    colours = rng.integers(30, 225, (CLASSES, 3))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(images):
            c = i % CLASSES
            pixels = np.clip(colours[c] + rng.integers(-40, 40, (64, 64, 3)), 0, 255).astype(np.uint8)
            out = io.BytesIO()
            Image.fromarray(pixels).save(out, format="JPEG", quality=85)
            zf.writestr(f"class_{c}/{i}.jpg", out.getvalue())
    return path


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.25)


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process so far (/proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chromium_cpu_s() -> float:
    """CPU seconds of every Chromium process now alive (the browsers of this benchmark)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if "chrom" in (proc / "comm").read_text():
                    total += cpu_s(int(proc.name))
            except OSError:
                continue
    return total


def epochs(ws: Workspace, run_id: str) -> int:
    return len(runs.read_metrics(ws, run_id))


async def settle(page, seconds: float = 120) -> None:
    deadline, quiet = time.monotonic() + seconds, 0
    await page.wait_for_timeout(150)
    while quiet < 3:
        if time.monotonic() > deadline:
            raise TimeoutError("the page never finished running")
        state = await page.locator("[data-testid=stApp]").get_attribute("data-test-script-state")
        quiet = quiet + 1 if state == "notRunning" else 0
        await page.wait_for_timeout(100)


async def session(browser, url: str, until: float, times: dict, errors: list) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))

    def bad(response) -> None:
        probe = response.url.endswith(("/_stcore/health", "/_stcore/host-config"))
        if response.status >= 400 and not probe:
            errors.append(f"{response.status} {response.url}")

    page.on("response", bad)
    await page.goto(url)
    await page.get_by_role("heading", name="Dataset").first.wait_for(timeout=120_000)
    await settle(page)
    visit = 0
    while time.monotonic() < until:
        visit += 1
        for name, ready in (("Label", "[data-testid=stImage] img"), ("Evaluate", "text=Confusion matrix")):
            started = time.monotonic()
            await page.locator("[data-testid=stSidebarNav] a", has_text=name).first.click()
            await page.get_by_role("heading", name=name).first.wait_for(timeout=120_000)
            await page.locator(ready).first.wait_for(timeout=120_000)
            await settle(page)
            times[name if visit > 1 else f"{name} (first visit)"].append(time.monotonic() - started)
            if await page.locator("[data-testid=stException]").count():
                errors.append(f"exception box on {name}")
    await context.close()


async def browse(url: str, sessions: int, seconds: float) -> tuple[dict, list]:
    from playwright.async_api import async_playwright

    times: dict[str, list[float]] = {
        k: [] for k in ("Label", "Evaluate", "Label (first visit)", "Evaluate (first visit)")
    }
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        until = time.monotonic() + seconds
        await asyncio.gather(*(session(browser, url, until, times, errors) for _ in range(sessions)))
        times["chromium_cpu_s"] = [chromium_cpu_s()]
        await browser.close()
    return times, errors


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "p50_s": round(statistics.median(ordered), 2),
        "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max_s": round(ordered[-1], 2),
        "loads": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the baseline and of the load")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_load_"))
    ws = Workspace.open(tmp / "ws")
    started = time.monotonic()
    import_archive(ws, make_dataset(tmp / "d.zip", args.images), name="load")
    imported_s = time.monotonic() - started
    tiny = dict(dataset="load", backbone="mobilenet_v2_0.35", weights="none", image_size=32, augment="none",
                feature_cache=False, jit_compile="off", early_stopping=0, steps_per_epoch=10)  # fmt: skip
    evaluated = train_here(ws, TrainConfig(**tiny, head_epochs=2, fine_tune_epochs=0))  # predictions stored
    assert evaluated.status == "completed", evaluated.error

    server = Server(ws.root, tmp / "server.log").start()
    sampler = Sampler(server.proc.pid)
    sampler.start()
    time.sleep(5)
    idle_mb = rss_mb(server.proc.pid)
    run_id = start_run(ws, TrainConfig(**tiny, head_epochs=0, fine_tune_epochs=1000))
    deadline = time.monotonic() + 300
    while epochs(ws, run_id) < 3 and time.monotonic() < deadline:  # past its start-up
        queue.schedule(ws)
        time.sleep(1)
    first = epochs(ws, run_id)
    time.sleep(args.seconds)
    baseline = (epochs(ws, run_id) - first) / args.seconds * 60
    first = epochs(ws, run_id)
    began, server_cpu = time.monotonic(), cpu_s(server.proc.pid)
    times, errors = asyncio.run(browse(server.url, args.sessions, args.seconds))
    loaded_s = time.monotonic() - began
    server_cpu = cpu_s(server.proc.pid) - server_cpu
    loaded = (epochs(ws, run_id) - first) / loaded_s * 60
    runs.request_stop(ws, run_id)
    sampler.running = False
    server.stop()
    print(json.dumps({
        "sessions": args.sessions, "images": args.images, "import_s": round(imported_s, 1),
        "label": quantiles(times["Label"]), "evaluate": quantiles(times["Evaluate"]),
        "label_first_visit": quantiles(times["Label (first visit)"]),
        "evaluate_first_visit": quantiles(times["Evaluate (first visit)"]),
        "load_window_s": round(loaded_s, 1), "cpu_s_available": round(loaded_s * (os.cpu_count() or 1), 1),
        "server_cpu_s": round(server_cpu, 1), "chromium_cpu_s": round(times["chromium_cpu_s"][0], 1),
        "errors": len(errors), "first_errors": errors[:5],
        "server_rss_idle_mb": round(idle_mb), "server_rss_peak_mb": round(sampler.peak),
        "train_epochs_per_min_alone": round(baseline, 2), "train_epochs_per_min_under_load": round(loaded, 2),
        "train_speed_ratio": round(loaded / baseline, 2) if baseline else None,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
