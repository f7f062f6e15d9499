"""Changing a dataset after import: labels, splits, exclusions, classes and their descriptions (标签说明).

Every change is one write transaction (``Connection.begin_write``: concurrent editors queue, none loses an
update), bumps the dataset's version (runs record the version they trained on, the feature cache
keys on it) and appends to the change log: what changed, how many images, when.
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from core.datasets import catalog
from core.datasets.export_zip import image_ids_by_name
from core.datasets.layouts import FILENAME_COLUMNS, IMAGE_ID_COLUMNS, LABEL_COLUMNS, column, decode_text, read_table
from core.datasets.splits import SplitConfig
from core.errors import DatasetError
from core.runs import store as runs
from core.store.db import Connection
from core.store.vocabulary import ImageStatus
from core.store.workspace import SPLITS, Workspace, id_chunks, utc_now

# Characters of a class name, after trimming: room for a descriptive Chinese or English name.
MAX_CLASS_NAME = 100


@dataclass(frozen=True)
class Change:
    version: int
    action: str
    params: dict[str, Any]
    images: int
    created_at: str


@contextmanager
def _edit(ws: Workspace, dataset: str) -> Iterator[tuple[Connection, int]]:
    """A write transaction on ``dataset``: yields the connection and the dataset id."""
    with ws.connect() as conn:
        conn.begin_write()
        yield conn, catalog.dataset_id(conn, dataset)


def log_change(conn: Connection, dataset_id: int, action: str, images: int, **params: Any) -> int:
    """Bump the version and record the change; returns the new version."""
    conn.execute("UPDATE datasets SET version = version + 1 WHERE id = ?", (dataset_id,))
    version = conn.execute("SELECT version FROM datasets WHERE id = ?", (dataset_id,)).fetchone()[0]
    conn.execute(
        "INSERT INTO change_log (dataset_id, version, action, params_json, images, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (dataset_id, version, action, json.dumps(params, ensure_ascii=False), images, utc_now()),
    )
    return version


def _clean_name(name: str) -> str:
    cleaned = unicodedata.normalize("NFC", name or "").strip()
    if not cleaned or len(cleaned) > MAX_CLASS_NAME:
        raise DatasetError("err.class_name", name=cleaned[:20], limit=MAX_CLASS_NAME)
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned) or "/" in cleaned or "\\" in cleaned:
        raise DatasetError("err.class_name", name=cleaned, limit=MAX_CLASS_NAME)
    return cleaned


def _class_id(conn: Connection, dataset_id: int, name: str, create: bool = False) -> int:
    row = conn.execute("SELECT id FROM classes WHERE dataset_id = ? AND name = ?", (dataset_id, name)).fetchone()
    if row is not None:
        return row[0]
    if not create:
        raise DatasetError("err.class_unknown", name=name)
    order = conn.execute("SELECT COALESCE(MAX(display_order), -1) + 1 FROM classes WHERE dataset_id = ?", (dataset_id,))
    return conn.insert(
        "INSERT INTO classes (dataset_id, name, display_order) VALUES (?, ?, ?)",
        (dataset_id, _clean_name(name), order.fetchone()[0]),
    )


def _update_images(conn: Connection, dataset_id: int, ids: list[int], assignment: str, value: Any) -> int:
    """``UPDATE images SET <assignment>`` for ``ids`` of this dataset; returns how many changed."""
    changed = wanted = 0
    for chunk, marks in id_chunks(ids):
        cursor = conn.execute(
            f"UPDATE images SET {assignment} WHERE dataset_id = ? AND id IN ({marks})", (value, dataset_id, *chunk)
        )
        changed, wanted = changed + cursor.rowcount, wanted + len(chunk)
    if changed != wanted:
        raise DatasetError("err.images_unknown", count=wanted - changed)
    return changed


def relabel(ws: Workspace, dataset: str, image_ids: list[int], label: str | None) -> int:
    """Give ``image_ids`` the class ``label`` (created if new), or make them unlabeled (None). Returns the version.

    An image labelled for the first time has no split yet: it gets one from its content hash with the
    default fractions (70/15/15), so it lands in the same split whoever labels it, and nothing else moves."""
    with _edit(ws, dataset) as (conn, dataset_id):
        class_id = None if label is None else _class_id(conn, dataset_id, _clean_name(label), create=True)
        changed = _update_images(conn, dataset_id, image_ids, "class_id = ?", class_id)
        if label is not None:
            _split_new(conn, dataset_id, image_ids)
        return log_change(conn, dataset_id, "relabel", changed, label=label, ids=sorted(image_ids)[:1000])


def split_of_hash(content_hash: str, config: SplitConfig | None = None) -> str:
    """A stable split for one image: its hash read as a number in [0, 1) against the fractions."""
    config = config or SplitConfig()
    x = int(content_hash[:12], 16) / 16**12
    return "train" if x < config.train else "val" if x < config.train + config.val else "test"


def _split_new(conn: Connection, dataset_id: int, ids: list[int]) -> None:
    for chunk, marks in id_chunks(ids):
        rows = conn.execute(
            f"SELECT id, content_hash FROM images WHERE dataset_id = ? AND split IS NULL AND id IN ({marks})",
            (dataset_id, *chunk),
        ).fetchall()
        conn.executemany("UPDATE images SET split = ? WHERE id = ?", [(split_of_hash(h), i) for i, h in rows])


def labels_from_csv(ws: Workspace, dataset: str, path: str) -> dict[str | None, list[int]]:
    """Image ids grouped by label from a CSV made elsewhere, in the import manifest's vocabulary
    (``core.datasets.layouts``): a label column (``label``, ``class``, ``标签``, ``类别``, ...) and either an
    image-id column (``image_id``, ``id``, ...) or a file column (``file``, ``filename``, ``path``,
    ``文件名``, ... as the dataset export's ``labels.csv`` names it, or as in the imported archive). A file
    cell that names no image but is a whole number is taken as an image id (sheets written for the old
    ``image`` column). An empty label makes the image unlabeled; other columns are ignored. UTF-8 or GBK,
    as the import reads manifests. Names no image has are refused, all of them named, before any change."""
    try:
        with open(path, "rb") as fh:
            text = decode_text(fh.read(), path)
    except OSError as exc:
        raise DatasetError("err.input_unreadable", file=path, reason=exc.strerror or str(exc)) from exc
    header, rows = read_table(text, path)
    label, ids, files = (
        column(header, LABEL_COLUMNS),
        column(header, IMAGE_ID_COLUMNS),
        column(header, FILENAME_COLUMNS),
    )
    if label is None or (ids is None and files is None):
        raise DatasetError("err.relabel_csv", file=path, row=",".join(header))
    names = image_ids_by_name(ws, dataset) if ids is None else {}
    groups: dict[str | None, list[int]] = {}
    unknown: list[str] = []
    for row in rows:
        cells = [c.strip() for c in row] + [""] * (len(header) + 1)
        if ids is not None:
            if not cells[ids].isdigit():
                raise DatasetError("err.relabel_csv", file=path, row=",".join(row)[:80])
            groups.setdefault(cells[label] or None, []).append(int(cells[ids]))
            continue
        given = PurePosixPath(cells[files].replace("\\", "/"))
        found = names.get(str(given), names.get(given.name, names.get(given.stem)))
        if found is None and cells[files].isdigit():
            found = int(cells[files])
        if found is None:
            unknown.append(cells[files])
            continue
        groups.setdefault(cells[label] or None, []).append(found)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise DatasetError("err.relabel_files_unknown", file=path, count=len(unknown), names=shown, dataset=dataset)
    return groups


def set_split(ws: Workspace, dataset: str, image_ids: list[int], split: str) -> int:
    if split not in SPLITS:
        raise DatasetError("err.split_unknown", split=split, known=", ".join(SPLITS))
    with _edit(ws, dataset) as (conn, dataset_id):
        changed = _update_images(conn, dataset_id, image_ids, "split = ?", split)
        return log_change(conn, dataset_id, "split", changed, split=split, ids=sorted(image_ids)[:1000])


def set_excluded(ws: Workspace, dataset: str, image_ids: list[int], excluded: bool) -> int:
    """Exclude images from training (kept, shown greyed) or restore them."""
    status = ImageStatus.EXCLUDED if excluded else ImageStatus.ACTIVE
    with _edit(ws, dataset) as (conn, dataset_id):
        changed = _update_images(conn, dataset_id, image_ids, "status = ?", status)
        return log_change(conn, dataset_id, status, changed, ids=sorted(image_ids)[:1000])


def add_class(ws: Workspace, dataset: str, name: str, description: str = "") -> int:
    with _edit(ws, dataset) as (conn, dataset_id):
        name = _clean_name(name)
        if conn.execute("SELECT 1 FROM classes WHERE dataset_id = ? AND name = ?", (dataset_id, name)).fetchone():
            raise DatasetError("err.class_exists", name=name)
        conn.execute(
            "INSERT INTO classes (dataset_id, name, description, display_order)"
            " SELECT ?, ?, ?, COALESCE(MAX(display_order), -1) + 1 FROM classes WHERE dataset_id = ?",
            (dataset_id, name, description.strip(), dataset_id),
        )
        return log_change(conn, dataset_id, "add_class", 0, name=name)


def rename_class(ws: Workspace, dataset: str, old: str, new: str) -> int:
    with _edit(ws, dataset) as (conn, dataset_id):
        class_id, new = _class_id(conn, dataset_id, old), _clean_name(new)
        if conn.execute("SELECT 1 FROM classes WHERE dataset_id = ? AND name = ?", (dataset_id, new)).fetchone():
            raise DatasetError("err.class_exists", name=new)
        conn.execute("UPDATE classes SET name = ? WHERE id = ?", (new, class_id))
        return log_change(conn, dataset_id, "rename_class", 0, old=old, new=new)


def merge_classes(ws: Workspace, dataset: str, source: str, target: str) -> int:
    """All images of ``source`` become ``target``; ``source`` goes (its description is kept on ``target``
    if ``target`` had none)."""
    with _edit(ws, dataset) as (conn, dataset_id):
        src, dst = _class_id(conn, dataset_id, source), _class_id(conn, dataset_id, target)
        if src == dst:
            raise DatasetError("err.class_merge_self", name=source)
        moved = conn.execute("UPDATE images SET class_id = ? WHERE class_id = ?", (dst, src)).rowcount
        conn.execute(
            "UPDATE classes SET description = (SELECT description FROM classes WHERE id = ?)"
            " WHERE id = ? AND description = ''",
            (src, dst),
        )
        conn.execute("DELETE FROM classes WHERE id = ?", (src,))
        return log_change(conn, dataset_id, "merge_classes", moved, source=source, target=target)


def delete_class(ws: Workspace, dataset: str, name: str) -> int:
    """Delete a class; its images become unlabeled (never deleted)."""
    with _edit(ws, dataset) as (conn, dataset_id):
        class_id = _class_id(conn, dataset_id, name)
        freed = conn.execute("UPDATE images SET class_id = NULL WHERE class_id = ?", (class_id,)).rowcount
        conn.execute("DELETE FROM classes WHERE id = ?", (class_id,))
        return log_change(conn, dataset_id, "delete_class", freed, name=name)


def describe_class(ws: Workspace, dataset: str, name: str, description: str) -> int:
    """Set a class's description (标签说明)."""
    with _edit(ws, dataset) as (conn, dataset_id):
        class_id = _class_id(conn, dataset_id, name)
        conn.execute("UPDATE classes SET description = ? WHERE id = ?", (description.strip(), class_id))
        return log_change(conn, dataset_id, "describe_class", 0, name=name)


def move_class(ws: Workspace, dataset: str, name: str, step: int) -> int:
    """Move a class ``step`` places up (negative) or down in the display order (buttons, charts, exports)."""
    with _edit(ws, dataset) as (conn, dataset_id):
        order = [r[0] for r in conn.execute(
            "SELECT name FROM classes WHERE dataset_id = ? ORDER BY display_order, name", (dataset_id,)
        )]  # fmt: skip
        if name not in order:
            raise DatasetError("err.class_unknown", name=name)
        at = order.index(name)
        order.insert(max(0, min(len(order) - 1, at + step)), order.pop(at))
        conn.executemany(
            "UPDATE classes SET display_order = ? WHERE dataset_id = ? AND name = ?",
            [(i, dataset_id, n) for i, n in enumerate(order)],
        )
        return log_change(conn, dataset_id, "move_class", 0, name=name, step=step)


def set_examples(ws: Workspace, dataset: str, name: str, image_ids: list[int]) -> int:
    """Example images of a class, shown beside its description (标签说明)."""
    with _edit(ws, dataset) as (conn, dataset_id):
        class_id = _class_id(conn, dataset_id, name)
        unique = sorted({int(i) for i in image_ids})
        found = sum(
            conn.execute(
                f"SELECT COUNT(*) FROM images WHERE dataset_id = ? AND id IN ({marks})", (dataset_id, *chunk)
            ).fetchone()[0]
            for chunk, marks in id_chunks(unique)
        )
        if found != len(unique):
            raise DatasetError("err.images_unknown", count=len(unique) - found)
        conn.execute("UPDATE classes SET examples_json = ? WHERE id = ?", (json.dumps(unique), class_id))
        return log_change(conn, dataset_id, "set_examples", len(unique), name=name)


def class_examples(ws: Workspace, dataset: str) -> dict[str, list[int]]:
    with ws.connect() as conn:
        rows = conn.execute(
            "SELECT c.name, c.examples_json FROM classes c JOIN datasets d ON d.id = c.dataset_id WHERE d.name = ?",
            (dataset,),
        ).fetchall()
    return {name: json.loads(examples) for name, examples in rows}


def class_images(ws: Workspace, dataset: str, name: str | None) -> list[int]:
    """Ids of the images of a class (None: the unlabeled ones), active or excluded."""
    with ws.connect() as conn:
        target = catalog.dataset_id(conn, dataset)
        if name is None:
            query, args = "SELECT id FROM images WHERE dataset_id = ? AND class_id IS NULL", (target,)
        else:
            query = (
                "SELECT i.id FROM images i JOIN classes c ON c.id = i.class_id WHERE i.dataset_id = ? AND c.name = ?"
            )
            args = (target, name)
        return [r[0] for r in conn.execute(query + " ORDER BY 1", args)]


def change_log(ws: Workspace, dataset: str, limit: int = 100) -> list[Change]:
    """The dataset's changes, newest first."""
    with ws.connect() as conn:
        rows = conn.execute(
            "SELECT l.version, l.action, l.params_json, l.images, l.created_at FROM change_log l"
            " JOIN datasets d ON d.id = l.dataset_id WHERE d.name = ? ORDER BY l.id DESC LIMIT ?",
            (dataset, conn.limit(limit)),
        ).fetchall()
    return [Change(v, a, json.loads(p), n, c) for v, a, p, n, c in rows]


def rename_dataset(ws: Workspace, old: str, new: str) -> None:
    """Rename a dataset; its runs follow (their rows and configs name the new dataset), in one transaction."""
    new = catalog.validate_dataset_name(new)
    with _edit(ws, old) as (conn, dataset_id):
        _refuse_if_training(conn, dataset_id, old)
        if conn.execute("SELECT 1 FROM datasets WHERE name = ?", (new,)).fetchone():
            raise DatasetError("err.dataset_exists", name=new)
        conn.execute("UPDATE datasets SET name = ? WHERE id = ?", (new, dataset_id))
        runs.follow_dataset_rename(conn, dataset_id, new)
        log_change(conn, dataset_id, "rename_dataset", 0, old=old, new=new)


def delete_dataset(ws: Workspace, name: str, delete_runs: bool = False) -> dict[str, int]:
    """Delete a dataset: its rows, the image files no other dataset uses, its feature caches, and its runs
    if asked (otherwise they stay listed, as trained on a deleted dataset). Returns what was removed."""
    with _edit(ws, name) as (conn, dataset_id):
        _refuse_if_training(conn, dataset_id, name)
        files = conn.execute(
            "SELECT stored_path, thumb_path FROM images i WHERE dataset_id = ? AND NOT EXISTS"
            " (SELECT 1 FROM images j WHERE j.content_hash = i.content_hash AND j.dataset_id != i.dataset_id)",
            (dataset_id,),
        ).fetchall()
        run_ids = runs.delete_for_dataset(conn, dataset_id) if delete_runs else []
        conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
    # The rows are gone (committed); now the files, which nothing refers to any more.
    for stored, thumb in files:
        ws.path_of(stored).unlink(missing_ok=True)
        ws.path_of(thumb).unlink(missing_ok=True)
    shutil.rmtree(ws.feature_cache_dir(dataset_id), ignore_errors=True)
    runs.remove_folders(ws, run_ids)
    return {"images": len(files), "runs": len(run_ids)}


def _refuse_if_training(conn: Connection, dataset_id: int, name: str) -> None:
    """A run queued or training on the dataset needs it under its name until it ends."""
    busy = runs.live_on_dataset(conn, dataset_id)
    if busy:
        raise DatasetError("err.dataset_in_use", name=name, run=busy[0])
