"""Importing a zip of labelled images into the workspace, all or nothing.

The archive is read member by member (never ``extractall``). Images are
normalised on a thread pool (Pillow releases the GIL while decoding) with a
bounded number in flight, so memory does not grow with the archive. Files go
to a private staging folder first; only when every image is processed are they
moved to their content-addressed places and the dataset written to SQLite in
one transaction. Any failure before that leaves the workspace as it was.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import time
import unicodedata
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.datasets import quality
from core.datasets.archive import EntrySkipped, IngestLimits, Skipped, open_zip, read_entry, scan_archive
from core.datasets.catalog import dataset_id, validate_dataset_name
from core.datasets.editing import log_change
from core.datasets.images import normalise_image
from core.datasets.layouts import ArchiveLayout, Planned, plan_import
from core.datasets.splits import SplitConfig, assign_splits
from core.errors import DatasetError, DatasetRejected, ImageRejected
from core.store.workspace import SPLITS, Workspace, utc_now

Progress = Callable[[int, int], None]
# Images decoded at once per worker thread; bounds memory to a few images per core.
IN_FLIGHT_PER_WORKER = 4


@dataclass(frozen=True)
class StoredImage:
    planned: Planned
    content_hash: str
    stored_path: str  # relative to the workspace root
    thumb_path: str
    width: int
    height: int


@dataclass
class ImportResult:
    dataset: str
    dataset_id: int
    layout: str
    images: int
    classes: dict[str, int]
    splits: dict[str, int]
    unlabeled: int
    skipped: list[Skipped]
    warnings: list[dict[str, Any]]
    report: dict[str, Any]
    seconds: float
    entries: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "layout": self.layout,
            "images": self.images,
            "classes": self.classes,
            "splits": self.splits,
            "unlabeled": self.unlabeled,
            "skipped": [s.to_stored() for s in self.skipped],  # stored messages: render(m, lang) shows one
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


def _clean_label(label: str | None) -> str | None:
    if label is None:
        return None
    label = unicodedata.normalize("NFC", label).strip()
    return label or None


class _Stager:
    """Writes normalised images into a private staging folder, content-addressed."""

    def __init__(self, ws: Workspace, limits: IngestLimits, root: Path | None = None) -> None:
        self.ws = ws
        self.limits = limits
        self.dir = (root or ws.staging_dir) / uuid.uuid4().hex
        self.dir.mkdir(parents=True)

    def final_paths(self, content_hash: str, extension: str) -> tuple[str, str]:
        shard = content_hash[:2]
        return f"images/{shard}/{content_hash}.{extension}", f"thumbs/{shard}/{content_hash}.jpg"

    def process(self, planned: Planned, data: bytes) -> StoredImage:
        content_hash = hashlib.sha256(data).hexdigest()
        image = normalise_image(data, str(planned.entry.path), self.limits.max_pixels)
        stored, thumb = self.final_paths(content_hash, image.extension)
        for rel, payload in ((stored, image.data), (thumb, image.thumbnail)):
            if not self.ws.path_of(rel).exists():
                staged = self.dir / rel
                staged.parent.mkdir(parents=True, exist_ok=True)
                staged.write_bytes(payload)
        return StoredImage(planned, content_hash, stored, thumb, image.width, image.height)

    def publish(self) -> list[Path]:
        """Move staged files into the workspace; returns the files and folders new there, newest last."""
        created: list[Path] = []
        for staged in sorted(p for p in self.dir.rglob("*") if p.is_file()):
            target = self.ws.root / staged.relative_to(self.dir)
            if target.exists():
                continue
            if not target.parent.exists():
                target.parent.mkdir(parents=True)
                created.append(target.parent)
            os.replace(staged, target)
            created.append(target)
        return created

    @staticmethod
    def unpublish(created: list[Path]) -> None:
        for path in reversed(created):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _process_all(
    zf: zipfile.ZipFile, plan: ArchiveLayout, stager: _Stager, limits: IngestLimits, progress: Progress | None
) -> tuple[list[StoredImage], list[Skipped]]:
    stored: list[StoredImage] = []
    skipped: list[Skipped] = []
    total = len(plan.images)
    workers = max(1, os.cpu_count() or 1)
    done = 0
    pending: set[Future[StoredImage]] = set()

    def collect(futures: set[Future[StoredImage]]) -> None:
        nonlocal done
        for future in futures:
            try:
                stored.append(future.result())
            except ImageRejected as exc:
                skipped.append(Skipped(str(exc.params.get("name", "")), exc.key, exc.params))
            done += 1
            if progress:
                progress(done, total)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="labeltune-import") as pool:
        for planned in plan.images:
            try:
                data = read_entry(zf, planned.entry, limits.max_image_bytes)
            except EntrySkipped as exc:
                skipped.append(exc.skipped)
                done += 1
                continue
            pending.add(pool.submit(stager.process, planned, data))
            if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                collect(finished)
        finished, _ = wait(pending)
        collect(finished)
    # Keep the archive's order, whatever order the threads finished in.
    order = {id(p): i for i, p in enumerate(plan.images)}
    stored.sort(key=lambda s: order[id(s.planned)])
    return stored, skipped


@dataclass
class _Archive:
    """What reading an archive gave: its images processed and staged, and everything skipped."""

    name: str
    size: int
    entries: int
    plan: ArchiveLayout
    stored: list[StoredImage]
    skipped: list[Skipped]

    def labels_and_splits(self) -> tuple[list[str | None], list[str | None]]:
        """Each stored image's label, and its split when the archive gave one (unlabeled: none)."""
        labels = [_clean_label(s.planned.label) for s in self.stored]
        return labels, [s.planned.split if label else None for s, label in zip(self.stored, labels, strict=True)]


@contextmanager
def _read_archive(
    ws: Workspace,
    source: str | os.PathLike[str] | IO[bytes],
    archive_name: str,
    limits: IngestLimits,
    progress: Progress | None,
    staging: Path | None = None,
) -> Iterator[tuple[_Archive, _Stager]]:
    """Open, scan, plan and process an archive into a private staging folder (discarded afterwards), under
    ``staging`` (an import job's scratch folder, removed even if its process dies) or the workspace's."""
    try:
        src = os.fspath(source) if isinstance(source, (str, os.PathLike)) else source
        zf, size = open_zip(src, archive_name, limits)
        with zf:
            scan = scan_archive(zf, archive_name, limits)
            if scan.total_entries == 0:
                raise DatasetRejected("err.archive_no_entries", archive=archive_name)
            plan = plan_import(zf, scan.entries, limits)
            if scan.names.reason:
                plan.notes.insert(0, (scan.names.reason, {}))
            if not plan.images:
                raise DatasetRejected(
                    "err.no_images", archive=archive_name, skipped=len(scan.skipped) + len(plan.skipped)
                )
            stager = _Stager(ws, limits, staging)
            try:
                stored, image_skips = _process_all(zf, plan, stager, limits, progress)
                yield (
                    _Archive(
                        archive_name, size, scan.total_entries, plan, stored, scan.skipped + plan.skipped + image_skips
                    ),
                    stager,
                )
            finally:
                stager.discard()
    except OSError as exc:  # staging, publishing or the store ran out of room: the staging folder is gone
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DatasetError("err.disk_full", path=str(ws.root)) from exc
        raise


def _archive_name(source: str | os.PathLike[str] | IO[bytes], archive_name: str | None) -> str:
    if archive_name is not None:
        return archive_name
    return Path(source).name if isinstance(source, (str, os.PathLike)) else "upload.zip"


def import_archive(
    ws: Workspace,
    source: str | os.PathLike[str] | IO[bytes],
    *,
    archive_name: str | None = None,
    name: str | None = None,
    split: SplitConfig | None = None,
    limits: IngestLimits | None = None,
    progress: Progress | None = None,
    staging: Path | None = None,
) -> ImportResult:
    """Import a zip (path or binary file object) as a new dataset; see the module docstring."""
    started = time.perf_counter()
    archive_name = _archive_name(source, archive_name)
    dataset_name = validate_dataset_name(name if name is not None else Path(archive_name).stem)
    with ws.connect() as conn:
        if conn.execute("SELECT 1 FROM datasets WHERE name = ?", (dataset_name,)).fetchone():
            raise DatasetError("err.dataset_exists", name=dataset_name)
    with _read_archive(ws, source, archive_name, limits or IngestLimits(), progress, staging) as (archive, stager):
        if not archive.stored:
            raise DatasetRejected("err.no_valid_images", archive=archive_name, skipped=len(archive.skipped))
        return _commit(ws, stager, dataset_name, archive, split or SplitConfig(), started)


def _commit(
    ws: Workspace, stager: _Stager, dataset_name: str, archive: _Archive, split_config: SplitConfig, started: float
) -> ImportResult:
    stored, plan = archive.stored, archive.plan
    labels, splits = archive.labels_and_splits()
    to_split = [
        (s.content_hash, i, label)
        for i, (s, label) in enumerate(zip(stored, labels, strict=True))
        if label and not splits[i]
    ]
    assigned, too_small = assign_splits(to_split, split_config)
    for index, value in assigned.items():
        splits[index] = value
    carved_val = False
    if any(labels) and "val" not in splits:
        # A layout without a validation split: hold out part of train so training can early-stop.
        train_items = [
            (stored[i].content_hash, i, label) for i, label in enumerate(labels) if label and splits[i] == "train"
        ]
        val_share = split_config.val / (split_config.train + split_config.val) if split_config.val else 0.0
        carve = SplitConfig(train=1.0 - val_share, val=val_share, test=0.0, seed=split_config.seed)
        carved, _ = assign_splits(train_items, carve)
        for index, value in carved.items():
            splits[index] = value
        carved_val = "val" in carved.values()

    class_names = sorted({label for label in labels if label} | set(plan.descriptions))
    counts = Counter(label for label in labels if label)
    report = quality.build_report(
        stored=[
            (str(s.planned.entry.path), s.content_hash, label, s.width, s.height)
            for s, label in zip(stored, labels, strict=True)
        ],
        skipped=archive.skipped,
        counts={c: counts.get(c, 0) for c in class_names},
        too_small=too_small,
        carved_val=carved_val,
        has_test=any(s == "test" for s in splits),
        notes=plan.notes,
    )
    moved = stager.publish()
    try:
        with ws.connect() as conn:
            dataset_id = conn.insert(
                "INSERT INTO datasets (name, source, layout, split_seed, report_json, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (dataset_name, archive.name, plan.layout, split_config.seed, quality.dumps(report), utc_now()),
            )
            _insert(conn, dataset_id, archive, labels, splits, report["warnings"], started)
    except BaseException:
        stager.unpublish(moved)
        raise
    return _result(dataset_name, dataset_id, archive, labels, splits, report, started)


def add_archive(
    ws: Workspace,
    source: str | os.PathLike[str] | IO[bytes],
    dataset: str,
    *,
    archive_name: str | None = None,
    limits: IngestLimits | None = None,
    progress: Progress | None = None,
    staging: Path | None = None,
) -> ImportResult:
    """Add the images of another zip to an existing dataset, with the import's safety rules and limits.

    New classes are created and existing ones grow; an image already in the dataset (same content) is
    reported and not added twice; new labelled images without a split in the archive are split with the
    dataset's seed, and no existing image moves. One new dataset version, logged as ``add_images``."""

    started = time.perf_counter()
    archive_name = _archive_name(source, archive_name)
    with ws.connect() as conn:
        target = dataset_id(conn, dataset)
        known = {r[0] for r in conn.execute("SELECT content_hash FROM images WHERE dataset_id = ?", (target,))}
        seed = conn.execute("SELECT split_seed FROM datasets WHERE id = ?", (target,)).fetchone()[0]
    with _read_archive(ws, source, archive_name, limits or IngestLimits(), progress, staging) as (archive, stager):
        fresh = []
        for s in archive.stored:
            if s.content_hash in known:
                archive.skipped.append(Skipped(str(s.planned.entry.path), "skip.already_in_dataset"))
            else:
                known.add(s.content_hash)  # a second copy inside the archive is a duplicate too
                fresh.append(s)
        archive.stored = fresh
        if not fresh:
            raise DatasetRejected(
                "err.no_new_images", archive=archive_name, dataset=dataset, skipped=len(archive.skipped)
            )
        return _commit_addition(
            ws, stager, dataset, target, archive, SplitConfig(seed=seed or SplitConfig.seed), started
        )


def _commit_addition(
    ws: Workspace, stager: _Stager, dataset: str, target: int, archive: _Archive, split: SplitConfig, started: float
) -> ImportResult:

    labels, splits = archive.labels_and_splits()
    to_split = [
        (s.content_hash, i, label)
        for i, (s, label) in enumerate(zip(archive.stored, labels, strict=True))
        if label and not splits[i]
    ]
    assigned, _ = assign_splits(to_split, split)
    for index, value in assigned.items():
        splits[index] = value
    warnings = [quality.warning(key, **params) for key, params in archive.plan.notes]
    if archive.skipped:
        warnings.append(quality.warning("warn.skipped", count=len(archive.skipped)))
    moved = stager.publish()
    try:
        with ws.connect() as conn:
            conn.begin_write()
            _insert(conn, target, archive, labels, splits, warnings, started)
            log_change(conn, target, "add_images", len(archive.stored), skipped=len(archive.skipped))
    except BaseException:
        stager.unpublish(moved)
        raise
    return _result(dataset, target, archive, labels, splits, {"warnings": warnings}, started)


def _insert(
    conn: Any,
    dataset_id: int,
    archive: _Archive,
    labels: list[str | None],
    splits: list[str | None],
    warnings: list[dict[str, Any]],
    started: float,
) -> None:
    """The archive's classes (new ones created, empty descriptions filled), images and import log row."""
    plan = archive.plan
    class_ids = dict(conn.execute("SELECT name, id FROM classes WHERE dataset_id = ?", (dataset_id,)).fetchall())
    for name in sorted({label for label in labels if label} | set(plan.descriptions)):
        description = plan.descriptions.get(name, "")
        if name not in class_ids:
            class_ids[name] = conn.insert(
                "INSERT INTO classes (dataset_id, name, description, display_order) VALUES (?, ?, ?, ?)",
                (dataset_id, name, description, len(class_ids)),
            )
        elif description:
            conn.execute(
                "UPDATE classes SET description = ? WHERE id = ? AND description = ''", (description, class_ids[name])
            )
    conn.executemany(
        "INSERT INTO images (dataset_id, content_hash, stored_path, thumb_path, original_name, width, height,"
        " split, class_id, attributes_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (dataset_id, s.content_hash, s.stored_path, s.thumb_path, str(s.planned.entry.path), s.width, s.height,
             split, class_ids[label] if label else None, quality.dumps(s.planned.attributes))
            for s, label, split in zip(archive.stored, labels, splits, strict=True)
        ],
    )  # fmt: skip
    conn.execute(
        "INSERT INTO import_log (dataset_id, archive, archive_bytes, entries, imported, skipped_json,"
        " warnings_json, seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (dataset_id, archive.name, archive.size, archive.entries, len(archive.stored),
         quality.dumps([s.to_stored() for s in archive.skipped]), quality.dumps(warnings),
         time.perf_counter() - started, utc_now()),
    )  # fmt: skip


def _result(
    dataset: str,
    dataset_id: int,
    archive: _Archive,
    labels: list[str | None],
    splits: list[str | None],
    report: dict[str, Any],
    started: float,
) -> ImportResult:
    counts = Counter(label for label in labels if label)
    split_counts = Counter(s for s in splits if s)
    return ImportResult(
        dataset=dataset,
        dataset_id=dataset_id,
        layout=archive.plan.layout,
        images=len(archive.stored),
        classes={c: counts.get(c, 0) for c in sorted(set(counts) | set(archive.plan.descriptions))},
        splits={k: split_counts.get(k, 0) for k in SPLITS},
        unlabeled=sum(1 for label in labels if not label),
        skipped=archive.skipped,
        warnings=report["warnings"],
        report=report,
        seconds=time.perf_counter() - started,
        entries=archive.entries,
    )
