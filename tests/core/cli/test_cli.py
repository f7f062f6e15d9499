import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli.main import main
from core.errors import LabelTuneError
from core.store.workspace import Workspace
from tests.builders import class_folders, make_zip

ROOT = Path(__file__).resolve().parents[3]


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


@pytest.mark.slow
def test_train_runs_stop_and_resume_verbs(tmp_path):
    from tests.builders import separable

    ws = str(tmp_path / "ws")
    zip_path = make_zip(tmp_path / "c.zip", separable({"red": (200, 60, 60), "blue": (60, 60, 200)}, 10))
    assert run_cli("import", str(zip_path), "--workspace", ws).returncode == 0
    proc = run_cli(
        "train", "--workspace", ws, "--dataset", "c", "--backbone", "vgg16", "--weights", "none",
        "--image-size", "32", "--batch-size", "8", "--head-epochs", "2", "--fine-tune-epochs", "0",
        "--augment", "none", "--lr", "0.01", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "completed" and out["weights"] == "none" and out["epochs_run"] == 2
    assert {"run", "best_val_accuracy", "val_accuracy", "seconds"} <= set(out)
    assert 0.0 <= out["best_val_accuracy"] <= 1.0 and out["seconds"] > 0
    listed = json.loads(run_cli("runs", "--workspace", ws, "--json").stdout)["runs"]
    assert [r["run"] for r in listed] == [out["run"]] and listed[0]["backbone"] == "vgg16"
    again = run_cli("resume", out["run"], "--workspace", ws)
    assert again.returncode == 1 and "only a stopped, failed, interrupted or cancelled run" in again.stderr
    jobs = json.loads(run_cli("jobs", "--workspace", ws, "--json").stdout)["jobs"]
    assert [(j["kind"], j["status"], j["run"]) for j in jobs] == [
        ("train", "completed", out["run"]),
        ("import", "completed", None),
    ]
    missing = run_cli("stop", "no-such-run", "--workspace", ws)
    assert missing.returncode == 1 and "no-such-run" in missing.stderr
    bad = run_cli("train", "--workspace", ws, "--dataset", "c", "--batch-size=-1", "--weights", "none")  # 0 is auto
    assert (
        bad.returncode == 1 and "batch_size must be between 0 and 4096" in bad.stderr and "Traceback" not in bad.stderr
    )


def test_train_flags_come_from_the_config_fields(capsys, tmp_path):
    from dataclasses import fields

    from core.cli.main import build_parser
    from core.cli.training import config_from_args
    from core.i18n import tr
    from core.runs.config import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    expected = {"image_size": "--image-size", "jit_compile": "--xla", "fine_tune_lr": "--fine-tune-lr",
                "distill_alpha": "--distill-alpha", "feature_cache": "--feature-cache [on|off]"}  # fmt: skip
    for name, flag in expected.items():
        assert flag in text, name
    for f in TrainConfig.user_fields():  # every setting's help text, said once in the config, reaches the command line
        assert " ".join(tr(f"help.{f.name}", "en").split()) in text, f.name
    assert "--jit-compile" not in text  # renamed by its field's metadata
    assert text.count("(default:") == len(TrainConfig.user_fields()) + 2  # and --workspace, --database
    args_list = ["train", "--dataset", "猫", "--feature-cache", "off", "--xla", "on", "--tensorboard"]
    advised = [
        "--backbone",
        "vgg16",
        "--weights",
        "none",
        "--image-size",
        "32",
        "--head-epochs",
        "2",
        "--fine-tune-epochs",
        "1",
    ]  # fmt: skip  (not given, these follow the advice for the dataset)
    ws = Workspace.open(tmp_path / "ws")
    config = config_from_args(build_parser().parse_args([*args_list, *advised]), ws)
    assert (config.feature_cache, config.jit_compile, config.tensorboard) == (False, "on", True)
    defaults = config_from_args(build_parser().parse_args(["train", "--dataset", "猫", *advised]), ws)
    given = {"backbone": "vgg16", "weights": "none", "image_size": 32, "head_epochs": 2, "fine_tune_epochs": 1}
    assert (
        defaults == TrainConfig(dataset="猫", **given)
        and len(fields(TrainConfig)) == len(TrainConfig.user_fields()) + 1
    )
    with pytest.raises(LabelTuneError) as info:  # the advice needs the dataset: a missing one is named
        config_from_args(build_parser().parse_args(["train", "--dataset", "猫"]), ws)
    assert "猫" in info.value.message("en")


@pytest.mark.slow
def test_evaluate_and_predict_verbs(tmp_path):
    from core.runs.folder import RunFolder
    from core.store.workspace import Workspace
    from tests.builders import separable, trained_colour_run

    colours = {"红": (200, 60, 60), "蓝": (60, 60, 200)}
    ws = Workspace.open(tmp_path / "ws")
    run = trained_colour_run(ws, tmp_path, colours, 12, "colours", head_epochs=5)
    assert run.final["val_accuracy"] == 1.0, run.final
    RunFolder.of(ws, run.id).predictions.unlink()  # as for a run saved before predictions were stored
    common = ["--workspace", str(ws.root), "--json"]
    out = json.loads(run_cli("evaluate", run.id, "--split", "val", *common).stdout)
    assert {"run", "split", "images", "accuracy", "macro_f1", "per_class", "labels", "confusion_matrix", "ece"} <= set(
        out
    )
    assert out["labels"] == ["红", "蓝"] and sum(map(sum, out["confusion_matrix"])) == out["images"]
    assert out["accuracy"] == pytest.approx(run.final["val_accuracy"], abs=1e-6)
    assert set(out["per_class"]["红"]) == {"precision", "recall", "f1", "support"}
    images = dict(separable(colours, 14))  # 12 and 13 are new to the model
    (tmp_path / "red.png").write_bytes(images["红/13.png"])
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    batch = make_zip(tmp_path / "batch.zip", [("x/blue.png", images["蓝/13.png"])])
    proc = run_cli("predict", run.id, str(tmp_path / "red.png"), str(tmp_path / "broken.jpg"), str(batch), *common)
    results = json.loads(proc.stdout)
    assert [r["image"] for r in results] == [str(tmp_path / "red.png"), str(tmp_path / "broken.jpg"), "x/blue.png"]
    assert results[0]["top"][0]["label"] == "红" and "error" in results[1] and results[2]["top"][0]["label"] == "蓝"
    assert {"label", "probability"} == set(results[0]["top"][0]) and isinstance(results[0]["not_sure"], bool)
    text = run_cli("evaluate", run.id, "--workspace", str(ws.root)).stdout
    assert run.id in text and "红" in text
    # A truncated JPEG: LabelTune's own line about it, and none of TensorFlow's or libjpeg's (they go to
    # the workspace's log) unless --verbose.
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(buffer, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    quiet = run_cli("predict", run.id, str(tmp_path / "cut.jpg"), "--workspace", str(ws.root))
    assert "cut.jpg" in quiet.stdout + quiet.stderr
    assert "I0000" not in quiet.stderr and "Premature end" not in quiet.stderr, quiet.stderr[-2000:]
    assert (ws.root / "logs" / "cli-native.log").is_file()
    loud = run_cli("predict", run.id, str(tmp_path / "cut.jpg"), "--workspace", str(ws.root), "--verbose")
    assert "cut.jpg" in loud.stdout + loud.stderr and len(loud.stderr) > len(quiet.stderr)


def test_export_out_is_a_zip_file_or_a_folder_made_if_missing(tmp_path):
    """`export RUN --out DIR` used to write a zip named DIR, without an extension."""
    from core.cli.export import export_target

    name = "labeltune-r1.zip"
    assert export_target(tmp_path / "new" / "folder", name) == tmp_path / "new" / "folder" / name
    assert export_target(tmp_path / "model.ZIP", name) == tmp_path / "model.ZIP"
    assert export_target(tmp_path, name) == tmp_path / name
