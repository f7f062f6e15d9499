"""Model-assisted labeling: the newest model's suggestions for unlabeled images, most uncertain first."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.datasets import editing
from core.datasets.catalog import load_dataset
from core.datasets.ingest import add_archive
from core.evaluation.suggestions import confident, most_uncertain_first, suggestions
from core.runs.predictions import UNLABELED
from core.store.workspace import Workspace
from core.training.inference import predict_splits
from tests.builders import TWO_COLOURS, make_zip, separable, trained_colour_run

pytestmark = pytest.mark.slow  # trains a tiny model

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def labelled(tmp_path, monkeypatch):
    ws = Workspace.open(tmp_path / "ws")
    run = trained_colour_run(ws, tmp_path, TWO_COLOURS, 12, "颜色")
    new = dict(separable(TWO_COLOURS, 16))
    loose = [(f"{name.replace('/', '_')}", data) for name, data in new.items() if int(name.split("/")[1][:-4]) >= 12]
    add_archive(ws, make_zip(tmp_path / "loose.zip", loose), "颜色")  # loose files: unlabeled
    monkeypatch.setenv("LABELTUNE_HOME", str(ws.root))
    monkeypatch.chdir(ROOT)
    return ws, run


def test_suggestions_order_the_queue_and_can_be_accepted_in_bulk(labelled):
    ws, run = labelled
    assert suggestions(ws, "颜色") is None  # not computed yet
    predict_splits(ws, run.id, (UNLABELED,))
    found = suggestions(ws, "颜色")
    unlabeled = editing.class_images(ws, "颜色", None)
    assert set(found) == set(unlabeled) and len(unlabeled) == 8
    order = most_uncertain_first(unlabeled, found)
    assert [found[i].confidence for i in order] == sorted(found[i].confidence for i in order)
    assert all(len(found[i].top) == 2 and found[i].top[0][1] >= found[i].top[1][1] for i in unlabeled)
    reds = confident(found, "红", 0.5)
    assert reds and all(found[i].top[0][0] == "红" for i in reds)
    editing.relabel(ws, "颜色", reds, "红")
    assert set(suggestions(ws, "颜色")) == set(unlabeled) - set(reds)  # labelled ones drop out


def test_the_queue_page_offers_and_accepts_suggestions(labelled):
    ws, run = labelled
    predict_splits(ws, run.id, (UNLABELED,))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/label.py").run()
    at.button_group(key="label_view").set_value("queue").run()
    assert any(c.value.startswith("The model suggests:") for c in at.caption)
    at.slider(key="accept_threshold").set_value(0.5).run()
    before = load_dataset(ws, "颜色").unlabeled
    at.button(key="accept").click().run()
    assert not at.exception and load_dataset(ws, "颜色").unlabeled < before
