"""The export job: a run's model in every chosen format, each checked before it is offered. A light job
(about a minute on a CPU): it runs beside a training run, never in the app's process."""

from __future__ import annotations

from typing import Any

from core.export.config import ExportConfig
from core.export.exporter import export_run
from core.jobs.runner import JobContext, JobKind
from core.jobs.store import Resource
from core.store.workspace import Workspace


def _export(ctx: JobContext, config: ExportConfig) -> dict[str, Any]:

    def step(name: str, done: int, total: int) -> None:
        ctx.progress(done, total, f"job.export_{name}")

    result = export_run(ctx.ws, config, step, workdir=ctx.scratch)
    return {"run": result.run, "zip": result.zip_path, "offered": [c.variant for c in result.checked if c.offered]}


EXPORT: JobKind[ExportConfig] = JobKind("export", Resource.LIGHT, ExportConfig.from_dict, _export)


def start_export(ws: Workspace, config: ExportConfig) -> int:
    """Queue an export of a run (or find the one of that run already queued or running)."""
    return EXPORT.submit(ws, config, run_id=config.run, dedupe=config.run)
