"""Archives as common tools make them: GBK names without the UTF-8 flag, pixel bombs, manifests with base names."""

import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import pytest

from core.datasets.archive import choose_name_encoding
from core.datasets.catalog import load_dataset
from core.datasets.images import header_size, normalise_image
from core.datasets.ingest import import_archive
from core.errors import DatasetRejected, ImageRejected
from core.i18n import render
from tests.builders import class_folders, jpeg, make_zip, raw_name_entry, snapshot

ROOT = Path(__file__).resolve().parents[3]


def gbk_zip(path: Path, classes: dict[str, int], extra: list = ()) -> Path:
    """Class folders with GBK names and no UTF-8 flag, as Explorer's "Send to zip" writes them on Chinese Windows."""
    entries = [(raw_name_entry(name.encode("gbk")), data) for name, data in class_folders(classes)]
    return make_zip(path, [*entries, *extra])


def warning_keys(result) -> list[str]:
    return [w["key"] for w in result.warnings]


def test_gbk_names_that_are_all_valid_utf8_are_still_read_as_gbk(ws, tmp_path):
    # "猫" in GBK is C3 A8, which is UTF-8 for "è"; "帽" is C3 B1, "ñ". Every name is valid UTF-8.
    assert "猫".encode("gbk").decode("utf-8") == "è"
    result = import_archive(ws, gbk_zip(tmp_path / "a.zip", {"猫": 4, "帽": 4}), name="a")
    assert set(result.classes) == {"猫", "帽"}
    assert warning_keys(result)[0] == "warn.names_gbk_plausible"


def test_gbk_names_where_only_some_are_valid_utf8_are_all_read_as_gbk(ws, tmp_path):
    # "狗" in GBK (B9 B7) is not UTF-8, which decides the whole archive, "猫" included.
    result = import_archive(ws, gbk_zip(tmp_path / "b.zip", {"猫": 4, "狗": 4}), name="b")
    assert set(result.classes) == {"猫", "狗"}
    assert warning_keys(result)[0] == "warn.names_gbk"
    text = render(result.warnings[0], "zh")
    assert "GBK" in text


def test_a_gbk_class_file_witnesses_for_names_that_look_like_latin(ws, tmp_path):
    # "A猫" read as UTF-8 is "Aè": plain letters beside the accent, so the names alone say UTF-8;
    # the classes.csv written by Excel in GBK says otherwise.
    classes = "类别,标签说明\nA猫,家猫\nB帽,帽子\n".encode("gbk")
    path = gbk_zip(tmp_path / "c.zip", {"A猫": 3, "B帽": 3}, [(raw_name_entry(b"classes.csv"), classes)])
    result = import_archive(ws, path, name="c")
    assert set(result.classes) == {"A猫", "B帽"}
    assert warning_keys(result)[0] == "warn.names_gbk_manifest"
    assert load_dataset(ws, "c").descriptions["A猫"] == "家猫"


def test_unflagged_utf8_chinese_european_and_cyrillic_names_stay_utf8(ws, tmp_path):
    entries = [
        (raw_name_entry(name.encode("utf-8")), data) for name, data in class_folders({"鸟": 3, "café": 3, "кошка": 3})
    ]
    result = import_archive(ws, make_zip(tmp_path / "d.zip", entries), name="d")
    assert set(result.classes) == {"鸟", "café", "кошка"}
    assert not any(k.startswith("warn.names") for k in warning_keys(result))  # "鸟" is not GBK: no doubt


def test_unflagged_utf8_that_gbk_could_also_read_is_read_as_utf8_with_a_warning(ws, tmp_path):
    entries = [(raw_name_entry(name.encode("utf-8")), data) for name, data in class_folders({"café": 3, "кошка": 3})]
    assert all(name.encode("utf-8").decode("gb18030") for name in ("café/0.jpg", "кошка/0.jpg"))
    result = import_archive(ws, make_zip(tmp_path / "e.zip", entries), name="e")
    assert set(result.classes) == {"café", "кошка"}
    assert warning_keys(result)[0] == "warn.names_utf8_unflagged"


def test_name_encoding_rules_on_raw_names():
    assert choose_name_encoding([b"cat/1.jpg"]).encoding == "utf-8"
    assert choose_name_encoding([b"cat/1.jpg"]).reason is None  # nothing to choose: no warning
    mixed = ["猫/1.jpg".encode("gbk"), "\xff/1.jpg".encode("latin-1")]  # fits neither alone: name by name
    assert choose_name_encoding(mixed).encoding is None


def png_header_only(width: int, height: int, bit_depth: int = 1) -> bytes:
    """A real PNG of ``width`` x ``height`` one-bit pixels, all zero: a few KB on disk, as a bomb is."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width * bit_depth + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return png_header_only(20_000, 20_000)


def test_a_pixel_bomb_is_refused_with_its_size_and_no_pillow_warning(bomb):
    assert len(bomb) < 200_000 and header_size(bomb) == (20_000, 20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail here
        with pytest.raises(ImageRejected) as caught:
            normalise_image(bomb, "big.png")
        with pytest.raises(ImageRejected):
            normalise_image(png_header_only(12_000, 8_000), "96mp.png")  # past Pillow's warning, below its error
    message = caught.value.message("en")
    assert "big.png" in message and "20000×20000" in message and "80 MP" in message
    assert "20000×20000" in caught.value.message("zh")


def test_an_archive_with_a_bomb_imports_the_rest(ws, tmp_path, bomb):
    path = make_zip(tmp_path / "bomb.zip", [*class_folders({"cat": 3, "dog": 3}), ("cat/bomb.png", bomb)])
    result = import_archive(ws, path, name="bomb")
    assert result.images == 6
    (skipped,) = result.skipped
    assert skipped.entry == "cat/bomb.png" and skipped.key == "err.image_too_many_pixels"


def test_the_cli_skips_a_bomb_with_its_reason(tmp_path, bomb):
    path = make_zip(tmp_path / "bomb.zip", [*class_folders({"cat": 3, "dog": 3}), ("dog/bomb.png", bomb)])
    done = subprocess.run(
        [sys.executable, "-m", "core", "import", str(path), "--workspace", str(tmp_path / "ws")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "DecompressionBomb" not in done.stdout + done.stderr
    assert "dog/bomb.png" in done.stdout and "20000×20000" in done.stdout


def manifest_zip(path: Path, names: list[str], rows: list[str], header: str = "filename,label") -> Path:
    entries = [(name, jpeg((i * 20 % 256, 80, 120))) for i, name in enumerate(names)]
    return make_zip(path, [*entries, ("labels.csv", (header + "\n" + "\n".join(rows) + "\n").encode())])


def test_a_manifest_naming_files_relative_to_the_image_folder(ws, tmp_path):
    names = [f"images/img_{i}.jpg" for i in range(8)]
    rows = [f"img_{i}.jpg,{'猫' if i % 2 else '狗'}" for i in range(8)]
    result = import_archive(ws, manifest_zip(tmp_path / "m.zip", names, rows), name="m")
    assert result.classes == {"狗": 4, "猫": 4} and result.skipped == []


def test_manifest_base_names_match_when_unique_and_are_never_guessed(ws, tmp_path):
    names = ["a/x.jpg", "b/x.jpg", "a/y.jpg", "b/z.jpg", "a/w.jpg"]
    rows = ["x.jpg,cat", "b/x.jpg,dog", "y.jpg,cat", "z.jpg,dog", "../w.jpg,cat", "/abs.jpg,cat", "gone.jpg,dog"]
    result = import_archive(ws, manifest_zip(tmp_path / "n.zip", names, rows), name="n")
    reasons = {s.entry: s.key for s in result.skipped}
    assert reasons == {
        "labels.csv:2": "skip.manifest_ambiguous",  # x.jpg is in a/ and in b/
        "labels.csv:6": "skip.manifest_outside",
        "labels.csv:7": "skip.manifest_outside",
        "labels.csv:8": "skip.manifest_missing",
    }
    assert "2" in next(s for s in result.skipped if s.key == "skip.manifest_ambiguous").reason("en")
    assert result.classes == {"cat": 1, "dog": 2}  # b/x (exact), y (unique name), z (unique name)
    assert result.unlabeled == 2  # a/x.jpg (ambiguous row) and a/w.jpg (row outside)


def test_a_rejected_import_after_the_new_rules_changes_nothing(ws, tmp_path):
    import_archive(ws, gbk_zip(tmp_path / "first.zip", {"猫": 3, "狗": 3}), name="first")
    before = snapshot(ws.root)
    only_bombs = make_zip(tmp_path / "bombs.zip", [("a/bomb.png", png_header_only(9_000, 9_000))])
    with pytest.raises(DatasetRejected) as caught:
        import_archive(ws, only_bombs, name="bombs")
    assert caught.value.key == "err.no_valid_images"
    assert snapshot(ws.root) == before
