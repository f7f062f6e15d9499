"""Which layout an archive uses, and what each image's label and split are.

Three layouts, after an optional single wrapper folder is stripped:
- ``folders``: one folder per class (``cat/1.jpg``);
- ``splits``: ``train/``, ``val|valid|validation/``, ``test/`` each holding class folders;
- ``manifest``: a CSV/TSV with ``filename,label[,split]`` (UTF-8 with or without BOM, or GBK).
Images under ``unlabeled/`` or loose at the root of a folder layout are unlabeled.
A ``classes.csv`` or ``classes.json`` fills the classes' descriptions.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from core.datasets.archive import Entry, EntrySkipped, IngestLimits, Skipped, read_entry, safe_path
from core.datasets.images import IMAGE_EXTENSIONS
from core.errors import DatasetRejected

SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
    "训练": "train",
    "训练集": "train",
    "验证": "val",
    "验证集": "val",
    "测试": "test",
    "测试集": "test",
}
UNLABELED_DIRS = frozenset({"unlabeled", "unlabelled", "未标注", "未标记", "无标签"})
DESCRIPTION_FILES = frozenset({"classes.csv", "classes.tsv", "classes.json"})
FILENAME_COLUMNS = (
    "filename",
    "file",
    "file_name",
    "filepath",
    "path",
    "image",
    "image_path",
    "文件名",
    "文件",
    "图片",
    "路径",
)
LABEL_COLUMNS = ("label", "class", "category", "标签", "类别", "类")
# A relabel sheet may name images by their id in the workspace instead of a file name.
IMAGE_ID_COLUMNS = ("image_id", "id", "图片id", "图片编号", "编号")
SPLIT_COLUMNS = ("split", "subset", "set", "划分", "数据集")
CLASS_COLUMNS = ("name", "class", "label", "类别", "标签", "名称")
DESCRIPTION_COLUMNS = ("description", "desc", "说明", "描述", "标签说明")


@dataclass(frozen=True)
class Planned:
    """One image to import: where it is in the archive, and its label and split if known."""

    entry: Entry
    label: str | None
    split: str | None
    attributes: dict[str, str] = field(default_factory=dict)  # a manifest's other columns (camera, site, ...)


@dataclass
class ArchiveLayout:
    layout: str
    images: list[Planned]
    descriptions: dict[str, str]
    skipped: list[Skipped]
    notes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # warnings about how it was read


def _is_image(entry: Entry) -> bool:
    return entry.suffix in IMAGE_EXTENSIONS


def _strip_wrapper(entries: list[Entry]) -> tuple[list[Entry], str | None]:
    """Drop one folder that wraps everything, when what is inside it has structure."""
    tops = {e.path.parts[0] for e in entries}
    if len(tops) != 1 or any(len(e.path.parts) < 2 for e in entries):
        return entries, None
    (top,) = tops
    if top.casefold() in SPLIT_ALIASES:
        return entries, None
    inner = [Entry(e.info, PurePosixPath(*e.path.parts[1:])) for e in entries]
    has_structure = any(len(e.path.parts) > 1 or not _is_image(e) for e in inner)
    return (inner, top) if has_structure else (entries, None)


def decode_text(data: bytes, file_name: str) -> str:
    """UTF-8 (with or without BOM), else GBK as Excel writes it on Chinese Windows."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DatasetRejected("err.manifest_encoding", file=file_name)


def read_table(text: str, file_name: str) -> tuple[list[str], list[list[str]]]:
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if file_name.lower().endswith(".tsv") or ("\t" in first_line and "," not in first_line) else ","
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if any(cell.strip() for cell in row)]
    if not rows:
        raise DatasetRejected("err.manifest_empty", file=file_name)
    header = [cell.strip().casefold() for cell in rows[0]]
    return header, rows[1:]


def column(header: list[str], names: tuple[str, ...]) -> int | None:
    """The index of the first of ``names`` (one vocabulary: FILENAME_COLUMNS, LABEL_COLUMNS, ...) in
    ``header`` (as :func:`read_table` gives it), or None."""
    for name in names:
        if name in header:
            return header.index(name)
    return None


def _read_metadata(zf: zipfile.ZipFile, entry: Entry, limits: IngestLimits) -> str:
    try:
        data = read_entry(zf, entry, limits.max_metadata_bytes)
    except EntrySkipped as skipped:
        raise DatasetRejected(
            "err.manifest_unreadable", file=str(entry.path), reason=skipped.message("en")
        ) from skipped
    return decode_text(data, str(entry.path))


def parse_descriptions(zf: zipfile.ZipFile, entry: Entry, limits: IngestLimits) -> dict[str, str]:
    """Class name to description, from ``classes.csv|tsv`` or ``classes.json``."""
    text = _read_metadata(zf, entry, limits)
    name = str(entry.path)
    if entry.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetRejected("err.descriptions_invalid", file=name, reason=str(exc)) from exc
        if isinstance(data, dict):
            return {str(k).strip(): str(v) for k, v in data.items() if str(k).strip()}
        if isinstance(data, list) and all(isinstance(item, dict) for item in data):
            out = {}
            for item in data:
                key = next((str(item[c]) for c in CLASS_COLUMNS if c in item), "").strip()
                if key:
                    out[key] = str(next((item[c] for c in DESCRIPTION_COLUMNS if c in item), ""))
            return out
        raise DatasetRejected("err.descriptions_invalid", file=name, reason="expected an object or a list of objects")
    header, rows = read_table(text, name)
    name_col, desc_col = column(header, CLASS_COLUMNS), column(header, DESCRIPTION_COLUMNS)
    if name_col is None or desc_col is None:
        raise DatasetRejected(
            "err.manifest_columns",
            file=name,
            found=", ".join(header),
            expected=f"{CLASS_COLUMNS[0]}, {DESCRIPTION_COLUMNS[0]}",
        )
    return {
        row[name_col].strip(): row[desc_col].strip() if desc_col < len(row) else ""
        for row in rows
        if name_col < len(row) and row[name_col].strip()
    }


def _manifest_matcher(images: list[Entry], base: PurePosixPath) -> Any:
    """Find a manifest row's image: by exact path (from the manifest's folder, or the archive's root),
    then relative to the one folder that holds all the images (``images/``, as exported datasets do),
    then by a base name that only one image has (with the row's folders, if any, ending its path). Returns ``(entry or None, matches)``; a base name
    shared by several images is never guessed (``matches`` > 1)."""
    by_path = {e.path: e for e in images}
    folders = {e.path.parent for e in images}
    image_folder = folders.pop() if len(folders) == 1 else None
    by_name: dict[str, list[Entry]] = {}
    for entry in images:
        by_name.setdefault(entry.path.name, []).append(entry)

    def find(rel: PurePosixPath) -> tuple[Entry | None, int]:
        for candidate in (base / rel, rel, image_folder / rel if image_folder else None):
            if candidate is not None and candidate in by_path:
                return by_path[candidate], 1
        # By base name, the row's folders (if it names any) ending the image's path: "b/x.jpg" finds
        # "a/b/x.jpg" but never "c/x.jpg".
        same = [e for e in by_name.get(rel.name, []) if e.path.parts[-len(rel.parts) :] == rel.parts]
        return (same[0], 1) if len(same) == 1 else (None, len(same))

    return find


def _manifest_plan(
    zf: zipfile.ZipFile, manifest: Entry, images: list[Entry], limits: IngestLimits
) -> tuple[list[Planned], list[Skipped]]:
    name = str(manifest.path)
    header, rows = read_table(_read_metadata(zf, manifest, limits), name)
    file_col, label_col, split_col = (
        column(header, FILENAME_COLUMNS),
        column(header, LABEL_COLUMNS),
        column(header, SPLIT_COLUMNS),
    )
    if file_col is None or label_col is None:
        raise DatasetRejected("err.manifest_columns", file=name, found=", ".join(header), expected="filename, label")
    find = _manifest_matcher(images, manifest.path.parent)
    assigned: dict[PurePosixPath, Planned] = {}
    skipped: list[Skipped] = []
    for row_number, row in enumerate(rows, start=2):
        cells = [c.strip() for c in row] + [""] * 3
        value = cells[file_col]
        where = f"{name}:{row_number}"
        try:
            rel = safe_path(value)
        except DatasetRejected:
            skipped.append(Skipped(where, "skip.manifest_outside", {"file": value}))
            continue
        found, count = find(rel)
        if count > 1:
            skipped.append(Skipped(where, "skip.manifest_ambiguous", {"file": value, "count": count}))
            continue
        if found is None:
            skipped.append(Skipped(where, "skip.manifest_missing", {"file": value}))
            continue
        if found.path in assigned:
            skipped.append(Skipped(where, "skip.manifest_repeat", {"file": value}))
            continue
        split_value = cells[split_col].casefold() if split_col is not None else ""
        split = SPLIT_ALIASES.get(split_value)
        if split_value and split is None:
            skipped.append(Skipped(where, "skip.manifest_split", {"value": cells[split_col]}))
        used = {file_col, label_col, split_col}
        attributes = {header[i]: cells[i] for i in range(len(header)) if i not in used and cells[i]}
        assigned[found.path] = Planned(found, cells[label_col] or None, split, attributes)
    planned = [assigned.get(e.path) or Planned(e, None, None) for e in images]
    return planned, skipped


def plan_import(zf: zipfile.ZipFile, entries: list[Entry], limits: IngestLimits) -> ArchiveLayout:
    """Detect the layout and give every image its label and split."""
    entries, _wrapper = _strip_wrapper(entries)
    images = [e for e in entries if _is_image(e)]
    metadata = [e for e in entries if not _is_image(e) and len(e.path.parts) == 1]
    skipped = [
        Skipped(str(e.path), "skip.not_image", {"ext": e.suffix})
        for e in entries
        if not _is_image(e) and e not in metadata
    ]
    descriptions: dict[str, str] = {}
    manifests = []
    for entry in metadata:
        if entry.path.name.casefold() in DESCRIPTION_FILES:
            descriptions.update(parse_descriptions(zf, entry, limits))
        elif entry.suffix in (".csv", ".tsv"):
            manifests.append(entry)
        else:
            skipped.append(Skipped(str(entry.path), "skip.not_image", {"ext": entry.suffix}))
    if len(manifests) > 1:
        raise DatasetRejected("err.manifest_ambiguous", files=", ".join(str(m.path) for m in manifests))
    if manifests:
        planned, manifest_skips = _manifest_plan(zf, manifests[0], images, limits)
        return ArchiveLayout("manifest", planned, descriptions, skipped + manifest_skips)

    def labelled(entry: Entry, parts: tuple[str, ...], split: str | None) -> Planned:
        """``parts`` below the split folder: a class folder, ``unlabeled/``, or a loose file."""
        if len(parts) == 1 or parts[0].casefold() in UNLABELED_DIRS:
            return Planned(entry, None, None)
        return Planned(entry, parts[0], split)

    planned: list[Planned] = []
    top_dirs = {e.path.parts[0].casefold() for e in images if len(e.path.parts) > 1}
    if top_dirs & SPLIT_ALIASES.keys():
        for entry in images:
            parts = entry.path.parts
            head = parts[0].casefold()
            if len(parts) > 1 and head in SPLIT_ALIASES:
                planned.append(labelled(entry, parts[1:], SPLIT_ALIASES[head]))
            elif len(parts) == 1 or head in UNLABELED_DIRS:
                planned.append(labelled(entry, parts, None))
            else:
                skipped.append(Skipped(str(entry.path), "skip.outside_splits", {"folder": parts[0]}))
        return ArchiveLayout("splits", planned, descriptions, skipped)
    for entry in images:
        planned.append(labelled(entry, entry.path.parts, None))
    return ArchiveLayout("folders", planned, descriptions, skipped)
