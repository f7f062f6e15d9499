"""The dataset's jobs (core.datasets.jobs): an import and an export, each killed, cancelled and completed
through the worker's runner (tests.jobs.lifecycle_here)."""

import pytest

from core.datasets.catalog import dataset_names
from core.datasets.ingest import import_archive
from core.datasets.jobs import EXPORT_DATASET, DatasetExportJob, dataset_export_path, start_dataset_export, start_import
from core.errors import DatasetError
from core.jobs.store import JobStatus
from tests.builders import make_zip, separable, snapshot
from tests.jobs import lifecycle_here, run_job

pytestmark = pytest.mark.slow  # worker processes


@pytest.mark.both_backends
def test_an_import_killed_or_cancelled_mid_way_leaves_the_workspace_as_it_was(ws, tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "颜色.zip", separable({"红": (200, 60, 60), "蓝": (60, 60, 200)}, 8))
    before = snapshot(ws.root / "images")

    def start(n: int) -> int:
        with open(archive, "rb") as upload:  # as the Dataset page hands over an upload: spooled, owned
            return start_import(ws, upload, "颜色.zip", name=f"颜色{n}")

    done = lifecycle_here(ws, start, monkeypatch)
    assert dataset_names(ws) == ["颜色2"]  # neither the killed nor the cancelled import wrote a dataset
    assert (
        done.result["images"] == 16
        and done.result["dataset"] == "颜色2"
        and done.result["classes"] == {"红": 8, "蓝": 8}
    )
    assert list(ws.staging_dir.iterdir()) == []  # every spooled upload is gone, whichever way its job ended
    assert [p for p in ws.jobs_dir.iterdir() if p.is_dir()] == []  # and every job's scratch folder
    assert len(snapshot(ws.root / "images")) > len(before)
    assert done.status is JobStatus.COMPLETED


def test_a_dataset_export_killed_or_cancelled_keeps_the_previous_zip(ws, tmp_path, monkeypatch):
    import_archive(
        ws, make_zip(tmp_path / "c.zip", separable({"红": (200, 60, 60), "蓝": (60, 60, 200)}, 6)), name="色"
    )
    first = run_job(ws, EXPORT_DATASET, DatasetExportJob("色"))
    assert first.status is JobStatus.COMPLETED and first.result["images"] == 12
    built = ws.root / first.result["path"]
    before = built.read_bytes()
    assert built == dataset_export_path(ws, "色")

    def start(n: int) -> int:
        if n:  # the export before was killed or cancelled mid-way: the zip before it is whole, and the same
            assert built.read_bytes() == before
        return start_dataset_export(ws, "色")

    done = lifecycle_here(ws, start, monkeypatch)
    assert done.result["images"] == 12 and [p for p in ws.jobs_dir.iterdir() if p.is_dir()] == []
    again = import_archive(ws, built, name="再导入")  # the import accepts the export again
    assert again.classes == {"红": 6, "蓝": 6}
    with pytest.raises(DatasetError):
        start_dataset_export(ws, "没有")
