import zipfile

import pytest

from core.datasets.archive import IngestLimits, NameEncoding, is_junk, safe_path
from core.errors import ConfigError, DatasetRejected
from tests.builders import make_zip, raw_name_entry


def names_in(path):
    """Each name read on its own (no archive-wide encoding chosen): UTF-8 if it is, else GB18030."""
    with zipfile.ZipFile(path) as zf:
        return [NameEncoding(None).decode(i) for i in zf.infolist()]


def test_utf8_flagged_gbk_and_unflagged_utf8_names(tmp_path):
    path = make_zip(
        tmp_path / "names.zip",
        [
            ("猫/一.jpg", b"x"),  # zipfile sets the UTF-8 flag
            (raw_name_entry("狗/二.jpg".encode("gbk")), b"x"),  # Chinese Windows, no flag
            (raw_name_entry("鸟/三.jpg".encode()), b"x"),  # UTF-8 bytes, no flag
        ],
    )
    assert names_in(path) == ["猫/一.jpg", "狗/二.jpg", "鸟/三.jpg"]


def test_names_are_nfc(tmp_path):
    decomposed = "cafe\u0301/x.jpg"
    path = make_zip(tmp_path / "nfc.zip", [(decomposed, b"x")])
    assert names_in(path) == ["caf\u00e9/x.jpg"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("../evil.jpg", "'..'"),
        ("a/../../evil.jpg", "'..'"),
        ("/etc/evil.jpg", "absolute"),
        ("C:/evil.jpg", "drive"),
        ("c:evil.jpg", "drive"),
        ("..\\..\\evil.jpg", "'..'"),
        ("\\\\server\\share\\x.jpg", "absolute"),
    ],
)
def test_unsafe_paths_are_rejected(name, rule):
    with pytest.raises(DatasetRejected) as info:
        safe_path(name)
    assert rule in str(info.value) and name in str(info.value)


def test_safe_paths_are_normalised():
    assert str(safe_path("a\\b.jpg")) == "a/b.jpg"
    assert str(safe_path("./a//b.jpg")) == "a/b.jpg"


@pytest.mark.parametrize("name", ["__MACOSX/cat/._1.jpg", "cat/._1.jpg", "cat/.DS_Store", "Thumbs.db", "x/desktop.ini"])
def test_junk(name):
    assert is_junk(safe_path(name))


def test_limits_are_validated():
    with pytest.raises(ConfigError, match="max_entries"):
        IngestLimits(max_entries=0)
