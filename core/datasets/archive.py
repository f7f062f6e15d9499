"""Reading a zip archive's directory safely: names, junk, hostile entries and limits.

Nothing here writes a file. :func:`scan_archive` turns the archive's central
directory into a list of safe, decoded entries plus the entries skipped with a
reason, or raises :class:`DatasetRejected` naming the entry and the rule.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from core.datasets.images import IMAGE_EXTENSIONS, MAX_IMAGE_PIXELS
from core.errors import ConfigError, DatasetRejected, LabelTuneError
from core.i18n import render, stored

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# Names that archivers and operating systems add and nobody means to import.
JUNK_DIRS = frozenset({"__macosx", ".git", ".svn"})
JUNK_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "ehthumbs.db"})
NESTED_ARCHIVE_EXTENSIONS = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst"})
METADATA_EXTENSIONS = frozenset({".csv", ".tsv", ".json"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_UTF8_FLAG = 0x800
# Bytes read from each CSV/TSV to tell the archive's name encoding: a header and a few thousand rows.
WITNESS_MAX_BYTES = 256 * 1024
_ENCRYPTED_FLAG = 0x1


@dataclass(frozen=True)
class IngestLimits:
    """Limits on one archive, checked from its directory first and again while streaming."""

    # Bytes of the zip file itself: the streaming uploader's default limit (core.store.uploads: the bytes go
    # to disk, not memory); Streamlit's own uploader stops at server.maxUploadSize (2 GiB) before this.
    max_archive_bytes: int = 50 * GiB
    # Bytes of all entries once decompressed: bounds the disk an import can fill.
    max_total_bytes: int = 64 * GiB
    # Entries in the directory: tens of thousands of images plus headroom; bounds memory per entry.
    max_entries: int = 200_000
    # Bytes of one decompressed image file: a 64 MP photo is about 20 MB as JPEG, 48 MB as TIFF.
    max_image_bytes: int = 64 * MiB
    # Bytes of a manifest or class-description file: a 200,000-row CSV is about 20 MB.
    max_metadata_bytes: int = 32 * MiB
    # Decompressed/compressed ratio of one entry. Photos barely compress (about 1:1), PNGs
    # and BMPs rarely beyond 20:1; zip bombs run at 1000:1. Applied from ratio_floor_bytes up.
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1 * MiB
    # Pixels (width x height) of one image, read from its header before decoding.
    max_pixels: int = MAX_IMAGE_PIXELS

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if value <= 0:
                raise ConfigError("err.config_range", field=name, low="> 0", high="-", value=value)


@dataclass(frozen=True)
class Skipped:
    """An entry left out of the import, with the rule it broke."""

    entry: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def reason(self, lang: str = "en") -> str:

        return render(self.to_stored(), lang)

    def to_stored(self) -> dict[str, Any]:
        """As stored (the quality report, the import log): the entry, and its reason as key and parameters."""

        return {"entry": self.entry, **stored(self.key, entry=self.entry, **self.params)}


@dataclass(frozen=True)
class Entry:
    """A file entry that passed the safety checks, with its decoded, normalised path."""

    info: zipfile.ZipInfo
    path: PurePosixPath

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()


@dataclass
class Scan:
    entries: list[Entry]
    skipped: list[Skipped]
    total_entries: int
    names: NameEncoding


def _raw_name(info: zipfile.ZipInfo) -> bytes | None:
    """The bytes of an entry name written without the UTF-8 flag (zipfile decoded them as CP437)."""
    if info.flag_bits & _UTF8_FLAG:
        return None
    try:
        return info.filename.encode("cp437")
    except UnicodeEncodeError:
        return None


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _reads_like_gbk_as_utf8(text: str) -> bool:
    """A name part whose letters are all two-byte UTF-8 characters (U+0080 to U+07FF) with no plain letter
    beside them: a GBK character read as UTF-8 is one of these ("猫" is "è", "鞋" is "Ь"). A European name
    mixes accents with plain letters ("café"); Chinese in UTF-8 is three bytes a character."""
    for part in text.split("/"):
        stem = part.rsplit(".", 1)[0]
        if any("\u0080" <= c <= "\u07ff" for c in stem) and not any(c.isascii() and c.isalpha() for c in stem):
            return True
    return False


def _common_chinese(raw: bytes) -> bool:
    """Read as GB18030, every character is in GB2312, the set of commonly used Chinese characters."""
    try:
        raw.decode("gb18030").encode("gb2312")
    except UnicodeError:
        return False
    return True


@dataclass(frozen=True)
class NameEncoding:
    """How the names written without the UTF-8 flag are read, for the whole archive, and why."""

    encoding: str | None  # "utf-8" or "gb18030"; None: name by name (the names fit neither alone)
    reason: str | None = None  # the warning key that tells the user, when there was a choice to make

    def decode(self, info: zipfile.ZipInfo) -> str:
        raw = _raw_name(info)
        name = info.filename
        if raw is not None and not raw.isascii():
            for encoding in (self.encoding,) if self.encoding else ("utf-8", "gb18030"):
                if _decodes(raw, encoding):
                    name = raw.decode(encoding)
                    break
        return unicodedata.normalize("NFC", name)


def choose_name_encoding(raw_names: list[bytes], witnesses: list[bytes] = ()) -> NameEncoding:
    """One encoding for all unflagged names of an archive, never name by name when one fits them all.

    Zips made on Chinese Windows carry GBK names without the UTF-8 flag; other tools write UTF-8 without
    it. Deciding per name misreads GBK names whose bytes happen to be valid UTF-8 ("猫" is C3 A8, "è").
    The evidence, in order: a name that is not UTF-8 but is GB18030; a manifest or class file (the
    ``witnesses``) that is GB18030 but not UTF-8; UTF-8 readings that look like GBK misread while the
    GB18030 readings are common Chinese characters. Otherwise UTF-8.
    """
    names = [r for r in raw_names if not r.isascii()]
    if not names:
        return NameEncoding("utf-8")
    utf8 = all(_decodes(r, "utf-8") for r in names)
    gbk = all(_decodes(r, "gb18030") for r in names)
    if gbk and not utf8:
        return NameEncoding("gb18030", "warn.names_gbk")
    if not (gbk and utf8):
        return NameEncoding("utf-8" if utf8 else None)
    if any(not _decodes(w, "utf-8") and _decodes(w, "gb18030") for w in witnesses):
        return NameEncoding("gb18030", "warn.names_gbk_manifest")
    if any(_reads_like_gbk_as_utf8(r.decode("utf-8")) for r in names) and all(_common_chinese(r) for r in names):
        return NameEncoding("gb18030", "warn.names_gbk_plausible")
    return NameEncoding("utf-8", "warn.names_utf8_unflagged")


def _witnesses(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> list[bytes]:
    """The raw bytes of the archive's small CSV/TSV files (manifests, class lists), for the name encoding."""
    out = []
    for info in infos:
        if info.filename.lower().endswith((".csv", ".tsv")) and info.file_size <= WITNESS_MAX_BYTES:
            try:
                with zf.open(info) as fh:
                    out.append(fh.read(WITNESS_MAX_BYTES))
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
                continue  # unreadable here: the import reports it where the file is used
    return out


def is_junk(path: PurePosixPath) -> bool:
    parts = [p.casefold() for p in path.parts]
    return any(p in JUNK_DIRS for p in parts[:-1]) or parts[-1] in JUNK_FILES or parts[-1].startswith("._")


def safe_path(name: str) -> PurePosixPath:
    """Normalise an entry name to a relative POSIX path, or reject the archive.

    Backslashes are read as separators (old Windows zippers write them) and the
    result must stay inside the archive: no absolute paths, drive letters or ``..``.
    """
    if "\x00" in name:
        raise DatasetRejected("err.unsafe_path", entry=name, rule="NUL character in name")
    unified = name.replace("\\", "/")
    if unified.startswith("/"):
        raise DatasetRejected("err.unsafe_path", entry=name, rule="absolute path")
    if _DRIVE.match(unified):
        raise DatasetRejected("err.unsafe_path", entry=name, rule="drive letter")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DatasetRejected("err.unsafe_path", entry=name, rule="'..' leaves the archive")
    return PurePosixPath(*parts) if parts else PurePosixPath()


def open_zip(source: str | IO[bytes], archive_name: str, limits: IngestLimits) -> tuple[zipfile.ZipFile, int]:
    """Open the archive after checking its own size (returned too); errors name the archive."""
    try:
        if hasattr(source, "seek"):
            size = source.seek(0, 2)
            source.seek(0)
        else:
            with open(source, "rb") as fh:
                size = fh.seek(0, 2)
    except OSError as exc:
        raise DatasetRejected("err.archive_unreadable", archive=archive_name, reason=exc.strerror or str(exc)) from exc
    if size == 0:
        raise DatasetRejected("err.archive_empty", archive=archive_name)
    if size > limits.max_archive_bytes:
        raise DatasetRejected(
            "err.archive_too_large", archive=archive_name, size_mb=size // MiB, limit_mb=limits.max_archive_bytes // MiB
        )
    try:
        return zipfile.ZipFile(source), size
    except zipfile.BadZipFile as exc:
        raise DatasetRejected("err.not_a_zip", archive=archive_name, reason=str(exc)) from exc
    except (OSError, EOFError, ValueError) as exc:
        raise DatasetRejected("err.not_a_zip", archive=archive_name, reason=str(exc)) from exc


def scan_archive(zf: zipfile.ZipFile, archive_name: str, limits: IngestLimits) -> Scan:
    """Check the directory against the limits and sort entries into usable and skipped."""
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise DatasetRejected("err.too_many_entries", archive=archive_name, count=len(infos), limit=limits.max_entries)
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_total_bytes:
        raise DatasetRejected(
            "err.total_too_large",
            archive=archive_name,
            size_mb=declared // MiB,
            limit_mb=limits.max_total_bytes // MiB,
        )
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    seen: set[PurePosixPath] = set()
    raw_names = [r for r in map(_raw_name, infos) if r is not None]
    names = choose_name_encoding(raw_names, _witnesses(zf, infos) if raw_names else [])
    for info in infos:
        name = names.decode(info)
        path = safe_path(name)
        if info.is_dir() or not path.parts or is_junk(path):
            continue
        shown = str(path)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            skipped.append(Skipped(shown, "skip.symlink"))
        elif info.flag_bits & _ENCRYPTED_FLAG:
            skipped.append(Skipped(shown, "skip.encrypted"))
        elif path in seen:
            skipped.append(Skipped(shown, "skip.duplicate_name"))
        elif path.suffix.lower() in NESTED_ARCHIVE_EXTENSIONS:
            skipped.append(Skipped(shown, "skip.nested_archive"))
        elif path.suffix.lower() not in IMAGE_EXTENSIONS | METADATA_EXTENSIONS:
            skipped.append(Skipped(shown, "skip.not_image", {"ext": path.suffix or "-"}))
        elif info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            ratio = round(info.file_size / max(info.compress_size, 1))
            skipped.append(Skipped(shown, "skip.ratio", {"ratio": ratio, "limit": int(limits.max_ratio)}))
        else:
            seen.add(path)
            entries.append(Entry(info, path))
    return Scan(entries=entries, skipped=skipped, total_entries=len(infos), names=names)


def read_entry(zf: zipfile.ZipFile, entry: Entry, max_bytes: int) -> bytes:
    """Stream one entry into memory, never past ``max_bytes`` (whatever its header claims)."""
    shown = str(entry.path)
    if entry.info.file_size > max_bytes:
        raise EntrySkipped(
            Skipped(shown, "skip.too_large", {"size_mb": entry.info.file_size // MiB, "limit_mb": max_bytes // MiB})
        )
    try:
        with zf.open(entry.info) as fh:
            data = fh.read(max_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise EntrySkipped(Skipped(shown, "skip.corrupt_entry", {"reason": str(exc)})) from exc
    if len(data) > max_bytes:
        raise EntrySkipped(
            Skipped(shown, "skip.too_large", {"size_mb": len(data) // MiB, "limit_mb": max_bytes // MiB})
        )
    return data


class EntrySkipped(LabelTuneError):
    """Internal signal: this entry is skipped; carries the :class:`Skipped` record."""

    def __init__(self, skipped: Skipped) -> None:
        self.skipped = skipped
        super().__init__(skipped.key, entry=skipped.entry, **skipped.params)


def folder_as_zip(folder: Path, target: Path) -> Path:
    """A folder on the server (``class/image`` or ``split/class/image``) written as an uncompressed zip at
    ``target``, so it is imported exactly as an uploaded zip (its checks, limits and skip reasons). Only
    regular files under the folder are read: symbolic links (to files or folders) are left out, so nothing
    outside the folder gets in. Names are stored as UTF-8."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for root, dirs, files in os.walk(folder, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
            for name in sorted(files):
                path = Path(root) / name
                if path.is_symlink() or not path.is_file():
                    continue
                zf.write(path, path.relative_to(folder).as_posix())
    return target
