"""Regenerate the README's screenshots: a fresh workspace with the sample dataset and one quick run,
the app under ``streamlit run``, headless Chromium visiting each page.

    pip install playwright && python docs/screenshots.py [--chromium /usr/bin/chromium] [--lang en|zh]

Writes docs/img/<page>[-zh].png (1280 px wide, palette PNGs of a few hundred KB). Uses the bundled
MobileNetV2 x0.35 ImageNet weights, so it works offline; about two minutes on a laptop CPU.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
PAGES = ("dataset", "label", "train", "evaluate", "predict")
PORT = 8611


def cli(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--lang", default="en", choices=["en", "zh"])
    args = parser.parse_args()
    from PIL import Image
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "LABELTUNE_HOME": f"{tmp}/ws", "KERAS_HOME": f"{tmp}/keras"}
        cli(env, "sample-dataset")
        cli(env, "train", "--dataset", "clothing-sample", "--backbone", "mobilenet_v2_0.35", "--fine-tune-epochs", "2")
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
             "--server.port", str(PORT)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(6)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium)
                page = browser.new_page(
                    viewport={"width": 1280, "height": 900}, locale="zh-CN" if args.lang == "zh" else "en-US"
                )
                page.goto(f"http://localhost:{PORT}/")
                page.wait_for_timeout(8000)
                for name in PAGES:
                    page.goto(f"http://localhost:{PORT}/{name}")
                    page.wait_for_timeout(9000 if name in ("evaluate", "predict") else 5000)
                    if page.get_by_text("Page not found").count():  # the server was still starting: again
                        page.keyboard.press("Escape")
                        page.goto(f"http://localhost:{PORT}/{name}")
                        page.wait_for_timeout(8000)
                    if name == "predict":
                        sample = next((ROOT / "core/datasets/sample_data/shoes").glob("*.jpg"))
                        page.set_input_files(".st-key-images input[type=file]", str(sample))
                        page.wait_for_timeout(6000)
                    suffix = "" if args.lang == "en" else "-zh"
                    target = OUT / f"{name}{suffix}.png"
                    page.screenshot(path=str(target))
                    Image.open(target).convert("RGB").quantize(128).save(target, optimize=True)
                browser.close()
        finally:
            server.terminate()


if __name__ == "__main__":
    main()
