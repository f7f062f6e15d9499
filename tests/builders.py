"""Images and zips built in code for the tests: nothing binary is committed."""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

EntrySpec = tuple[str, bytes]


def jpeg(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (48, 40), **save: object) -> bytes:
    """A small JPEG; ``color`` also seeds a little noise so different colours hash differently."""
    rng = np.random.default_rng(sum(color) + size[0])
    arr = np.clip(np.array(color, dtype=np.int16) + rng.integers(-10, 10, (size[1], size[0], 3)), 0, 255)
    out = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8), "RGB").save(out, format="JPEG", quality=90, **save)
    return out.getvalue()


def image_bytes(img: Image.Image, fmt: str, **save: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **save)
    return out.getvalue()


class _RawNameInfo(zipfile.ZipInfo):
    """A ZipInfo whose name is written as given bytes, without the UTF-8 flag (as old Windows zippers do)."""

    raw_name: bytes = b""

    def _encodeFilenameFlags(self):  # noqa: N802 - zipfile's name
        return self.raw_name, self.flag_bits & ~0x800


def raw_name_entry(raw: bytes) -> zipfile.ZipInfo:
    info = _RawNameInfo(raw.decode("cp437"))
    info.raw_name = raw
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def make_zip(path: Path, entries: Iterable[EntrySpec | tuple[zipfile.ZipInfo, bytes]]) -> Path:
    """Write ``entries`` (name or ZipInfo, data) to ``path`` and return it."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def symlink_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    info.create_system = 3  # Unix
    return info


def mark_encrypted(path: Path, name: str) -> Path:
    """Set the 'encrypted' flag of entry ``name`` in both its headers (zipfile cannot write one)."""
    data = bytearray(path.read_bytes())
    raw = name.encode()
    for signature, flags_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (pos := data.find(signature, start)) != -1:
            if data[pos + name_at : pos + name_at + len(raw)] == raw:
                data[pos + flags_at] |= 0x1
            start = pos + 4
    path.write_bytes(bytes(data))
    return path


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def class_folders(classes: dict[str, int], prefix: str = "", size: tuple[int, int] = (48, 40)) -> list[EntrySpec]:
    """``{class: n}`` as ``prefix/class/i.jpg`` entries, each image distinct."""
    entries = []
    for c, (name, count) in enumerate(classes.items()):
        for i in range(count):
            entries.append((f"{prefix}{name}/{i}.jpg", jpeg((40 * c % 256, 9 * i % 256, 100), size)))
    return entries


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder (None) under ``root``."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def separable(
    classes: dict[str, tuple[int, int, int]], per_class: int, size: tuple[int, int] = (40, 40)
) -> list[EntrySpec]:
    """Classes told apart by colour, with noise and per-image variation: a model can learn them."""
    entries = []
    for name, colour in classes.items():
        for i in range(per_class):
            rng = np.random.default_rng(zlib.crc32(f"{name}/{i}".encode()))
            base = np.array(colour, dtype=np.int16) + rng.integers(-30, 30, 3)
            arr = np.clip(base + rng.integers(-25, 25, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
            out = io.BytesIO()
            Image.fromarray(arr, "RGB").save(out, format="PNG")
            entries.append((f"{name}/{i}.png", out.getvalue()))
    return entries


# Three classes a tiny model tells apart by colour: the datasets the model tests train on.
COLOURS = {"红": (200, 60, 60), "蓝": (60, 60, 200), "绿": (60, 200, 60)}
TWO_COLOURS = {name: COLOURS[name] for name in ("红", "蓝")}


# The fastest settings that still train: VGG16 from scratch at 32 px learns colours in a few steps.
TINY = {"backbone": "vgg16", "weights": "none", "image_size": 32, "augment": "none", "jit_compile": "off", "lr": 0.01}


def tiny_config(dataset: str, **overrides: object):
    """A :class:`TrainConfig` of ``TINY`` settings on ``dataset``, with ``overrides``."""
    from core.runs.config import TrainConfig

    return TrainConfig(**{"dataset": dataset, **TINY, **overrides})


def trained_colour_run(ws, folder: Path, colours: dict[str, tuple[int, int, int]], per_class: int, name: str, **config):
    """Import ``colours`` as dataset ``name`` and train the tiny run the model tests share: VGG16 from
    scratch at 32 px, head only, learns colours in a few steps. Returns the run."""
    from core.datasets.ingest import import_archive
    from core.training.jobs import train_here

    import_archive(ws, make_zip(folder / f"{name}.zip", separable(colours, per_class)), name=name)
    run = train_here(ws, tiny_config(name, **{"batch_size": 8, "head_epochs": 4, "fine_tune_epochs": 0, **config}))
    assert run.status == "completed", run.error
    return run
