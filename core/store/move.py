"""Moving a workspace's store between its SQLite file (one host) and a PostgreSQL database (a team's
workers on several hosts): ``python -m core move-store --to URL`` and back with ``--to sqlite``.

The copy is one transaction on each side: the source's write lock is held throughout (nothing changes
while it is read), every table is copied row for row with its ids, PostgreSQL's id counters are moved past
the copied ids, and each table's count is checked on both sides before the target commits. The source is
then kept as it was, as a backup, and marked moved (a setting in it): opening it again is refused with
where the store went. Image files and run folders stay where they are: both stores name them relative to
the workspace folder.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from core.errors import WorkspaceError
from core.store.db import Backend, Connection, backend_of, columns, identity_tables, redact, user_tables
from core.store.workspace import DB_NAME, MIGRATIONS, MOVED_SETTING, Workspace

# Tables not copied: the target records its own schema versions, and a warm worker's row is its process's
# (no job is live during a move, so none waits).
NOT_COPIED = ("schema_migrations", "warm_workers")
ROWS_PER_INSERT = 500  # rows per multi-row INSERT (well below SQLite's 32,766 bound values for any table)
# Tables in the order the migrations create them: each after the tables it references.
CREATED = tuple(
    re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", " ".join(m for _, m in MIGRATIONS if isinstance(m, str)))
)


def _in_creation_order(conn: Connection) -> list[str]:
    names = set(user_tables(conn))
    return [t for t in CREATED if t in names] + sorted(names - set(CREATED))


def _target_empty(conn: Connection) -> bool:
    tables = set(user_tables(conn))
    return all(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] == 0 for t in tables if t not in NOT_COPIED)


def _copy(source: Connection, target: Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in _in_creation_order(source):
        if table in NOT_COPIED:
            continue
        present = set(columns(target, table))
        names = [c for c in columns(source, table) if c in present]
        listed = ", ".join(names)
        rows = source.execute(f"SELECT {listed} FROM {table}").fetchall()
        if table == "settings":
            rows = [r for r in rows if r[0] != MOVED_SETTING]
        marks = "(" + ", ".join("?" * len(names)) + ")"
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            target.execute(
                f"INSERT INTO {table} ({listed}) VALUES {', '.join([marks] * len(chunk))}",
                [value for row in chunk for value in row],
            )
        counts[table] = len(rows)
    if target.postgresql:  # new rows are numbered after the copied ones
        target.execute("ANALYZE")  # the planner's statistics for the rows just copied, as autovacuum would later
        for table in identity_tables(target):
            target.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL)"
                f" FROM {table}"
            )
    for table, count in counts.items():
        copied = target.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        if copied != count:  # the target's transaction rolls back
            raise WorkspaceError("err.move_count", table=table, source=count, target=copied)
    return counts


def move_store(ws: Workspace, to: str, refuse_if: Callable[[Connection], None] = lambda conn: None) -> dict[str, Any]:
    """Copy ``ws``'s store to ``to`` (a PostgreSQL URL, or ``sqlite`` for the workspace's file) and mark
    the source moved. ``refuse_if(conn)`` runs inside the source's write lock before anything is copied
    (the CLI refuses while jobs are live). Returns what was copied, table by table."""
    target_backend = backend_of(to if to != "sqlite" else None)
    if target_backend is ws.backend and (ws.database or None) == (to if target_backend is Backend.POSTGRESQL else None):
        raise WorkspaceError("err.move_same", store=ws.store_name)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if target_backend is Backend.POSTGRESQL:
        target = Workspace(ws.root, to)
        staged = None
    else:  # a new SQLite file, built aside and renamed into place when complete
        staged = ws.staging_dir / f"move-{stamp}"
        staged.mkdir(parents=True, exist_ok=True)
        target = Workspace(staged)
    with ws.connect() as source:
        source.begin_write()
        refuse_if(source)
        with target.connect() as probe:
            if not _target_empty(probe):
                raise WorkspaceError("err.move_target_not_empty", store=target.store_name)
        target.migrate()
        with target.connect() as conn:
            conn.begin_write()
            counts = _copy(source, conn)
        destination = redact(to) if target_backend is Backend.POSTGRESQL else f"sqlite:{ws.db_path}"
        source.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (MOVED_SETTING, destination),
        )
    if staged is not None:
        if ws.db_path.exists():  # an earlier SQLite store, itself moved away before: kept beside the backups
            ws.backups_dir.mkdir(parents=True, exist_ok=True)
            ws.db_path.rename(ws.backups_dir / f"labeltune-moved-{stamp}.sqlite3")
        for suffix in ("-wal", "-shm"):
            ws.db_path.with_name(DB_NAME + suffix).unlink(missing_ok=True)
        (staged / DB_NAME).rename(ws.db_path)
        shutil.rmtree(staged, ignore_errors=True)
        ws.write_pointer(None)
    else:
        ws.write_pointer(to)
    return {"from": ws.store_name, "to": destination, "rows": counts}
