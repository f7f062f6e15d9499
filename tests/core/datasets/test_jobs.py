"""The import job (core.datasets.jobs) through real worker processes: killed, cancelled, completed."""

import pytest

from core.datasets.catalog import dataset_names
from core.datasets.jobs import start_import
from core.jobs.store import JobStatus
from tests.builders import make_zip, separable, snapshot
from tests.jobs import lifecycle_here

pytestmark = pytest.mark.slow  # worker processes


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
