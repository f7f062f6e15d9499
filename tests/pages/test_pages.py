"""Each page, driven through its widgets with Streamlit's AppTest against a real workspace."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.datasets.catalog import dataset_names, load_dataset
from core.datasets.ingest import import_archive
from core.i18n import tr
from core.jobs.store import get_job, list_jobs
from core.store.workspace import Workspace
from tests.builders import class_folders, make_zip
from tests.jobs import wait_for
from ui.common import md_text

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def import_job_ends(at: AppTest, home) -> None:
    """After a click that queued an import, the page runs again at once and shows the job's progress and
    its Cancel; the job then ends in its worker, and the page, drawn again, shows how. Or, where the
    worker finished the small import within that rerun (seen under load), the rerun already shows how it
    ended (once: the next run would not)."""
    ws = Workspace.open(home)
    job = list_jobs(ws, kinds=("import",), limit=1)[0]
    if f"import_cancel_{job.id}" not in {b.key for b in at.button}:
        assert not get_job(ws, job.id).live, "a live import the page does not show"
        return
    assert len(at.get("progress")) == 1
    wait_for(ws, job.id, lambda j: not j.live, seconds=120)
    at.run()
    assert not at.exception, at.exception


def test_dataset_page_upload_imports_and_shows_the_report(home, tmp_path):
    at = app()
    assert at.info[0].value == tr("dataset.none_yet", "en")
    zip_bytes = make_zip(
        tmp_path / "pets.zip", class_folders({"cat": 12, "dog": 3}) + [("readme.txt", b"x")]
    ).read_bytes()
    at.file_uploader(key="upload").set_value(("pets.zip", zip_bytes, "application/zip")).run()
    at.text_input(key="new_name").input("宠物")
    at.number_input(key="val_pct").set_value(20)
    at.button(key="import").click().run()
    assert not at.exception, at.exception
    # The job has its own copy of the zip: the uploader starts over empty, so the server lets go of the bytes.
    assert at.file_uploader(key="upload_1").value is None and at.text_input(key="new_name").value == ""
    import_job_ends(at, home)
    assert "upload" not in at.session_state, list(at.session_state)
    assert not at.error, [e.value for e in at.error]
    assert at.success[0].value.startswith("Imported 15 images into dataset “宠物”")
    assert at.selectbox(key="dataset").value == "宠物"
    warnings = " ".join(w.value for w in at.warning)
    assert "imbalanced" in warnings and "skipped" in warnings
    metrics = [int(m.value) for m in at.metric]  # train, val, test, unlabeled
    assert sum(metrics[:3]) == 15 and metrics[1] == 3 and metrics[3] == 0  # 20% of 12 cat + 1 dog
    assert len(at.get("plotly_chart")) == 1
    assert dataset_names(Workspace.open(home)) == ["宠物"]


def test_dataset_page_imports_a_zip_already_on_the_server_inside_its_roots(home, tmp_path, monkeypatch):
    monkeypatch.delenv("LABELTUNE_SERVER_ROOTS", raising=False)
    at = app()
    assert tr("dataset.server_off", "en", env="LABELTUNE_SERVER_ROOTS") in [c.value for c in at.caption]
    shared = tmp_path / "shared"
    shared.mkdir()
    archive = make_zip(shared / "pets.zip", class_folders({"cat": 6, "dog": 6}))
    monkeypatch.setenv("LABELTUNE_SERVER_ROOTS", str(shared))
    at = app()
    at.text_input(key="server_path").input(str(tmp_path / "elsewhere.zip")).run()
    at.button(key="server_path_import").click().run()
    assert "outside the folders this server allows" in at.error[0].value
    at.text_input(key="new_name").input("服务器")
    at.text_input(key="server_path").input(str(archive)).run()
    at.button(key="server_path_import").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    import_job_ends(at, home)
    assert dataset_names(Workspace.open(home)) == ["服务器"] and archive.exists()  # read in place, kept


def test_dataset_page_imports_a_gbk_archive_with_a_pixel_bomb(home, tmp_path):
    from tests.builders import raw_name_entry
    from tests.core.datasets.test_odd_archives import png_header_only

    entries = [(raw_name_entry(n.encode("gbk")), d) for n, d in class_folders({"猫": 4, "帽": 4})]
    entries.append((raw_name_entry("猫/炸弹.png".encode("gbk")), png_header_only(20_000, 20_000)))
    data = make_zip(tmp_path / "gbk.zip", entries).read_bytes()
    at = app()
    at.file_uploader(key="upload").set_value(("gbk.zip", data, "application/zip")).run()
    at.button(key="import").click().run()
    import_job_ends(at, home)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.success[0].value.startswith("Imported 8 images")
    assert at.session_state["dataset"] == "gbk" and not at.session_state["import_jobs"]  # said once
    warnings = [w.value for w in at.warning]
    assert warnings[0] == tr("warn.names_gbk", "en")  # "炸弹" in GBK is not UTF-8
    skipped = " ".join(d.value.to_string() for d in at.dataframe)
    assert "猫/炸弹.png" in skipped and "20000×20000" in skipped
    assert sorted(load_dataset(Workspace.open(home), "gbk").classes) == ["帽", "猫"]


def test_dataset_page_shows_a_rejected_archive_as_an_error(home, tmp_path):
    at = app()
    bad = make_zip(tmp_path / "evil.zip", [("../../x.jpg", b"x")]).read_bytes()
    at.file_uploader(key="upload").set_value(("evil.zip", bad, "application/zip")).run()
    at.button(key="import").click().run()
    import_job_ends(at, home)
    assert md_text("../../x.jpg") in at.error[0].value  # a name from the archive, shown as typed
    assert dataset_names(Workspace.open(home)) == [] and list(Workspace.open(home).staging_dir.iterdir()) == []


def test_language_switch_changes_the_page_and_is_remembered(home, tmp_path):
    ws = Workspace.open(home)
    import_archive(ws, make_zip(tmp_path / "d.zip", class_folders({"a": 3, "b": 3})))
    at = app()
    assert at.header[0].value == "Dataset"
    at.sidebar.radio(key="lang_choice").set_value("zh").run()
    assert at.header[0].value == "数据集"
    assert ws.get_setting("ui.language") == "zh"
    assert app().header[0].value == "数据集"  # a new session starts in the saved language


def test_the_language_switch_on_the_welcome_page_keeps_its_buttons_working(home):
    """An empty workspace: the Dataset page shows the sample button. Switching language once stopped the page
    ("st.session_state['sample'] is read-only": the switch set every widget's value again, buttons too)."""
    at = app()
    at.sidebar.radio(key="lang_choice").set_value("zh").run()
    assert not at.exception and not at.error and at.header[0].value == "数据集"
    at.button(key="sample").click().run()
    assert not at.exception and not at.error


def test_the_language_switch_keeps_a_chosen_zip_and_the_page_working(home, tmp_path):
    """A zip chosen, not yet imported, then the language switched: the page stopped
    ("st.session_state['upload'] is read-only": the switch set the uploader's value again). Seen in Chromium
    without a switch too: under load Streamlit called the switch's callback in a rerun that changed nothing."""
    at = app()
    data = make_zip(tmp_path / "d.zip", class_folders({"a": 3, "b": 3})).read_bytes()
    at.file_uploader(key="upload").set_value(("d.zip", data, "application/zip")).run()
    at.sidebar.radio(key="lang_choice").set_value("zh").run()
    assert not at.exception and at.header[0].value == "数据集"
    assert not at.button(key="import").disabled  # the chosen zip is still there
    at.button(key="import").click().run()
    import_job_ends(at, home)
    assert not at.exception and dataset_names(Workspace.open(home)) == ["d"]


def _callback_for_nothing() -> None:
    import streamlit as st

    from ui.common import language_ui, save_language
    from ui.uploader import job_uploader

    language_ui()
    job_uploader("zip", "upload", type=["zip"])
    st.button("again", key="again", on_click=save_language)  # the switch's callback, the language unchanged


def test_the_language_switchs_callback_called_for_nothing_changes_nothing(home, tmp_path):
    """What stopped the browser flow's first import under load: a rerun interrupted the run before the
    sidebar was drawn, Streamlit forgot the switch's value and, when the browser sent it again, called the
    switch's callback with the language unchanged and a zip chosen (the server's log showed the callback
    setting the uploader's value)."""
    at = AppTest.from_function(_callback_for_nothing, default_timeout=30).run()
    data = make_zip(tmp_path / "d.zip", class_folders({"a": 3, "b": 3})).read_bytes()
    at.file_uploader(key="upload").set_value(("d.zip", data, "application/zip")).run()
    at.button(key="again").click().run()
    assert not at.exception
    assert Workspace.open(home).get_setting("ui.language") is None  # nothing saved: nothing was switched


def test_label_page_without_a_dataset_says_where_to_start(home):
    at = app("pages/label.py")
    assert at.header[0].value == tr("nav.label", "en")
    assert at.info[0].value == tr("train.no_dataset", "en")


@pytest.mark.parametrize("page,key", [("pages/evaluate.py", "eval.header"), ("pages/predict.py", "predict.header")])
def test_model_pages_without_a_model_say_where_to_get_one(home, page, key):
    at = app(page)
    assert at.header[0].value == tr(key, "en")
    assert at.info[0].value == tr("eval.no_runs", "en")


def test_dataset_page_renames_and_deletes_a_dataset(home, tmp_path):
    ws = Workspace.open(home)
    import_archive(ws, make_zip(tmp_path / "d.zip", class_folders({"a": 3, "b": 3})), name="d")
    at = app()
    at.text_input(key="rename_dataset_to").input("数据").run()
    at.button(key="rename_dataset").click().run()
    assert dataset_names(ws) == ["数据"] and at.selectbox(key="dataset").value == "数据"
    at.text_input(key="delete_dataset_name").input("wrong").run()
    assert at.button(key="delete_dataset").disabled
    at.text_input(key="delete_dataset_name").input("数据").run()
    at.button(key="delete_dataset").click().run()
    assert not at.exception and dataset_names(ws) == []
    assert at.success[0].value.startswith("Deleted “数据”")


def test_dataset_page_adds_a_zip_to_a_dataset(home, tmp_path):
    ws = Workspace.open(home)
    import_archive(ws, make_zip(tmp_path / "d.zip", class_folders({"a": 3, "b": 3})), name="d")
    from tests.builders import jpeg

    new = [(f"c/{i}.jpg", jpeg((250, 10 * i, 90))) for i in range(4)] + [("a/dup.jpg", class_folders({"a": 1})[0][1])]
    more = make_zip(tmp_path / "more.zip", new).read_bytes()
    at = app()
    at.file_uploader(key="add_upload").set_value(("more.zip", more, "application/zip")).run()
    at.button(key="add_images").click().run()
    import_job_ends(at, home)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.success[0].value == tr("dataset.added", "en", images=4, name="d", skipped=1)  # the copy of a/0
    assert load_dataset(ws, "d").classes == {"a": 3, "b": 3, "c": 4}


def test_an_empty_workspace_opens_on_a_welcome_with_the_sample_dataset(home):
    at = app()
    assert at.markdown[0].value == tr("welcome.intro", "en")
    at.button(key="sample").click().run()
    assert not at.exception and at.selectbox(key="dataset").value == "clothing-sample"
    assert dataset_names(Workspace.open(home)) == ["clothing-sample"]
    assert at.success[0].value.startswith("Imported 100 images")


def test_jobs_page_lists_live_and_recent_jobs_cancels_them_and_speaks_the_readers_language(home, tmp_path):
    import os
    import time

    from core.cli.main import main
    from core.jobs import queue
    from core.jobs.processes import HOST, process_identity
    from core.jobs.store import JobStatus, Resource, get_job

    ws = Workspace.open(home)
    bad = make_zip(tmp_path / "evil.zip", [("../../x.jpg", b"x")])
    assert main(["import", str(bad), "--workspace", str(home)]) == 3  # a failed import, from the command line
    running = queue.submit(ws, "train", Resource.EXCLUSIVE, {"run": "r"}, start=False)
    waiting = queue.submit(ws, "train", Resource.EXCLUSIVE, {"run": "s"}, start=False)
    node = "gpu_node_1"  # a team's node, its name with Markdown's emphasis in it
    with ws.connect() as conn:  # as if that node trained (its heartbeat fresh): it holds the one exclusive slot
        conn.execute(
            "UPDATE jobs SET status = 'running', host = ?, pid = ?, proc_start = ?, heartbeat_at = ?, done = 2,"
            " total = 5 WHERE id = ?",
            (node, os.getpid(), process_identity(os.getpid()), time.time(), running),
        )
    at = app("pages/jobs.py")
    assert at.subheader[0].value == tr("jobs.live", "en", count=2)
    recent = at.dataframe[0].value
    assert list(recent[tr("jobs.col_status", "en")]) == [tr("status.failed", "en")]
    assert "../../x.jpg" in recent[tr("jobs.col_error", "en")][0]
    assert list(recent[tr("jobs.col_host", "en")]) == [HOST]  # the machine that ran it
    assert tr("jobs.on_host", "en", host=md_text(node)) in [c.value for c in at.caption]  # the one running, as named
    at.button(key=f"jobs_cancel_{waiting}").click().run()
    assert get_job(ws, waiting).status is JobStatus.CANCELLED
    at.button(key=f"jobs_cancel_{running}").click().run()  # a running job is asked to stop
    assert get_job(ws, running).stop_requested and tr("job.stopping", "en") in [c.value for c in at.caption]
    at.run()
    assert at.subheader[0].value == tr("jobs.live", "en", count=1)
    ws.set_setting("ui.language", "zh")  # a reader of Chinese opens the page
    recent = app("pages/jobs.py").dataframe[0].value
    assert tr("status.cancelled", "zh") in list(recent[tr("jobs.col_status", "zh")])
    errors = " ".join(recent[tr("jobs.col_error", "zh")])
    assert "../../x.jpg" in errors and "Archive rejected" not in errors  # the stored error, in Chinese
