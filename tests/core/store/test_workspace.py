import sqlite3

import pytest

from core.errors import WorkspaceError
from core.store.workspace import MIGRATIONS, Workspace, resolve_root


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LABELTUNE_HOME", raising=False)
    assert resolve_root() == tmp_path / "workspace"
    monkeypatch.setenv("LABELTUNE_HOME", str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"


def test_open_creates_layout_wal_and_schema(tmp_path):
    ws = Workspace.open(tmp_path / "w")
    for sub in ("images", "thumbs", "runs", "staging"):
        assert (ws.root / sub).is_dir()
    assert ws.schema_version() == MIGRATIONS[-1][0]
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
