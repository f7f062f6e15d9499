"""The disk fills up during an import: on a real size-limited folder (a 2 MiB tmpfs, where the machine
lets a test mount one) and with ENOSPC injected at the file writes. Either way the import ends with a
message that names the workspace, and the workspace is byte for byte as it was."""

from __future__ import annotations

import errno
import io
import pathlib

import numpy as np
import pytest
from PIL import Image

from core.datasets.catalog import dataset_names
from core.datasets.ingest import import_archive
from core.errors import DatasetError
from core.store.workspace import Workspace
from tests.builders import class_folders, make_zip, snapshot


def noisy_zip(path: pathlib.Path, count: int) -> pathlib.Path:
    """Photos of noise: they compress badly, so they fill a small disk."""
    rng = np.random.default_rng(0)
    entries = []
    for i in range(count):
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(out, format="PNG")
        entries.append((f"{'ab'[i % 2]}/{i}.png", out.getvalue()))
    return make_zip(path, entries)


def assert_full_and_untouched(ws: Workspace, zip_path: pathlib.Path) -> None:
    before = snapshot(ws.root)
    with pytest.raises(DatasetError) as caught:
        import_archive(ws, zip_path, name="big")
    assert caught.value.key == "err.disk_full"
    assert str(ws.root) in caught.value.message("en") and str(ws.root) in caught.value.message("zh")
    after = snapshot(ws.root)
    after = {k: v for k, v in after.items() if not k.startswith("staging/")}  # the staging folder itself stays
    assert after == {k: v for k, v in before.items() if not k.startswith("staging/")}
    assert not [k for k in snapshot(ws.root) if k.startswith("staging/") and k.count("/") > 1]  # emptied
    assert dataset_names(ws) == ["old"]


def test_a_full_disk_during_an_import_on_a_real_small_disk(small_disk, tmp_path):
    ws = Workspace.open(small_disk / "ws")
    import_archive(ws, make_zip(tmp_path / "old.zip", class_folders({"猫": 3, "狗": 3})), name="old")
    assert_full_and_untouched(ws, noisy_zip(tmp_path / "big.zip", 40))  # about 8 MiB of images


def test_a_full_disk_during_an_import_with_enospc_injected(tmp_path, monkeypatch):
    ws = Workspace.open(tmp_path / "ws")
    import_archive(ws, make_zip(tmp_path / "old.zip", class_folders({"猫": 3, "狗": 3})), name="old")
    archive = make_zip(tmp_path / "big.zip", class_folders({"a": 10, "b": 10}))
    write = pathlib.Path.write_bytes
    calls = []

    def fills_up(self, data):
        calls.append(self)
        if len(calls) > 7:  # a few images fit, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return write(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", fills_up)
    assert_full_and_untouched(ws, archive)
    assert len(calls) > 7  # the fault was hit (images are processed by several threads)
