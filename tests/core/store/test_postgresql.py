"""The PostgreSQL store beside SQLite (core.store.db) and moving a workspace between them
(core.store.move, ``python -m core move-store``): a real throwaway PostgreSQL cluster, real SQLite files,
real imports and runs. Skipped with the reason where PostgreSQL cannot start (failed under ``.ci/run``)."""

from __future__ import annotations

import sqlite3

import pytest

from core.audit.store import keep
from core.cli.main import main as cli
from core.datasets.catalog import dataset_names, load_dataset
from core.datasets.editing import add_class, class_examples, relabel
from core.datasets.gallery import GalleryFilter, gallery_page
from core.datasets.ingest import import_archive
from core.errors import JobError, WorkspaceError
from core.jobs import queue
from core.jobs.store import Resource, refuse_live_jobs
from core.runs import store as runs
from core.store.db import DATABASE_ENV, Backend, columns, redact, user_tables
from core.store.move import move_store
from core.store.workspace import MIGRATIONS, MOVED_SETTING, Workspace
from core.training.jobs import create_run
from tests.builders import make_zip, separable
from tests.core.runs.test_store import config


def _schema(ws: Workspace) -> dict[str, list[str]]:
    with ws.connect() as conn:
        return {t: sorted(columns(conn, t)) for t in user_tables(conn)}


def test_both_backends_get_one_schema_from_the_same_migrations(pg_url, tmp_path):
    lite, pg = Workspace.open(tmp_path / "a"), Workspace.open(tmp_path / "b", pg_url)
    assert pg.backend is Backend.POSTGRESQL and lite.backend is Backend.SQLITE
    assert _schema(lite) == _schema(pg) and "jobs" in _schema(pg)
    with pg.connect() as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        kinds = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'jobs'"
        ).fetchall())  # fmt: skip
    assert versions == [v for v, _ in MIGRATIONS]
    # Heartbeats are epoch seconds (float4 would round them to minutes); ids and sizes 64-bit.
    assert kinds["heartbeat_at"] == "double precision" and kinds["id"] == "bigint" and kinds["pid"] == "bigint"
    Workspace.open(tmp_path / "b", pg_url)  # opened again: nothing left to migrate, nothing changes
    assert (tmp_path / "b" / "store.json").exists() and not (tmp_path / "b" / "labeltune.sqlite3").exists()


def test_a_bad_or_unreachable_database_is_a_clear_error_that_hides_the_password(tmp_path):
    with pytest.raises(WorkspaceError) as bad:
        Workspace.open(tmp_path / "ws", "mysql://me:secret@db/x")
    assert bad.value.key == "err.database_url" and "secret" not in bad.value.message("en")
    closed = "postgresql://me:secret@127.0.0.1:9/labeltune"  # port 9 (discard): nothing listens
    with pytest.raises(WorkspaceError) as unreachable:
        Workspace.open(tmp_path / "ws", closed)
    text = unreachable.value.message("en")
    assert unreachable.value.key == "err.database_unreachable" and "secret" not in text and "me:***@" in text
    assert "secret" not in unreachable.value.message("zh") and redact(closed) in unreachable.value.message("zh")


def test_a_folder_whose_store_is_postgresql_never_starts_an_empty_sqlite_one(pg_url, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    Workspace.open(tmp_path / "ws", pg_url)
    with pytest.raises(WorkspaceError) as caught:
        Workspace.open(tmp_path / "ws")  # a worker started without the URL
    assert caught.value.key == "err.store_elsewhere" and DATABASE_ENV in caught.value.message("en")
    assert not (tmp_path / "ws" / "labeltune.sqlite3").exists()
    assert cli(["datasets", "--workspace", str(tmp_path / "ws")]) != 0
    assert DATABASE_ENV in capsys.readouterr().err
    monkeypatch.setenv(DATABASE_ENV, pg_url)
    assert cli(["datasets", "--workspace", str(tmp_path / "ws")]) == 0


def _filled(tmp_path, database: str | None = None) -> Workspace:
    """A workspace with what a user makes: a dataset with a relabel, a new class and its log, a run with its
    job, kept audit findings and a setting."""
    ws = Workspace.open(tmp_path / "ws", database)
    colours = {"红": (200, 60, 60), "蓝": (60, 60, 200), "绿": (60, 200, 60)}
    import_archive(ws, make_zip(tmp_path / "c.zip", separable(colours, 8)), name="c")
    first = gallery_page(ws, "c", GalleryFilter(), 0, 5)[0]
    relabel(ws, "c", [first[0].id], "蓝")
    add_class(ws, "c", "紫", "新的类别")
    create_run(ws, config(seed=3))
    with ws.connect() as conn:
        conn.execute("UPDATE jobs SET status = 'completed', ended_at = created_at")
    keep(ws, "c", ["outlier:1", "label:2"])
    ws.set_setting("ui.language", "zh")
    return ws


def _contents(ws: Workspace) -> dict:
    with ws.connect() as conn:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in user_tables(conn)}
    gallery = [(i.id, i.name, i.label, i.split) for i in gallery_page(ws, "c", GalleryFilter(), 0, 100)[0]]
    run = runs.list_runs(ws)[0]
    counts.pop("schema_migrations")
    return {"counts": counts, "gallery": gallery, "dataset": load_dataset(ws, "c"),
            "run": (run.id, run.status, run.config), "lang": ws.get_setting("ui.language")}  # fmt: skip


def test_move_store_to_postgresql_and_back_keeps_everything_and_retires_the_old_store(pg_url, tmp_path, monkeypatch):
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    lite = _filled(tmp_path)
    before = _contents(lite)
    root = str(lite.root)
    assert cli(["move-store", "--workspace", root, "--to", pg_url, "--json"]) == 0

    with pytest.raises(WorkspaceError) as moved:  # the SQLite file is a backup now: it never opens by mistake
        Workspace.open(root)
    assert moved.value.key == "err.store_moved" and "127.0.0.1" in moved.value.message("en")
    with sqlite3.connect(lite.db_path) as conn:  # and it still holds everything it held
        assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == before["counts"]["images"]
        assert conn.execute("SELECT value FROM settings WHERE key = ?", (MOVED_SETTING,)).fetchone()

    pg = Workspace.open(root, pg_url)
    assert _contents(pg) == before
    # New rows are numbered after the copied ones (PostgreSQL's counters were moved on).
    add_class(pg, "c", "黄")
    assert create_run(pg, config(seed=4)) and len(runs.list_runs(pg)) == 2
    with pg.connect() as conn:  # its job ends (moving refuses while a job is live: below)
        conn.execute("UPDATE jobs SET status = 'cancelled', ended_at = created_at WHERE status = 'queued'")
    assert "黄" in class_examples(pg, "c")

    after = _contents(pg)
    assert cli(["move-store", "--workspace", root, "--database", pg_url, "--to", "sqlite", "--json"]) == 0
    with pytest.raises(WorkspaceError) as retired:
        Workspace.open(root, pg_url)
    assert retired.value.key == "err.store_moved"
    back = Workspace.open(root)
    assert _contents(back) == after
    assert not (lite.root / "store.json").exists()
    assert list(back.backups_dir.glob("labeltune-moved-*.sqlite3"))  # the first SQLite store, kept


def test_move_store_refuses_while_jobs_are_live_and_into_a_database_with_data(pg_url, tmp_path, monkeypatch):
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    lite = _filled(tmp_path)
    job = queue.submit(lite, "estimate", Resource.LIGHT, {}, start=False)
    with pytest.raises(JobError) as live:
        move_store(lite, pg_url, refuse_if=refuse_live_jobs)
    assert live.value.key == "err.move_live_jobs" and str(job) in live.value.message("en")
    with Workspace(lite.root, pg_url).connect() as conn:
        assert user_tables(conn) == []  # nothing was copied
    assert dataset_names(Workspace.open(lite.root)) == ["c"]  # and the SQLite store opens as before

    other = _filled(tmp_path / "other", pg_url)
    queue.cancel(lite, job)
    with pytest.raises(WorkspaceError) as full:
        move_store(lite, pg_url)
    assert full.value.key == "err.move_target_not_empty"
    assert dataset_names(Workspace.open(lite.root)) == ["c"] and dataset_names(other) == ["c"]
