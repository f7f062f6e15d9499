"""The Label page, driven through its widgets against a real workspace."""

import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.datasets import editing
from core.datasets.catalog import load_dataset
from core.i18n import tr
from core.jobs.store import JobStatus, list_jobs
from core.store.workspace import Workspace
from tests.core.datasets.test_editing import manifest_dataset
from tests.jobs import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "ws"))
    monkeypatch.chdir(ROOT)
    ws = Workspace.open(tmp_path / "ws")
    manifest_dataset(ws, tmp_path)
    return ws


def label_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/label.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def show(at: AppTest, view: str) -> AppTest:
    """Open one of the Label page's views (only the chosen one runs)."""
    at.button_group(key="label_view").set_value(view).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_filter_open_relabel_a_selection_and_undo(ws):
    at = label_page()
    at.selectbox(key="f_class").set_value("猫").run()
    cats = editing.class_images(ws, "宠物", "猫")
    shown = [c.key for c in at.checkbox if c.key.startswith("sel_")]
    assert shown == [f"sel_{i}" for i in cats] and len(cats) == 6
    at.selectbox(key="open").set_value(cats[0]).run()
    assert any("**猫**" in m.value for m in at.markdown) and any(c.value == "家猫，不含老虎" for c in at.caption)
    at.checkbox(key=f"sel_{cats[0]}").check()
    at.checkbox(key=f"sel_{cats[1]}").check().run()
    at.text_input(key="new_target").input("老虎")
    at.button(key="move").click().run()
    assert not at.exception and load_dataset(ws, "宠物").classes["老虎"] == 2
    at.button(key="undo").click().run()
    assert load_dataset(ws, "宠物").classes["老虎"] == 0 and load_dataset(ws, "宠物").classes["猫"] == 6
    at.text_input(key="f_search").input("兔子_1").run()
    at.selectbox(key="f_class").set_value("").run()  # (all)
    assert len([c for c in at.checkbox if c.key.startswith("sel_")]) == 3  # 兔子_11, 兔子_14, 兔子_17


def test_rename_merge_describe_and_export(ws):
    at = show(label_page(), "classes")
    at.selectbox(key="rename_from").set_value("兔子")
    at.text_input(key="rename_to").input("兔").run()
    at.button(key="rename").click().run()
    assert "兔" in load_dataset(ws, "宠物").classes
    at.selectbox(key="merge_from").set_value("狗").run()
    at.selectbox(key="merge_into").set_value("猫").run()
    at.button(key="merge").click().run()
    assert set(load_dataset(ws, "宠物").classes) == {"兔", "猫"}
    at.selectbox(key="describe_class").set_value("兔").run()
    at.text_area(key="desc_兔").input("长耳朵，不含野兔").run()
    at.button(key="save_description").click().run()
    assert load_dataset(ws, "宠物").descriptions["兔"] == "长耳朵，不含野兔"
    show(at, "export").button(key="export").click().run()  # a job builds the zip; the page returns at once
    assert not at.exception and not at.get("download_button")
    job = list_jobs(ws, kinds=("export_dataset",))[0]
    assert wait_for(ws, job.id, lambda j: not j.live).status is JobStatus.COMPLETED
    at.run()
    assert not at.exception and at.get("download_button")
    with zipfile.ZipFile(ws.root / wait_for(ws, job.id, lambda j: not j.live).result["path"]) as zf:
        assert "labels.csv" in zf.namelist() and "classes.csv" in zf.namelist()


def test_label_three_unlabeled_images_by_their_buttons_then_undo(ws):
    at = show(label_page(), "queue")
    assert load_dataset(ws, "宠物").unlabeled == 3
    classes = list(load_dataset(ws, "宠物").classes)
    for _ in range(3):
        at.button(key="q_0").click().run()  # the "1" key
        assert not at.exception, [e.value for e in at.exception]
    summary = load_dataset(ws, "宠物")
    assert summary.unlabeled == 0 and summary.classes[classes[0]] == 9
    assert any(tr("label.queue_done", "en") == s.value for s in at.success)
    at.button(key="q_undo").click().run()
    assert load_dataset(ws, "宠物").unlabeled == 1


def test_review_resolves_a_label_conflict_between_identical_images(tmp_path, monkeypatch):
    from core.datasets.ingest import import_archive
    from tests.builders import jpeg, make_zip

    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "ws"))
    monkeypatch.chdir(ROOT)
    ws = Workspace.open(tmp_path / "ws")
    same = jpeg((10, 200, 30))
    entries = [("猫/a.jpg", same), ("狗/b.jpg", same), ("狗/c.jpg", same)]
    entries += [(f"猫/{i}.jpg", jpeg((i * 20, 30, 90))) for i in range(4)] + [
        (f"狗/{i}.jpg", jpeg((90, i * 20, 9))) for i in range(4)
    ]
    import_archive(ws, make_zip(tmp_path / "c.zip", entries), name="c")
    at = show(label_page(), "review")
    assert any(c.value == tr("label.review_counts", "en", groups=1, conflicts=1) for c in at.caption)
    at.selectbox(key="keep_0").set_value("狗").run()
    at.button(key="keep_btn_0").click().run()
    assert load_dataset(ws, "c").classes == {"狗": 7, "猫": 4}
    at.button(key="keep_one_0").click().run()
    assert load_dataset(ws, "c").images == 9  # two copies excluded


def test_flag_filter_examples_and_class_order(ws):
    at = label_page()
    at.selectbox(key="f_flag").set_value("small").run()
    assert len([c for c in at.checkbox if c.key.startswith("sel_")]) == 21  # every image here is 36 px high
    at.selectbox(key="f_flag").set_value("duplicate").run()
    assert [c for c in at.checkbox if c.key.startswith("sel_")] == []
    at.selectbox(key="f_flag").set_value("").run()  # (all)
    cats = editing.class_images(ws, "宠物", "猫")
    at.checkbox(key=f"sel_{cats[0]}").check()
    at.checkbox(key=f"sel_{cats[1]}").check().run()
    at.selectbox(key="target").set_value("猫").run()
    at.button(key="as_examples").click().run()
    assert editing.class_examples(ws, "宠物")["猫"] == cats[:2]
    show(at, "classes").selectbox(key="describe_class").set_value("狗").run()
    without = len(at.get("image"))
    at.selectbox(key="describe_class").set_value("猫").run()
    assert len(at.get("image")) == without + 1  # the examples beside the description
    at.button(key="class_up").click().run()
    assert list(load_dataset(ws, "宠物").classes)[1] == "猫"


def test_names_from_the_archive_show_as_typed_under_the_thumbnails(ws, tmp_path):
    """Image captions are Markdown in Streamlit: a class called **粗体** must not turn bold, nor a file
    name with underscores italic."""
    from core.datasets.ingest import import_archive
    from tests.builders import jpeg, make_zip
    from ui.common import md_text

    import_archive(
        ws, make_zip(tmp_path / "md.zip", [("**粗体**/_a_.jpg", jpeg()), ("plain/b.jpg", jpeg((0, 90, 0)))]), name="md"
    )
    at = label_page()
    at.selectbox(key="label_dataset").set_value("md").run()
    captions = [c for e in at.main if type(e).__name__ == "Image" for c in e.captions if c]
    assert any(c.startswith(md_text("**粗体**") + " · ") for c in captions), captions
    at.selectbox(key="open").set_value(next(iter(editing.class_images(ws, "md", "**粗体**")))).run()
    assert not at.exception
    big = [c for e in at.main if type(e).__name__ == "Image" for c in e.captions if c and c.endswith(".jpg")]
    assert md_text("**粗体**/_a_.jpg") in big, big
