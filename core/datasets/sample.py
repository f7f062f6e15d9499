"""The sample dataset that ships with LabelTune: real photos, so a first run works on any machine.

It is imported through the normal import path (a zip built in memory from ``sample_data/``), so it
is checked, normalised and split like any upload.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from core.datasets.ingest import ImportResult, import_archive
from core.store.workspace import Workspace

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_data"
SAMPLE_NAME = "clothing-sample"


def sample_zip() -> io.BytesIO:
    """The sample's class folders and ``classes.csv`` as a zip (the README and licence stay out)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(SAMPLE_DIR.rglob("*")):
            if path.is_file() and (path.suffix == ".jpg" or path.name == "classes.csv"):
                zf.write(path, path.relative_to(SAMPLE_DIR).as_posix())
    buffer.seek(0)
    return buffer


def import_sample(ws: Workspace, name: str = SAMPLE_NAME) -> ImportResult:
    return import_archive(ws, sample_zip(), archive_name="clothing-sample.zip", name=name)
