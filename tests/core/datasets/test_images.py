import io

import numpy as np
import pytest
from PIL import Image

from core.datasets.images import BACKGROUND, normalise_image, to_rgb
from core.errors import ImageRejected
from tests.builders import image_bytes, jpeg


def pixels(stored: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(stored)).convert("RGB"))


def test_plain_rgb_jpeg_keeps_its_bytes():
    data = jpeg(size=(50, 30))
    out = normalise_image(data, "a.jpg")
    assert out.data == data and out.extension == "jpg"
    assert (out.width, out.height) == (50, 30)
    thumb = Image.open(io.BytesIO(out.thumbnail))
    assert thumb.format == "JPEG" and thumb.size == (50, 30)


def test_thumbnail_is_bounded():
    out = normalise_image(jpeg(size=(600, 300)), "big.jpg")
    assert Image.open(io.BytesIO(out.thumbnail)).size == (256, 128)


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (60, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    out = normalise_image(image_bytes(img, "JPEG", exif=exif), "rotated.jpg")
    assert (out.width, out.height) == (20, 60)
    assert out.extension == "png"  # re-encoded losslessly, upright
    assert pixels(out.data).shape == (60, 20, 3)


def test_cmyk_becomes_rgb():
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    out = normalise_image(image_bytes(img, "JPEG"), "cmyk.jpg")
    r, g, b = pixels(out.data)[8, 8]
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_is_scaled_not_clipped():
    arr = np.full((8, 8), 32768, dtype=np.uint16)
    arr[0, 0] = 65535
    out = normalise_image(image_bytes(Image.fromarray(arr), "PNG"), "deep.png")
    got = pixels(out.data)
    assert tuple(got[4, 4]) == (128, 128, 128)
    assert tuple(got[0, 0]) == (255, 255, 255)


def test_alpha_is_composited_on_the_fixed_background():
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    img.putpixel((0, 0), (0, 0, 255, 255))
    got = pixels(normalise_image(image_bytes(img, "PNG"), "alpha.png").data)
    assert tuple(got[4, 4]) == BACKGROUND
    assert tuple(got[0, 0]) == (0, 0, 255)


def test_palette_with_transparency_and_la():
    p = Image.new("P", (4, 4), 0)
    p.putpalette([255, 0, 0] * 256)
    p.info["transparency"] = 0
    assert tuple(np.asarray(to_rgb(p))[0, 0]) == BACKGROUND
    la = Image.new("LA", (4, 4), (0, 255))
    assert tuple(np.asarray(to_rgb(la))[0, 0]) == (0, 0, 0)


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_first_frame_or_page(fmt):
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = image_bytes(frames[0], fmt, save_all=True, append_images=frames[1:])
    r, g, b = pixels(normalise_image(data, f"anim.{fmt.lower()}").data)[5, 5]
    assert r > 200 and b < 60


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "PNG"])
def test_other_allowed_formats(fmt):
    out = normalise_image(image_bytes(Image.new("RGB", (12, 9), (1, 2, 3)), fmt), f"x.{fmt.lower()}")
    assert (out.width, out.height) == (12, 9) and out.extension == "png"


def test_truncated_jpeg_that_passes_verify_is_caught():
    data = jpeg(size=(200, 200))
    truncated = data[: len(data) // 2]
    Image.open(io.BytesIO(truncated)).verify()  # the header-only check is fooled
    with pytest.raises(ImageRejected) as info:
        normalise_image(truncated, "half.jpg")
    assert info.value.key == "err.image_corrupt" and "half.jpg" in str(info.value)


def test_not_an_image_and_disallowed_format():
    with pytest.raises(ImageRejected, match="notes.jpg"):
        normalise_image(b"hello, not an image", "notes.jpg")
    ico = image_bytes(Image.new("RGB", (16, 16)), "ICO")
    with pytest.raises(ImageRejected) as info:
        normalise_image(ico, "icon.png")
    assert info.value.key == "err.image_unsupported"


def test_pixel_limit_is_checked_before_decoding():
    with pytest.raises(ImageRejected) as info:
        normalise_image(jpeg(size=(100, 100)), "huge.jpg", max_pixels=5_000)
    assert info.value.key == "err.image_too_many_pixels"
    assert (info.value.params["width"], info.value.params["height"]) == (100, 100)
