"""Reading datasets back from the store: summaries, counts, samples, reports."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import DatasetError
from core.store.vocabulary import ImageStatus
from core.store.workspace import SPLITS, Workspace, id_chunks

# Characters, after trimming; long enough for a descriptive Chinese or English name.
MAX_NAME_LENGTH = 100
UNLABELED = ""  # the class name used for unlabeled images in count tables


def validate_dataset_name(name: str) -> str:
    """The name as stored (NFC, trimmed), or :class:`DatasetError` naming the rule."""
    cleaned = unicodedata.normalize("NFC", name or "").strip()
    if not cleaned:
        raise DatasetError("err.dataset_name_empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise DatasetError("err.dataset_name_long", name=cleaned[:20] + "…", limit=MAX_NAME_LENGTH)
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned) or "/" in cleaned or "\\" in cleaned:
        raise DatasetError("err.dataset_name_chars", name=cleaned)
    return cleaned


@dataclass(frozen=True)
class DatasetSummary:
    id: int
    name: str
    source: str
    layout: str
    version: int
    created_at: str
    images: int
    classes: dict[str, int]  # class name -> labelled images, in display order
    splits: dict[str, int]  # train/val/test -> labelled images
    unlabeled: int
    by_split: dict[str, dict[str, int]]  # class -> split -> images
    descriptions: dict[str, str]
    report: dict[str, Any]


def dataset_names(ws: Workspace) -> list[str]:
    with ws.connect() as conn:
        return [r[0] for r in conn.execute("SELECT name FROM datasets ORDER BY created_at DESC, id DESC")]


def load_dataset(ws: Workspace, name: str) -> DatasetSummary:
    with ws.connect() as conn:
        return read_dataset(conn, name)


def dataset_id(conn: Any, name: str) -> int:
    """The id of the dataset called ``name``, or :class:`DatasetError` listing the names there are."""
    row = conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()
    if row is None:
        known = [r[0] for r in conn.execute("SELECT name FROM datasets ORDER BY created_at DESC, id DESC")]
        raise DatasetError("err.dataset_unknown", name=name, known=", ".join(known) or "-")
    return row[0]


def read_dataset(conn: Any, name: str) -> DatasetSummary:
    """The summary, read on ``conn`` (so a caller can read it and more in one snapshot)."""
    row = conn.execute("SELECT * FROM datasets WHERE id = ?", (dataset_id(conn, name),)).fetchone()
    classes = conn.execute(
        "SELECT id, name, description FROM classes WHERE dataset_id = ? ORDER BY display_order, name", (row["id"],)
    ).fetchall()
    counts = conn.execute(
        "SELECT class_id, split, COUNT(*) FROM images WHERE dataset_id = ? AND status = ? GROUP BY class_id, split",
        (row["id"], ImageStatus.ACTIVE),
    ).fetchall()
    names = {c["id"]: c["name"] for c in classes}
    by_split: dict[str, dict[str, int]] = {c["name"]: dict.fromkeys(SPLITS, 0) for c in classes}
    unlabeled = 0
    for class_id, split, count in counts:
        if class_id is None:
            unlabeled += count
        elif split:
            by_split[names[class_id]][split] += count
    return DatasetSummary(
        id=row["id"],
        name=row["name"],
        source=row["source"],
        layout=row["layout"],
        version=row["version"],
        created_at=row["created_at"],
        images=sum(c for _, _, c in counts),
        classes={name: sum(s.values()) for name, s in by_split.items()},
        splits={s: sum(per[s] for per in by_split.values()) for s in SPLITS},
        unlabeled=unlabeled,
        by_split=by_split,
        descriptions={c["name"]: c["description"] for c in classes},
        report=json.loads(row["report_json"]),
    )


def list_datasets(ws: Workspace) -> list[DatasetSummary]:
    return [load_dataset(ws, name) for name in dataset_names(ws)]


def sample_thumbnails(ws: Workspace, dataset_id: int, per_class: int = 8) -> dict[str, list[Path]]:
    """Up to ``per_class`` thumbnails for each class (and for unlabeled, under ``UNLABELED``)."""
    with ws.connect() as conn:
        rows = conn.execute(
            """
            SELECT name, thumb_path FROM (
                SELECT COALESCE(c.name, ?) AS name, i.thumb_path, c.display_order AS ord,
                       ROW_NUMBER() OVER (PARTITION BY i.class_id ORDER BY i.id) AS n
                FROM images i LEFT JOIN classes c ON c.id = i.class_id
                WHERE i.dataset_id = ? AND i.status = ?
            ) WHERE n <= ? ORDER BY ord IS NULL, ord, n
            """,
            (UNLABELED, dataset_id, ImageStatus.ACTIVE, per_class),
        ).fetchall()
    out: dict[str, list[Path]] = {}
    for name, thumb in rows:
        out.setdefault(name, []).append(ws.path_of(thumb))
    return out


@dataclass(frozen=True)
class ImageRecord:
    id: int
    name: str  # the file's name in the archive it came from
    path: Path  # the stored (normalised) image
    thumb: Path
    split: str | None
    label: str | None


def images_by_id(ws: Workspace, ids: list[int]) -> dict[int, ImageRecord]:
    """The stored images with these ids (any dataset), for galleries and predictions."""
    out: dict[int, ImageRecord] = {}
    with ws.connect() as conn:
        for chunk, marks in id_chunks(ids):
            rows = conn.execute(
                "SELECT i.id, i.original_name, i.stored_path, i.thumb_path, i.split, c.name FROM images i"
                f" LEFT JOIN classes c ON c.id = i.class_id WHERE i.id IN ({marks})",
                chunk,
            ).fetchall()
            for r in rows:
                out[r[0]] = ImageRecord(r[0], r[1], ws.path_of(r[2]), ws.path_of(r[3]), r[4], r[5])
    return out


def split_images(ws: Workspace, dataset: str, split: str, limit: int | None = None) -> list[ImageRecord]:
    """The labelled, active images of one split of ``dataset``, in import order."""
    with ws.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM images WHERE dataset_id = ? AND split = ? AND status = ?"
                " AND class_id IS NOT NULL ORDER BY id LIMIT ?",
                (dataset_id(conn, dataset), split, ImageStatus.ACTIVE, conn.limit(-1 if limit is None else limit)),
            )
        ]
    found = images_by_id(ws, ids)
    return [found[i] for i in ids]


def attribute_of(ws: Workspace, ids: list[int], name: str) -> dict[int, str]:
    """One attribute's value for each of these images that has it."""
    out: dict[int, str] = {}
    with ws.connect() as conn:
        for chunk, marks in id_chunks(ids):
            rows = conn.execute(
                f"SELECT id, {conn.json_text('attributes_json')} FROM images WHERE id IN ({marks})",
                [conn.json_key(name), *chunk],
            ).fetchall()
            out.update({i: str(v) for i, v in rows if v is not None})
    return out


def labelled_images(conn: Any, dataset_id: int) -> list[Any]:
    """(id, stored path, class name, split) of the dataset's active labelled images with a split, in
    import order, in the caller's transaction (a training run reads them in one snapshot with the version)."""
    return conn.execute(
        "SELECT i.id, i.stored_path, c.name, i.split FROM images i JOIN classes c ON c.id = i.class_id"
        " WHERE i.dataset_id = ? AND i.status = ? AND i.split IS NOT NULL ORDER BY i.id",
        (dataset_id, ImageStatus.ACTIVE),
    ).fetchall()


def unlabelled_images(ws: Workspace, dataset: str) -> list[tuple[int, str]]:
    """(id, stored path) of the dataset's active images without a label, in import order."""
    with ws.connect() as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT i.id, i.stored_path FROM images i JOIN datasets d ON d.id = i.dataset_id"
            " WHERE d.name = ? AND i.class_id IS NULL AND i.status = ? ORDER BY i.id",
            (dataset, ImageStatus.ACTIVE),
        ).fetchall()]  # fmt: skip


def active_images(ws: Workspace, dataset_id: int) -> list[Any]:
    """The dataset's active images (id, original name, stored path, hash, split, label, attributes), in
    import order: what an export writes."""
    with ws.connect() as conn:
        return conn.execute(
            "SELECT i.id, i.original_name, i.stored_path, i.content_hash, i.split, c.name, i.attributes_json"
            " FROM images i LEFT JOIN classes c ON c.id = i.class_id"
            " WHERE i.dataset_id = ? AND i.status = ? ORDER BY i.id",
            (dataset_id, ImageStatus.ACTIVE),
        ).fetchall()


def short_sides(ws: Workspace, dataset_id: int) -> list[int]:
    """Each active image's shorter side, in pixels."""
    with ws.connect() as conn:
        return [r[0] for r in conn.execute(
            f"SELECT {conn.smaller('width', 'height')} FROM images WHERE dataset_id = ? AND status = ?",
            (dataset_id, ImageStatus.ACTIVE),
        )]  # fmt: skip
