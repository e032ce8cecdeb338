"""Image files through Pillow: headers, loading (every frame), montages; saving re-exported.

Pixels leave this module as `Picture` values (numpy arrays (H, W, C), C being
1 or 3, alpha kept apart: see `convcli.picture`); Pillow's (width, height)
sizes never do. The frames of an animated GIF, WebP or PNG and the pages of a
TIFF are read one at a time (`load_frames`) and written as one file
(`save_frames`, in `convcli.saving`, re-exported here). 16-bit colour and
gray+alpha PNGs and TIFFs, which Pillow reads as 8-bit, go through
`convcli.deep_images`.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from convcli import deep_headers
from convcli.errors import shown as shown
from convcli.picture import ImageError as ImageError
from convcli.picture import Picture as Picture
from convcli.picture import convert_channels as convert_channels
from convcli.picture import rescale_bounds as rescale_bounds
from convcli.picture import to_pixels as to_pixels
from convcli.saving import ANIMATIONS as ANIMATIONS
from convcli.saving import FORMATS as FORMATS
from convcli.saving import PNG_LEVEL as PNG_LEVEL
from convcli.saving import TMP_STEM_BYTES as TMP_STEM_BYTES
from convcli.saving import Frame as Frame
from convcli.saving import check_output as check_output
from convcli.saving import holds_sixteen as holds_sixteen
from convcli.saving import output_format as output_format
from convcli.saving import save as save
from convcli.saving import save_frames as save_frames
from convcli.saving import write_atomically as write_atomically

if TYPE_CHECKING:
    from convcli import deep_images


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


_BIGGER = (
    "--max-pixels N raises the limit; an image bigger than memory streams as a tiled "
    "TIFF (vips tiffsave IN OUT.tif --tile --bigtiff)"
)


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
    except ImageError:  # already names the file and the reason (`deep_images`)
        raise
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
        msg = f"{shown(p)}: more pixels than the limit of {limit} (a decompression bomb?); {_BIGGER}"
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
        Pillow's mode of the file (``RGB;16``, ``RGBA;16``, ``LA;16`` for the
        16-bit files `convcli.deep_images` reads).
    channels : int
        Colour channels `load` gives: 1 or 3.
    alpha : bool
        Whether `load` gives an alpha channel.
    sixteen : bool
        Whether the pixels are 16-bit (gray, colour or gray+alpha).
    frames : int
        The frames of an animated GIF, WebP or PNG, the pages of a TIFF; 1
        for other files.
    loop : int or None
        The animation's loop count as the file gives it (0: forever); None
        when it has none (a GIF without one plays once).
    mixed : str or None
        Why the frames cannot make one animation (TIFF pages of different
        sizes or modes), or None.
    notes : tuple of str
        What the reading loses, one line each (16-bit colour read as 8-bit
        when its decoder is missing).
    streamed : bool
        Whether the image is read band by band (`convcli.streaming`), not
        decoded whole: a TIFF bigger than memory, or ``--stream``.
    """

    path: Path
    size: tuple[int, int]
    mode: str
    channels: int
    alpha: bool
    sixteen: bool
    frames: int = 1
    loop: int | None = None
    mixed: str | None = None
    notes: tuple[str, ...] = ()
    streamed: bool = False

    @property
    def pixels(self) -> int:
        """H x W."""
        return self.size[0] * self.size[1]


_GRAY_MODES = ("1", "L", "LA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("LA", "RGBA", "PA", "La", "RGBa")


def probe(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> Header:
    """Read an image's header: size, mode, channels and frames, checked against the pixel limit.

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
    deep, notes = _deep(p)
    if deep is not None:
        _check_limit(p, deep.size, limit)
        odd = deep.odd_page
        return Header(
            path=p,
            size=deep.size,
            mode=_deep_mode(deep.colour, deep.alpha),
            channels=deep.colour,
            alpha=deep.alpha,
            sixteen=True,
            frames=deep.frames,
            mixed=None if odd is None else f"page {odd} differs from page 0",
        )
    with _reading(p, limit), Image.open(p) as img:
        img.seek(0)
        width, height = img.size
        orientation = _orientation(img)
        mode = img.mode
        alpha = mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info)
        frames, loop = _frame_count(img), img.info.get("loop")
        mixed = _mixed_pages(img, frames)
    if orientation in (5, 6, 7, 8):  # a quarter turn: rows and columns swap
        width, height = height, width
    channels = 1 if mode in _GRAY_MODES else 3
    if frames > 1 and img.format == "GIF":
        channels = 3  # Pillow gives the frames after the first in RGB(A)
    return Header(
        path=p,
        size=(height, width),
        mode=mode,
        channels=channels,
        alpha=alpha,
        sixteen=mode.startswith("I;16") or mode == "I",  # I: 32-bit, as 16-bit gray
        frames=frames,
        loop=loop if isinstance(loop, int) else None,
        mixed=mixed,
        notes=notes,
    )


def _check_limit(p: Path, hw: tuple[int, int], limit: int | None) -> None:
    """Refuse an image over the pixel limit, as Pillow refuses a decompression bomb."""
    if limit is not None and hw[0] * hw[1] > limit:
        msg = f"{shown(p)}: more pixels than the limit of {limit} (a decompression bomb?); {_BIGGER}"
        raise ImageError(msg)


def _deep(p: Path) -> tuple[deep_headers.DeepHeader | None, tuple[str, ...]]:
    """Return the header of a 16-bit colour or gray+alpha file `deep_images` reads.

    None, with a note, for such a file read as 8-bit by Pillow instead: its
    decoder is not installed, or it is an animated PNG (read by Pillow, frame
    by frame).
    """
    deep = deep_headers.sniff(p)
    if deep is None:
        return None, ()
    kind = "colour" if deep.colour == 3 else "gray+alpha"
    lost = f"{shown(p)}: 16-bit {kind} read as 8-bit"
    if deep.format == "PNG" and deep.frames > 1:
        return None, (f"{lost}: the frames of a 16-bit APNG are read by Pillow",)
    from convcli import deep_images  # its decoders: only for such a file

    missing = deep_images.missing(deep.format)
    if missing is not None:
        return None, (f"{lost}: {missing} is not installed (pip install {missing})",)
    return deep, ()


def _frame_count(img: Image.Image) -> int:
    """Return the frames of an animation (or a TIFF's pages); 1 for other formats."""
    if img.format not in ANIMATIONS:
        return 1
    return int(getattr(img, "n_frames", 1))


def _mixed_pages(img: Image.Image, frames: int) -> str | None:
    """Say which TIFF page differs from the first in size or mode (None: they are alike).

    Animated GIF, WebP and PNG frames all have the canvas's size; a TIFF's
    pages are each their own image. Reads the pages' headers, no pixel.
    """
    if img.format != "TIFF" or frames == 1:
        return None
    first = (img.size, img.mode)
    for i in range(1, frames):
        img.seek(i)
        if (img.size, img.mode) != first:
            (w0, h0), (w, h) = first[0], img.size
            return f"page {i} is {w} x {h} {img.mode}, page 0 {w0} x {h0} {first[1]}"
    return None


def _orientation(img: Image.Image) -> int:
    """Return the EXIF orientation the header holds (1 when unknown), decoding no pixel."""
    if img.format == "PNG" and "exif" not in img.info:
        return 1  # an eXIf chunk after the pixels: Pillow would decode to find it
    try:
        value = img.getexif().get(0x0112, 1)  # ExifTags.Base.Orientation
    except Exception:  # a broken EXIF block: load decides
        return 1
    return value if isinstance(value, int) else 1


def load(
    path: str | os.PathLike[str], *, max_pixels: int | None = None, frame: int = 0
) -> Picture:
    """Read one frame of an image (the first by default): EXIF orientation applied, modes normalized.

    L, 1 and I;16 stay one channel; P becomes RGB or RGBA; CMYK, YCbCr and the
    like become RGB; LA and RGBA keep their alpha apart; I;16 stays 16-bit,
    and so do 16-bit colour and gray+alpha PNGs and TIFFs (`convcli.deep_images`).
    Pillow's decompression-bomb limit stays on; ``max_pixels`` raises it.

    Raises
    ------
    ImageError
        ``path: reason`` for a missing, unreadable, truncated or non-image file,
        one larger than the pixel limit, or a frame it does not hold.
    """
    p = Path(path)
    _check_regular(p)
    limit = pixel_limit(max_pixels)
    deep, _ = _deep(p)
    if deep is not None:
        _check_frame(p, frame, deep.frames)
        from convcli import deep_images

        return _from_deep(deep_images.read(p, frame=frame, max_pixels=limit))
    with _reading(p, limit), Image.open(p) as img:
        frames = _frame_count(img)
        _check_frame(p, frame, frames)
        img.seek(frame)
        _check_limit(p, img.size, limit)  # a TIFF page may be larger than the first
        plain = _plain_png(p, img, frames)
        if plain is not None:
            return plain
        img.load()
        return _frame_picture(img, frames)


def _plain_png(p: Path, img: Image.Image, frames: int) -> Picture | None:
    """Decode a plain 8-bit PNG with libpng (`deep_images.decode_png8`), else None.

    Plain: one frame, gray, RGB, gray+alpha or RGBA, no transparent colour
    (tRNS), no EXIF (which may rotate it). Pillow decodes the others, and any PNG when
    imagecodecs is missing: the pixels are the same.
    """
    if (
        img.format != "PNG"
        or frames != 1
        or img.mode not in ("L", "LA", "RGB", "RGBA")
        or "transparency" in img.info
    ):
        return None
    from convcli import deep_images

    arr = deep_images.decode_png8(p, (img.height, img.width))
    if arr is None:
        return None
    icc = img.info.get("icc_profile")
    if arr.shape[2] in (2, 4):  # alpha apart, as Pillow's LA and RGBA are loaded
        return Picture(
            arr[:, :, :-1].copy(), arr[:, :, -1].copy(), img.mode, 255.0, icc
        )
    return Picture(arr, None, img.mode, 255.0, icc)


def load_frames(
    path: str | os.PathLike[str], *, max_pixels: int | None = None
) -> Iterator[Picture]:
    """Read every frame of an animation, or every page of a TIFF, one at a time.

    Each frame is decoded when the iterator reaches it, as `load` decodes
    one, with its ``duration`` (milliseconds; None for TIFF pages); every
    frame has the first frame's channels and alpha (a GIF's frames are RGB,
    or RGBA if its first frame has transparency). Ends after one frame for a
    file that is not an animation.

    Raises
    ------
    ImageError
        As `load`, when the frame that fails is reached.
    """
    p = Path(path)
    _check_regular(p)
    limit = pixel_limit(max_pixels)
    deep, _ = _deep(p)
    if deep is not None:
        from convcli import deep_images

        for page in deep_images.pages(p, max_pixels=limit):
            yield _from_deep(page)
        return
    with _reading(p, limit):
        img = Image.open(p)
    try:
        first: Picture | None = None
        frames = _frame_count(img)
        for i in range(frames):
            with _reading(p, limit):  # not across the yield: the caller runs there
                img.seek(i)
                img.load()
                picture = _frame_picture(img, frames)
            first = first or picture
            yield _shaped_like(picture, first)
    finally:
        img.close()


def _check_frame(p: Path, frame: int, frames: int) -> None:
    """Refuse a ``--frame`` the file does not hold."""
    if not 0 <= frame < frames:
        what = "frames" if frames > 1 else "frame"
        msg = f"{shown(p)} has {frames} {what} (0 to {frames - 1}); got --frame {frame}"
        raise ImageError(msg)


def _frame_picture(img: Image.Image, frames: int) -> Picture:
    """Return the frame ``img`` stands at as a `Picture`, with its duration."""
    icc = img.info.get("icc_profile")
    duration = img.info.get("duration")
    mode = img.mode
    if img.format == "GIF" and frames > 1 and mode not in ("RGB", "RGBA"):
        # Pillow gives the first frame in P or L, the others in RGB(A).
        clear = mode in ("LA", "PA") or "transparency" in img.info
        img = img.convert("RGBA" if clear else "RGB")
    from PIL import ImageOps  # here: a plain PNG (`_plain_png`) never needs it

    picture = _to_picture(ImageOps.exif_transpose(img), mode, icc)
    if isinstance(duration, int | float):
        picture.duration = float(duration)
    return picture


def _shaped_like(picture: Picture, first: Picture) -> Picture:
    """Return a frame with the first frame's channels and alpha (a later GIF frame may differ)."""
    alpha = picture.alpha
    if first.alpha is None:
        alpha = None
    elif alpha is None:
        alpha = np.full(picture.pixels.shape[:2], first.peak, first.pixels.dtype)
    pixels = picture.pixels
    if pixels.shape[2] != first.pixels.shape[2]:
        pixels = convert_channels(
            picture, "rgb" if pixels.shape[2] == 1 else "gray"
        ).pixels
    if alpha is picture.alpha and pixels is picture.pixels:
        return picture
    return Picture(
        pixels, alpha, picture.mode, picture.peak, picture.icc_profile, picture.duration
    )


def _deep_mode(colour: int, alpha: bool) -> str:
    """Name a 16-bit colour or gray+alpha mode as Pillow would: ``RGB;16``, ``LA;16``."""
    return ("L" if colour == 1 else "RGB") + ("A" if alpha else "") + ";16"


def _from_deep(deep: deep_images.DeepPicture) -> Picture:
    """Return a frame `deep_images` decoded as a 16-bit `Picture`."""
    mode = _deep_mode(deep.pixels.shape[2], deep.alpha is not None)
    return Picture(deep.pixels, deep.alpha, mode, 65535.0, deep.icc_profile)


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


def montage_size(
    shapes: Sequence[tuple[int, int]],
    *,
    columns: int | None = None,
    width: int | None = None,
    labels: Sequence[str] | None = None,
) -> tuple[int, int]:
    """Return (H, W) of the montage of tiles of these (H, W), before making it.

    Without ``labels``, the bands have room for the most lines a label takes
    (`convcli.montage.MONTAGE_LINES`): at least the montage's height.

    Examples
    --------
    >>> montage_size([(20, 30)] * 3, labels=["a"] * 3)
    (80, 63)
    """
    from convcli.montage import montage_layout

    if not shapes:
        return 0, 0
    return montage_layout(shapes, labels, columns=columns, width=width).size


def montage(
    path: str | os.PathLike[str],
    tiles: Sequence[tuple[str, npt.NDArray[Any] | Path]],
    *,
    columns: int | None = None,
    width: int | None = None,
) -> Path:
    """Tile labelled images (H, W, C) into one image, a label band above each.

    Tiles may differ in size and channels: each is shown as 8-bit RGB (16-bit
    scaled down, float rescaled), shrunk to ``width`` pixels across if given.
    Labels are black on white, sized to the tiles and wrapped to their width
    (`convcli.montage.montage_layout`). A tile given as a path is read when its turn comes
    (its size from its header first), so a montage of many images holds one
    at a time. Written atomically like `save`.
    """
    from convcli.montage import draw_montage, montage_layout

    if not tiles:
        msg = f"{shown(path)}: nothing to put in a montage"
        raise ImageError(msg)
    shapes = [_tile_shape(pixels) for _, pixels in tiles]
    labels = [label for label, _ in tiles]
    layout = montage_layout(shapes, labels, columns=columns, width=width)
    arrays = (load(p).pixels if isinstance(p, Path) else p for _, p in tiles)
    return save(path, draw_montage(layout, arrays, width=width))


def _tile_shape(pixels: npt.NDArray[Any] | Path) -> tuple[int, int]:
    if isinstance(pixels, Path):
        return probe(pixels, max_pixels=2**62).size
    return int(pixels.shape[0]), int(pixels.shape[1])
