import io
import json
import zipfile

import pytest
from PIL import Image

from core.datasets.archive import IngestLimits
from core.datasets.catalog import load_dataset
from core.datasets.ingest import import_archive
from core.datasets.splits import SplitConfig
from core.errors import DatasetError, DatasetRejected
from tests.builders import (
    class_folders,
    image_bytes,
    jpeg,
    make_zip,
    mark_encrypted,
    raw_name_entry,
    snapshot,
    symlink_entry,
    write,
)


def codes(result):
    return {s.key for s in result.skipped}


def warning_codes(result):
    return {w["key"] for w in result.warnings}


# --- layouts -------------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_folder_per_class_with_stratified_seeded_split(ws, tmp_path):
    zip_path = make_zip(tmp_path / "pets.zip", class_folders({"cat": 20, "dog": 20}))
    result = import_archive(ws, zip_path)
    assert result.dataset == "pets" and result.layout == "folders"
    assert result.images == 40 and result.classes == {"cat": 20, "dog": 20}
    assert result.splits == {"train": 28, "val": 6, "test": 6}
    summary = load_dataset(ws, "pets")
    assert summary.by_split["cat"] == {"train": 14, "val": 3, "test": 3}
    # Same seed, same split; files are content-addressed in the workspace.
    again = import_archive(ws, zip_path, name="pets2")
    with ws.connect() as conn:
        rows = conn.execute(
            "SELECT d.name, i.original_name, i.split, i.stored_path FROM images i JOIN datasets d ON d.id = i.dataset_id"
        ).fetchall()
    first = {(n, s) for d, n, s, _ in rows if d == "pets"}
    second = {(n, s) for d, n, s, _ in rows if d == "pets2"}
    assert first == second and again.images == 40
    for *_, stored in rows:
        assert stored.startswith("images/") and (ws.root / stored).is_file()
        assert ".." not in stored


def test_split_fractions_and_seed_change_the_split(ws, tmp_path):
    zip_path = make_zip(tmp_path / "pets.zip", class_folders({"cat": 20, "dog": 20}))
    result = import_archive(ws, zip_path, split=SplitConfig(train=0.5, val=0.25, test=0.25, seed=1))
    assert result.splits == {"train": 20, "val": 10, "test": 10}


def test_single_wrapper_folder_is_stripped(ws, tmp_path):
    entries = class_folders({"cat": 3, "dog": 3}, prefix="my photos/")
    result = import_archive(ws, make_zip(tmp_path / "w.zip", entries))
    assert set(result.classes) == {"cat", "dog"}


def test_single_class_folder_is_a_class_not_a_wrapper(ws, tmp_path):
    result = import_archive(ws, make_zip(tmp_path / "one.zip", class_folders({"cat": 4})))
    assert result.classes == {"cat": 4}
    assert "warn.single_class" in warning_codes(result)


def test_train_val_test_folders_are_kept(ws, tmp_path):
    entries = (
        class_folders({"cat": 5, "dog": 4}, prefix="data/train/")
        + class_folders({"cat": 2, "dog": 2}, prefix="data/valid/", size=(41, 40))
        + class_folders({"cat": 1, "dog": 3}, prefix="data/test/", size=(42, 40))
    )
    result = import_archive(ws, make_zip(tmp_path / "s.zip", entries))
    assert result.layout == "splits"
    assert result.splits == {"train": 9, "val": 4, "test": 4}
    assert load_dataset(ws, "s").by_split["dog"] == {"train": 4, "val": 2, "test": 3}


def test_split_layout_without_val_holds_part_of_train_out(ws, tmp_path):
    entries = class_folders({"cat": 10, "dog": 10}, prefix="train/") + class_folders(
        {"cat": 2, "dog": 2}, prefix="test/", size=(44, 40)
    )
    result = import_archive(ws, make_zip(tmp_path / "nov.zip", entries))
    assert result.splits["val"] > 0 and result.splits["test"] == 4
    assert result.splits["train"] + result.splits["val"] == 20
    assert "warn.val_carved" in warning_codes(result)


def test_unlabeled_folder_and_loose_files(ws, tmp_path):
    entries = class_folders({"cat": 3, "dog": 3}) + [
        ("unlabeled/a.jpg", jpeg((1, 2, 3))),
        ("未标注/b.jpg", jpeg((4, 5, 6))),
        ("loose.jpg", jpeg((7, 8, 9))),
    ]
    result = import_archive(ws, make_zip(tmp_path / "u.zip", entries))
    assert result.unlabeled == 3 and set(result.classes) == {"cat", "dog"}
    with ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM images WHERE class_id IS NULL AND split IS NULL").fetchone()[0] == 3


@pytest.mark.both_backends
def test_chinese_class_names_from_gbk_zip_and_descriptions(ws, tmp_path):
    entries = [(raw_name_entry(f"猫咪/{i}.jpg".encode("gbk")), jpeg((i, 0, 0))) for i in range(3)]
    entries += [(f"狗狗/{i}.jpg", jpeg((0, i, 200))) for i in range(3)]
    entries += [
        ("classes.json", json.dumps({"猫咪": "家猫，任何品种", "鹦鹉": "还没有图片"}, ensure_ascii=False).encode())
    ]
    result = import_archive(ws, make_zip(tmp_path / "宠物.zip", entries))
    assert result.dataset == "宠物"
    assert result.classes == {"狗狗": 3, "猫咪": 3, "鹦鹉": 0}
    summary = load_dataset(ws, "宠物")
    assert summary.descriptions["猫咪"] == "家猫，任何品种"
    assert "warn.empty_classes" in warning_codes(result)


def test_classes_csv_descriptions(ws, tmp_path):
    csv_text = "类别,标签说明\ncat,小猫\ndog,小狗\n"
    entries = class_folders({"cat": 3, "dog": 3}) + [("classes.csv", csv_text.encode("gbk"))]
    import_archive(ws, make_zip(tmp_path / "d.zip", entries))
    assert load_dataset(ws, "d").descriptions == {"cat": "小猫", "dog": "小狗"}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_manifest_in_each_encoding(ws, tmp_path, encoding):
    rows = ["文件名,标签,split"] + [
        f"img/{i}.jpg,{'猫' if i < 4 else '狗'},{'test' if i in (0, 4) else ''}" for i in range(8)
    ]
    rows += ["img/missing.jpg,猫,", "../outside.jpg,狗,", "img/0.jpg,狗,"]
    entries = [(f"img/{i}.jpg", jpeg((30 * i, 0, 0))) for i in range(8)] + [("img/extra.jpg", jpeg((1, 1, 1)))]
    entries.append(("labels.csv", ("\n".join(rows) + "\n").encode(encoding)))
    result = import_archive(ws, make_zip(tmp_path / "m.zip", entries))
    assert result.layout == "manifest"
    assert result.classes == {"狗": 4, "猫": 4} and result.unlabeled == 1
    with ws.connect() as conn:
        given = dict(
            conn.execute("SELECT original_name, split FROM images WHERE original_name IN ('img/0.jpg', 'img/4.jpg')")
        )
    assert given == {"img/0.jpg": "test", "img/4.jpg": "test"}  # the manifest's split is kept
    reasons = {s.entry: s.key for s in result.skipped}
    assert reasons == {
        "labels.csv:10": "skip.manifest_missing",
        "labels.csv:11": "skip.manifest_outside",
        "labels.csv:12": "skip.manifest_repeat",
    }


def test_tsv_manifest_inside_a_wrapper(ws, tmp_path):
    entries = [(f"pack/{i}.png", image_bytes(Image.new("RGB", (70, 70), (i * 20, 0, 0)), "PNG")) for i in range(6)]
    entries.append(
        ("pack/list.tsv", "filename\tlabel\n" + "".join(f"{i}.png\t{'a' if i % 2 else 'b'}\n" for i in range(6)))
    )
    result = import_archive(
        ws, make_zip(tmp_path / "t.zip", [(n, d if isinstance(d, bytes) else d.encode()) for n, d in entries])
    )
    assert result.classes == {"a": 3, "b": 3}


def test_manifest_without_known_columns_names_the_file(ws, tmp_path):
    entries = [("a.jpg", jpeg()), ("labels.csv", b"foo,bar\na.jpg,x\n")]
    with pytest.raises(DatasetRejected, match="labels.csv: needs columns filename, label; found: foo, bar"):
        import_archive(ws, make_zip(tmp_path / "bad.zip", entries))


def test_junk_is_ignored_and_not_counted(ws, tmp_path):
    entries = class_folders({"cat": 3, "dog": 3}) + [
        ("__MACOSX/cat/._0.jpg", b"junk"),
        ("cat/._1.jpg", b"junk"),
        ("cat/.DS_Store", b"junk"),
        ("dog/Thumbs.db", b"junk"),
        ("desktop.ini", b"junk"),
    ]
    result = import_archive(ws, make_zip(tmp_path / "j.zip", entries))
    assert result.images == 6 and result.skipped == []


# --- quality report ------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_quality_report(ws, tmp_path):
    same = jpeg((9, 9, 9))
    entries = class_folders({"big": 12, "small": 3}) + [
        ("big/dup.jpg", same),
        ("big/dup2.jpg", same),
        ("small/conflict.jpg", same),
        ("small/tiny.jpg", jpeg(size=(20, 20))),
        ("notes.txt", b"hello"),
    ]
    result = import_archive(ws, make_zip(tmp_path / "q.zip", entries))
    report = result.report
    assert len(report["duplicates"]) == 1 and len(report["duplicates"][0]["names"]) == 3
    assert report["label_conflicts"][0]["labels"] == ["big", "small"]
    assert [s["name"] for s in report["small_images"]][-1] == "small/tiny.jpg"
    assert report["imbalance"] == {"ratio": 2.8, "largest": "big", "smallest": "small"}
    assert report["skipped"][0]["entry"] == "notes.txt"
    assert {"warn.duplicates", "warn.label_conflicts", "warn.small_images", "warn.skipped", "warn.few_images"} <= (
        warning_codes(result)
    )
    # Exact duplicates share a split, so none leaks from train into test.
    with ws.connect() as conn:
        dup_splits = conn.execute(
            "SELECT DISTINCT split FROM images WHERE original_name IN ('big/dup.jpg', 'big/dup2.jpg')"
        ).fetchall()
    assert len(dup_splits) == 1
    assert load_dataset(ws, "q").report == report


def test_imbalance_hint_and_too_small_to_split(ws, tmp_path):
    result = import_archive(ws, make_zip(tmp_path / "i.zip", class_folders({"many": 20, "few": 2})))
    assert result.report["imbalance"]["ratio"] == 10.0
    assert {"warn.imbalance", "warn.too_small_to_split"} <= warning_codes(result)
    assert load_dataset(ws, "i").by_split["few"] == {"train": 2, "val": 0, "test": 0}


# --- hostile and broken input ---------------------------------------------------------------------


@pytest.fixture
def populated(ws, tmp_path):
    """A workspace that already holds one dataset, and its byte snapshot."""
    import_archive(ws, make_zip(tmp_path / "existing.zip", class_folders({"cat": 3, "dog": 3})))
    return ws, snapshot(ws.root)


def rejected(ws, zip_path, **kwargs):
    with pytest.raises(DatasetRejected) as info:
        import_archive(ws, zip_path, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("../../evil.jpg", "'..'"),
        ("/tmp/labeltune_evil.jpg", "absolute"),
        ("C:\\evil.jpg", "drive"),
        ("ok/..\\..\\evil.jpg", "'..'"),
    ],
)
def test_path_traversal_rejects_the_archive_untouched(populated, tmp_path, monkeypatch, name, rule):
    ws, before = populated
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    zip_path = make_zip(tmp_path / "evil.zip", class_folders({"cat": 2}) + [(name, jpeg())])
    error = rejected(ws, zip_path)
    assert name in str(error) and rule in str(error) and error.exit_code == 3
    assert snapshot(ws.root) == before
    assert list(cwd.iterdir()) == []
    assert not (tmp_path.parent / "evil.jpg").exists() and not (tmp_path / "evil.jpg").exists()
    assert not __import__("pathlib").Path("/tmp/labeltune_evil.jpg").exists()


@pytest.mark.parametrize(
    ("make_entries", "key"),
    [
        (lambda: [(symlink_entry("cat/link.jpg"), b"../../../etc/passwd")], "skip.symlink"),
        (lambda: [("cat/inner.zip", b"PK\x05\x06" + b"\0" * 18)], "skip.nested_archive"),
        (lambda: [("cat/bomb.bmp", b"\0" * (3 * 1024 * 1024))], "skip.ratio"),
        (lambda: [("cat/broken.jpg", jpeg(size=(200, 200))[:600])], "err.image_corrupt"),
        (lambda: [("cat/fake.png", b"this is text")], "err.image_unsupported"),
        (lambda: [("cat/script.exe", b"MZ")], "skip.not_image"),
    ],
)
def test_bad_entries_are_skipped_with_a_reason(ws, tmp_path, make_entries, key):
    result = import_archive(ws, make_zip(tmp_path / "x.zip", class_folders({"cat": 2, "dog": 2}) + make_entries()))
    assert result.images == 4
    assert [s.key for s in result.skipped] == [key]
    assert result.skipped[0].entry.startswith("cat/")
    assert result.skipped[0].reason("zh") != result.skipped[0].reason("en")


def test_encrypted_entries_are_skipped(ws, tmp_path):
    zip_path = make_zip(tmp_path / "enc.zip", class_folders({"cat": 2, "dog": 2}) + [("cat/secret.jpg", jpeg())])
    result = import_archive(ws, mark_encrypted(zip_path, "cat/secret.jpg"))
    assert result.images == 4 and [(s.entry, s.key) for s in result.skipped] == [("cat/secret.jpg", "skip.encrypted")]


def test_duplicate_entry_names_keep_the_first(ws, tmp_path):
    first, second = jpeg((250, 0, 0)), jpeg((0, 0, 250))
    with pytest.warns(UserWarning, match="Duplicate name"):
        zip_path = make_zip(
            tmp_path / "dup.zip", class_folders({"dog": 2}) + [("cat/a.jpg", first), ("cat/a.jpg", second)]
        )
    result = import_archive(ws, zip_path)
    assert codes(result) == {"skip.duplicate_name"} and result.classes == {"cat": 1, "dog": 2}
    with ws.connect() as conn:
        stored = conn.execute("SELECT stored_path FROM images WHERE original_name = 'cat/a.jpg'").fetchone()[0]
    assert (ws.root / stored).read_bytes() == first


def test_oversized_image_and_pixel_limits_skip(ws, tmp_path):
    limits = IngestLimits(max_image_bytes=2_000, max_pixels=60 * 60)
    entries = class_folders({"cat": 2, "dog": 2}) + [
        ("cat/large.jpg", jpeg(size=(200, 200)) + b"\0" * 3000),
        ("dog/wide.png", image_bytes(Image.new("RGB", (100, 50)), "PNG")),
    ]
    result = import_archive(ws, make_zip(tmp_path / "l.zip", entries), limits=limits)
    assert {s.entry: s.key for s in result.skipped} == {
        "cat/large.jpg": "skip.too_large",
        "dog/wide.png": "err.image_too_many_pixels",
    }


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda p: write(p, b"not a zip at all"), "err.not_a_zip"),
        (lambda p: write(p, make_zip(p, class_folders({"a": 3})).read_bytes()[:-40]), "err.not_a_zip"),
        (lambda p: write(p, b""), "err.archive_empty"),
        (lambda p: make_zip(p, []), "err.archive_no_entries"),
        (lambda p: make_zip(p, [("__MACOSX/._a.jpg", b"x"), (".DS_Store", b"x")]), "err.no_images"),
        (lambda p: make_zip(p, [("readme.txt", b"x")]), "err.no_images"),
        (lambda p: make_zip(p, [("a/1.jpg", b"garbage"), ("b/2.jpg", b"junk")]), "err.no_valid_images"),
    ],
)
def test_broken_archives_are_rejected_untouched(populated, tmp_path, build, key):
    ws, before = populated
    error = rejected(ws, build(tmp_path / "broken.zip"))
    assert error.key == key and "broken.zip" in str(error)
    assert snapshot(ws.root) == before


@pytest.mark.parametrize(
    ("limits", "key"),
    [
        (IngestLimits(max_entries=5), "err.too_many_entries"),
        (IngestLimits(max_total_bytes=1_000), "err.total_too_large"),
        (IngestLimits(max_archive_bytes=1_000), "err.archive_too_large"),
    ],
)
def test_archive_limits_are_checked_before_anything_is_written(populated, tmp_path, limits, key):
    ws, before = populated
    error = rejected(ws, make_zip(tmp_path / "big.zip", class_folders({"a": 4, "b": 4})), limits=limits)
    assert error.key == key
    assert snapshot(ws.root) == before


def test_lying_header_is_caught_while_streaming(ws, tmp_path):
    """An entry whose directory claims a small size but holds more is cut off, not trusted."""
    zip_path = make_zip(tmp_path / "lie.zip", class_folders({"a": 2, "b": 2}) + [("a/lie.jpg", jpeg(size=(300, 300)))])
    data = bytearray(zip_path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("a/lie.jpg")
    # Patch the declared uncompressed size (central directory and local header) to 100 bytes.
    small = (100).to_bytes(4, "little")
    real = info.file_size.to_bytes(4, "little")
    patched = bytes(data).replace(
        info.CRC.to_bytes(4, "little") + info.compress_size.to_bytes(4, "little") + real,
        info.CRC.to_bytes(4, "little") + info.compress_size.to_bytes(4, "little") + small,
    )
    zip_path.write_bytes(patched)
    result = import_archive(ws, zip_path)
    assert result.images == 4 and [s.entry for s in result.skipped] == ["a/lie.jpg"]


def test_failure_during_commit_leaves_workspace_untouched(populated, tmp_path, monkeypatch):
    ws, before = populated
    zip_path = make_zip(tmp_path / "new.zip", class_folders({"x": 3, "y": 3}, size=(50, 50)))

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("core.datasets.quality.dumps", explode)
    with pytest.raises(RuntimeError):
        import_archive(ws, zip_path)
    assert snapshot(ws.root) == before


def test_dataset_name_rules(ws, tmp_path):
    zip_path = make_zip(tmp_path / "n.zip", class_folders({"a": 2, "b": 2}))
    import_archive(ws, zip_path)
    with pytest.raises(DatasetError, match="already exists"):
        import_archive(ws, zip_path)
    with pytest.raises(DatasetError) as info:
        import_archive(ws, zip_path, name="  ")
    assert info.value.key == "err.dataset_name_empty"
    with pytest.raises(DatasetError):
        import_archive(ws, zip_path, name="a/b")


def test_file_object_source(ws, tmp_path):
    data = make_zip(tmp_path / "f.zip", class_folders({"a": 2, "b": 2})).read_bytes()
    seen = []
    result = import_archive(
        ws, io.BytesIO(data), archive_name="upload 1.zip", progress=lambda d, t: seen.append((d, t))
    )
    assert result.dataset == "upload 1" and seen[-1] == (4, 4)
