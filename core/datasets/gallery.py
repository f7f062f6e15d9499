"""The Label page's gallery: one page of a dataset's images at a time, filtered in SQL, so a dataset of
tens of thousands of images shows as fast as a small one; and each image's details and label history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.datasets.catalog import dataset_id
from core.datasets.quality import SMALL_IMAGE_SIDE
from core.store.db import Connection
from core.store.vocabulary import ImageStatus
from core.store.workspace import Workspace, id_chunks

UNLABELED_FILTER = "\x00unlabeled"  # the class filter that selects images without a label
FLAGS = ("duplicate", "conflict", "small")  # the quality report's findings, as filters
# Thumbnails per gallery page: a 6 x 10 grid, a screenful on a laptop.
PAGE_SIZE = 60


@dataclass(frozen=True)
class GalleryFilter:
    label: str | None = None  # a class name, UNLABELED_FILTER, or None for all
    split: str | None = None
    status: ImageStatus | None = ImageStatus.ACTIVE  # None: every image
    search: str = ""  # part of the original file name
    attribute: tuple[str, str] | None = None  # (name, value)
    flag: str | None = None  # one of FLAGS: the quality report's findings, live


@dataclass(frozen=True)
class GalleryImage:
    id: int
    name: str
    thumb: Path
    path: Path
    label: str | None
    split: str | None
    excluded: bool
    width: int
    height: int
    attributes: dict[str, Any]
    content_hash: str


def _where(conn: Connection, dataset_id: int, f: GalleryFilter, class_ids: dict[str, int]) -> tuple[str, list[Any]]:
    """The filter as SQL on ``images`` alone (no join: a class is matched by its id), so the count and the
    page read only the images table and its indexes."""
    clauses, args = ["i.dataset_id = ?"], [dataset_id]
    if f.label == UNLABELED_FILTER:
        clauses.append("i.class_id IS NULL")
    elif f.label is not None:
        clauses.append("i.class_id = ?")
        args.append(class_ids.get(f.label, -1))
    if f.split:
        clauses.append("i.split = ?")
        args.append(f.split)
    if f.status is not None:
        clauses.append("i.status = ?")
        args.append(f.status)
    if f.search.strip():
        clauses.append(f"i.original_name {conn.like} ? ESCAPE '\\'")
        escaped = f.search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args.append(f"%{escaped}%")
    if f.flag == "duplicate":
        clauses.append(
            "i.content_hash IN (SELECT content_hash FROM images WHERE dataset_id = ? GROUP BY content_hash HAVING COUNT(*) > 1)"
        )
        args.append(dataset_id)
    elif f.flag == "conflict":
        clauses.append(
            "i.content_hash IN (SELECT content_hash FROM images WHERE dataset_id = ? AND class_id IS NOT NULL"
            " GROUP BY content_hash HAVING COUNT(DISTINCT class_id) > 1)"
        )
        args.append(dataset_id)
    elif f.flag == "small":
        clauses.append(f"{conn.smaller('i.width', 'i.height')} < ?")
        args.append(SMALL_IMAGE_SIDE)
    if f.attribute:
        clauses.append(f"{conn.json_text('i.attributes_json')} = ?")
        args += [conn.json_key(f.attribute[0]), str(f.attribute[1])]
    return " AND ".join(clauses), args


_FROM = "FROM images i"
_COLUMNS = (
    "i.id, i.original_name, i.thumb_path, i.stored_path, i.class_id, i.split, i.status, i.width, i.height,"
    " i.attributes_json, i.content_hash"
)


def _scope(conn: Any, dataset: str, f: GalleryFilter) -> tuple[str, list[Any], dict[int, str]]:
    """The WHERE clause for ``f`` and the dataset's class names by id."""
    target = dataset_id(conn, dataset)
    names = dict(conn.execute("SELECT id, name FROM classes WHERE dataset_id = ?", (target,)).fetchall())
    where, args = _where(conn, target, f, {name: i for i, name in names.items()})
    return where, args, names


def _image(ws: Workspace, names: dict[int, str], r: Any) -> GalleryImage:
    """A row of ``_COLUMNS`` as a gallery image."""
    return GalleryImage(
        r[0], r[1], ws.path_of(r[2]), ws.path_of(r[3]), names.get(r[4]), r[5], r[6] == ImageStatus.EXCLUDED, r[7], r[8],
        json.loads(r[9]), r[10],
    )  # fmt: skip


def gallery_page(
    ws: Workspace, dataset: str, f: GalleryFilter, page: int = 0, per_page: int = PAGE_SIZE
) -> tuple[list[GalleryImage], int]:
    """The images of one page (import order) and how many match the filter in all."""
    with ws.connect() as conn:
        where, args, names = _scope(conn, dataset, f)
        total = conn.execute(f"SELECT COUNT(*) {_FROM} WHERE {where}", args).fetchone()[0]
        rows = conn.execute(
            f"SELECT {_COLUMNS} {_FROM} WHERE {where} ORDER BY i.id LIMIT ? OFFSET ?",
            [*args, per_page, page * per_page],
        ).fetchall()
    return [_image(ws, names, r) for r in rows], total


def matching_ids(ws: Workspace, dataset: str, f: GalleryFilter) -> list[int]:
    """Every image id the filter matches (for "apply to all that match")."""
    with ws.connect() as conn:
        where, args, _ = _scope(conn, dataset, f)
        return [r[0] for r in conn.execute(f"SELECT i.id {_FROM} WHERE {where} ORDER BY i.id", args)]


def matching_images(ws: Workspace, dataset: str, f: GalleryFilter) -> list[GalleryImage]:
    """Every image the filter matches, in import order."""
    with ws.connect() as conn:
        where, args, names = _scope(conn, dataset, f)
        rows = conn.execute(f"SELECT {_COLUMNS} {_FROM} WHERE {where} ORDER BY i.id", args).fetchall()
    return [_image(ws, names, r) for r in rows]


def labels_of(ws: Workspace, ids: list[int]) -> dict[int, str | None]:
    """The current label of each image (for undo)."""
    out: dict[int, str | None] = {}
    with ws.connect() as conn:
        for chunk, marks in id_chunks(ids):
            query = (
                f"SELECT i.id, c.name FROM images i LEFT JOIN classes c ON c.id = i.class_id WHERE i.id IN ({marks})"
            )
            for image_id, name in conn.execute(query, chunk):
                out[image_id] = name
    return out


def attribute_values(ws: Workspace, dataset: str) -> dict[str, list[str]]:
    """Every attribute name of the dataset with its values, for the filter."""
    with ws.connect() as conn:
        rows = conn.execute(
            f"SELECT DISTINCT j.key, j.value FROM images i, {conn.json_pairs('i.attributes_json')} WHERE i.dataset_id = ?"
            " AND i.attributes_json != '{}' ORDER BY j.key, j.value",
            (dataset_id(conn, dataset),),
        ).fetchall()
    out: dict[str, list[str]] = {}
    for key, value in rows:
        out.setdefault(key, []).append(str(value))
    return out


def label_history(ws: Workspace, dataset: str, image_id: int) -> list[dict[str, Any]]:
    """The relabels that named this image, newest first (the change log keeps up to 1,000 ids a change),
    found in SQL rather than by reading the whole log."""
    with ws.connect() as conn:
        rows = conn.execute(
            f"SELECT l.version, {conn.json_text('l.params_json')}, l.created_at FROM change_log l"
            " WHERE l.dataset_id = ? AND l.action = 'relabel'"
            f" AND {conn.json_has('l.params_json', 'ids')} ORDER BY l.id DESC",
            (conn.json_key("label"), dataset_id(conn, dataset), image_id),
        ).fetchall()
    return [{"version": v, "label": label, "at": at} for v, label, at in rows]


@dataclass(frozen=True)
class DuplicateGroup:
    content_hash: str
    images: list[GalleryImage]

    @property
    def labels(self) -> list[str | None]:
        return sorted({i.label for i in self.images}, key=lambda x: (x is None, x or ""))

    @property
    def conflict(self) -> bool:
        return len(self.labels) > 1


def duplicate_groups(ws: Workspace, dataset: str) -> list[DuplicateGroup]:
    """Images of the dataset that are byte-identical (the gallery's "duplicate" filter), grouped, label
    conflicts first (live, not the import's report)."""
    groups: dict[str, list[GalleryImage]] = {}
    for image in matching_images(ws, dataset, GalleryFilter(flag="duplicate")):
        groups.setdefault(image.content_hash, []).append(image)
    found = [DuplicateGroup(h, members) for h, members in groups.items()]
    return sorted(found, key=lambda g: (not g.conflict, g.content_hash))
