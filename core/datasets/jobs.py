"""The dataset's jobs. The import: a zip becomes a new dataset, or more images of one (add-images), in a
worker process. The export: the dataset as a zip that the import accepts again (the Label page's
download), built in its job's scratch folder and moved into the workspace's ``exports/`` when whole.

An upload from the app is first written to the workspace's staging folder (``core.jobs.store.spool``) and the job owns that file: it is removed when the job ends, however it ends.
The job stages the images in its scratch folder, so a killed import leaves nothing behind either; it
checks for a stop request between images, and a cancelled import writes nothing (all or nothing, as any
import)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.datasets.archive import folder_as_zip
from core.datasets.catalog import load_dataset
from core.datasets.export_zip import export_dataset
from core.datasets.ingest import add_archive, import_archive
from core.datasets.splits import SplitConfig
from core.jobs.runner import FlatParams, JobContext, JobKind
from core.jobs.store import Resource, spool
from core.store.server_paths import inside_roots
from core.store.workspace import Workspace


@dataclass(frozen=True)
class ImportJob:
    archive: str  # the zip on disk
    archive_name: str  # its name as the user knows it (the upload's file name)
    name: str | None = None  # the new dataset's name (default: the archive's stem)
    into: str | None = None  # add the images to this dataset instead of making a new one
    split: SplitConfig = field(default_factory=SplitConfig)

    def to_dict(self) -> dict[str, Any]:
        split = {"train": self.split.train, "val": self.split.val, "test": self.split.test, "seed": self.split.seed}
        return {"archive": self.archive, "archive_name": self.archive_name, "name": self.name, "into": self.into,
                "split": split}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportJob:
        return cls(data["archive"], data["archive_name"], data.get("name"), data.get("into"),
                   SplitConfig(**data.get("split", {})))  # fmt: skip


def _import(ctx: JobContext, params: ImportJob) -> dict[str, Any]:
    def progress(done: int, total: int) -> None:
        ctx.progress(done, total, "job.import_images")

    common = {"archive_name": params.archive_name, "progress": progress, "staging": ctx.scratch}
    archive = params.archive
    if Path(archive).is_dir():  # a folder on the server: read as the zip it would be
        archive = str(folder_as_zip(Path(archive), ctx.scratch / "folder.zip"))
    if params.into:
        result = add_archive(ctx.ws, archive, params.into, **common)
    else:
        result = import_archive(ctx.ws, archive, name=params.name, split=params.split, **common)
    return {**result.to_json(), "added": bool(params.into)}


IMPORT: JobKind[ImportJob] = JobKind("import", Resource.LIGHT, ImportJob.from_dict, _import)


def start_server_import(ws: Workspace, typed: str, **options: Any) -> int:
    """Queue the import of a zip or a folder already on the server, named by a browser user: only inside the
    administrator's roots (``core.store.server_paths``). The job reads it in place and never removes it."""
    path = inside_roots(ws, typed)
    return IMPORT.submit(ws, ImportJob(str(path), path.name, **options))


def start_import(ws: Workspace, upload: IO[bytes], archive_name: str, **options: Any) -> int:
    """Queue the import of an uploaded zip (``name`` and ``split``, or ``into`` an existing dataset); the
    job owns the spooled copy. Returns the job id at once."""
    return start_import_staged(ws, spool(ws, upload), archive_name, **options)


def start_import_staged(ws: Workspace, path: Path, archive_name: str, **options: Any) -> int:
    """Queue the import of a zip already in the staging folder (a streamed upload, or a spooled one); the
    job owns it: it is removed when the job ends, however it ends."""
    return IMPORT.submit(ws, ImportJob(str(path), archive_name, **options), owned=(str(path),))


@dataclass(frozen=True)
class DatasetExportJob(FlatParams):
    dataset: str


def dataset_export_path(ws: Workspace, dataset: str) -> Path:
    """Where the dataset's last export lies (by its id: a name may be renamed, and holds any character)."""
    return ws.root / "exports" / f"dataset-{load_dataset(ws, dataset).id}.zip"


def _export_dataset(ctx: JobContext, params: DatasetExportJob) -> dict[str, Any]:
    built = ctx.scratch / "dataset.zip"
    progress = lambda done, total: ctx.progress(done, total, "job.export_dataset_images")  # noqa: E731
    counts = export_dataset(ctx.ws, params.dataset, built, progress)
    target = dataset_export_path(ctx.ws, params.dataset)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(built, target)  # whole, or the previous export as it was
    return {**counts, "dataset": params.dataset, "path": str(target.relative_to(ctx.ws.root))}


EXPORT_DATASET: JobKind[DatasetExportJob] = JobKind(
    "export_dataset", Resource.LIGHT, DatasetExportJob.from_dict, _export_dataset
)


def start_dataset_export(ws: Workspace, dataset: str) -> int:
    """Queue the export of ``dataset`` as a zip (or find the one already queued). Returns the job id."""
    load_dataset(ws, dataset)  # an unknown dataset is refused here, with its name
    return EXPORT_DATASET.submit(ws, DatasetExportJob(dataset), dedupe=dataset)
