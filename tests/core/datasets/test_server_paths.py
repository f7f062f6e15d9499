"""Paths on the server a browser user may name: only inside the administrator's roots, links followed
before the check; a zip or a folder found there is imported in place (and never removed)."""

import os
import zipfile

import pytest

from core.datasets.archive import folder_as_zip
from core.datasets.catalog import load_dataset
from core.datasets.jobs import IMPORT, ImportJob
from core.errors import ConfigError
from core.jobs.store import JobStatus
from core.store.server_paths import ENV_VAR, inside_roots, server_roots, set_server_roots
from tests.builders import make_zip, separable
from tests.jobs import run_job

COLOURS = {"红": (200, 60, 60), "蓝": (60, 60, 200)}


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A root holding a zip and a folder of images; beside it, outside, a secret and another folder."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    root, outside = tmp_path / "shared", tmp_path / "private"
    (root / "photos").mkdir(parents=True)
    outside.mkdir()
    make_zip(root / "颜色.zip", separable(COLOURS, 7))  # one image a class more than the folder
    for name, data in separable(COLOURS, 6):
        path = root / "photos" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (outside / "secret.h5").write_bytes(b"not yours")
    for name, data in separable({"绿": (60, 200, 60)}, 3):
        (outside / "extra").mkdir(exist_ok=True)
        (outside / "extra" / name.split("/")[-1]).write_bytes(data)
    return root, outside


def refused(ws, typed: str) -> str:
    with pytest.raises(ConfigError) as caught:
        inside_roots(ws, typed)
    assert caught.value.params["path"] == typed  # the message names the path as typed
    return caught.value.key


def test_no_root_no_path_then_only_inside_the_roots(ws, tree, monkeypatch):
    root, outside = tree
    assert server_roots(ws) == [] and refused(ws, str(root / "颜色.zip")) == "err.server_paths_off"
    set_server_roots(ws, [str(root)])
    assert server_roots(ws) == [root.resolve()]
    assert inside_roots(ws, str(root / "颜色.zip")) == (root / "颜色.zip").resolve()
    assert inside_roots(ws, str(root / "photos")) == (root / "photos").resolve()
    assert refused(ws, str(outside / "secret.h5")) == "err.path_outside_roots"
    assert refused(ws, str(root / ".." / "private" / "secret.h5")) == "err.path_outside_roots"
    assert refused(ws, "颜色.zip") == "err.path_not_absolute"
    # outside the roots, a missing file and an existing one get the same answer: nothing is told
    assert refused(ws, str(outside / "nothing.h5")) == refused(ws, str(outside / "secret.h5"))
    assert refused(ws, str(root / "nothing.zip")) == "err.path_missing"
    (root / "link.h5").symlink_to(outside / "secret.h5")  # a link inside the root that leads out of it
    (root / "linked").symlink_to(outside)
    assert refused(ws, str(root / "link.h5")) == "err.path_outside_roots"
    assert refused(ws, str(root / "linked" / "secret.h5")) == "err.path_outside_roots"
    with pytest.raises(ConfigError):
        set_server_roots(ws, [str(root / "颜色.zip")])  # a root is a folder
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(outside), str(root)]))  # the environment wins
    assert server_roots(ws) == [outside.resolve(), root.resolve()]
    assert inside_roots(ws, str(outside / "secret.h5")) == (outside / "secret.h5").resolve()


def test_a_folder_on_the_server_imports_as_its_zip_would_and_links_out_of_it_stay_out(ws, tree):
    root, outside = tree
    (root / "photos" / "绿").symlink_to(outside / "extra")  # a class folder that is a link to outside
    (root / "photos" / "红" / "out.png").symlink_to(next((outside / "extra").iterdir()))
    written = folder_as_zip(root / "photos", root.parent / "f.zip")
    with zipfile.ZipFile(written) as zf:
        assert sorted({n.split("/")[0] for n in zf.namelist()}) == ["红", "蓝"] and len(zf.namelist()) == 12
    set_server_roots(ws, [str(root)])
    folder = inside_roots(ws, str(root / "photos"))
    job = run_job(ws, IMPORT, ImportJob(str(folder), folder.name, name="照片"))
    assert job.status is JobStatus.COMPLETED, job.error
    assert job.result["classes"] == {"红": 6, "蓝": 6} and load_dataset(ws, "照片").images == 12
    archive = inside_roots(ws, str(root / "颜色.zip"))
    job = run_job(ws, IMPORT, ImportJob(str(archive), archive.name, into="照片"))
    assert job.status is JobStatus.COMPLETED, job.error
    assert load_dataset(ws, "照片").images == 14 and (root / "颜色.zip").exists()  # read in place, kept
    assert sorted((root / "photos").iterdir())  # the folder is untouched
