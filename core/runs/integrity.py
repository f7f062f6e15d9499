"""The workspace's integrity check, run when the app starts (once per server process) and by ``python -m
core check``: the database's own check (SQLite's ``quick_check``), run folders against the runs the store knows, and image
files against their rows. It reports, with what to do; it never repairs anything by itself (a folder
it cannot place may be the only copy of someone's model)."""

from __future__ import annotations

from typing import Any

from core.errors import WorkspaceError
from core.i18n import stored
from core.runs.store import WITH_MODEL, list_runs
from core.store.db import DATABASE_ERRORS
from core.store.workspace import Workspace

EXAMPLES = 3  # names listed per kind of problem


def check(ws: Workspace) -> list[dict[str, Any]]:
    """Problems found, as stored messages (key and parameters); empty when all is well."""
    try:
        with ws.connect() as conn:
            damage = conn.integrity_problems()
            images = conn.execute("SELECT stored_path FROM images").fetchall()
    except (*DATABASE_ERRORS, WorkspaceError) as exc:
        reason = exc.message("en") if isinstance(exc, WorkspaceError) else str(exc)
        return [stored("check.db_damaged", path=ws.store_name, detail=reason, backups=str(ws.backups_dir))]
    if damage:  # the rest would read a damaged store
        detail = "; ".join(damage[:EXAMPLES])
        return [stored("check.db_damaged", path=ws.store_name, detail=detail, backups=str(ws.backups_dir))]
    problems = []
    runs = {run.id: run for run in list_runs(ws)}
    strays = sorted(p.name for p in ws.runs_dir.iterdir() if p.is_dir() and p.name not in runs)
    if strays:
        problems.append(stored("check.stray_run_folders", count=len(strays), folder=str(ws.runs_dir),
                               names=", ".join(strays[:EXAMPLES])))  # fmt: skip
    lost = sorted(
        r.id for r in runs.values() if r.status in WITH_MODEL and r.model_path and not ws.path_of(r.model_path).exists()
    )
    if lost:
        problems.append(stored("check.run_models_missing", count=len(lost), runs=", ".join(lost[:EXAMPLES])))
    missing = [path for (path,) in images if not ws.path_of(path).exists()]
    if missing:
        problems.append(stored("check.images_missing", count=len(missing), folder=str(ws.images_dir),
                               names=", ".join(missing[:EXAMPLES])))  # fmt: skip
    return problems
