"""The audit job on real images through a real (tiny) backbone: a flipped label, a resized copy in another
split and an image of another kind are each found, and an untouched image is not; answers close findings;
the CLI prints the documented JSON."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.audit import store as audit_store
from core.audit.config import AuditConfig
from core.audit.jobs import AUDIT, start_audit
from core.datasets import editing
from core.datasets.ingest import import_archive
from core.jobs.store import JobStatus
from core.store.workspace import Workspace
from tests.builders import make_zip
from tests.jobs import lifecycle_here, run_job

pytestmark = pytest.mark.slow  # TensorFlow, a backbone, subprocesses

ROOT = Path(__file__).resolve().parents[3]
COLOURS = {"红": (220, 40, 40), "蓝": (40, 40, 220), "绿": (40, 200, 40)}
# Tiny and fast: VGG16 from scratch at 32 px tells these colours apart (as the model tests' runs do).
TINY = {"backbone": "vgg16", "weights": "none", "image_size": 32, "similarity": 0.995}


def png(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8), "RGB").save(out, format="PNG")
    return out.getvalue()


def patterned(colours: dict[str, tuple[int, int, int]], per_class: int) -> list[tuple[str, bytes]]:
    """Each image its class's colour under a coarse pattern of its own (a 3x3 grid of random shades,
    smoothly enlarged): one class's images alike in colour, unlike in layout, as photos of one class are."""
    out = []
    for name, colour in colours.items():
        for i in range(per_class):
            rng = np.random.default_rng([sum(map(ord, name)), i])
            grid = Image.fromarray(rng.integers(0, 256, (3, 3), dtype=np.uint8)).resize((40, 40), Image.BICUBIC)
            shade = np.asarray(grid, dtype=np.float32)[..., None] / 255
            out.append((f"{name}/{i}.png", png(np.asarray(colour) * (0.35 + 0.65 * shade))))
    return out


def audited_set(tmp_path: Path, ws: Workspace | None = None) -> tuple[Workspace, dict[str, int]]:
    """Three colour classes in train/val/test; a red image filed under 蓝 as red3.png (a wrong label); a half-size copy
    of 绿/0.png in the test split (a leak); a black-and-white checkerboard (another domain)."""
    entries = []
    for name, data in patterned(COLOURS, 18):
        cls, file = name.split("/")
        number = int(file.split(".")[0])
        split = "train" if number < 12 else "val" if number < 15 else "test"
        if name == "红/3.png":
            cls, file = "蓝", "red3.png"
        entries.append((f"{split}/{cls}/{file}", data))
        if name == "绿/0.png":
            small = Image.open(io.BytesIO(data)).resize((20, 20))
            entries.append(("test/绿/copy.png", png(np.asarray(small))))
    board = (np.indices((40, 40)).sum(axis=0) // 5 % 2 * 255)[..., None].repeat(3, axis=2)
    entries.append(("train/绿/board.png", png(board)))
    ws = ws or Workspace.open(tmp_path / "ws")
    import_archive(ws, make_zip(tmp_path / "a.zip", entries), name="颜色")
    _, _, images = audit_store.audit_images(ws, "颜色")
    return ws, {im.file: im.id for im in images}


@pytest.fixture
def audited(ws, tmp_path):
    ws, ids = audited_set(tmp_path, ws)
    job = run_job(ws, AUDIT, AuditConfig("颜色", **TINY))
    assert job.status is JobStatus.COMPLETED, job.error
    return ws, ids, job


def test_each_finder_finds_its_case_and_leaves_a_clean_image_alone(audited):
    ws, ids, job = audited
    found = audit_store.report(ws, "颜色")
    issues = {i.image.file: i for i in found.label_issues}
    assert "train/蓝/red3.png" in issues and issues["train/蓝/red3.png"].suggested == "红"
    assert issues["train/蓝/red3.png"].given == "蓝"
    assert "train/红/4.png" not in issues  # an untouched image
    pairs = {frozenset(im.file for im in p.images): p for p in found.near_duplicates}
    leak = pairs[frozenset({"train/绿/0.png", "test/绿/copy.png"})]
    assert leak.leak and not leak.conflict and leak.similarity >= 0.995
    assert found.near_duplicates[0] is leak  # leaks first
    assert found.outliers and found.outliers[0].image.file == "train/绿/board.png"
    assert job.result["images"] == len(ids) == len(found.images)
    assert len(found.audit.result["map"]["x"]) == len(ids)


@pytest.mark.both_backends
def test_answers_close_findings_and_keep_survives_a_new_audit(audited):
    ws, ids, _ = audited
    wrong = ids["train/蓝/red3.png"]
    editing.relabel(ws, "颜色", [wrong], "红")  # accept the suggestion
    editing.set_excluded(ws, "颜色", [ids["test/绿/copy.png"]], True)  # keep one copy
    audit_store.keep(ws, "颜色", [audit_store.outlier_finding(ids["train/绿/board.png"])])  # it belongs
    found = audit_store.report(ws, "颜色")
    assert wrong not in {i.image.id for i in found.label_issues}
    assert not any(ids["test/绿/copy.png"] in {im.id for im in p.images} for p in found.near_duplicates)
    assert ids["train/绿/board.png"] not in {o.image.id for o in found.outliers} and found.stale
    audit_store.keep(ws, "颜色", [audit_store.outlier_finding(ids["train/绿/board.png"])], kept=False)  # undo
    assert ids["train/绿/board.png"] in {o.image.id for o in audit_store.report(ws, "颜色").outliers}


def test_a_second_audit_computes_only_images_it_has_not_seen(audited):
    ws, ids, _ = audited
    caches = list(ws.feature_cache_dir(1).glob("images-*.npz"))
    assert len(caches) == 1
    before = caches[0].stat().st_mtime_ns
    job = run_job(ws, AUDIT, AuditConfig("颜色", **TINY))
    assert job.status is JobStatus.COMPLETED and caches[0].stat().st_mtime_ns == before  # nothing new to compute


def test_the_cli_prints_the_documented_json_and_text(tmp_path):
    ws, ids = audited_set(tmp_path)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    done = subprocess.run(
        [sys.executable, "-m", "core", "audit", "颜色", *flags, "--workspace", str(ws.root), "--json"],
        capture_output=True, text=True, cwd=ROOT, env={**__import__("os").environ, "LABELTUNE_LANG": "en"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(out) == {"label_issues", "near_duplicates", "outliers"}
    issue = next(i for i in out["label_issues"] if i["file"] == "train/蓝/red3.png")
    assert set(issue) == {"image", "file", "given", "suggested", "score"} and issue["image"] == ids["train/蓝/red3.png"]
    assert (issue["given"], issue["suggested"]) == ("蓝", "红") and 0 < issue["score"] <= 1
    pair = out["near_duplicates"][0]
    assert set(pair) == {"images", "files", "similarity", "splits", "labels"}
    assert sorted(pair["files"]) == ["test/绿/copy.png", "train/绿/0.png"] and sorted(pair["splits"]) == [
        "test",
        "train",
    ]
    assert pair["labels"] == ["绿", "绿"]
    assert out["outliers"][0] == {"image": ids["train/绿/board.png"], "file": "train/绿/board.png",
                                  "score": out["outliers"][0]["score"]}  # fmt: skip
    scores = [i["score"] for i in out["label_issues"]]
    assert scores == sorted(scores, reverse=True)
    text = subprocess.run(
        [sys.executable, "-m", "core", "audit", "颜色", *flags, "--workspace", str(ws.root)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert text.returncode == 0 and "train/蓝/red3.png" in text.stdout and "copy.png" in text.stdout
    assert "I0000" not in text.stderr and "oneDNN" not in text.stderr  # TensorFlow's lines: in the log
    unknown = subprocess.run(
        [sys.executable, "-m", "core", "audit", "没有", "--workspace", str(ws.root)], capture_output=True, text=True, cwd=ROOT
    )  # fmt: skip
    assert unknown.returncode == 1 and "没有" in unknown.stderr and "Traceback" not in unknown.stderr


def test_an_audit_killed_or_cancelled_mid_way_stores_nothing_and_the_next_completes(tmp_path, monkeypatch):
    """Real worker processes: one audit killed (SIGKILL) while it computes features, one cancelled, one
    left alone. Only the last stores an audit, and it finds what an undisturbed audit finds."""
    ws, _ = audited_set(tmp_path)
    seeds = iter(range(3))  # a new seed each: random weights, so every audit computes its features anew

    def start(n: int) -> int:
        return start_audit(ws, AuditConfig("颜色", **TINY, seed=next(seeds)))

    done = lifecycle_here(ws, start, monkeypatch)  # one audit of a dataset at a time
    audit = audit_store.latest_audit(ws, "颜色")
    assert audit.id == done.result["audit"]
    with ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM audits").fetchone()[0] == 1
    issues = {i.image.file: i.suggested for i in audit_store.report(ws, "颜色").label_issues}
    assert issues.get("train/蓝/red3.png") == "红"
