"""A dataset as a zip that the import accepts again unchanged.

Layout: ``<split>/<class>/<file>`` for labelled images, ``unlabeled/<file>`` for the others, plus
``labels.csv`` (file, label, split, then one column per image attribute) and ``classes.csv`` (name,
description: the 标签说明). Images are the stored bytes (the original JPEG, or the normalised PNG), so
importing the export gives the same images, labels, splits, attributes and descriptions. Excluded
images are left out (the import has no notion of them). Names are written with the UTF-8 flag, so
Chinese class and file names survive any unzip tool that reads it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from core.datasets.catalog import active_images, load_dataset
from core.errors import DatasetError
from core.store.workspace import Workspace

LABELS_FILE = "labels.csv"
CLASSES_FILE = "classes.csv"


def export_dataset(
    ws: Workspace, dataset: str, out: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Write the zip atomically (a temporary file, then rename); returns counts of what it holds.
    ``progress(done, total)`` after each image (a job's report; it may end the export there)."""
    summary, rows = _active_images(ws, dataset)
    attributes = [json.loads(r[6]) for r in rows]
    columns = sorted({k for a in attributes for k in a})
    labels = io.StringIO()
    writer = csv.writer(labels)
    writer.writerow(["file", "label", "split", *columns])
    target = Path(out)
    tmp = target.with_name(target.name + ".tmp")
    taken: set[str] = set()
    try:
        zf = zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED)
    except OSError as exc:
        raise DatasetError("err.export_unwritable", path=str(target), reason=exc.strerror or str(exc)) from exc
    with zf:
        for (_, original, stored, content_hash, split, label, _), attrs in zip(rows, attributes, strict=True):
            name = _entry_name(original, stored, content_hash, split, label, taken)
            zf.write(ws.path_of(stored), name)
            writer.writerow([name, label or "", split if label else "", *(attrs.get(c, "") for c in columns)])
            if progress is not None:
                progress(len(taken), len(rows))
        zf.writestr(LABELS_FILE, labels.getvalue())
        classes = io.StringIO()
        csv.writer(classes).writerows([["name", "description"], *summary.descriptions.items()])
        zf.writestr(CLASSES_FILE, classes.getvalue())
    os.replace(tmp, target)
    return {"images": len(rows), "classes": len(summary.descriptions), "attributes": len(columns)}


def _active_images(ws: Workspace, dataset: str) -> tuple[Any, list[Any]]:
    """The dataset's summary and its active images (id, original name, stored path, hash, split, label,
    attributes), in import order: what an export writes."""
    summary = load_dataset(ws, dataset)
    return summary, active_images(ws, summary.id)


def _entry_name(original: str, stored: str, content_hash: str, split: str | None, label: str | None,
                taken: set[str]) -> str:  # fmt: skip
    """An image's name in the export (and in its ``labels.csv``): ``<split>/<class>/<stem><ext>``, told
    apart by content when two files of one folder share a name; adds it to ``taken``."""
    folder = f"{split}/{label}" if label and split else f"unsplit/{label}" if label else "unlabeled"
    stem = PurePosixPath(original).stem
    name = f"{folder}/{stem}{Path(stored).suffix}"
    if name in taken:  # two files of one folder with one name: keep both, told apart by content
        name = f"{folder}/{stem}-{content_hash[:8]}{Path(stored).suffix}"
    taken.add(name)
    return name


def image_ids_by_name(ws: Workspace, dataset: str) -> dict[str, int]:
    """Every name a spreadsheet may give an active image of ``dataset``: its name in an export made now
    (``labels.csv``'s ``file``), its name in the archive it came from, and its bare file name or stem when
    no other image has the same. The first two are exact; the bare names let a ``labels.csv`` exported
    before a relabel (whose folders name the old class) still find its images."""
    _, rows = _active_images(ws, dataset)
    exact: dict[str, int] = {}
    loose: dict[str, set[int]] = {}
    taken: set[str] = set()
    for image_id, original, stored, content_hash, split, label, _ in rows:
        exported = _entry_name(original, stored, content_hash, split, label, taken)
        exact.setdefault(exported, image_id)
        exact.setdefault(original, image_id)
        for path in (PurePosixPath(exported), PurePosixPath(original)):
            loose.setdefault(path.name, set()).add(image_id)
            loose.setdefault(path.stem, set()).add(image_id)
    unique = {name: next(iter(ids)) for name, ids in loose.items() if len(ids) == 1}
    return {**unique, **exact}
