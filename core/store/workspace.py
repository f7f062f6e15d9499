"""The workspace: one folder holding the image files and runs, and the store of everything else.

Resolution order for the folder: an explicit argument (the CLI's
``--workspace`` or the app's ``-- --workspace``), then ``LABELTUNE_HOME``,
then ``./workspace``. The store is the SQLite file in that folder (one host), or the PostgreSQL
database an explicit URL names (the CLI's ``--database``, the app's ``-- --database``), else
``LABELTUNE_DATABASE_URL`` (several hosts: ``core.store.db``).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.errors import WorkspaceError
from core.store.db import (
    BUSY_TIMEOUT_MS,  # noqa: F401 - the name other modules import from here
    DATABASE_ENV,
    Backend,
    Connection,
    backend_of,
    connect_postgresql,
    connect_sqlite,
    redact,
    schema_sql,
)
from core.store.vocabulary import SPLITS  # noqa: F401 - the name other modules import from here

ENV_VAR = "LABELTUNE_HOME"
DEFAULT_DIR = "workspace"
DB_NAME = "labeltune.sqlite3"
# Beside the files, when the store is PostgreSQL: which database (its URL without the password), so that a
# process that opens the folder without the URL is told where the store is instead of starting an empty one.
POINTER_NAME = "store.json"
# Set in a store whose contents were copied to another (``python -m core move-store``): it is kept as it
# was, as a backup, and opening it is refused.
MOVED_SETTING = "store.moved_to"
BACKUPS_DIR = "backups"  # the store as it was before each schema migration


def _one_message(message: Any) -> Any:
    """A message stored before migration 6 (``{code, params, text}``, a skipped entry with ``reason``) in
    the one shape kept since: ``{key, params}`` (a skipped entry also keeps its ``entry``)."""
    if not isinstance(message, dict) or "code" not in message:
        return message
    out: dict[str, Any] = {"key": message["code"], "params": dict(message.get("params") or {})}
    if "entry" in message:
        out = {"entry": message["entry"], **out, "params": {**out["params"], "entry": message["entry"]}}
    return out


def _one_message_shape(conn: Connection) -> None:
    """Rewrite the import warnings and skip reasons stored in the older shape (see :func:`_one_message`)."""
    for row_id, text in conn.execute("SELECT id, report_json FROM datasets").fetchall():
        report = json.loads(text)
        for key in ("warnings", "skipped"):
            report[key] = [_one_message(m) for m in report.get(key, [])]
        conn.execute(
            "UPDATE datasets SET report_json = ? WHERE id = ?", (json.dumps(report, ensure_ascii=False), row_id)
        )
    for row_id, skipped, warnings in conn.execute("SELECT id, skipped_json, warnings_json FROM import_log").fetchall():
        conn.execute(
            "UPDATE import_log SET skipped_json = ?, warnings_json = ? WHERE id = ?",
            (
                json.dumps([_one_message(m) for m in json.loads(skipped)], ensure_ascii=False),
                json.dumps([_one_message(m) for m in json.loads(warnings)], ensure_ascii=False),
                row_id,
            ),
        )


def _figure_names(conn: Connection) -> None:
    """Runs stored ``best.val_loss`` (the training objective on validation) and ``final.val_loss`` (plain
    log loss) under one name for two figures: rename them ``val_objective`` and ``val_log_loss`` (and
    ``test_log_loss``)."""
    renames = {"best_json": {"val_loss": "val_objective"},
               "final_json": {"val_loss": "val_log_loss", "test_loss": "test_log_loss"}}  # fmt: skip
    for row_id, best, final in conn.execute("SELECT id, best_json, final_json FROM runs").fetchall():
        values = {"best_json": json.loads(best), "final_json": json.loads(final)}
        for column, names in renames.items():
            values[column] = {names.get(k, k): v for k, v in values[column].items()}
        conn.execute(
            "UPDATE runs SET best_json = ?, final_json = ? WHERE id = ?",
            (json.dumps(values["best_json"]), json.dumps(values["final_json"]), row_id),
        )


# Ordered schema migrations (SQL, or a function for a rewrite SQL cannot say). Append, never edit: a workspace records the
# versions it has applied and runs only the new ones.
MIGRATIONS: tuple[tuple[int, str | Callable[[Connection], None]], ...] = (
    (
        1,
        """
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL DEFAULT '',
            layout TEXT NOT NULL DEFAULT '',
            version INTEGER NOT NULL DEFAULT 1,
            split_seed INTEGER,
            report_json TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE TABLE classes (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            display_order INTEGER NOT NULL DEFAULT 0,
            UNIQUE (dataset_id, name)
        );
        CREATE TABLE images (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            content_hash TEXT NOT NULL,
            stored_path TEXT NOT NULL,
            thumb_path TEXT NOT NULL,
            original_name TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            split TEXT CHECK (split IN ('train', 'val', 'test')),
            class_id INTEGER REFERENCES classes(id) ON DELETE SET NULL,
            status TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'excluded'))
        );
        CREATE INDEX images_dataset ON images (dataset_id, split);
        CREATE INDEX images_hash ON images (content_hash);
        CREATE TABLE import_log (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE CASCADE,
            archive TEXT NOT NULL,
            archive_bytes INTEGER NOT NULL,
            entries INTEGER NOT NULL,
            imported INTEGER NOT NULL,
            skipped_json TEXT NOT NULL,
            warnings_json TEXT NOT NULL,
            seconds REAL NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            dataset_id INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
            dataset_name TEXT NOT NULL,
            dataset_version INTEGER NOT NULL,
            classes_json TEXT NOT NULL,
            config_json TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('queued', 'running', 'completed', 'stopped', 'failed', 'interrupted')),
            error TEXT NOT NULL DEFAULT '',
            weights_used TEXT NOT NULL DEFAULT '',
            device_json TEXT NOT NULL DEFAULT '{}',
            pid INTEGER,
            epochs_run INTEGER NOT NULL DEFAULT 0,
            best_json TEXT NOT NULL DEFAULT '{}',
            final_json TEXT NOT NULL DEFAULT '{}',
            model_path TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT
        );
        CREATE TABLE run_metrics (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('batch', 'epoch')),
            phase TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            step INTEGER NOT NULL,
            values_json TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX run_metrics_run ON run_metrics (run_id, kind, id)
        """,
    ),
    (
        3,
        """
        CREATE TABLE change_log (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            action TEXT NOT NULL,
            params_json TEXT NOT NULL,
            images INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE INDEX change_log_dataset ON change_log (dataset_id, id);
        CREATE INDEX images_gallery ON images (dataset_id, status, id);
        ALTER TABLE images ADD COLUMN attributes_json TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE classes ADD COLUMN examples_json TEXT NOT NULL DEFAULT '[]'
        """,
    ),
    (
        4,
        """
        ALTER TABLE runs ADD COLUMN queue_pos REAL;
        ALTER TABLE runs ADD COLUMN heartbeat_at REAL;
        ALTER TABLE runs ADD COLUMN proc_start TEXT;
        ALTER TABLE runs ADD COLUMN dispatched_at REAL;
        ALTER TABLE runs ADD COLUMN title TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN estimate_json TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE runs ADD COLUMN train_seconds REAL NOT NULL DEFAULT 0;
        CREATE INDEX runs_status ON runs (status, queue_pos);
        CREATE TABLE step_timings (
            key TEXT PRIMARY KEY,
            value_json TEXT NOT NULL,
            measured_at TEXT NOT NULL
        )
        """,
    ),
    (
        5,
        # One job mechanism for all heavy work (core.jobs). A run's status, liveness and error become its
        # latest training job's: every run gets the job it had, and the columns move off the runs table.
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            resource TEXT NOT NULL CHECK (resource IN ('exclusive', 'light')),
            params_json TEXT NOT NULL DEFAULT '{}',
            run_id TEXT REFERENCES runs(id) ON DELETE CASCADE,
            dedupe TEXT,
            status TEXT NOT NULL CHECK (status IN
                ('queued', 'running', 'completed', 'failed', 'stopped', 'interrupted', 'cancelled')),
            queue_pos REAL,
            host TEXT,
            pid INTEGER,
            proc_start TEXT,
            heartbeat_at REAL,
            dispatched_at REAL,
            stop_requested INTEGER NOT NULL DEFAULT 0,
            done INTEGER NOT NULL DEFAULT 0,
            total INTEGER NOT NULL DEFAULT 0,
            phase_json TEXT NOT NULL DEFAULT '',
            result_json TEXT NOT NULL DEFAULT '{}',
            error_json TEXT NOT NULL DEFAULT '',
            owned_json TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT
        );
        CREATE INDEX jobs_live ON jobs (status, resource, queue_pos);
        CREATE INDEX jobs_run ON jobs (run_id, kind, id);
        INSERT INTO jobs (kind, resource, params_json, run_id, status, queue_pos, pid, proc_start, heartbeat_at,
                          dispatched_at, error_json, created_at, started_at, ended_at)
            SELECT 'train', 'exclusive', json_object('run', id), id, status, queue_pos, pid, proc_start,
                   heartbeat_at, dispatched_at, error, created_at, started_at, ended_at
            FROM runs ORDER BY created_at, id;
        DROP INDEX runs_status;
        ALTER TABLE runs DROP COLUMN status;
        ALTER TABLE runs DROP COLUMN error;
        ALTER TABLE runs DROP COLUMN pid;
        ALTER TABLE runs DROP COLUMN queue_pos;
        ALTER TABLE runs DROP COLUMN heartbeat_at;
        ALTER TABLE runs DROP COLUMN proc_start;
        ALTER TABLE runs DROP COLUMN dispatched_at;
        ALTER TABLE runs DROP COLUMN started_at;
        ALTER TABLE runs DROP COLUMN ended_at
        """,
    ),
    (6, _one_message_shape),
    (7, _figure_names),
    (
        8,
        """
        CREATE TABLE tune_trials (
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            params_json TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('complete', 'failed')),
            val_log_loss REAL,
            val_accuracy REAL,
            seconds REAL NOT NULL,
            error_json TEXT,
            PRIMARY KEY (job_id, number)
        )
        """,
    ),
    (
        9,
        # The data audit (core.audit): what each audit found, and the findings a user has looked at and
        # kept as they are ("keep label", "keep both", "not an outlier").
        """
        CREATE TABLE audits (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            dataset_version INTEGER NOT NULL,
            config_json TEXT NOT NULL,
            result_json TEXT NOT NULL,
            seconds REAL NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX audits_dataset ON audits (dataset_id, id);
        CREATE TABLE audit_kept (
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            finding TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (dataset_id, finding)
        )
        """,
    ),
    (
        10,
        # Light workers that stay up between light jobs (core.jobs.runner.serve_warm): one row each while it
        # waits or runs a job handed to it (job_id), so the scheduler hands a queued light job to a process
        # that has TensorFlow loaded instead of starting a new one.
        """
        CREATE TABLE warm_workers (
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            proc_start TEXT,
            job_id INTEGER,
            since REAL NOT NULL,
            PRIMARY KEY (host, pid)
        )
        """,
    ),
    (
        11,
        # A queued job that waits for processes started by hand (``python -m core train --create-only``: a
        # cluster's workers under TF_CONFIG), not for the scheduler; it was stored as cancelled before.
        """
        ALTER TABLE jobs ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
        UPDATE jobs SET held = 1, status = 'queued', ended_at = NULL
            WHERE kind = 'train' AND status = 'cancelled' AND started_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM run_metrics m WHERE m.run_id = jobs.run_id)
        """,
    ),
)


# Ids bound in one SQL statement's IN (...): well below SQLite's limit on variables (32,766 in
# current builds, 999 in old ones).
ID_CHUNK = 900


def id_chunks(ids: Iterable[int]) -> Iterator[tuple[list[int], str]]:
    """Distinct ``ids``, sorted, in chunks for ``IN (...)``: each chunk with its placeholders."""
    unique = sorted({int(i) for i in ids})
    for start in range(0, len(unique), ID_CHUNK):
        chunk = unique[start : start + ID_CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where the workspace lives: argument, then $LABELTUNE_HOME, then ./workspace."""
    chosen = explicit or os.environ.get(ENV_VAR) or DEFAULT_DIR
    return Path(chosen).expanduser().resolve()


def resolve_database(explicit: str | None = None) -> str | None:
    """Which database holds the store: argument, then $LABELTUNE_DATABASE_URL; None is the SQLite file. A
    ``sqlite:`` URL also means the workspace's own file."""
    chosen = explicit or os.environ.get(DATABASE_ENV) or None
    return None if backend_of(chosen) is Backend.SQLITE else chosen


@dataclass(frozen=True)
class Workspace:
    """A workspace folder. Cheap to create; ``open`` makes the folders and schema."""

    root: Path
    database: str | None = field(default=None, repr=False)  # a PostgreSQL URL; None: the SQLite file

    @classmethod
    def open(cls, explicit: str | os.PathLike[str] | None = None, database: str | None = None) -> Workspace:
        ws = cls(resolve_root(explicit), resolve_database(database))
        try:
            for sub in (ws.root, ws.images_dir, ws.thumbs_dir, ws.runs_dir, ws.cache_dir, ws.staging_dir, ws.jobs_dir):
                sub.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError("err.workspace_unusable", path=str(ws.root), reason=exc.strerror or str(exc)) from exc
        ws.migrate()
        return ws

    @property
    def backend(self) -> Backend:
        return backend_of(self.database)

    @property
    def store_name(self) -> str:
        """The store as messages name it: the SQLite file's path, or the database URL without its password."""
        return redact(self.database) if self.database else str(self.db_path)

    @property
    def pointer_path(self) -> Path:
        return self.root / POINTER_NAME

    def pointer(self) -> dict[str, str]:
        """What ``store.json`` says of where this folder's store is ({} when it is the SQLite file)."""
        try:
            return json.loads(self.pointer_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise WorkspaceError("err.workspace_unusable", path=str(self.pointer_path), reason=str(exc)) from exc

    def write_pointer(self, database: str | None) -> None:
        """Record in the folder which store it belongs to (none: the SQLite file), renamed into place."""
        if database is None:
            self.pointer_path.unlink(missing_ok=True)
            return
        tmp = self.pointer_path.with_name(f".{POINTER_NAME}.{os.getpid()}.tmp")
        value = {"backend": str(Backend.POSTGRESQL), "database": redact(database)}
        tmp.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.pointer_path)

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def thumbs_dir(self) -> Path:
        return self.root / "thumbs"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def staging_dir(self) -> Path:
        return self.root / "staging"

    @property
    def jobs_dir(self) -> Path:
        """Each job's log (``<id>.log``) and files it owns while it lives (``core.jobs``)."""
        return self.root / "jobs"

    def feature_cache_dir(self, dataset_id: int) -> Path:
        """The training feature caches of one dataset (``core.training.features``)."""
        return self.cache_dir / "features" / str(dataset_id)

    def path_of(self, relative: str) -> Path:
        """Absolute path of a file recorded relative to the workspace root."""
        return self.root / relative

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection in one transaction: committed on success, rolled back on error, given back."""
        if self.database:
            with connect_postgresql(self.database, str(self.root)) as conn:
                yield conn
        else:
            with connect_sqlite(self.db_path) as conn:
                yield conn

    @property
    def backups_dir(self) -> Path:
        return self.root / BACKUPS_DIR

    def migrate(self) -> None:
        """Bring the store's schema to the newest version (each backend from the same migrations), after
        checking that this folder's store is this one and was not moved away."""
        pointed = self.pointer().get("database")
        if self.database is None and pointed and not self.db_path.exists():
            raise WorkspaceError("err.store_elsewhere", path=str(self.root), url=pointed, env=DATABASE_ENV)
        with self.connect() as conn:
            conn.begin_write()  # one migrator at a time, all or nothing
            conn.execute(
                schema_sql(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                    conn.backend,
                )
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            if done:
                moved = conn.execute("SELECT value FROM settings WHERE key = ?", (MOVED_SETTING,)).fetchone()
                if moved:
                    raise WorkspaceError("err.store_moved", store=self.store_name, to=moved[0])
            if done and any(version not in done for version, _ in MIGRATIONS) and conn.backend is Backend.SQLITE:
                self._backup(max(done))  # the store as it was, before this version changes it
            for version, script in MIGRATIONS:
                if version in done:
                    continue
                if callable(script):
                    script(conn)
                else:
                    for statement in filter(str.strip, script.split(";")):
                        conn.execute(schema_sql(statement, conn.backend))
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, utc_now()))
        if self.database and pointed != redact(self.database):
            self.write_pointer(self.database)

    def _backup(self, schema: int) -> Path:
        """A consistent copy of the store in ``backups/``, named by its schema version and the time. The
        migrator holds the write lock and has changed nothing yet; a second connection reads the store
        as committed (WAL lets it read beside the writer) through SQLite's backup API."""
        self.backups_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.backups_dir / f"labeltune-schema{schema}-{stamp}.sqlite3"
        source, target = sqlite3.connect(self.db_path), sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return path

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self.connect() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
