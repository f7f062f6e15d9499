import json
import sqlite3

import pytest

from core.errors import WorkspaceError
from core.store.workspace import MIGRATIONS, Workspace, resolve_root


def applied(ws: Workspace) -> int:
    with sqlite3.connect(ws.db_path) as conn:
        return conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABELTUNE_HOME", raising=False)
    assert resolve_root() == tmp_path / "workspace"
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"


def test_open_creates_layout_wal_and_schema(tmp_path):
    ws = Workspace.open(tmp_path / "w")
    for sub in ("images", "thumbs", "runs", "staging", "jobs"):
        assert (ws.root / sub).is_dir()
    assert applied(ws) == MIGRATIONS[-1][0]
    with sqlite3.connect(ws.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"datasets", "classes", "images", "import_log", "schema_migrations", "settings"} <= tables


def test_migrations_run_once_and_keep_data(tmp_path):
    ws = Workspace.open(tmp_path / "w")
    ws.set_setting("ui.language", "zh")
    again = Workspace.open(tmp_path / "w")
    assert again.get_setting("ui.language") == "zh"
    with sqlite3.connect(ws.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


def test_new_migration_is_applied_to_an_old_workspace(tmp_path, monkeypatch):
    ws = Workspace.open(tmp_path / "w")
    ws.set_setting("keep", "me")
    extra = (*MIGRATIONS, (MIGRATIONS[-1][0] + 1, "ALTER TABLE datasets ADD COLUMN note TEXT NOT NULL DEFAULT ''"))
    monkeypatch.setattr("core.store.workspace.MIGRATIONS", extra)
    Workspace.open(tmp_path / "w")
    with sqlite3.connect(ws.db_path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(datasets)")}
    assert "note" in columns and ws.get_setting("keep") == "me"


def test_unusable_workspace_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WorkspaceError) as caught:
        Workspace.open(blocker / "ws")
    assert str(blocker) in caught.value.message("en") and str(blocker) in caught.value.message("zh")


def test_a_workspace_from_before_jobs_keeps_its_runs_their_status_and_their_messages(tmp_path, monkeypatch):
    """A workspace at schema 4 (runs carried their own status and liveness; import warnings were stored as
    {code, params, text}) opened by this version: every run gets the job it had, and every stored message
    has the one shape kept since (key and parameters)."""
    import core.store.workspace as store

    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:4])
    old = Workspace.open(tmp_path / "w")
    warning = {"code": "warn.duplicates", "params": {"count": 2}, "text": "2 duplicates"}
    skipped = {"entry": "猫/说明.txt", "reason": "not an image", "code": "skip.not_image", "params": {"ext": ".txt"}}
    error = json.dumps({"key": "err.nan_loss", "params": {"epoch": 2, "batch": 3}})
    with old.connect() as conn:
        conn.execute(
            "INSERT INTO datasets (id, name, report_json, created_at) VALUES (1, '猫狗', ?, 'then')",
            (json.dumps({"warnings": [warning], "skipped": [skipped]}),),
        )
        conn.execute(
            "INSERT INTO import_log (dataset_id, archive, archive_bytes, entries, imported, skipped_json,"
            " warnings_json, seconds, created_at) VALUES (1, 'a.zip', 1, 2, 1, ?, ?, 0.1, 'then')",
            (json.dumps([skipped]), json.dumps([warning])),
        )
        for run_id, status, err, pos in (("r-done", "completed", "", None), ("r-failed", "failed", error, None),
                                         ("r-waiting", "queued", "", 7.0)):  # fmt: skip
            conn.execute(
                "INSERT INTO runs (id, dataset_id, dataset_name, dataset_version, classes_json, config_json, status,"
                " error, created_at, queue_pos) VALUES (?, 1, '猫狗', 1, '[\"猫\", \"狗\"]', ?, ?, ?, ?, ?)",
                (
                    run_id,
                    json.dumps({"dataset": "猫狗", "backbone": "vgg16"}),
                    status,
                    err,
                    f"2026-11-0{len(run_id)}",
                    pos,
                ),
            )
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS)
    ws = Workspace.open(tmp_path / "w")
    assert applied(ws) == MIGRATIONS[-1][0]

    from core.i18n import render
    from core.runs import store as runs

    statuses = {r.id: (str(r.status), r.error and r.error["key"], r.job.queue_pos) for r in runs.list_runs(ws)}
    assert statuses == {
        "r-done": ("completed", None, None),
        "r-failed": ("failed", "err.nan_loss", None),
        "r-waiting": ("queued", None, 7.0),
    }
    with sqlite3.connect(ws.db_path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
        report = json.loads(conn.execute("SELECT report_json FROM datasets").fetchone()[0])
        logged = conn.execute("SELECT skipped_json, warnings_json FROM import_log").fetchone()
    assert not columns & {"status", "error", "pid", "heartbeat_at", "queue_pos"}  # they live on the jobs now
    assert report["warnings"] == [{"key": "warn.duplicates", "params": {"count": 2}}]
    assert report["skipped"] == [
        {"entry": "猫/说明.txt", "key": "skip.not_image", "params": {"ext": ".txt", "entry": "猫/说明.txt"}}
    ]
    assert [json.loads(logged[0]), json.loads(logged[1])] == [report["skipped"], report["warnings"]]
    assert ".txt" in render(report["skipped"][0], "zh") and "2" in render(report["warnings"][0], "en")


def test_a_run_stored_with_one_name_for_two_losses_gets_a_name_for_each(tmp_path, monkeypatch):
    """Before migration 7 ``best.val_loss`` was the training objective and ``final.val_loss`` the plain log
    loss; after it each has its own name and nothing else changes."""
    import core.store.workspace as store

    version = next(i for i, (v, _) in enumerate(MIGRATIONS) if v == 7)
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS[:version])
    old = Workspace.open(tmp_path / "w")
    best = {"val_loss": 0.38, "val_accuracy": 0.9, "epoch": 4, "phase": "head"}
    final = {"val_accuracy": 0.9, "val_loss": 0.274, "test_accuracy": 0.85, "test_loss": 0.41}
    with old.connect() as conn:
        conn.execute("INSERT INTO datasets (id, name, report_json, created_at) VALUES (1, 'd', '{}', 'then')")
        conn.execute(
            "INSERT INTO runs (id, dataset_id, dataset_name, dataset_version, classes_json, config_json, created_at,"
            " best_json, final_json) VALUES ('r', 1, 'd', 1, '[]', '{\"dataset\": \"d\"}', 'then', ?, ?)",
            (json.dumps(best), json.dumps(final)),
        )
    monkeypatch.setattr(store, "MIGRATIONS", MIGRATIONS)
    ws = Workspace.open(tmp_path / "w")
    with sqlite3.connect(ws.db_path) as conn:
        best, final = map(json.loads, conn.execute("SELECT best_json, final_json FROM runs").fetchone())
    assert best == {"val_objective": 0.38, "val_accuracy": 0.9, "epoch": 4, "phase": "head"}
    assert final == {"val_accuracy": 0.9, "val_log_loss": 0.274, "test_accuracy": 0.85, "test_log_loss": 0.41}
