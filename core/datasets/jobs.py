"""The import job: a zip becomes a new dataset, or more images of one (add-images), in a worker process.

An upload from the app is first written to the workspace's staging folder (``core.jobs.store.spool``) and the job owns that file: it is removed when the job ends, however it ends.
The job stages the images in its scratch folder, so a killed import leaves nothing behind either; it
checks for a stop request between images, and a cancelled import writes nothing (all or nothing, as any
import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any

from core.datasets.ingest import add_archive, import_archive
from core.datasets.splits import SplitConfig
from core.jobs.runner import JobContext, JobKind
from core.jobs.store import Resource, spool
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
    if params.into:
        result = add_archive(ctx.ws, params.archive, params.into, **common)
    else:
        result = import_archive(ctx.ws, params.archive, name=params.name, split=params.split, **common)
    return {**result.to_json(), "added": bool(params.into)}


IMPORT: JobKind[ImportJob] = JobKind("import", Resource.LIGHT, ImportJob.from_dict, _import)


def start_import(ws: Workspace, upload: IO[bytes], archive_name: str, **options: Any) -> int:
    """Queue the import of an uploaded zip (``name`` and ``split``, or ``into`` an existing dataset); the
    job owns the spooled copy. Returns the job id at once."""
    path = spool(ws, upload)
    params = ImportJob(str(path), archive_name, **options)
    return IMPORT.submit(ws, params, owned=(str(path),))
