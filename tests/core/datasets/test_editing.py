"""Editing a dataset after import, the change log and versions, concurrent editors, and the export round trip."""

import threading
import zipfile

import pytest

from core.datasets import editing
from core.datasets.catalog import load_dataset
from core.datasets.export_zip import export_dataset, image_ids_by_name
from core.datasets.ingest import import_archive
from core.errors import DatasetError, DatasetRejected
from tests.builders import jpeg, make_zip
from tests.core.cli.test_cli import run_cli
from tests.jobs import cancelled

pytestmark = pytest.mark.both_backends


def manifest_dataset(ws, tmp_path, name="宠物"):
    """Folders per split and class, a manifest with attributes, Chinese names, descriptions, unlabeled images."""
    rows, entries = [], []
    for i in range(18):
        label = ["猫", "狗", "兔子"][i % 3]
        split = ["train", "train", "val", "test"][i % 4]
        file = f"imgs/{label}_{i}.jpg"
        entries.append((file, jpeg((20 * i % 256, 40 * (i % 3), 90), size=(40 + i, 36))))
        rows.append(f"{file},{label},{split},{['佳能', 'nikon'][i % 2]},{'室内' if i % 4 else ''}")
    for i in range(3):
        entries.append((f"imgs/new_{i}.jpg", jpeg((250, 20 * i, 10))))
        rows.append(f"imgs/new_{i}.jpg,,,phone,")
    entries.append(("labels.csv", ("file,label,split,camera,场景\n" + "\n".join(rows) + "\n").encode()))
    entries.append(("classes.csv", "类别,标签说明\n猫,家猫，不含老虎\n狗,家犬\n兔子,\n".encode()))
    import_archive(ws, make_zip(tmp_path / f"{name}.zip", entries), name=name)
    return load_dataset(ws, name)


def images(ws, dataset):
    """Each active image's bytes (by content), label, split and attributes."""
    import json

    summary = load_dataset(ws, dataset)
    with ws.connect() as conn:
        rows = conn.execute(
            "SELECT i.stored_path, c.name, i.split, i.attributes_json FROM images i LEFT JOIN classes c"
            " ON c.id = i.class_id WHERE i.dataset_id = ? AND i.status = 'active'",
            (summary.id,),
        ).fetchall()
    return sorted(
        (ws.path_of(p).read_bytes(), label, split if label else None, tuple(sorted(json.loads(a).items())))
        for p, label, split, a in rows
    )


def test_relabel_classes_and_descriptions_bump_the_version_and_are_logged(ws, tmp_path):
    before = manifest_dataset(ws, tmp_path)
    cats = editing.class_images(ws, "宠物", "猫")
    v1 = editing.relabel(ws, "宠物", cats[:2], "狗")
    assert v1 == before.version + 1 and load_dataset(ws, "宠物").classes["狗"] == 8
    editing.rename_class(ws, "宠物", "兔子", "兔")
    editing.merge_classes(ws, "宠物", "狗", "猫")
    summary = load_dataset(ws, "宠物")
    assert summary.classes == {"猫": 12, "兔": 6} and summary.descriptions["猫"] == "家猫，不含老虎"
    editing.describe_class(ws, "宠物", "兔", "长耳朵")
    unlabeled = editing.class_images(ws, "宠物", None)
    editing.relabel(ws, "宠物", unlabeled, "鸟")  # new class, first labels: each gets a stable split
    summary = load_dataset(ws, "宠物")
    assert summary.unlabeled == 0 and summary.classes["鸟"] == 3 and summary.descriptions["兔"] == "长耳朵"
    editing.delete_class(ws, "宠物", "鸟")
    assert load_dataset(ws, "宠物").unlabeled == 3
    editing.set_excluded(ws, "宠物", cats[:1], True)
    assert load_dataset(ws, "宠物").images == 20
    log = editing.change_log(ws, "宠物")
    assert [c.action for c in log][:3] == ["excluded", "delete_class", "relabel"]
    assert log[0].version == load_dataset(ws, "宠物").version and log[-1].images == 2


def test_bad_edits_name_the_problem_and_change_nothing(ws, tmp_path):
    before = manifest_dataset(ws, tmp_path)
    for call, key in [
        (lambda: editing.relabel(ws, "宠物", [999_999], "猫"), "err.images_unknown"),
        (lambda: editing.rename_class(ws, "宠物", "猫", "狗"), "err.class_exists"),
        (lambda: editing.merge_classes(ws, "宠物", "猫", "猫"), "err.class_merge_self"),
        (lambda: editing.relabel(ws, "宠物", [1], "a/b"), "err.class_name"),
        (lambda: editing.set_split(ws, "宠物", [1], "holdout"), "err.split_unknown"),
        (lambda: editing.delete_class(ws, "宠物", "狮子"), "err.class_unknown"),
    ]:
        with pytest.raises(DatasetError) as caught:
            call()
        assert caught.value.key == key
    assert load_dataset(ws, "宠物").version == before.version and editing.change_log(ws, "宠物") == []


def test_two_concurrent_editors_lose_no_update(ws, tmp_path):
    manifest_dataset(ws, tmp_path)
    ids = editing.class_images(ws, "宠物", "猫") + editing.class_images(ws, "宠物", "狗")
    start = load_dataset(ws, "宠物").version
    errors = []

    def editor(part, label):
        try:
            for image_id in part:
                editing.relabel(ws, "宠物", [image_id], label)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=editor, args=(ids[0::2], "兔子")),
        threading.Thread(target=editor, args=(ids[1::2], "狐")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    summary = load_dataset(ws, "宠物")
    assert summary.classes["兔子"] == 6 + len(ids[0::2]) and summary.classes["狐"] == len(ids[1::2])
    assert summary.version == start + len(ids) and len(editing.change_log(ws, "宠物", 100)) == len(ids)


def test_import_edit_export_import_is_exact(ws, tmp_path):
    manifest_dataset(ws, tmp_path)
    editing.relabel(ws, "宠物", editing.class_images(ws, "宠物", "狗")[:2], "猫")
    editing.set_split(ws, "宠物", editing.class_images(ws, "宠物", "兔子")[:2], "test")
    editing.describe_class(ws, "宠物", "兔子", "长耳朵，不含野兔")
    counts = export_dataset(ws, "宠物", tmp_path / "out.zip")
    assert counts == {"images": 21, "classes": 3, "attributes": 2}
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        names = zf.namelist()
    assert "labels.csv" in names and "classes.csv" in names and any(n.startswith("train/猫/") for n in names)
    import_archive(ws, tmp_path / "out.zip", name="again")
    assert images(ws, "again") == images(ws, "宠物")
    assert load_dataset(ws, "again").descriptions == load_dataset(ws, "宠物").descriptions


def test_cli_classes_relabel_and_export(ws, tmp_path):
    manifest_dataset(ws, tmp_path)
    common = ["--workspace", str(ws.root), "--json"]
    import json

    out = json.loads(run_cli("classes", "宠物", *common).stdout)
    assert [c["name"] for c in out["classes"]] == ["兔子", "狗", "猫"] and out["unlabeled"] == 3
    assert out["classes"][2]["description"] == "家猫，不含老虎"
    first = editing.class_images(ws, "宠物", None)
    done = json.loads(run_cli("relabel", "宠物", "--image", str(first[0]), "--to", "鸟", *common).stdout)
    assert done["images"] == 1 and load_dataset(ws, "宠物").classes["鸟"] == 1
    sheet = tmp_path / "labels.csv"
    sheet.write_text("image,label\n" + "".join(f"{i},狗\n" for i in first[1:]), encoding="utf-8")
    json.loads(run_cli("relabel", "宠物", "--from-csv", str(sheet), *common).stdout)
    assert load_dataset(ws, "宠物").unlabeled == 0
    exported = json.loads(run_cli("export-dataset", "宠物", "--out", str(tmp_path / "e.zip"), *common).stdout)
    assert exported["images"] == 21 and (tmp_path / "e.zip").is_file()
    bad = run_cli("relabel", "宠物", *common)
    assert bad.returncode == 1 and "--image" in bad.stderr


def test_rename_and_delete_a_dataset_with_its_files_caches_and_runs(ws, tmp_path):
    from core.datasets.catalog import dataset_names
    from core.runs import store as runs
    from core.runs.config import TrainConfig
    from core.runs.folder import RunFolder
    from tests.builders import class_folders

    manifest_dataset(ws, tmp_path)
    shared = make_zip(tmp_path / "other.zip", class_folders({"a": 3, "b": 3}))
    import_archive(ws, shared, name="other")
    summary = load_dataset(ws, "宠物")
    run_id = cancelled(
        ws,
        runs.insert_run(  # a run that ended: the dataset may change under it
            ws,
            dataset_id=summary.id,
            version=1,
            classes=["狗", "猫"],
            config=TrainConfig(dataset="宠物"),
            attached=True,
        ),
    )
    editing.rename_dataset(ws, "宠物", "宠物照片")
    assert "宠物照片" in dataset_names(ws) and runs.get_run(ws, run_id).config.dataset == "宠物照片"
    with pytest.raises(DatasetError):
        editing.rename_dataset(ws, "宠物照片", "other")
    cache = ws.feature_cache_dir(summary.id)
    cache.mkdir(parents=True)
    (cache / "x.npz").write_bytes(b"x")
    with ws.connect() as conn:
        mine = [
            ws.path_of(r[0]) for r in conn.execute("SELECT stored_path FROM images WHERE dataset_id = ?", (summary.id,))
        ]
    removed = editing.delete_dataset(ws, "宠物照片")
    assert removed == {"images": 21, "runs": 0} and not any(p.exists() for p in mine) and not cache.exists()
    assert dataset_names(ws) == ["other"] and load_dataset(ws, "other").images == 6  # other's files untouched
    kept = runs.get_run(ws, run_id)
    assert kept.dataset_name == "宠物照片" and RunFolder.of(ws, run_id).path.exists()


def test_deleting_with_runs_removes_their_folders_and_shared_images_stay(ws, tmp_path):
    from core.runs import store as runs
    from core.runs.config import TrainConfig
    from core.runs.folder import RunFolder
    from tests.builders import class_folders

    entries = class_folders({"a": 3, "b": 3})
    import_archive(ws, make_zip(tmp_path / "one.zip", entries), name="one")
    import_archive(ws, make_zip(tmp_path / "two.zip", entries), name="two")  # the same images
    summary = load_dataset(ws, "one")
    run_id = cancelled(
        ws,
        runs.insert_run(
            ws, dataset_id=summary.id, version=1, classes=["a", "b"], config=TrainConfig(dataset="one"), attached=True
        ),
    )
    assert editing.delete_dataset(ws, "one", delete_runs=True) == {"images": 0, "runs": 1}
    assert not RunFolder.of(ws, run_id).path.exists() and runs.list_runs(ws) == []
    assert all(
        r.path.exists() for r in __import__("core.datasets.catalog", fromlist=["x"]).split_images(ws, "two", "train")
    )


def test_adding_a_zip_grows_classes_skips_duplicates_and_moves_nothing(ws, tmp_path):
    from core.datasets.ingest import add_archive
    from tests.builders import class_folders, snapshot

    first = class_folders({"猫": 6, "狗": 6})
    import_archive(ws, make_zip(tmp_path / "first.zip", first), name="d")
    before = images(ws, "d")
    version = load_dataset(ws, "d").version
    extra = [(f"猫/new_{i}.jpg", jpeg((i * 30, 200, 10))) for i in range(4)]
    extra += [(f"鸟/{i}.jpg", jpeg((10, i * 40, 200))) for i in range(5)]
    extra.append(("狗/copy.jpg", first[7][1]))  # an image the dataset already has
    result = add_archive(ws, make_zip(tmp_path / "more.zip", extra), "d")
    assert result.images == 9 and [s.key for s in result.skipped] == ["skip.already_in_dataset"]
    summary = load_dataset(ws, "d")
    assert summary.classes == {"狗": 6, "猫": 10, "鸟": 5} and summary.version == version + 1
    after = images(ws, "d")
    assert all(row in after for row in before)  # no existing image changed label or split
    assert editing.change_log(ws, "d")[0].action == "add_images"
    snap = snapshot(ws.root)
    with pytest.raises(DatasetRejected) as caught:
        add_archive(ws, make_zip(tmp_path / "same.zip", extra), "d")
    assert caught.value.key == "err.no_new_images" and snapshot(ws.root) == snap


def test_gallery_flags_class_order_and_examples(ws, tmp_path):
    from core.datasets.gallery import GalleryFilter, gallery_page

    same = jpeg((10, 200, 30))
    entries = [("猫/a.jpg", same), ("狗/b.jpg", same), ("猫/tiny.jpg", jpeg((9, 9, 9), size=(40, 30)))]
    entries += [(f"狗/{i}.jpg", jpeg((90, i * 20, 9), size=(80, 70))) for i in range(4)]
    import_archive(ws, make_zip(tmp_path / "f.zip", entries), name="f")
    names = lambda flag: sorted(i.name for i in gallery_page(ws, "f", GalleryFilter(flag=flag))[0])  # noqa: E731
    assert names("duplicate") == names("conflict") == ["狗/b.jpg", "猫/a.jpg"]
    assert "猫/tiny.jpg" in names("small") and "狗/0.jpg" not in names("small")
    editing.relabel(ws, "f", [i.id for i in gallery_page(ws, "f", GalleryFilter(flag="conflict"))[0]], "猫")
    assert names("conflict") == [] and names("duplicate") == ["狗/b.jpg", "猫/a.jpg"]
    assert list(load_dataset(ws, "f").classes) == ["狗", "猫"]
    editing.move_class(ws, "f", "猫", -1)
    assert list(load_dataset(ws, "f").classes) == ["猫", "狗"]
    some = editing.class_images(ws, "f", "猫")[:2]
    editing.set_examples(ws, "f", "猫", some)
    assert editing.class_examples(ws, "f")["猫"] == sorted(some)
    with pytest.raises(DatasetError):
        editing.set_examples(ws, "f", "猫", [987_654])


def test_a_dataset_with_a_queued_run_cannot_be_renamed_or_deleted(ws, tmp_path):
    from core.runs.config import TrainConfig
    from core.training.jobs import create_run
    from tests.builders import class_folders

    import_archive(ws, make_zip(tmp_path / "q.zip", class_folders({"a": 6, "b": 6})), name="q")
    run_id = create_run(ws, TrainConfig(dataset="q", backbone="vgg16", weights="none", image_size=32))
    for call in (lambda: editing.rename_dataset(ws, "q", "r"), lambda: editing.delete_dataset(ws, "q")):
        with pytest.raises(DatasetError) as caught:
            call()
        assert caught.value.key == "err.dataset_in_use" and run_id in caught.value.message("zh")
    assert load_dataset(ws, "q").images == 12


def test_adding_a_gbk_zip_reports_its_name_encoding_and_logs_the_import(ws, tmp_path):
    from core.datasets.ingest import add_archive
    from tests.builders import class_folders, raw_name_entry

    import_archive(ws, make_zip(tmp_path / "base.zip", class_folders({"a": 3, "b": 3})), name="d")
    gbk = [(raw_name_entry(f"狗/{i}.jpg".encode("gbk")), jpeg((200, 9 * i, 40))) for i in range(3)]
    result = add_archive(ws, make_zip(tmp_path / "gbk.zip", gbk), "d")
    assert result.classes == {"狗": 3} and result.warnings[0]["key"] == "warn.names_gbk"
    with ws.connect() as conn:
        logged = conn.execute("SELECT archive, imported FROM import_log ORDER BY id").fetchall()
    assert [tuple(r) for r in logged] == [("base.zip", 6), ("gbk.zip", 3)]


def test_cli_bad_inputs_get_a_message_not_a_traceback(ws, tmp_path):
    manifest_dataset(ws, tmp_path)
    common = ["--workspace", str(ws.root)]
    missing = run_cli("relabel", "宠物", "--from-csv", str(tmp_path / "nope.csv"), *common)
    assert missing.returncode == 1 and "nope.csv" in missing.stderr and "Traceback" not in missing.stderr
    unlabeled = editing.class_images(ws, "宠物", None)
    sheet = tmp_path / "excel.csv"  # as Excel saves it on Chinese Windows: GBK
    sheet.write_bytes(("image,label\n" + "".join(f"{i},狗\n" for i in unlabeled)).encode("gbk"))
    assert run_cli("relabel", "宠物", "--from-csv", str(sheet), *common).returncode == 0
    assert load_dataset(ws, "宠物").unlabeled == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("picture,comment\n1,狗\n", encoding="utf-8")  # neither a label nor an image column
    wrong = run_cli("relabel", "宠物", "--from-csv", str(bad), *common)
    assert wrong.returncode == 1 and "bad.csv" in wrong.stderr and "image_id" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    nowhere = run_cli("export-dataset", "宠物", "--out", str(tmp_path / "no" / "such" / "x.zip"), *common)
    assert nowhere.returncode == 1 and "x.zip" in nowhere.stderr and "Traceback" not in nowhere.stderr


def test_export_edit_labels_csv_in_a_spreadsheet_and_relabel_by_file_name(ws, tmp_path):
    """export-dataset → edit its labels.csv (as a spreadsheet saves it) → relabel --from-csv: a round trip."""
    import csv
    import io
    import json

    manifest_dataset(ws, tmp_path)
    common = ["--workspace", str(ws.root), "--json"]
    run_cli("export-dataset", "宠物", "--out", str(tmp_path / "e.zip"), *common)
    with zipfile.ZipFile(tmp_path / "e.zip") as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("labels.csv").decode("utf-8"))))
    cat = next(r for r in rows if r["label"] == "猫")
    unlabeled = next(r for r in rows if r["label"] == "")
    cat["label"], unlabeled["label"] = "狗", "兔子"
    sheet = tmp_path / "labels.csv"
    with open(sheet, "w", encoding="gbk", newline="") as fh:  # as Excel saves it on Chinese Windows
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = load_dataset(ws, "宠物")
    done = run_cli("relabel", "宠物", "--from-csv", str(sheet), *common)
    assert done.returncode == 0, done.stderr[-2000:]
    done = json.loads(done.stdout)
    after = load_dataset(ws, "宠物")
    assert done["images"] == 2  # only the two rows edited change, not every row of the sheet
    assert after.classes["猫"] == before.classes["猫"] - 1 and after.classes["狗"] == before.classes["狗"] + 1
    assert after.unlabeled == before.unlabeled - 1 and after.classes["兔子"] == before.classes["兔子"] + 1
    # The same sheet again, after the relabel moved the cat's export folder: still found, nothing to change.
    assert json.loads(run_cli("relabel", "宠物", "--from-csv", str(sheet), *common).stdout)["images"] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(f"file,label\n{cat['file']},猫\nnot/there.jpg,猫\n", encoding="utf-8")
    refused = run_cli("relabel", "宠物", "--from-csv", str(bad), "--workspace", str(ws.root))
    assert refused.returncode == 1 and "not/there.jpg" in refused.stderr and "Traceback" not in refused.stderr
    assert load_dataset(ws, "宠物").classes == after.classes  # nothing changed


def test_a_sheet_written_for_import_relabels_with_the_same_columns(ws, tmp_path):
    """relabel --from-csv reads the import manifest's vocabulary: 文件名/标签 and filename/category, and
    image ids under image_id (or under the old "image" column)."""
    manifest_dataset(ws, tmp_path)
    names = {v: k for k, v in image_ids_by_name(ws, "宠物").items() if "/" in k}  # id -> a path the sheet can use
    first, second, third = editing.class_images(ws, "宠物", "猫")[:3]
    for header, name_of in (("文件名,标签", names.get), ("filename,category", names.get), ("image_id,label", str)):
        sheet = tmp_path / "sheet.csv"
        sheet.write_text(f"{header}\n{name_of(first)},狗\n{name_of(second)},\n", encoding="utf-8")
        assert editing.labels_from_csv(ws, "宠物", str(sheet)) == {"狗": [first], None: [second]}, header
    sheet.write_text(f"image,label\n{third},兔子\n", encoding="utf-8")
    assert editing.labels_from_csv(ws, "宠物", str(sheet)) == {"兔子": [third]}


def test_attributes_search_and_label_history_read_alike_on_both_stores(ws, tmp_path):
    """The queries whose SQL the two databases spell differently (JSON members, case-blind search, an id
    inside a logged list): the same answers from SQLite and PostgreSQL."""
    from core.datasets.catalog import attribute_of
    from core.datasets.gallery import GalleryFilter, attribute_values, gallery_page, label_history

    manifest_dataset(ws, tmp_path)
    assert attribute_values(ws, "宠物") == {"camera": ["nikon", "phone", "佳能"], "场景": ["室内"]}
    canon = gallery_page(ws, "宠物", GalleryFilter(attribute=("camera", "佳能")), 0, 100)[0]
    assert len(canon) == 9 and {i.attributes["camera"] for i in canon} == {"佳能"}
    indoor = gallery_page(ws, "宠物", GalleryFilter(attribute=("场景", "室内")), 0, 100)[0]
    assert len(indoor) == 13 and attribute_of(ws, [i.id for i in indoor], "场景") == {i.id: "室内" for i in indoor}
    assert attribute_of(ws, [canon[0].id], "no such") == {}
    found = gallery_page(ws, "宠物", GalleryFilter(search="IMGS/猫_1"), 0, 100)[0]  # the case of ASCII letters ignored
    assert sorted(i.name for i in found) == ["imgs/猫_12.jpg", "imgs/猫_15.jpg"]
    target = canon[0].id
    editing.relabel(ws, "宠物", [target, canon[1].id], "兔子")
    editing.relabel(ws, "宠物", [canon[2].id], "狗")
    editing.relabel(ws, "宠物", [target], "狗")
    assert [h["label"] for h in label_history(ws, "宠物", target)] == ["狗", "兔子"]  # newest first, its own only
