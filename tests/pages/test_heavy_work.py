"""Every button that starts heavy work queues a job and returns within its own script run, and the app's
process never loads TensorFlow for it: the Dataset page's import, the Train page's estimate, preview and
learning-rate finder, the Evaluate page's export. The jobs then complete in their worker processes."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.jobs.store import JobStatus, list_jobs
from core.store.workspace import Workspace
from tests.builders import make_zip, separable, trained_colour_run
from tests.jobs import wait_for

pytestmark = pytest.mark.slow  # a trained model, worker processes with TensorFlow

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from streamlit.testing.v1 import AppTest
    from core.jobs.store import list_jobs
    from core.store.workspace import Workspace

    ws = Workspace.open(sys.argv[1])
    seen = []

    def clicked(at, key, kind, shown=None):
        at.button(key=key).click().run()
        assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
        job = list_jobs(ws, kinds=(kind,), limit=1)[0]
        cancel = at.button(key=(shown or key) + "_cancel_" + str(job.id))  # the job's progress, with Cancel
        seen.append({"kind": kind, "id": job.id, "status": str(job.status), "cancel": bool(cancel)})

    at = AppTest.from_file("streamlit_app.py", default_timeout=30).run()
    at.file_uploader(key="upload").set_value(("更多.zip", open(sys.argv[2], "rb").read(), "application/zip")).run()
    clicked(at, "import", "import")
    at.switch_page("pages/train.py").run()
    for key, value in (("tr_backbone", "vgg16"), ("tr_augment", "light")):
        at.selectbox(key=key).set_value(value)
    at.radio(key="tr_weights").set_value("none")
    at.number_input(key="tr_image_size").set_value(32)
    at.number_input(key="tr_batch_size").set_value(8).run()
    for key, kind in (("estimate", "estimate"), ("preview", "preview"), ("lr_find", "lr_find")):
        clicked(at, key, kind)
    at.switch_page("pages/evaluate.py").run()
    at.multiselect(key="export_formats").set_value(["keras"]).run()
    clicked(at, "export_build", "export", "export")
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    print("RESULT", json.dumps({"seen": seen, "heavy": heavy[:5]}))
    """
)


def test_buttons_that_start_heavy_work_return_at_once_without_tensorflow(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    trained_colour_run(ws, tmp_path, {"红": (200, 60, 60), "蓝": (60, 60, 200)}, 12, "颜色")
    more = make_zip(tmp_path / "more.zip", separable({"绿": (60, 200, 60), "黄": (200, 200, 60)}, 20))
    # Each job step slowed a little: the work is still going on when the click's own script run ends.
    env = {**os.environ, "LABELTUNE_HOME": str(ws.root), "LABELTUNE_JOB_STEP_DELAY": "0.1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ws.root), str(more)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads(line.removeprefix("RESULT "))
    assert result["heavy"] == []  # TensorFlow never loaded in the app's process
    assert [s["kind"] for s in result["seen"]] == ["import", "estimate", "preview", "lr_find", "export"]
    for seen in result["seen"]:  # each click returned while its job was still queued or running...
        assert seen["status"] in ("queued", "running") and seen["cancel"], seen
    for seen in result["seen"]:  # ...and each job then did its work in a worker process
        job = wait_for(ws, seen["id"], lambda j: not j.live, seconds=300)
        assert job.status is JobStatus.COMPLETED, job
    assert {j.kind for j in list_jobs(ws)} >= {"import", "estimate", "preview", "lr_find", "export"}
