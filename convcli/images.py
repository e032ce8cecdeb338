"""Images through Pillow: load, modes, value mapping, atomic save, montages.

Pixels leave this module as numpy arrays of shape (H, W, C), C being 1 or 3,
with any alpha channel kept apart; Pillow's (width, height) sizes never do.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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


def shown(path: str | os.PathLike[str]) -> str:
    r"""Return a path as messages and tables show it: control characters escaped.

    A newline in a file name would split a one-line error; a byte that is not
    UTF-8 (which Python keeps as a lone surrogate) could not be printed at all.

    Examples
    --------
    >>> print(shown("a\nb.png"), shown("caf\u00e9.png"))
    a\nb.png café.png
    """
    text = os.fspath(path)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def pixel_limit(max_pixels: int | None = None) -> int | None:
    """Return the pixel limit: ``max_pixels``, else Pillow's (None: no limit)."""
    return Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels


def _check_regular(p: Path) -> None:
    """Refuse what is not a regular file before opening it: a FIFO would block."""
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        msg = f"{shown(p)}: no such file"
        raise ImageError(msg) from None
    except OSError as err:
        msg = f"{shown(p)}: cannot read: {err.strerror or err}"
        raise ImageError(msg) from None
    if stat.S_ISDIR(mode):
        msg = f"{shown(p)}: is a folder, not an image"
        raise ImageError(msg)
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
        msg = f"{shown(p)}: not a regular file ({kind}); give an image file"
        raise ImageError(msg)


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


@contextmanager
def _reading(p: Path, limit: int | None) -> Iterator[None]:
    """Open images under ``limit`` pixels; turn every failure into `ImageError` naming ``p``.

    Pillow's warnings (odd EXIF, odd TIFF tags) are not shown; its
    decompression-bomb warning is an error.
    """
    old_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = limit
            try:
                yield
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except FileNotFoundError:
        msg = f"{shown(p)}: no such file"
        raise ImageError(msg) from None
    except IsADirectoryError:
        msg = f"{shown(p)}: is a folder, not an image"
        raise ImageError(msg) from None
    except PermissionError:
        msg = f"{shown(p)}: permission denied"
        raise ImageError(msg) from None
    except UnidentifiedImageError:
        msg = f"{shown(p)}: not an image Pillow can read (PNG, JPEG, TIFF, BMP, WebP, GIF, ...)"
        raise ImageError(msg) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        msg = (
            f"{shown(p)}: more pixels than the limit of {limit} (a decompression bomb?); "
            "--max-pixels N raises the limit"
        )
        raise ImageError(msg) from None
    except MemoryError:
        msg = f"{shown(p)}: not enough memory to decode it"
        raise ImageError(msg) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
        reason = str(err) or type(err).__name__
        msg = f"{shown(p)}: corrupt or truncated image ({reason})"
        raise ImageError(msg) from None


@dataclass(frozen=True)
class Header:
    """What an image file's header says, read without decoding its pixels.

    Attributes
    ----------
    path : Path
        The file.
    size : (int, int)
        (H, W) as `load` returns the pixels: EXIF orientation applied when the
        header carries it (a PNG's late eXIf chunk is seen only by `load`).
    mode : str
        Pillow's mode of the file.
    channels : int
        Colour channels `load` gives: 1 or 3.
    alpha : bool
        Whether `load` gives an alpha channel.
    sixteen : bool
        Whether the pixels are 16-bit gray (I;16).
    """

    path: Path
    size: tuple[int, int]
    mode: str
    channels: int
    alpha: bool
    sixteen: bool

    @property
    def pixels(self) -> int:
        """H x W."""
        return self.size[0] * self.size[1]


_GRAY_MODES = ("1", "L", "LA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("LA", "RGBA", "PA", "La", "RGBa")


def probe(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> Header:
    """Read an image's header: size, mode and channels, checked against the pixel limit.

    Opens the file as `load` does but decodes no pixel, so a run can check
    every input before it writes anything. A file whose header is fine may
    still fail to decode later (truncated data): `load` says so.

    Raises
    ------
    ImageError
        ``path: reason`` for a missing, unreadable, non-regular or non-image
        file, or one larger than the pixel limit.
    """
    p = Path(path)
    _check_regular(p)
    limit = pixel_limit(max_pixels)
    with _reading(p, limit), Image.open(p) as img:
        img.seek(0)
        width, height = img.size
        orientation = _orientation(img)
        mode = img.mode
        alpha = mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info)
    if orientation in (5, 6, 7, 8):  # a quarter turn: rows and columns swap
        width, height = height, width
    return Header(
        path=p,
        size=(height, width),
        mode=mode,
        channels=1 if mode in _GRAY_MODES else 3,
        alpha=alpha,
        sixteen=mode.startswith("I;16"),
    )


def _orientation(img: Image.Image) -> int:
    """Return the EXIF orientation the header holds (1 when unknown), decoding no pixel."""
    if img.format == "PNG" and "exif" not in img.info:
        return 1  # an eXIf chunk after the pixels: Pillow would decode to find it
    try:
        value = img.getexif().get(0x0112, 1)  # ExifTags.Base.Orientation
    except Exception:  # a broken EXIF block: load decides
        return 1
    return value if isinstance(value, int) else 1


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
    _check_regular(p)
    limit = pixel_limit(max_pixels)
    with _reading(p, limit), Image.open(p) as img:
        img.seek(0)  # GIF and other animations: the first frame
        img.load()
        icc = img.info.get("icc_profile")
        oriented = ImageOps.exif_transpose(img)
        return _to_picture(oriented, img.mode, icc)


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
    values: npt.NDArray[Any],
    range_: str,
    peak: float,
    dtype: np.dtype[Any],
    *,
    overwrite: bool = False,
) -> npt.NDArray[Any]:
    """Map float results onto pixel values of ``dtype`` (0..peak).

    ``clip`` rounds and clips; ``abs`` takes magnitudes first; ``rescale`` maps
    the map's min..max (0..max when no value is negative) onto 0..peak; a map
    of one value maps to 0 if it is 0 or negative, else to peak. Halves round
    up. Float dtypes get the values as they are (``--float``). With
    ``overwrite``, a writable float32 ``values`` is used as the scratch array
    (a 4K RGB map is 100 MB) and left holding garbage.

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
        return values.astype(dtype, copy=not overwrite)
    # One float32 copy (or none), then in place: a 4K RGB map is 100 MB per pass.
    if overwrite and values.dtype == np.float32 and values.flags.writeable:
        v = values
    else:
        v = np.array(values, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # to +-inf, then clipped
        _map_in_place(v, range_, peak)
    return v.astype(dtype)


def _map_in_place(v: npt.NDArray[np.float32], range_: str, peak: float) -> None:
    """Map float32 values onto 0..peak, rounded, in place (see `to_pixels`)."""
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


def output_format(path: str | os.PathLike[str]) -> tuple[str, bool]:
    """Return Pillow's format for an output's ending, and whether it holds 16-bit gray.

    Raises
    ------
    ImageError
        An ending convcli does not write.
    """
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        msg = f"{shown(p)}: unknown image ending {p.suffix!r}; use one of {', '.join(FORMATS)}"
        raise ImageError(msg)
    return fmt


def check_output(path: str | os.PathLike[str], *, channels: int, kind: str) -> None:
    """Check that an output's format can hold the pixels, before any is computed.

    ``kind`` is ``"u8"``, ``"u16"`` or ``"f32"`` (``--float``); `save` raises
    the same errors.

    Raises
    ------
    ImageError
        An unknown ending, float output that is not a one-channel TIFF,
        16-bit colour, or 16-bit in a format without it.
    """
    p = Path(path)
    fmt, holds_16 = output_format(p)
    if kind == "f32" and (fmt != "TIFF" or channels != 1):
        msg = f"{shown(p)}: float output is written as one-channel TIFF (.tif); got {channels} channels for {fmt}"
        raise ImageError(msg)
    if kind == "u16" and (channels != 1 or not holds_16):
        msg = f"{shown(p)}: {fmt} cannot hold 16-bit {'gray' if channels == 1 else 'colour'}; write .png or .tif"
        raise ImageError(msg)


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
    fmt, holds_16 = output_format(p)
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


TMP_STEM_BYTES = 96
"""How much of the target's name a temporary file's name keeps: ``.NAME.XXXXXXXX.tmp``
stays within the 255 bytes a file name may take, however long NAME is."""


def write_atomically(p: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Run ``write`` on a temporary file beside ``p``, then rename it to ``p``.

    The temporary file is ``.NAME.XXXXXXXX.tmp`` (NAME cut to
    `TMP_STEM_BYTES`). The file gets the permissions an ordinary ``open()``
    would give it (the umask's). On any error the temporary file is removed
    and ``p`` is left as it was; OS and encoder errors become `ImageError`
    naming ``p``.
    """
    folder = p.parent if str(p.parent) else Path()
    stem = os.fsdecode(os.fsencode(p.name)[:TMP_STEM_BYTES])
    try:
        handle, tmp_name = tempfile.mkstemp(
            prefix=f".{stem}.", suffix=".tmp", dir=folder
        )
    except OSError as err:
        msg = f"{shown(p)}: cannot write in {shown(folder)}: {err.strerror or err}"
        raise ImageError(msg) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, p)
    except (OSError, ValueError, KeyError, MemoryError) as err:
        tmp.unlink(missing_ok=True)
        reason = (err.strerror if isinstance(err, OSError) else None) or err
        if isinstance(err, MemoryError):
            reason = "not enough memory"
        msg = f"{shown(p)}: cannot write: {reason}"
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
        if alpha is not None:
            msg = f"{shown(p)}: float output is written without alpha"
            raise ImageError(msg)
        check_output(p, channels=c, kind="f32")
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]))
    if pixels.dtype == np.uint16:
        check_output(p, channels=c, kind="u16")
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]).astype("<u2"))
    if pixels.dtype != np.uint8:
        msg = f"{shown(p)}: cannot write pixels of dtype {pixels.dtype}"
        raise ImageError(msg)
    if alpha is not None and fmt in ("JPEG", "BMP"):
        alpha = None  # these formats have no alpha: the colour is written alone
    if alpha is not None:
        stacked = np.concatenate(
            [pixels, alpha[:, :, np.newaxis].astype(np.uint8)], axis=2
        )
        return Image.fromarray(stacked)  # (H, W, 2) is LA, (H, W, 4) RGBA
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0] if c == 1 else pixels))


MONTAGE_STRIP = 16
"""Height of the label strip above each tile of a montage, in pixels."""


def montage_size(
    shapes: Sequence[tuple[int, int]],
    *,
    columns: int | None = None,
    width: int | None = None,
) -> tuple[int, int]:
    """Return (H, W) of the montage of tiles of these (H, W), before making it.

    Examples
    --------
    >>> montage_size([(20, 30)] * 3)
    (72, 60)
    """
    if not shapes:
        return 0, 0
    cols = columns or math.ceil(math.sqrt(len(shapes)))
    if width:
        shapes = [(max(1, round(h * width / w)), width) for h, w in shapes]
    cell_w = max(w for _, w in shapes)
    cell_h = max(h for h, _ in shapes) + MONTAGE_STRIP
    rows = math.ceil(len(shapes) / cols)
    return rows * cell_h, cols * cell_w


def montage(
    path: str | os.PathLike[str],
    tiles: Sequence[tuple[str, npt.NDArray[Any] | Path]],
    *,
    columns: int | None = None,
    width: int | None = None,
) -> Path:
    """Tile labelled images (H, W, C) into one image, a label strip above each.

    Tiles may differ in size and channels: each is shown as 8-bit RGB (16-bit
    scaled down, float rescaled), shrunk to ``width`` pixels across if given.
    A tile given as a path is read when its turn comes (its size from its
    header first), so a montage of many images holds one at a time. Written
    atomically like `save`.
    """
    if not tiles:
        msg = f"{shown(path)}: nothing to put in a montage"
        raise ImageError(msg)
    shapes = [_tile_shape(pixels) for _, pixels in tiles]
    cols = columns or math.ceil(math.sqrt(len(tiles)))
    sheet_h, sheet_w = montage_size(shapes, columns=cols, width=width)
    cell_h, cell_w = sheet_h // math.ceil(len(tiles) / cols), sheet_w // cols
    sheet = Image.new("RGB", (sheet_w, sheet_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (label, pixels) in enumerate(tiles):
        img = _tile_image(load(pixels).pixels if isinstance(pixels, Path) else pixels)
        if width and img.width != width:
            img = img.resize(
                (width, max(1, round(img.height * width / img.width))),
                Image.Resampling.LANCZOS,
            )
        x, y = (i % cols) * cell_w, (i // cols) * cell_h
        draw.text((x + 3, y + 2), label, fill=(0, 0, 0))
        sheet.paste(img, (x, y + MONTAGE_STRIP))
        del img
    return save(path, np.asarray(sheet))


def _tile_shape(pixels: npt.NDArray[Any] | Path) -> tuple[int, int]:
    if isinstance(pixels, Path):
        return probe(pixels, max_pixels=2**62).size
    return int(pixels.shape[0]), int(pixels.shape[1])


def _tile_image(arr: npt.NDArray[Any]) -> Image.Image:
    """One tile as 8-bit RGB: 16-bit scaled down, float rescaled."""
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = to_pixels(arr, "rescale", 255, np.dtype(np.uint8))
    img = Image.fromarray(
        np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    )
    return img.convert("RGB")
