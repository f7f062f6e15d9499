"""The store under faults from outside: another program holding SQLite's lock, a damaged database file,
run folders and image files that no longer match their rows, and a schema migration (backed up first).
Real SQLite, real processes and files; the check reports and never repairs."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import core.store.db as store
import core.store.workspace as workspace_module
from core.cli.main import main as cli
from core.datasets.ingest import import_archive
from core.errors import WorkspaceError
from core.runs.integrity import check
from core.store.workspace import DB_NAME, MIGRATIONS, Workspace
from core.training.jobs import create_run
from tests.builders import make_zip, separable
from tests.core.runs.test_store import config

HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("UPDATE settings SET value = 'theirs' WHERE key = 'held'")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def hold_lock(ws: Workspace, seconds: float) -> subprocess.Popen:
    """Another process takes SQLite's write lock on the store for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(ws.db_path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.fixture
def ws(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    ws.set_setting("held", "ours")
    return ws


@pytest.mark.slow  # ten seconds of waiting, as the fault asks
def test_a_store_locked_by_another_process_for_10_s_is_waited_for(ws):
    holder = hold_lock(ws, 10)
    started = time.monotonic()
    assert ws.get_setting("held") == "ours"  # reading goes on beside the lock (WAL)
    ws.set_setting("mine", "1")  # writing waits for the lock, then works
    assert time.monotonic() - started >= 8 and ws.get_setting("mine") == "1"
    assert holder.wait(timeout=30) == 0


def test_a_lock_held_past_the_wait_is_a_clear_error_and_nothing_changes(ws, monkeypatch):
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 1000)
    holder = hold_lock(ws, 3)
    with pytest.raises(WorkspaceError) as caught:
        ws.set_setting("held", "changed")
    assert caught.value.key == "err.workspace_locked"
    assert str(ws.db_path) in caught.value.message("en") and "1 s" in caught.value.message("en")
    assert str(ws.db_path) in caught.value.message("zh")
    holder.wait(timeout=30)
    assert ws.get_setting("held") == "ours"


def test_a_damaged_store_is_refused_with_a_message_and_left_as_it_was(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    ws.db_path.write_bytes(b"this is not SQLite " * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{ws.db_path}{suffix}").unlink(missing_ok=True)
    before = ws.db_path.read_bytes()
    with pytest.raises(WorkspaceError) as caught:
        Workspace.open(tmp_path / "ws")
    assert caught.value.key == "err.workspace_damaged" and str(ws.db_path) in caught.value.message("en")
    problems = check(ws)
    assert [p["key"] for p in problems] == ["check.db_damaged"]
    assert ws.db_path.read_bytes() == before  # reported, not repaired


def test_a_corrupt_page_fails_quick_check_and_is_reported(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    import_archive(ws, make_zip(tmp_path / "c.zip", separable({"red": (200, 60, 60), "blue": (60, 60, 200)}, 40)))
    with sqlite3.connect(ws.db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert check(ws) == []
    data = bytearray(ws.db_path.read_bytes())
    for n in range(2, pages):  # scribble over the middle of every page but the header's
        data[n * page + 16 : n * page + 48] = b"\xff" * 32
    ws.db_path.write_bytes(bytes(data))
    [problem] = check(ws)
    assert problem["key"] == "check.db_damaged" and str(ws.backups_dir) in problem["params"]["backups"]


def test_run_folders_and_image_files_are_checked_against_their_rows(tmp_path, capsys):
    ws = Workspace.open(tmp_path / "ws")
    import_archive(ws, make_zip(tmp_path / "c.zip", separable({"red": (200, 60, 60), "blue": (60, 60, 200)}, 10)))
    run_id = create_run(ws, config())
    with ws.connect() as conn:  # as if it had finished: a completed job and its model file
        conn.execute("UPDATE jobs SET status = 'completed' WHERE run_id = ?", (run_id,))
        conn.execute("UPDATE runs SET model_path = ? WHERE id = ?", (f"runs/{run_id}/model.keras", run_id))
        image = conn.execute("SELECT stored_path FROM images LIMIT 1").fetchone()[0]
    (ws.runs_dir / "20260101-000000-0000").mkdir()  # a folder no run knows (copied in by hand)
    ws.path_of(image).unlink()  # a file deleted outside the app
    listing = sorted(str(p) for p in ws.root.rglob("*"))
    keys = [p["key"] for p in check(ws)]
    assert keys == ["check.stray_run_folders", "check.run_models_missing", "check.images_missing"]
    assert sorted(str(p) for p in ws.root.rglob("*")) == listing  # nothing repaired
    assert cli(["check", "--workspace", str(ws.root)]) == 1
    err = capsys.readouterr().err
    assert "20260101-000000-0000" in err and run_id in err and image in err
    assert cli(["check", "--workspace", str(ws.root), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [p["key"] for p in report["problems"]] == keys


def test_a_clean_workspace_checks_clean(tmp_path, capsys):
    assert cli(["check", "--workspace", str(tmp_path / "ws")]) == 0
    assert "no problems" in capsys.readouterr().out


def test_the_store_is_backed_up_before_a_schema_migration(tmp_path, monkeypatch):
    monkeypatch.setattr(workspace_module, "MIGRATIONS", MIGRATIONS[:5])
    ws = Workspace.open(tmp_path / "ws")
    ws.set_setting("keep", "me")
    Workspace.open(tmp_path / "ws")  # nothing to migrate: no backup
    assert not ws.backups_dir.exists()
    monkeypatch.setattr(workspace_module, "MIGRATIONS", MIGRATIONS)
    Workspace.open(tmp_path / "ws")
    [backup] = ws.backups_dir.iterdir()
    assert backup.name.startswith("labeltune-schema5-")
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 5
        assert conn.execute("SELECT value FROM settings WHERE key = 'keep'").fetchone()[0] == "me"
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(backup, restored / DB_NAME)  # the backup is a workspace store: it opens and migrates
    assert Workspace.open(restored).get_setting("keep") == "me"
