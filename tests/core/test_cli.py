import json
import subprocess
import sys
from pathlib import Path

from core.cli import main
from tests.builders import class_folders, make_zip

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_import_and_datasets_json(tmp_path):
    zip_path = make_zip(tmp_path / "宠物.zip", class_folders({"猫": 5, "dog": 5}) + [("notes.txt", b"x")])
    proc = run_cli("import", str(zip_path), "--workspace", str(tmp_path / "ws"), "--json", "--name", "pets")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["dataset"] == "pets" and out["images"] == 10
    assert out["classes"] == {"dog": 5, "猫": 5}
    assert sum(out["splits"].values()) == 10 and set(out["splits"]) == {"train", "val", "test"}
    assert out["skipped"][0]["entry"] == "notes.txt" and "not an image" in out["skipped"][0]["reason"]
    assert isinstance(out["warnings"], list)
    proc = run_cli("--workspace", str(tmp_path / "ws"), "datasets", "--json")
    assert [d["name"] for d in json.loads(proc.stdout)["datasets"]] == ["pets"]


def test_rejected_archive_exits_3_with_one_line(tmp_path):
    zip_path = make_zip(tmp_path / "evil.zip", [("../../x.jpg", b"x")])
    proc = run_cli("import", str(zip_path), "--workspace", str(tmp_path / "ws"), "--json")
    assert proc.returncode == 3
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "../../x.jpg" in lines[0] and "'..'" in lines[0]
    assert "Traceback" not in proc.stderr


def test_text_output_and_other_errors(tmp_path, capsys):
    ws = str(tmp_path / "ws")
    assert main(["datasets", "--workspace", ws]) == 0
    assert "No datasets" in capsys.readouterr().out
    zip_path = make_zip(tmp_path / "a.zip", class_folders({"a": 3, "b": 3}))
    assert main(["import", str(zip_path), "--workspace", ws]) == 0
    assert "Imported 6 images" in capsys.readouterr().out
    assert main(["import", str(zip_path), "--workspace", ws]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.zip"), "--workspace", ws]) == 3
    assert "missing.zip" in capsys.readouterr().err
