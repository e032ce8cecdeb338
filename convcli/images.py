"""Images through Pillow: load, modes, value mapping, atomic save, montages.

Pixels leave this module as numpy arrays of shape (H, W, C), C being 1 or 3,
with any alpha channel kept apart; Pillow's (width, height) sizes never do.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from convcli.errors import ConvcliError
from convcli.names import CHANNELS, RANGES

# Output formats by file ending, and whether each holds 16-bit gray.
FORMATS: dict[str, tuple[str, bool]] = {
    ".png": ("PNG", True),
    ".tif": ("TIFF", True),
    ".tiff": ("TIFF", True),
    ".jpg": ("JPEG", False),
    ".jpeg": ("JPEG", False),
    ".bmp": ("BMP", False),
    ".webp": ("WEBP", False),
    ".gif": ("GIF", False),
}


PNG_LEVEL = 1
"""zlib level of the PNGs convcli writes."""

# The process's umask, read once: mkstemp makes 0600 files, outputs get what
# an ordinary open() would give them.
_UMASK = os.umask(0)
os.umask(_UMASK)


class ImageError(ConvcliError, ValueError):
    """An image that cannot be read or written: names the file and the reason."""


@dataclass(eq=False)
class Picture:
    """A decoded image.

    Attributes
    ----------
    pixels : ndarray, shape (H, W, C)
        C is 1 (gray) or 3 (RGB); uint8, uint16 (16-bit gray), int32 (mode I)
        or float32 (mode F).
    alpha : ndarray of shape (H, W), or None
        The alpha channel, same dtype as ``pixels``.
    mode : str
        Pillow's mode of the file as read.
    peak : float
        The largest pixel value of the type (255, 65535), or 1.0 for float images.
    icc_profile : bytes or None
        Carried to the output where its format holds one.
    """

    pixels: npt.NDArray[Any]
    alpha: npt.NDArray[Any] | None
    mode: str
    peak: float
    icc_profile: bytes | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the colour channels."""
        h, w, c = self.pixels.shape
        return int(h), int(w), int(c)


def load(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> Picture:
    """Read an image with Pillow: EXIF orientation applied, modes normalized.

    L, 1 and I;16 stay one channel; P becomes RGB or RGBA; CMYK, YCbCr and the
    like become RGB; LA and RGBA keep their alpha apart; I;16 stays 16-bit.
    Pillow's decompression-bomb limit stays on; ``max_pixels`` raises it.

    Raises
    ------
    ImageError
        ``path: reason`` for a missing, unreadable, truncated or non-image file,
        or one larger than the pixel limit.
    """
    p = Path(path)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = limit
            try:
                with Image.open(p) as img:
                    img.seek(0)  # GIF and other animations: the first frame
                    img.load()
                    icc = img.info.get("icc_profile")
                    oriented = ImageOps.exif_transpose(img)
                    picture = _to_picture(oriented, img.mode, icc)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except FileNotFoundError:
        msg = f"{p}: no such file"
        raise ImageError(msg) from None
    except IsADirectoryError:
        msg = f"{p}: is a folder, not an image"
        raise ImageError(msg) from None
    except PermissionError:
        msg = f"{p}: permission denied"
        raise ImageError(msg) from None
    except UnidentifiedImageError:
        msg = (
            f"{p}: not an image Pillow can read (PNG, JPEG, TIFF, BMP, WebP, GIF, ...)"
        )
        raise ImageError(msg) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        msg = (
            f"{p}: more pixels than the limit of {limit} (a decompression bomb?); "
            "--max-pixels N raises the limit"
        )
        raise ImageError(msg) from None
    except (OSError, SyntaxError, ValueError) as err:
        reason = str(err) or type(err).__name__
        msg = f"{p}: corrupt or truncated image ({reason})"
        raise ImageError(msg) from None
    return picture


def _to_picture(img: Image.Image, mode: str, icc: bytes | None) -> Picture:
    """Normalize Pillow's modes to (H, W, C) numpy pixels plus alpha."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode == "1":
        img = img.convert("L")
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.asarray(img).astype(np.uint16)
        return Picture(arr[:, :, np.newaxis], None, mode, 65535.0, icc)
    if img.mode == "I":
        arr = np.asarray(img, dtype=np.int32)
        peak = (
            65535.0
            if arr.size and arr.min() >= 0 and arr.max() <= 65535
            else 2.0**31 - 1
        )
        return Picture(arr[:, :, np.newaxis], None, mode, peak, icc)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        return Picture(arr[:, :, np.newaxis], None, mode, 1.0, icc)
    if img.mode == "LA":
        arr = np.asarray(img)
        return Picture(arr[:, :, :1].copy(), arr[:, :, 1].copy(), mode, 255.0, icc)
    if img.mode == "L":
        return Picture(np.asarray(img)[:, :, np.newaxis].copy(), None, mode, 255.0, icc)
    if img.mode in ("RGBA", "PA", "La"):
        arr = np.asarray(img.convert("RGBA"))
        return Picture(arr[:, :, :3].copy(), arr[:, :, 3].copy(), mode, 255.0, icc)
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return Picture(np.asarray(rgb).copy(), None, mode, 255.0, icc)


def convert_channels(picture: Picture, channels: str) -> Picture:
    """Return the picture with ``channels``: ``keep``, ``gray`` (ITU-R 601 luma) or ``rgb``."""
    if channels == "keep":
        return picture
    c = picture.shape[2]
    if channels == "gray" and c == 3:
        luma = picture.pixels.astype(np.float32) @ np.array(
            [0.299, 0.587, 0.114], np.float32
        )
        gray = np.clip(np.rint(luma), 0, picture.peak).astype(picture.pixels.dtype)
        return Picture(
            gray[:, :, np.newaxis], picture.alpha, picture.mode, picture.peak, None
        )
    if channels == "rgb" and c == 1:
        return Picture(
            np.repeat(picture.pixels, 3, axis=2),
            picture.alpha,
            picture.mode,
            picture.peak,
            picture.icc_profile,
        )
    if channels in CHANNELS:
        return picture
    msg = f"--channels must be one of {', '.join(CHANNELS)}; got {channels!r}"
    raise ImageError(msg)


def to_pixels(
    values: npt.NDArray[Any], range_: str, peak: float, dtype: np.dtype[Any]
) -> npt.NDArray[Any]:
    """Map float results onto pixel values of ``dtype`` (0..peak).

    ``clip`` rounds and clips; ``abs`` takes magnitudes first; ``rescale`` maps
    the map's min..max (0..max when no value is negative) onto 0..peak; a map
    of one value maps to 0 if it is 0 or negative, else to peak. Halves round
    up. Float dtypes get the values as they are (``--float``).

    Examples
    --------
    >>> to_pixels(np.array([-10.0, 100.5, 300.0]), "clip", 255, np.dtype(np.uint8))
    array([  0, 101, 255], dtype=uint8)
    >>> to_pixels(np.array([-2.0, 0.0, 2.0]), "rescale", 255, np.dtype(np.uint8))
    array([  0, 128, 255], dtype=uint8)
    """
    if range_ not in RANGES:
        msg = f"range must be one of {', '.join(RANGES)}; got {range_!r}"
        raise ImageError(msg)
    if dtype.kind == "f":
        return values.astype(dtype)
    # One float32 copy, then in place: a 4K RGB map is 100 MB per pass.
    v = np.array(values, dtype=np.float32)
    if not np.isfinite(v).all():
        np.nan_to_num(v, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
    if range_ == "abs":
        np.abs(v, out=v)
    elif range_ == "rescale":
        finite = np.isfinite(v)
        lo = float(v.min(where=finite, initial=np.inf))
        hi = float(v.max(where=finite, initial=-np.inf))
        if not finite.any():
            lo = hi = 0.0
        if lo > 0:
            lo = 0.0  # no negative value: a magnitude, mapped from 0
        if hi > lo:
            v -= np.float32(lo)
            v *= np.float32(peak / (hi - lo))
        else:
            v.fill(0)
    v += np.float32(0.5)
    np.floor(v, out=v)
    np.clip(v, 0, peak, out=v)  # also takes +-inf to the ends
    return v.astype(dtype)


def save(
    path: str | os.PathLike[str],
    pixels: npt.NDArray[Any],
    *,
    alpha: npt.NDArray[Any] | None = None,
    icc_profile: bytes | None = None,
    quality: int | None = None,
    compress_level: int | None = None,
) -> Path:
    """Write pixels (H, W, C) atomically: a temporary file beside ``path``, then a rename.

    The format follows the file ending. uint8 gray or RGB (with alpha: LA or
    RGBA); uint16 gray as 16-bit (PNG, TIFF); float32 as a float TIFF.

    Raises
    ------
    ImageError
        An unknown ending, a format that cannot hold the pixels, a failed write.
        No partial file is left behind.
    """
    p = Path(path)
    fmt, holds_16 = FORMATS.get(p.suffix.lower(), ("", False))
    if not fmt:
        msg = f"{p}: unknown image ending {p.suffix!r}; use one of {', '.join(FORMATS)}"
        raise ImageError(msg)
    img = _to_image(p, pixels, alpha, fmt, holds_16)
    options: dict[str, Any] = {}
    if icc_profile and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        options["icc_profile"] = icc_profile
    if quality is not None and fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt == "PNG":
        # zlib level 1, as OpenCV writes PNGs: 5x faster than Pillow's default
        # 6 on a 4K photo, for a file about 14 % larger (bench/bench_apply.py).
        options["compress_level"] = (
            PNG_LEVEL if compress_level is None else compress_level
        )
    return write_atomically(p, lambda stream: img.save(stream, format=fmt, **options))


def write_atomically(p: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Run ``write`` on a temporary file beside ``p``, then rename it to ``p``.

    The file gets the permissions an ordinary ``open()`` would give it (the
    umask's). On any error the temporary file is removed and ``p`` is left as
    it was; OS and encoder errors become `ImageError` naming ``p``.
    """
    folder = p.parent if str(p.parent) else Path()
    try:
        handle, tmp_name = tempfile.mkstemp(
            prefix=f".{p.name}.", suffix=".tmp", dir=folder
        )
    except OSError as err:
        msg = f"{p}: cannot write in {folder}: {err.strerror or err}"
        raise ImageError(msg) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, p)
    except (OSError, ValueError, KeyError) as err:
        tmp.unlink(missing_ok=True)
        msg = f"{p}: cannot write: {err}"
        raise ImageError(msg) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def _to_image(
    p: Path,
    pixels: npt.NDArray[Any],
    alpha: npt.NDArray[Any] | None,
    fmt: str,
    holds_16: bool,
) -> Image.Image:
    c = pixels.shape[2]
    if pixels.dtype == np.float32:
        if fmt != "TIFF" or c != 1 or alpha is not None:
            msg = f"{p}: float output is written as one-channel TIFF (.tif); got {c} channels for {fmt}"
            raise ImageError(msg)
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]))
    if pixels.dtype == np.uint16:
        if c != 1 or not holds_16:
            msg = f"{p}: {fmt} cannot hold 16-bit {'gray' if c == 1 else 'colour'}; write .png or .tif"
            raise ImageError(msg)
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]).astype("<u2"))
    if pixels.dtype != np.uint8:
        msg = f"{p}: cannot write pixels of dtype {pixels.dtype}"
        raise ImageError(msg)
    if alpha is not None and fmt in ("JPEG", "BMP"):
        alpha = None  # these formats have no alpha: the colour is written alone
    if alpha is not None:
        stacked = np.concatenate(
            [pixels, alpha[:, :, np.newaxis].astype(np.uint8)], axis=2
        )
        return Image.fromarray(stacked)  # (H, W, 2) is LA, (H, W, 4) RGBA
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0] if c == 1 else pixels))


def montage(
    path: str | os.PathLike[str],
    tiles: list[tuple[str, npt.NDArray[Any]]],
    *,
    columns: int | None = None,
    width: int | None = None,
) -> Path:
    """Tile labelled images (H, W, C) into one image, a label strip above each.

    Tiles may differ in size and channels: each is shown as 8-bit RGB (16-bit
    scaled down), shrunk to ``width`` pixels across if given. Written
    atomically like `save`.
    """
    if not tiles:
        msg = f"{path}: nothing to put in a montage"
        raise ImageError(msg)
    cols = columns or math.ceil(math.sqrt(len(tiles)))
    shown = []
    for label, pixels in tiles:
        arr = pixels
        if arr.dtype == np.uint16:
            arr = (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
        elif arr.dtype != np.uint8:
            arr = to_pixels(arr, "rescale", 255, np.dtype(np.uint8))
        img = Image.fromarray(
            np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        )
        img = img.convert("RGB")
        if width and img.width != width:
            img = img.resize(
                (width, max(1, round(img.height * width / img.width))),
                Image.Resampling.LANCZOS,
            )
        shown.append((label, img))
    strip = 16
    cell_w = max(img.width for _, img in shown)
    cell_h = max(img.height for _, img in shown) + strip
    rows = math.ceil(len(shown) / cols)
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (label, img) in enumerate(shown):
        x, y = (i % cols) * cell_w, (i // cols) * cell_h
        draw.text((x + 3, y + 2), label, fill=(0, 0, 0))
        sheet.paste(img, (x, y + strip))
    return save(path, np.asarray(sheet))
