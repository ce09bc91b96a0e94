"""Images: EXIF orientation, 16-bit, grayscale, alpha, palette, WebP, size guard, bad files, atomic writes."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reenact.errors import MediaError, OutputError
from reenact.io.image import read_image, write_image


def _marked(h: int = 30, w: int = 40) -> np.ndarray:
    """(h, w, 3) with a red top-left block, so orientation is checkable."""
    img = np.full((h, w, 3), 90, np.uint8)
    img[:8, :12] = (255, 0, 0)
    return img


@pytest.mark.parametrize(("orientation", "turns"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, turns: int) -> None:
    # EXIF 6 = "rotate 90 CW to view", 8 = "rotate 90 CCW", 3 = 180
    img = Image.fromarray(_marked())
    exif = img.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    img.save(path, exif=exif, quality=95)
    got = read_image(path)
    expected = np.rot90(_marked(), turns)
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).mean() < 6


def _png16(path: Path, arr: np.ndarray, color_type: int) -> None:
    """Write a 16-bit PNG by hand (Pillow cannot write 16-bit RGB)."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(_PNG + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


_PNG = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def test_16bit_gray_and_rgb(tmp_path: Path) -> None:
    gray = np.linspace(0, 65535, 64 * 8).reshape(8, 64).astype(np.uint16)
    _png16(tmp_path / "g16.png", gray, color_type=0)
    got = read_image(tmp_path / "g16.png")
    assert got.shape == (8, 64, 3) and got.dtype == np.uint8
    np.testing.assert_allclose(got[..., 0], gray / 257.0, atol=1.0)
    rgb = np.zeros((4, 5, 3), np.uint16)
    rgb[..., 0], rgb[..., 2] = 65535, 32768
    _png16(tmp_path / "c16.png", rgb, color_type=2)
    assert np.abs(read_image(tmp_path / "c16.png")[0, 0].astype(int) - [255, 0, 128]).max() <= 1


def test_grayscale_palette_alpha_webp(tmp_path: Path) -> None:
    Image.fromarray(np.full((6, 7), 77, np.uint8)).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").tolist() == np.full((6, 7, 3), 77).tolist()
    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :3, 3] = 255  # left opaque red, right fully transparent, corner half transparent
    rgba[0, 6, 3] = 128
    Image.fromarray(rgba).save(tmp_path / "a.png")
    got = read_image(tmp_path / "a.png")
    assert got[0, 0].tolist() == [200, 0, 0] and got[3, 5].tolist() == [255, 255, 255]
    assert np.abs(got[0, 6].astype(int) - [228, 127, 127]).max() <= 1  # composited on white
    pal = Image.fromarray(_marked()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    pal.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png")[0, 0].tolist() == [255, 0, 0]
    Image.fromarray(rgba[..., :2].max(axis=2)).convert("LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png").shape == (6, 7, 3)
    Image.fromarray(_marked()).save(tmp_path / "w.webp", lossless=True)
    np.testing.assert_array_equal(read_image(tmp_path / "w.webp"), _marked())
    Image.fromarray(_marked()).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert np.abs(read_image(tmp_path / "cmyk.jpg")[2, 2].astype(int) - [255, 0, 0]).max() < 12


def test_large_images_are_downscaled_and_bombs_refused(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((300, 500, 3), np.uint8)).save(tmp_path / "big.jpg")
    assert read_image(tmp_path / "big.jpg", max_side=100).shape == (60, 100, 3)
    Image.fromarray(np.zeros((300, 500, 3), np.uint8)).save(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png", max_side=250).shape == (150, 250, 3)
    assert read_image(tmp_path / "big.png", max_side=None).shape == (300, 500, 3)
    # PNGs whose header claims 169 and 1600 megapixels: refused from the header, before decoding
    for side, words in ((13000, "megapixel"), (40000, "decompression bomb")):
        bomb = tmp_path / f"bomb{side}.png"
        bomb.write_bytes(_png_header(side, side))
        with pytest.raises(MediaError, match=words):
            read_image(bomb)


def _png_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return _PNG + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


def test_unreadable_images(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("hello\n")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.fromarray(_marked(200, 200)).save(tmp_path / "full.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:400])
    cases = {"notes.jpg": "not an image", "empty.png": "empty", "cut.jpg": "truncated", "missing.png": "not found"}
    for name, words in cases.items():
        with pytest.raises(MediaError, match=words) as err:
            read_image(tmp_path / name)
        assert name in str(err.value)


def test_write_image_atomic_and_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    assert write_image(out, _marked()) == out
    np.testing.assert_array_equal(read_image(out), _marked())
    with pytest.raises(OutputError, match="already exists"):
        write_image(out, _marked())
    write_image(out, np.zeros((4, 4, 3), np.uint8), overwrite=True)
    assert read_image(out).shape == (4, 4, 3)
    rgba = np.dstack([_marked(), np.full((30, 40), 255, np.uint8)])
    write_image(tmp_path / "o.jpg", rgba)  # JPEG has no alpha: composited
    assert read_image(tmp_path / "o.jpg").shape == (30, 40, 3)
    with pytest.raises(OutputError, match="extension"):
        write_image(tmp_path / "o.xyz", _marked())
    with pytest.raises(ValueError):
        write_image(tmp_path / "f.png", _marked().astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jpg", "o.png"]
