"""The Label page's Audit view, driven through its widgets: settings, Run (a real job in a worker process),
accept a suggestion, Undo, keep a label, keep one copy, the outliers and the map; and the Dataset page's
link that opens it."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.audit import store as audit_store
from core.datasets.gallery import labels_of
from core.jobs.store import JobStatus, list_jobs
from tests.core.audit.test_audit import TINY, audited_set
from tests.jobs import wait_for

pytestmark = pytest.mark.slow  # the audit job runs in a worker process with TensorFlow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "ws"))
    monkeypatch.chdir(ROOT)
    return audited_set(tmp_path)


def has(at: AppTest, key: str) -> bool:
    return any(b.key == key for b in at.button)


def ok(at: AppTest) -> AppTest:
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    return at


def test_run_accept_undo_keep_and_keep_one_copy(ws):
    ws, ids = ws
    at = ok(AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run())
    at.button(key="open_audit").click().run()  # the Dataset page's quality report links to the Audit view
    ok(at)
    assert has(at, "audit_run") and at.button_group(key="label_view").value == "audit"
    for name, value in TINY.items():
        widget = at.text_input(key=f"audit_{name}") if name == "weights" else None
        if widget is None:
            widget = next(w for w in (*at.selectbox, *at.number_input) if w.key == f"audit_{name}")
        widget.set_value(value)
    ok(at.button(key="audit_run").click().run())
    job = list_jobs(ws, kinds=("audit",), limit=1)[0]
    assert has(at, f"audit_cancel_{job.id}")  # its progress, with Cancel, while the worker runs it
    done = wait_for(ws, job.id, lambda j: not j.live, seconds=240)
    assert done.status is JobStatus.COMPLETED, done.error
    ok(at.run())
    wrong, copy = ids["train/蓝/red3.png"], ids["test/绿/copy.png"]
    ok(at.button(key=f"accept_{wrong}").click().run())
    assert labels_of(ws, [wrong]) == {wrong: "红"} and not has(at, f"accept_{wrong}")
    ok(at.button(key="audit_undo").click().run())
    assert labels_of(ws, [wrong]) == {wrong: "蓝"} and has(at, f"accept_{wrong}")
    ok(at.button(key=f"keep_label_{wrong}").click().run())
    assert not has(at, f"accept_{wrong}") and not audit_store.report(ws, "颜色").label_issues
    ok(at.button(key="audit_undo").click().run())
    assert has(at, f"accept_{wrong}")
    at.button_group(key="audit_section").set_value("duplicates").run()
    original = ids["train/绿/0.png"]
    ok(at.button(key=f"keep_this_{original}_{copy}").click().run())
    assert audit_store.audit_images(ws, "颜色")[2] and copy not in {
        im.id for im in audit_store.audit_images(ws, "颜色")[2]
    }
    at.button_group(key="audit_section").set_value("outliers").run()
    assert has(at, f"exclude_outlier_{ids['train/绿/board.png']}")
    ok(at.button_group(key="audit_section").set_value("map").run())
    assert at.get("plotly_chart")


def test_the_view_before_any_audit_says_what_it_does(ws):
    ws, _ = ws
    at = ok(AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run())
    at.switch_page("pages/label.py").run()
    ok(at.button_group(key="label_view").set_value("audit").run())
    assert has(at, "audit_run") and any("audit" in c.value.lower() or "体检" in c.value for c in at.caption)
