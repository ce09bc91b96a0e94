"""Image input/output with Pillow: always (H, W, 3) uint8 RGB, upright.

Policies (see docs/media.md):
- EXIF orientation is applied (phone photos come out upright).
- Grayscale and palette images become RGB; 16-bit images are scaled to 8 bits (value * 255 / 65535, rounded).
- Transparency is composited on white (a cut-out portrait on white looks like an ID photo; black would darken
  anti-aliased hair edges).
- Size: images over `max_pixels` (default 150 megapixels) are refused before decoding (decompression-bomb guard;
  a small PNG can claim gigapixels). Images whose long side exceeds `max_side` (default 4096 px) are downscaled
  to it (JPEGs are decoded at reduced scale directly, so a 100-megapixel photo does not need 300 MB).
- Animated GIF/WebP and multi-frame files: the first frame.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from reenact.errors import MediaError, OutputError
from reenact.io._media import PathLike, check_input_file
from reenact.io.atomic import OutputGroup, atomic_output

__all__ = ["read_image", "write_image"]

MAX_PIXELS = 150_000_000  # below Pillow's own hard limit (~179 MP), so our message is the one users see
MAX_SIDE = 4096
_TODO = "give a JPEG, PNG or WebP image"


def read_image(path: PathLike, *, max_side: int | None = MAX_SIDE, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB (see module doc). MediaError for anything unreadable."""
    p = check_input_file(path, "image")
    try:
        with warnings.catch_warnings():
            # Our own size guard below replaces Pillow's warning; its hard DecompressionBombError is still caught.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise MediaError(
                        f"{p} is {w}x{h} ({w * h / 1e6:.0f} megapixels), above the {max_pixels / 1e6:.0f}-megapixel "
                        f"safety limit; downscale it first (a face needs no more than {MAX_SIDE} px)."
                    )
                if max_side and max(w, h) > max_side and img.format == "JPEG":
                    img.draft("RGB", (max_side, max_side))  # DCT-domain downscale by 1/2, 1/4 or 1/8 while decoding
                img.load()
                rgb = _to_rgb(ImageOps.exif_transpose(img))
    except Image.DecompressionBombError as err:
        raise MediaError(
            f"{p} claims an enormous size ({err}); it is refused as a possible decompression bomb, downscale it first."
        ) from err
    except UnidentifiedImageError as err:
        heic = p.suffix.lower() in (".heic", ".heif")
        hint = " (HEIC/HEIF is not supported: export the photo as JPEG)" if heic else ""
        raise MediaError(f"{p} is not an image Pillow can read{hint}; {_TODO}.") from err
    except (OSError, SyntaxError, ValueError) as err:  # truncated data, broken headers, bad EXIF
        raise MediaError(f"{p} is damaged or truncated ({err}); re-export it, {_TODO}.") from err
    if max_side and max(rgb.shape[:2]) > max_side:
        rgb = _downscale(rgb, max_side)
    return rgb


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 3) uint8 RGB, alpha composited on white."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):  # 16/32-bit grayscale (16-bit PNG loads as "I" or "I;16")
        arr = np.asarray(img).astype(np.float64)
        if mode == "I" and arr.max(initial=0) <= 255:
            gray = arr  # an 8-bit image stored in a 32-bit mode
        else:
            gray = arr * (255.0 / 65535.0)
        gray = np.clip(np.round(gray), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":  # float images (TIFF): assume 0..1 if so, else 0..255
        arr = np.asarray(img, dtype=np.float64)
        arr = arr * 255.0 if arr.max(initial=0) <= 1.0 else arr
        gray = np.clip(np.round(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L", "RGB") and "transparency" in img.info)
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)  # (H, W, 4)
        a = rgba[:, :, 3:4] / 255.0
        out = rgba[:, :, :3] * a + 255.0 * (1.0 - a)
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    if mode != "RGB":
        img = img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _downscale(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0))


def write_image(path: PathLike, rgb: np.ndarray, *, overwrite: bool = False, quality: int = 95,
                group: OutputGroup | None = None) -> Path:
    """Write (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) gray uint8 atomically; the format follows the extension
    (.jpg .png .webp .bmp .tif ...). JPEG drops alpha (composited on white). Returns the final path. With `group`
    the image is staged there and appears when the group commits (with the command's other outputs)."""
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or (rgb.ndim == 3 and rgb.shape[2] not in (3, 4)):
        raise ValueError(f"write_image needs (H, W), (H, W, 3) or (H, W, 4) uint8, got {rgb.shape} {rgb.dtype}")
    ext = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise OutputError(f"Cannot tell the image format of {path} from its extension; use .png, .jpg or .webp.")
    img = Image.fromarray(np.ascontiguousarray(rgb))
    if fmt == "JPEG" and img.mode == "RGBA":
        img = Image.fromarray(_to_rgb(img))
    params = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    with atomic_output(path, overwrite) if group is None else nullcontext(group.stage(path)) as tmp:
        try:
            img.save(tmp, format=fmt, **params)
        except OSError as err:
            raise OutputError(f"Cannot write {path} ({err}); check free space and permissions.") from err
    return Path(path).expanduser().absolute()
