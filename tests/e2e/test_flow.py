"""The whole flow in Chromium against `streamlit run`, as a person does it: upload a zip, relabel an image in
the gallery, label an unlabeled one with a key press, start a tiny training run from the form, leave the
Train page and come back while it trains, evaluate, predict an uploaded photo, build and download an
export, then switch to Chinese and visit every page.

It fails on any Streamlit exception box or browser console error, and saves a screenshot per step in
``e2e-shots/flow/`` (``LABELTUNE_E2E_SHOTS``; CI keeps the folder as an artifact)."""

from __future__ import annotations

import io
import os
import re
import time
import zipfile
from pathlib import Path

from PIL import Image

from core.datasets.catalog import load_dataset
from core.i18n import LANGUAGES, tr
from core.runs import store as runs
from core.store.workspace import Workspace
from tests.builders import make_zip, separable
from tests.e2e.conftest import sync_api

COLOURS = {"红色": (220, 30, 30), "蓝色": (30, 40, 220)}
SHOTS = Path(os.environ.get("LABELTUNE_E2E_SHOTS", Path(__file__).resolve().parents[2] / "e2e-shots"))
PAGES_ZH = ("数据集", "标注", "训练", "评估", "预测", "任务")
# The start of the app's last line of defence (ui.guard.report_unexpected), in each language.
STOPPED = tuple(re.escape(tr("app.unexpected", lang, ref="\0").split("\0")[0]) for lang in LANGUAGES)


def flow_zip(folder: Path) -> Path:
    """Two classes with Chinese names, 14 photos each, and three unlabeled ones."""
    entries = separable(COLOURS, 14, size=(40, 32))
    for i, colour in enumerate([(215, 35, 25), (25, 35, 215), (225, 20, 40)]):
        out = io.BytesIO()
        Image.new("RGB", (36, 36), colour).save(out, format="JPEG")
        entries.append((f"unlabeled/new_{i}.jpg", out.getvalue()))
    return make_zip(folder / "颜色.zip", entries)


class Person:
    """The browser tab, with the checks every step makes and its screenshots."""

    def __init__(self, page, url: str, shots: Path, errors: Path | None = None) -> None:
        """``errors``: the workspace's log of unexpected errors (``logs/app-errors.log``), quoted when the
        page stops."""
        self.page, self.url, self.shots, self.step, self.errors = page, url, shots, 0, errors
        self.console_errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        page.on("response", self._response)
        shots.mkdir(parents=True, exist_ok=True)

    def _console(self, message) -> None:
        # A failed request is judged by its address in _response (the console's line has none).
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.console_errors.append(message.text)

    def _response(self, response) -> None:
        # Opened at a page's own address (/train), Streamlit's front end first looks for its server under
        # that path (/train/_stcore/health, /train/_stcore/host-config), gets 404, then uses the root.
        probe = any(response.url.endswith(f"/_stcore/{name}") for name in ("health", "host-config"))
        if response.status >= 400 and not (probe and response.status == 404):
            self.console_errors.append(f"{response.status} {response.url}")

    def key(self, key: str, inner: str = ""):
        return self.page.locator(f".st-key-{key} {inner}".strip()).first

    def text(self, text: str, timeout: float = 60_000):
        """Wait for ``text`` (visible: not a hidden table cell); fail at once, with the server's traceback,
        when the page stops on an unexpected error instead (it would never show)."""
        found = self.page.get_by_text(text).filter(visible=True).first
        stopped = self.page.get_by_text(re.compile("|".join(STOPPED))).filter(visible=True).first
        found.or_(stopped).first.wait_for(timeout=timeout)
        if not found.is_visible() and stopped.is_visible():
            log = self.errors.read_text(errors="replace")[-6000:] if self.errors and self.errors.exists() else ""
            raise AssertionError(f"waiting for {text!r}, the page stopped: {stopped.inner_text()}\n{log}")
        return found

    def choose(self, key: str, option: str) -> None:
        """Pick ``option`` in the selectbox ``key`` (a click on a widget the rerun is redrawing can be lost:
        open it again until the list shows)."""
        wanted = self.page.get_by_role("option", name=option)
        for _ in range(5):
            self.key(key, "input").click()
            try:
                wanted.wait_for(timeout=3_000)
                break
            except sync_api.TimeoutError:
                self.settle()
        wanted.click()
        self.settle()

    def tiny_run_form(self, head_epochs: int, fine_tune_epochs: int) -> None:
        """On the Train page: no pretrained weights, 32 px, these epochs (Enter after each number)."""
        self.key("tr_weights").get_by_text("None: train from scratch").click()
        self.settle()
        for key, value in (
            ("tr_image_size", 32),
            ("tr_head_epochs", head_epochs),
            ("tr_fine_tune_epochs", fine_tune_epochs),
        ):
            self.key(key, "input").fill(str(value))
            self.key(key, "input").press("Enter")
            self.settle()

    def settle(self, seconds: float = 120) -> None:
        """Streamlit has finished its rerun: the app's script state reads notRunning three times in a row
        (a fragment that polls runs now and then; a page's rerun shows as running)."""
        app, quiet, deadline = self.page.locator("[data-testid=stApp]"), 0, time.monotonic() + seconds
        self.page.wait_for_timeout(200)
        while quiet < 3:
            assert time.monotonic() < deadline, "the page never finished running"
            quiet = quiet + 1 if app.get_attribute("data-test-script-state") == "notRunning" else 0
            self.page.wait_for_timeout(150)

    def go(self, page_name: str) -> None:
        self.page.locator("[data-testid=stSidebarNav] a", has_text=page_name).first.click()
        self.page.get_by_role("heading", name=page_name).first.wait_for(timeout=60_000)
        self.settle()

    def check(self, name: str) -> None:
        """A screenshot of this step; no exception box, no console error so far."""
        self.step += 1
        self.page.screenshot(path=str(self.shots / f"{self.step:02d}-{name}.png"), full_page=True)
        boxes = self.page.locator("[data-testid=stException]")
        assert not boxes.count(), f"{name}: {boxes.first.inner_text()}"
        assert not self.console_errors, f"{name}: {self.console_errors}"


def wait(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_whole_flow_in_a_browser(server, browser, tmp_path):
    ws = Workspace.open(server.workspace)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    me = Person(context.new_page(), server.url, SHOTS / "flow", server.errors_log)
    me.page.goto(server.url)
    me.text("LabelTune")
    me.settle()
    me.check("first-visit")

    # 1. Upload a zip through the file uploader and import it.
    me.key("upload", "input[type=file]").set_input_files(str(flow_zip(tmp_path)))
    me.key("import", "button").click()
    # The import takes seconds, a niced worker beside the other test process a minute at worst. (Its wait
    # was once raised to 5 minutes for a failure that was not slowness: the page had stopped, see STOPPED.)
    me.text("Imported 31 images", timeout=120_000)
    me.settle()
    me.check("imported")
    summary = load_dataset(ws, "颜色")
    assert summary.classes == {"红色": 14, "蓝色": 14} and summary.unlabeled == 3

    # 2. Relabel one image in the gallery: tick the first, move it to the other class.
    me.go("Label")
    first = me.page.locator("[class*='st-key-sel_']").first
    first.locator("label").click()
    me.settle()
    me.choose("target", "蓝色")
    me.key("move", "button").click()
    me.settle()
    me.check("relabeled")
    moved = wait(
        lambda: load_dataset(ws, "颜色").classes != summary.classes and load_dataset(ws, "颜色"), 30, "the move"
    )
    assert sum(moved.classes.values()) == 28 and moved.classes["蓝色"] == 15

    # 3. Label an unlabeled image with a key press (1: the first class).
    me.page.locator("button", has_text="Label unlabeled images").first.click()
    me.settle()
    me.key("q_0", "button").wait_for()
    me.page.mouse.click(5, 500)  # focus the page, not a widget
    me.page.keyboard.press("1")
    me.settle()
    me.check("labeled-with-key")
    wait(lambda: load_dataset(ws, "颜色").unlabeled == 2, 30, "the key press to label an image")

    # 4. Start a tiny training run from the form: no pretrained weights, 32 px, one epoch per phase.
    me.go("Train")
    me.tiny_run_form(head_epochs=2, fine_tune_epochs=1)
    me.check("train-form")
    me.key("start", "button").click()
    me.text("started in the background")
    me.check("training-started")
    run = wait(lambda: runs.list_runs(ws, "颜色"), 30, "the run")[0]
    assert run.config.image_size == 32 and run.config.weights == "none"

    # 5. Leave the Train page and come back while it trains: the panel reattaches and follows it.
    me.go("Dataset")
    me.check("left-train")
    me.go("Train")
    me.check("back-on-train")
    done = wait(lambda: (r := runs.get_run(ws, run.id)).status in ("completed", "failed") and r, 600, "the run")
    assert done.status == "completed", done.error
    me.text("completed", timeout=60_000)
    me.check("run-completed")

    # 6. Evaluate: the confusion matrix of the run's own predictions.
    me.go("Evaluate")
    me.text("Confusion matrix")
    me.page.locator(".st-key-confusion .js-plotly-plot, .stPlotlyChart").first.wait_for(timeout=60_000)
    me.check("evaluate")

    # 7. Build an export and download its zip.
    me.key("export_build", "button").click()
    download_button = me.key("export_download", "button")
    download_button.wait_for(timeout=300_000)
    me.settle()
    with me.page.expect_download(timeout=60_000) as event:
        download_button.click()
    saved = tmp_path / "export.zip"
    event.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None and any(n.endswith(".keras") for n in archive.namelist())
    me.check("exported")

    # 8. Predict an uploaded photo.
    me.go("Predict")
    photo = tmp_path / "红.jpg"
    Image.new("RGB", (50, 40), (225, 25, 30)).save(photo)
    me.key("images", "input[type=file]").set_input_files(str(photo))
    me.text("红色")
    me.settle()
    me.check("predicted")

    # 9. Switch to Chinese on the Label page (its filters kept their English labels once), then visit every
    # page. A selectbox shows its value in its input's value attribute.
    me.go("Label")
    me.page.locator("[data-testid=stSidebar]").get_by_text("中文").click()
    me.page.get_by_role("heading", name="标注").first.wait_for(timeout=60_000)
    me.settle()
    shown = {key: me.key(key, "input").get_attribute("value") for key in ("f_class", "f_split", "f_status", "f_flag")}
    assert shown == {"f_class": "（全部）", "f_split": "（全部）", "f_status": "使用中", "f_flag": "（全部）"}, shown
    me.check("zh-filters")
    for name in PAGES_ZH:
        me.go(name)
        if name == "评估":  # back on Evaluate: the test split again, not the train split
            me.text("混淆矩阵")
        me.check(f"zh-{name}")
    context.close()
