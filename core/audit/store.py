"""What an audit found, as the Label page and the CLI read it (no TensorFlow here).

An audit's result is stored as found, for the dataset version it looked at. A report reads the newest
one against the images as they are now: a finding is open while nothing has answered it. A label issue
is answered when the image's label changed or it was excluded; a pair when either image was excluded;
an outlier when it was excluded. "Keep" answers (the label is right, both copies stay, the image belongs)
are stored per finding (``audit_kept``), so they survive the session and the next audit of the same
images; they are not edits of the dataset, so they make no new version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from core.audit.config import AuditConfig
from core.datasets.catalog import dataset_id
from core.store.vocabulary import ImageStatus
from core.store.workspace import Workspace, id_chunks, utc_now


@dataclass(frozen=True)
class AuditImage:
    id: int
    content_hash: str
    path: str  # stored file, relative to the workspace
    thumb: str
    file: str  # the name it had in the archive it came from
    split: str | None
    label: str | None
    status: str


def audit_images(ws: Workspace, dataset: str, active_only: bool = True) -> tuple[int, int, list[AuditImage]]:
    """The dataset's id, version and images (active ones unless asked), in import order, in one snapshot."""
    with ws.connect() as conn:
        conn.begin_read()
        ds = dataset_id(conn, dataset)
        version = conn.execute("SELECT version FROM datasets WHERE id = ?", (ds,)).fetchone()[0]
        rows = conn.execute(
            "SELECT i.id, i.content_hash, i.stored_path, i.thumb_path, i.original_name, i.split, c.name, i.status"
            " FROM images i LEFT JOIN classes c ON c.id = i.class_id WHERE i.dataset_id = ?"
            + (" AND i.status = ?" if active_only else "")
            + " ORDER BY i.id",
            (ds, ImageStatus.ACTIVE) if active_only else (ds,),
        ).fetchall()
    return ds, version, [AuditImage(*r) for r in rows]


@dataclass(frozen=True)
class Audit:
    id: int
    dataset_version: int
    config: AuditConfig
    result: dict[str, Any]
    seconds: float
    created_at: str


def save_audit(ws: Workspace, ds: int, version: int, config: AuditConfig, result: dict, seconds: float) -> int:
    with ws.connect() as conn:
        return conn.insert(
            "INSERT INTO audits (dataset_id, dataset_version, config_json, result_json, seconds, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (ds, version, json.dumps(config.to_dict(), ensure_ascii=False),
             json.dumps(result, ensure_ascii=False), seconds, utc_now()),
        )  # fmt: skip


def latest_audit(ws: Workspace, dataset: str) -> Audit | None:
    with ws.connect() as conn:
        row = conn.execute(
            "SELECT id, dataset_version, config_json, result_json, seconds, created_at FROM audits"
            " WHERE dataset_id = ? ORDER BY id DESC LIMIT 1",
            (dataset_id(conn, dataset),),
        ).fetchone()
    if row is None:
        return None
    return Audit(row[0], row[1], AuditConfig.from_dict(json.loads(row[2])), json.loads(row[3]), row[4], row[5])


def label_finding(image_id: int) -> str:
    return f"label:{image_id}"


def pair_finding(a: int, b: int) -> str:
    return f"pair:{min(a, b)}-{max(a, b)}"


def outlier_finding(image_id: int) -> str:
    return f"outlier:{image_id}"


def keep(ws: Workspace, dataset: str, findings: list[str], kept: bool = True) -> None:
    """Mark findings as looked at and kept as they are (or, ``kept=False``, open again: undo)."""
    with ws.connect() as conn:
        ds = dataset_id(conn, dataset)
        if kept:
            conn.executemany(
                "INSERT INTO audit_kept (dataset_id, finding, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(ds, f, utc_now()) for f in findings],
            )
        else:
            conn.executemany("DELETE FROM audit_kept WHERE dataset_id = ? AND finding = ?", [(ds, f) for f in findings])


def _kept(ws: Workspace, ds: int) -> set[str]:
    with ws.connect() as conn:
        return {r[0] for r in conn.execute("SELECT finding FROM audit_kept WHERE dataset_id = ?", (ds,))}


@dataclass(frozen=True)
class LabelIssue:
    image: AuditImage
    given: str
    suggested: str
    score: float


@dataclass(frozen=True)
class NearDuplicate:
    images: tuple[AuditImage, AuditImage]
    similarity: float

    @property
    def leak(self) -> bool:
        """In two different splits: the model is tested on a copy of what it trained on."""
        a, b = self.images
        return a.label is not None and b.label is not None and a.split != b.split

    @property
    def conflict(self) -> bool:
        a, b = self.images
        return a.label is not None and b.label is not None and a.label != b.label


@dataclass(frozen=True)
class Outlier:
    image: AuditImage
    score: float


@dataclass
class AuditReport:
    audit: Audit
    version: int  # the dataset's version now
    label_issues: list[LabelIssue] = field(default_factory=list)
    near_duplicates: list[NearDuplicate] = field(default_factory=list)
    outliers: list[Outlier] = field(default_factory=list)
    images: dict[int, AuditImage] = field(default_factory=dict)  # every image the audit saw, as it is now

    @property
    def stale(self) -> bool:
        """The dataset changed since the audit (answers to its findings included)."""
        return self.version != self.audit.dataset_version

    def to_json(self) -> dict[str, Any]:
        """The shape ``python -m core audit --json`` prints: each list most suspicious first."""
        return {
            "label_issues": [
                {"image": i.image.id, "file": i.image.file, "given": i.given, "suggested": i.suggested,
                 "score": round(i.score, 4)}
                for i in self.label_issues
            ],
            "near_duplicates": [
                {"images": [a.id, b.id], "files": [a.file, b.file], "similarity": round(p.similarity, 4),
                 "splits": [a.split, b.split], "labels": [a.label, b.label]}
                for p in self.near_duplicates for a, b in [p.images]
            ],
            "outliers": [{"image": o.image.id, "file": o.image.file, "score": round(o.score, 4)} for o in self.outliers],
        }  # fmt: skip


def report(ws: Workspace, dataset: str, audit: Audit | None = None) -> AuditReport | None:
    """The newest audit's findings still open, against the images as they are now; None before any audit."""
    audit = audit or latest_audit(ws, dataset)
    if audit is None:
        return None
    ds, version, now = audit_images(ws, dataset, active_only=False)
    seen = {int(i) for i in audit.result["map"]["ids"]}
    images = {im.id: im for im in now if im.id in seen}
    active = {i for i, im in images.items() if im.status == ImageStatus.ACTIVE}
    kept = _kept(ws, ds)
    out = AuditReport(audit, version, images=images)
    for found in audit.result["label_issues"]:
        image = images.get(found["image"])
        if image is not None and image.id in active and image.label == found["given"]:
            if label_finding(image.id) not in kept:
                out.label_issues.append(LabelIssue(image, found["given"], found["suggested"], found["score"]))
    for found in audit.result["near_duplicates"]:
        a, b = found["images"]
        if a in active and b in active and pair_finding(a, b) not in kept:
            out.near_duplicates.append(NearDuplicate((images[a], images[b]), found["similarity"]))
    # Leaks and conflicts first (they change what the scores mean), then the rest; each by similarity.
    out.near_duplicates.sort(key=lambda p: (not (p.leak or p.conflict), -p.similarity))
    for found in audit.result["outliers"]:
        if found["image"] in active and outlier_finding(found["image"]) not in kept:
            out.outliers.append(Outlier(images[found["image"]], found["score"]))
    return out


def thumbs(ws: Workspace, ids: list[int]) -> dict[int, str]:
    """Thumbnail paths of ``ids`` (for the map's selection)."""
    out: dict[int, str] = {}
    with ws.connect() as conn:
        for chunk, marks in id_chunks(ids):
            for image_id, thumb in conn.execute(f"SELECT id, thumb_path FROM images WHERE id IN ({marks})", chunk):
                out[image_id] = str(ws.path_of(thumb))
    return out
