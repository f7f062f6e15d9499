"""Text from users and archives (class names, descriptions, file names, run titles and notes) shows as
typed on every page: never read as Markdown by Streamlit, nor as HTML by Plotly. Each page is walked
element by element: a name may appear only escaped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.datasets import editing
from core.datasets.ingest import import_archive
from core.runs import store as runs
from core.store.workspace import Workspace
from tests.builders import class_folders, jpeg, make_zip, trained_colour_run
from ui.common import md_text, plot_text

ROOT = Path(__file__).resolve().parents[2]
BOLD, TAG, PICTURE = "**粗体**", "<b>粗体", "![x](p.png)"
NAMES = (BOLD, TAG, PICTURE)
DESCRIPTION = "**说明** <i>斜体 ![img](http://example.invalid/p.png)"


def markdown_texts(at: AppTest) -> Iterator[str]:
    """Every string Streamlit renders as Markdown on the page: text elements, alerts, widget labels."""
    for kind in ("markdown", "caption", "header", "subheader", "title", "error", "warning", "info", "success"):
        for element in getattr(at, kind):
            yield str(element.value)
    for kind in ("button", "toggle", "checkbox", "radio", "selectbox", "text_input", "number_input", "expander"):
        for element in getattr(at, kind):
            yield str(getattr(element, "label", "") or "")
    for element in at.get("progress"):
        yield str(element.proto.text)
    for element in at.get("imgs"):
        for image in element.proto.imgs:
            yield image.caption


def plot_strings(at: AppTest) -> Iterator[str]:
    def walk(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)

    for chart in at.get("plotly_chart"):
        yield from walk(json.loads(chart.proto.spec))


def assert_as_typed(at: AppTest, names=NAMES, plotted: str | None = TAG) -> None:
    """No name in its raw form where Markdown is read; none as raw HTML in a figure, and ``plotted`` there
    escaped."""
    assert not at.exception, [e.value for e in at.exception]
    texts = list(markdown_texts(at))
    for name in names:
        for text in texts:
            assert name not in text.replace(md_text(name), ""), (name, text)  # only its escaped form
    strings = list(plot_strings(at))
    assert not [s for s in strings if "<b>粗" in s or "<i>" in s], "raw HTML reached Plotly"
    if plotted:
        assert any(plot_text(plotted) in s for s in strings), [s for s in strings if "粗" in s]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "ws"))
    monkeypatch.chdir(ROOT)
    ws = Workspace.open(tmp_path / "ws")
    entries = class_folders(dict.fromkeys(NAMES, 6)) + [
        (f"unlabeled/{PICTURE}_{i}.jpg", jpeg((9, 9, 9 * i))) for i in range(2)
    ]
    import_archive(ws, make_zip(tmp_path / "names.zip", entries), name="名字")
    editing.describe_class(ws, "名字", TAG, DESCRIPTION)
    return ws


def page(path: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    at.switch_page(path).run()
    return at


def test_dataset_and_label_pages_show_names_as_typed(home):
    at = page("pages/dataset.py")
    assert_as_typed(at, (*NAMES, DESCRIPTION))  # the class chart (Plotly), the warnings, the samples
    at = page("pages/label.py")
    assert_as_typed(at, (*NAMES, DESCRIPTION), plotted=None)  # the gallery's captions
    at.selectbox(key="open").set_value(next(iter(editing.class_images(home, "名字", TAG)))).run()
    assert_as_typed(at, (*NAMES, DESCRIPTION), plotted=None)  # the opened image, its description, history
    at.segmented_control(key="label_view").set_value("queue").run()
    assert_as_typed(at, (*NAMES, DESCRIPTION), plotted=None)  # one button per class, descriptions
    assert md_text(BOLD) in [b.label for b in at.button]
    at.segmented_control(key="label_view").set_value("classes").run()
    assert_as_typed(at, (*NAMES, DESCRIPTION))


@pytest.mark.slow  # trains a tiny model on classes with such names
def test_evaluate_predict_and_train_pages_show_names_as_typed(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "ws"))
    monkeypatch.chdir(ROOT)
    ws = Workspace.open(tmp_path / "ws")
    colours = {BOLD: (200, 60, 60), TAG: (60, 60, 200), PICTURE: (60, 200, 60)}
    run = trained_colour_run(ws, tmp_path, colours, 12, "名字")
    runs.annotate_run(ws, run.id, title=f"{TAG} {BOLD}", note=DESCRIPTION)
    at = page("pages/evaluate.py")
    assert_as_typed(at, (*NAMES, DESCRIPTION))  # confusion matrix, per-class table, mistakes
    at = page("pages/train.py")
    assert_as_typed(at, (*NAMES, DESCRIPTION, f"{TAG} {BOLD}"), plotted=None)  # the run's title and note
    at = page("pages/predict.py")
    assert_as_typed(at, (*NAMES, DESCRIPTION))  # the example tab's prediction of a test image: its top-k chart
