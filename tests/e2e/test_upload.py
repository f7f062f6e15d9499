"""In a real browser against `streamlit run`: a zip sent through the streaming uploader (LabelTune's own
upload route, tus-js-client in the page) becomes a dataset, and a cancelled upload leaves nothing in the
staging folder. (Its own server: ~10 s; the deep-link test needs a freshly started one of its own.)"""

from __future__ import annotations

import os

from core.datasets.catalog import dataset_names
from core.i18n import tr
from core.store.workspace import Workspace
from tests.builders import make_zip, separable
from tests.e2e.conftest import SHOTS
from tests.e2e.test_flow import Person


def uploader(page):
    return page.frame_locator("iframe[title*='labeltune_uploader'] >> visible=true")


def test_a_streamed_upload_becomes_a_dataset_and_a_cancelled_one_leaves_nothing(server, browser, tmp_path):
    archive = make_zip(tmp_path / "颜色.zip", separable({"红": (200, 60, 60), "蓝": (60, 60, 200)}, 10))
    context = browser.new_context()
    page = context.new_page()
    me = Person(page, server.url, SHOTS / "upload", server.errors_log)
    page.goto(server.url)
    me.settle()
    # The language switched and back: the uploader's line speaks each (it kept its first words once).
    for name, lang in (("中文", "zh"), ("English", "en")):
        page.locator("[data-testid=stSidebar]").get_by_text(name, exact=True).click()
        me.settle()
        uploader(page).get_by_text(tr("uploader.choose", lang)).wait_for(timeout=30_000)
        me.check(f"streamed-upload-{lang}")
    frame = uploader(page)
    frame.locator("#file").set_input_files(str(archive))
    frame.get_by_text("is on the server").wait_for(timeout=60_000)
    me.settle()  # the page ran again with the finished upload: its Import button
    page.get_by_role("button", name="Import the uploaded zip").click()
    page.get_by_text("Imported 20 images").wait_for(timeout=120_000)
    me.check("streamed-upload-imported")
    ws = Workspace.open(server.workspace)
    assert dataset_names(ws) == ["颜色"]
    staging = ws.staging_dir
    assert not [p for p in staging.rglob("*") if p.is_file()]  # the job owned the upload and removed it

    # A large file at 4 MB/s: cancelled on its way, nothing of it stays on the server.
    big = tmp_path / "big.zip"
    big.write_bytes(os.urandom(40 * 1024 * 1024))
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                   "uploadThroughput": 4 * 1024 * 1024})  # fmt: skip
    page.locator("summary", has_text="Import a zip").click()  # the section folds once a dataset exists
    me.settle()
    frame = uploader(page)
    frame.locator("#file").set_input_files(str(big))
    frame.get_by_text("MB sent").wait_for(timeout=30_000)
    assert list(staging.rglob("*.part"))  # on its way, on the server's disk
    frame.get_by_role("button", name="Cancel").click()
    frame.get_by_text("Cancelled").wait_for(timeout=30_000)
    page.wait_for_timeout(1_000)
    assert not [p for p in staging.rglob("*") if p.is_file()]
    me.check("streamed-upload-cancelled")
    context.close()
