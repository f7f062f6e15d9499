"""The export job (core.export.jobs) through real worker processes: killed, cancelled, completed; the
previous export stays whole and loadable until a new one is complete."""

import zipfile

import pytest

from core.export.config import ExportConfig
from core.export.exporter import export_folder, last_export
from core.export.jobs import EXPORT, start_export
from core.jobs.store import JobStatus
from core.store.workspace import Workspace
from tests.builders import trained_colour_run
from tests.jobs import lifecycle_here, run_job

pytestmark = pytest.mark.slow  # a trained model, worker processes with TensorFlow


def test_an_export_killed_or_cancelled_keeps_the_previous_one(tmp_path, monkeypatch):
    ws = Workspace.open(tmp_path / "ws")
    run = trained_colour_run(ws, tmp_path, {"红": (200, 60, 60), "蓝": (60, 60, 200)}, 12, "c")
    first = run_job(ws, EXPORT, ExportConfig(run.id, ("keras",)))
    assert first.status is JobStatus.COMPLETED
    previous = last_export(ws, run.id)

    def start(n: int) -> int:
        if n:  # the export before was killed or cancelled mid-way: the one before that is still whole
            assert last_export(ws, run.id) == previous and zipfile.is_zipfile(ws.root / previous.zip_path)
        return start_export(ws, ExportConfig(run.id, ("keras", "tflite_float32")))

    done = lifecycle_here(ws, start, monkeypatch)  # one export of a run at a time
    now = last_export(ws, run.id)
    assert (
        done.result["offered"] == ["keras", "tflite_float32"]
        and [c.variant for c in now.checked] == done.result["offered"]
    )
    assert now.created_at > previous.created_at and zipfile.is_zipfile(ws.root / now.zip_path)
    folder = export_folder(ws, run.id)
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("export")) == ["export"]  # no leftovers
