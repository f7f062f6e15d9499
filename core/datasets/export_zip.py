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
from pathlib import Path, PurePosixPath

from core.datasets.catalog import load_dataset
from core.errors import DatasetError
from core.store.workspace import Workspace

LABELS_FILE = "labels.csv"
CLASSES_FILE = "classes.csv"


def export_dataset(ws: Workspace, dataset: str, out: str | os.PathLike[str]) -> dict[str, int]:
    """Write the zip atomically (a temporary file, then rename); returns counts of what it holds."""
    summary = load_dataset(ws, dataset)
    with ws.connect() as conn:
        rows = conn.execute(
            "SELECT i.id, i.original_name, i.stored_path, i.content_hash, i.split, c.name, i.attributes_json"
            " FROM images i LEFT JOIN classes c ON c.id = i.class_id"
            " WHERE i.dataset_id = ? AND i.status = 'active' ORDER BY i.id",
            (summary.id,),
        ).fetchall()
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
            folder = f"{split}/{label}" if label and split else f"unsplit/{label}" if label else "unlabeled"
            stem = PurePosixPath(original).stem
            name = f"{folder}/{stem}{Path(stored).suffix}"
            if name in taken:  # two files of one folder with one name: keep both, told apart by content
                name = f"{folder}/{stem}-{content_hash[:8]}{Path(stored).suffix}"
            taken.add(name)
            zf.write(ws.path_of(stored), name)
            writer.writerow([name, label or "", split if label else "", *(attrs.get(c, "") for c in columns)])
        zf.writestr(LABELS_FILE, labels.getvalue())
        classes = io.StringIO()
        csv.writer(classes).writerows([["name", "description"], *summary.descriptions.items()])
        zf.writestr(CLASSES_FILE, classes.getvalue())
    os.replace(tmp, target)
    return {"images": len(rows), "classes": len(summary.descriptions), "attributes": len(columns)}
