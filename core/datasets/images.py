"""The one image-normalisation function, shared by import, training and prediction.

Every image the product keeps goes through :func:`normalise_image`: a format
allow-list, a pixel limit checked from the header before decoding, a full
decode (so a truncated file that passes ``verify()`` is still caught), EXIF
orientation, and one colour conversion to 8-bit RGB. The stored file is either
the original JPEG bytes (when they already are upright 8-bit RGB, so nothing is
lost to re-encoding) or a lossless PNG of the normalised pixels. Training and
prediction decode that stored file the same way, so the model never sees
different pixels in training and in serving.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageRejected

# Formats Pillow may decode. Anything else (PSD, EPS, ICO, ...) is refused even if Pillow could open it.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
# File-name extensions considered images at all; the content decides the format.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
)
# Pixels (width x height). 80 MP covers 64 MP phone cameras and stays below Pillow's own
# decompression-bomb warning (89.5 MP), so our limit is the one that speaks.
MAX_IMAGE_PIXELS = 80_000_000
# Longest side of the stored thumbnail, pixels; the UI grids show at most this size.
THUMB_SIDE = 256
THUMB_QUALITY = 85
# Transparent pixels are composited on this fixed background (white), so RGBA images
# look in training as they look in a viewer.
BACKGROUND = (255, 255, 255)
# PNG level 1: lossless, several times faster to write than the default level 6.
PNG_COMPRESS_LEVEL = 1
EXIF_ORIENTATION = 0x0112
# What Pillow raises on broken or hostile files. Measured: 15,000 truncations and byte flips of JPEG,
# PNG (RGB, palette, RGBA, 16-bit), GIF, BMP, TIFF (raw, deflate) and WebP gave OSError (with its
# UnidentifiedImageError), SyntaxError and ValueError, plus sizes past the pixel limit; nothing else
# escaped. Pillow's header parsers raise EOFError, struct.error, IndexError, KeyError and TypeError,
# which Image.open turns into the above, but header_size() calls a format's parser directly, so they
# are listed too. DecompressionBombError: frames larger than the header said.
PILLOW_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    Image.DecompressionBombError,
)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})


@dataclass(frozen=True)
class NormalisedImage:
    """An image ready to store: upright, 8-bit RGB, with its thumbnail."""

    data: bytes
    extension: str  # "jpg" (original bytes kept) or "png" (normalised pixels)
    width: int
    height: int
    source_format: str
    thumbnail: bytes  # JPEG


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any decoded mode to 8-bit RGB: 16-bit scaled (not clipped), alpha composited."""
    if img.mode in _SIXTEEN_BIT_MODES or img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if img.mode == "F":
            scale = 255.0 if arr.size and float(arr.max()) <= 1.0 else 1.0
        elif img.mode == "I" and arr.size and float(arr.max()) <= 255:
            scale = 1.0  # an 8-bit image stored in a 32-bit container
        else:
            scale = 255.0 / 65535.0
        gray = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "RGB":
        return img
    return img.convert("RGB")


def make_thumbnail(rgb: Image.Image, side: int = THUMB_SIDE) -> bytes:
    thumb = rgb.copy()
    thumb.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=THUMB_QUALITY)
    return out.getvalue()


def header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header alone, through Pillow's format registry but without
    ``Image.open``'s own decompression-bomb check (which raises before the size can be read).
    None when no allowed format recognises the data."""
    Image.init()
    prefix = data[:16]
    for fmt in ALLOWED_FORMATS:
        factory, accept = Image.OPEN[fmt]
        if accept is not None and not accept(prefix):
            continue
        try:
            return factory(io.BytesIO(data), "").size
        except PILLOW_ERRORS:
            continue
    return None


def _too_many_pixels(name: str, width: int, height: int, max_pixels: int) -> ImageRejected:
    return ImageRejected(
        "err.image_too_many_pixels",
        name=name,
        width=width,
        height=height,
        megapixels=round(width * height / 1e6, 1),
        limit_mp=round(max_pixels / 1e6),
    )


def open_image(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open and fully decode ``data``; raise :class:`ImageRejected` naming ``name`` and the rule.

    The pixel limit is checked from the header before Pillow opens the image: above its own limit
    Pillow raises ``DecompressionBombError`` (and warns from 89.5 MP), which would say neither the size
    nor the rule. Any error Pillow raises while decoding becomes "corrupt image"."""
    size = header_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise _too_many_pixels(name, size[0], size[1], max_pixels)
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError as exc:
        raise ImageRejected("err.image_unsupported", name=name, formats=", ".join(ALLOWED_FORMATS)) from exc
    except PILLOW_ERRORS as exc:
        raise ImageRejected("err.image_corrupt", name=name, reason=str(exc) or type(exc).__name__) from exc
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageRejected("err.image_corrupt", name=name, reason="zero-sized image")
    if width * height > max_pixels:
        raise _too_many_pixels(name, width, height, max_pixels)
    try:
        img.load()  # full decode: truncated data raises here
    except PILLOW_ERRORS as exc:
        raise ImageRejected("err.image_corrupt", name=name, reason=str(exc) or type(exc).__name__) from exc
    return img


def decode_rgb(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[Image.Image, Image.Image, int]:
    """Decoded image, its upright 8-bit RGB pixels, and the EXIF orientation that was applied."""
    img = open_image(data, name, max_pixels)
    orientation = img.getexif().get(EXIF_ORIENTATION, 1) or 1
    try:
        upright = ImageOps.exif_transpose(img) if orientation != 1 else img
        return img, to_rgb(upright), orientation
    except PILLOW_ERRORS as exc:
        raise ImageRejected("err.image_corrupt", name=name, reason=str(exc)) from exc


def _kept_as_is(img: Image.Image, orientation: int) -> bool:
    """An upright 8-bit RGB JPEG is stored as its own bytes: nothing to convert, nothing lost."""
    return img.format == "JPEG" and img.mode == "RGB" and orientation == 1


def stored_as_is(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> bool:
    """Whether :func:`normalise_image` would keep ``data`` unchanged, from the header alone (no decode).
    Prediction uses it to skip Pillow's full decode: the model's decode then reads these very bytes,
    as training reads the stored file, and reports a corrupt body itself."""
    size = header_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise _too_many_pixels(name, size[0], size[1], max_pixels)
    try:
        img = Image.open(io.BytesIO(data), formats=("JPEG",))
        return _kept_as_is(img, img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except PILLOW_ERRORS:
        return False


def normalise_image(
    data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS, thumbnail: bool = True
) -> NormalisedImage:
    """Decode, orient and convert one image; see the module docstring for the stored form.
    ``thumbnail=False`` (prediction) skips the thumbnail, leaving ``b""``."""
    img, rgb, orientation = decode_rgb(data, name, max_pixels)
    source_format = img.format or ""
    if _kept_as_is(img, orientation):
        stored, extension = data, "jpg"
    else:
        buf = io.BytesIO()
        rgb.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        stored, extension = buf.getvalue(), "png"
    return NormalisedImage(
        data=stored,
        extension=extension,
        width=rgb.width,
        height=rgb.height,
        source_format=source_format,
        thumbnail=make_thumbnail(rgb) if thumbnail else b"",
    )
