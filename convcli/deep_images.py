"""16-bit colour and 16-bit gray-with-alpha PNG and TIFF: sniff, read, write.

Pillow reads these files as 8-bit without a word (16-bit RGB, RGBA and
gray+alpha PNG; 16-bit RGB and RGBA TIFF), and cannot read a 16-bit
gray+alpha TIFF at all; it keeps 16-bit gray without alpha (I;16), which is
not this module's business. Here such files are decoded by imagecodecs (PNG,
libpng) and tifffile (TIFF) into uint16 arrays of shape (H, W, C), C being 2
(gray, alpha), 3 (RGB) or 4 (RGBA), and written back from them.

`encode_png` is also the encoder of every single-frame 8-bit PNG convcli
writes (`convcli.saving`): libpng with the Paeth filter and zlib's RLE
strategy, about 9x faster than Pillow's defaults for files of about the same
size (bench/bench_apply.py measures it).

Both libraries are imported only when such a file is met or written (imagecodecs
costs about 3 ms once numpy is loaded). `sniff` (`convcli.deep_headers`) reads the
header alone, with the standard library, and says whether a file is one of
these. Errors name the file; `write` writes into an open stream (``saving.write_atomically`` makes
that a temporary file renamed into place).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from convcli.deep_headers import (
    BITS,
    LENGTH,
    MAX_CHUNKS,
    ORIENTATION,
    PHOTOMETRIC,
    PNG_TYPES,
    SAMPLE_FORMAT,
    SAMPLES,
    WIDTH,
    exif_orientation,
    tiff_channels,
)
from convcli.deep_headers import PNG_SIGNATURE as PNG_SIGNATURE
from convcli.deep_headers import DeepHeader as DeepHeader
from convcli.deep_headers import holds as holds
from convcli.deep_headers import sniff as sniff
from convcli.errors import shown
from convcli.picture import ImageError

U16 = npt.NDArray[np.uint16]

DEFLATE_MAX_RATIO = 1032
"""The most that zlib's deflate expands: a PNG's pixel data is at least 1/1032 of
its raw size, so a header claiming more than that is refused before decoding."""

ICC_MAX_BYTES = 16 << 20
"""The largest ICC profile read from a PNG's iCCP chunk (real ones are kilobytes)."""


@dataclass(eq=False)
class DeepPicture:
    """One decoded frame: uint16 colour (H, W, 1 or 3), alpha (H, W) or None, ICC."""

    pixels: U16
    alpha: U16 | None
    icc_profile: bytes | None


def missing(fmt: str) -> str | None:
    """Return the name of the library ``fmt`` (``"PNG"``, ``"TIFF"``) needs if it cannot be imported.

    None when it imports. The CLI then reads the file with Pillow, in 8 bits,
    and says so.
    """
    try:
        _codec(fmt)
    except ImportError:
        return "imagecodecs" if fmt == "PNG" else "tifffile"
    return None


def _codec(fmt: str) -> Any:
    """Import the library for ``fmt``: imagecodecs (PNG) or tifffile (TIFF)."""
    if fmt == "PNG":
        import imagecodecs

        return imagecodecs
    import logging

    import tifffile

    # tifffile reports odd tags through logging; with no handler configured,
    # logging's last resort would print them on stderr.
    logger = logging.getLogger("tifffile")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return tifffile


def orient(arr: npt.NDArray[Any], orientation: int) -> npt.NDArray[Any]:
    """Apply an EXIF orientation (1-8) to (H, W, ...) as Pillow's ``exif_transpose`` does.

    Examples
    --------
    >>> a = np.arange(6).reshape(2, 3)
    >>> orient(a, 6).tolist()  # stored turned a quarter left: turned back right
    [[3, 0], [4, 1], [5, 2]]
    """
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(arr, -1)
    if orientation == 7:
        return arr[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(arr, 1)
    return arr


def read(
    path: str | os.PathLike[str],
    *,
    frame: int = 0,
    max_pixels: int | None = None,
) -> DeepPicture:
    """Decode one frame of a file `sniff` accepts: uint16 colour, alpha and ICC profile.

    The orientation is applied as Pillow applies it to other images. The
    frame's size is checked against ``max_pixels`` and against the file's
    length (compressed data expands at most `DEFLATE_MAX_RATIO` times)
    before any pixel is allocated.

    Raises
    ------
    ImageError
        ``path: reason``: corrupt or truncated data, more pixels than
        ``max_pixels``, a frame the file does not hold or of another kind.
    ImportError
        imagecodecs (PNG) or tifffile (TIFF) is not installed: see `missing`.
    """
    p = Path(path)
    header = _header(p)
    if not 0 <= frame < header.frames:
        msg = f"{shown(p)}: has {header.frames} frames (0 to {header.frames - 1}); got frame {frame}"
        raise ImageError(msg)
    codec = _codec(header.format)
    with _decoding(p):
        if header.format == "PNG":
            return _read_png(p, codec, frame, max_pixels)
        with codec.TiffFile(p) as tif:
            return _read_page(p, tif, frame, max_pixels)


def pages(
    path: str | os.PathLike[str], *, max_pixels: int | None = None
) -> Iterator[DeepPicture]:
    """Decode the frames of a file `sniff` accepts one after the other (a TIFF's pages).

    Each page is decoded when the iterator reaches it and checked as `read`
    checks it; the file stays open until the iterator ends.

    Raises
    ------
    ImageError, ImportError
        As `read`, when the page that fails is reached.
    """
    p = Path(path)
    header = _header(p)
    codec = _codec(header.format)
    if header.format == "PNG":
        yield read(p, max_pixels=max_pixels)
        return
    with _decoding(p), codec.TiffFile(p) as tif:
        for index in range(header.frames):
            yield _read_page(p, tif, index, max_pixels)


def _header(p: Path) -> DeepHeader:
    header = sniff(p)
    if header is None:
        msg = f"{shown(p)}: not a 16-bit colour or gray+alpha PNG or TIFF"
        raise ImageError(msg)
    return header


@contextmanager
def _decoding(p: Path) -> Iterator[None]:
    """Turn the decoders' failures into `ImageError` naming ``p``."""
    try:
        yield
    except ImageError:
        raise
    except MemoryError:
        msg = f"{shown(p)}: not enough memory to decode it"
        raise ImageError(msg) from None
    except (OSError, ValueError, RuntimeError, IndexError, struct.error) as err:
        # imagecodecs.PngError is a RuntimeError, tifffile's errors ValueErrors
        reason = str(err) or type(err).__name__
        msg = f"{shown(p)}: corrupt or truncated image ({reason})"
        raise ImageError(msg) from None


def _check_pixels(
    p: Path, hw: tuple[int, int], channels: int, stored: int, max_pixels: int | None
) -> None:
    """Refuse a frame over the pixel limit, or larger than its ``stored`` bytes can hold."""
    pixels = hw[0] * hw[1]
    if max_pixels is not None and pixels > max_pixels:
        msg = (
            f"{shown(p)}: {hw[0]} x {hw[1]} = {pixels:,} pixels, more than the limit of "
            f"{max_pixels:,} (a decompression bomb?); --max-pixels N raises the limit"
        )
        raise ImageError(msg)
    raw = hw[0] * (hw[1] * channels * 2 + 1)
    if stored * DEFLATE_MAX_RATIO < raw:
        msg = (
            f"{shown(p)}: corrupt or truncated image (the header says {hw[1]} x "
            f"{hw[0]} pixels; the file holds {stored:,} bytes of pixel data, too few)"
        )
        raise ImageError(msg)


def _png_chunks(data: bytes) -> tuple[int, dict[bytes, bytes]]:
    """Walk a PNG's chunks: return the bytes of pixel data (IDAT) and the first iCCP and eXIf."""
    found: dict[bytes, bytes] = {}
    pos, idat = 8, 0
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(data):
            break
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat += min(length, len(data) - pos - 8)
        elif kind in (b"iCCP", b"eXIf") and kind not in found:
            found[kind] = data[pos + 8 : pos + 8 + length]
        elif kind == b"IEND":
            break
        pos += 12 + length
    return idat, found


PLAIN_PNG_TYPES = {0: 1, **PNG_TYPES}
"""PNG colour types libpng decodes to the channels Pillow gives (gray, RGB,
gray+alpha, RGBA): the ones `decode_png8` takes."""


def decode_png8(p: Path, hw: tuple[int, int]) -> npt.NDArray[np.uint8] | None:
    """Decode an 8-bit gray, RGB, gray+alpha or RGBA PNG with libpng: (H, W, C) uint8.

    Twice as fast as Pillow's decoder (0.12 s against 0.21 s for a 4K photo)
    and the same pixels. ``hw`` is the size Pillow read from the header. None
    when libpng should not decode it here (imagecodecs missing, another bit
    depth or colour type, EXIF that may rotate it, or the file changed since):
    Pillow then does.

    Raises
    ------
    ImageError
        A corrupt or truncated file, naming ``p``.
    """
    if missing("PNG") is not None:
        return None
    data = p.read_bytes()
    if (
        data[:8] != PNG_SIGNATURE
        or data[12:16] != b"IHDR"
        or data[24] != 8
        or data[25] not in PLAIN_PNG_TYPES
        or struct.unpack(">II", data[16:24]) != (hw[1], hw[0])
        or b"eXIf" in _png_chunks(data)[1]  # may rotate it: `load` applies that
    ):
        return None
    channels = PLAIN_PNG_TYPES[data[25]]
    with _decoding(p):
        arr: npt.NDArray[np.uint8] = _codec("PNG").png_decode(data)
    del data
    if arr.dtype != np.uint8 or arr.size != hw[0] * hw[1] * channels:
        msg = (
            f"{shown(p)}: corrupt or truncated image (decoded {arr.dtype} {arr.shape})"
        )
        raise ImageError(msg)
    return arr.reshape(hw[0], hw[1], channels)


def _read_png(
    p: Path, imagecodecs: Any, frame: int, max_pixels: int | None
) -> DeepPicture:
    """Decode a 16-bit PNG with libpng (through imagecodecs)."""
    if frame:
        msg = f"{shown(p)}: a 16-bit APNG is read here as its first frame only; got frame {frame}"
        raise ImageError(msg)
    data = p.read_bytes()
    if data[12:16] != b"IHDR" or data[25] not in PNG_TYPES:
        msg = f"{shown(p)}: corrupt or truncated image (its header changed while read)"
        raise ImageError(msg)
    width, height = struct.unpack(">II", data[16:24])
    channels = PNG_TYPES[data[25]]
    stored, chunks = _png_chunks(data)
    _check_pixels(p, (height, width), channels, stored, max_pixels)
    arr = imagecodecs.png_decode(data)
    del data
    if arr.dtype != np.uint16 or arr.shape[:2] != (height, width):
        msg = (
            f"{shown(p)}: corrupt or truncated image (decoded {arr.dtype} {arr.shape})"
        )
        raise ImageError(msg)
    arr = arr.reshape(height, width, -1)
    orientation = exif_orientation(chunks[b"eXIf"]) if b"eXIf" in chunks else 1
    icc = _png_icc(p, chunks.get(b"iCCP"))
    return _split(orient(arr, orientation), icc)


def _png_icc(p: Path, body: bytes | None) -> bytes | None:
    """Return the ICC profile of an iCCP chunk: a name, a NUL, method 0, zlib data."""
    if not body:
        return None
    name_end = body.find(b"\x00")
    if not 0 < name_end < 80 or body[name_end + 1 : name_end + 2] != b"\x00":
        return None  # a malformed profile is left out, as Pillow leaves it
    inflate = zlib.decompressobj()
    try:
        profile = inflate.decompress(body[name_end + 2 :], ICC_MAX_BYTES)
    except zlib.error:
        return None
    if inflate.unconsumed_tail:
        msg = f"{shown(p)}: the ICC profile is larger than {ICC_MAX_BYTES >> 20} MiB"
        raise ImageError(msg)
    return profile


def _read_page(p: Path, tif: Any, index: int, max_pixels: int | None) -> DeepPicture:
    """Decode page ``index`` of an open ``tifffile.TiffFile``."""
    page = tif.pages[index]
    tags = {
        SAMPLES: (int(page.samplesperpixel),),
        BITS: _as_tuple(page.bitspersample),
        PHOTOMETRIC: (int(page.photometric),),
        SAMPLE_FORMAT: _as_tuple(page.sampleformat),
        WIDTH: (int(page.imagewidth),),
        LENGTH: (int(page.imagelength),),
    }
    channels = tiff_channels(tags)
    if channels is None or page.imagedepth != 1:
        msg = (
            f"{shown(p)}: page {index} is not 16-bit colour like the first page "
            "(a mixed TIFF); read it with another tool"
        )
        raise ImageError(msg)
    hw = (int(page.imagelength), int(page.imagewidth))
    size = tif.filehandle.size
    offsets, counts = page.dataoffsets, page.databytecounts
    if any(o + n > size for o, n in zip(offsets, counts, strict=False)):
        msg = f"{shown(p)}: corrupt or truncated image (page {index}'s data lies past the end of the file)"
        raise ImageError(msg)
    stored = int(sum(counts))
    if int(page.compression) == 1:  # none: every byte is there
        stored *= DEFLATE_MAX_RATIO
    _check_pixels(p, hw, channels, stored, max_pixels)
    arr = page.asarray()
    if arr.ndim == 3 and page.axes.index("S") == 0:
        arr = np.moveaxis(arr, 0, -1)
    arr = np.ascontiguousarray(arr.reshape(hw[0], hw[1], channels), np.uint16)
    if channels in (2, 4) and tuple(page.extrasamples)[:1] == (1,):
        _unpremultiply(arr)  # associated alpha
    icc = page.iccprofile
    orientation = int(page.tags.valueof(ORIENTATION, 1))
    return _split(orient(arr, orientation), bytes(icc) if icc else None)


def _as_tuple(value: Any) -> tuple[int, ...]:
    """Return a tifffile value that is an int or a tuple of ints as a tuple."""
    return tuple(int(v) for v in value) if isinstance(value, tuple) else (int(value),)


def _unpremultiply(arr: U16) -> None:
    """Divide associated (premultiplied) colour by its alpha, in place, rounded."""
    alpha = arr[:, :, -1:].astype(np.float32)
    colour = arr[:, :, :-1].astype(np.float32)
    np.divide(colour * 65535.0, alpha, out=colour, where=alpha > 0)
    np.clip(np.rint(colour), 0, 65535, out=colour)
    arr[:, :, :-1] = colour


def _split(arr: U16, icc: bytes | None) -> DeepPicture:
    """(H, W, S) samples to colour (H, W, 1 or 3) and alpha (H, W) or None."""
    if arr.shape[2] in (2, 4):
        return DeepPicture(
            np.ascontiguousarray(arr[:, :, :-1]),
            np.ascontiguousarray(arr[:, :, -1]),
            icc,
        )
    return DeepPicture(np.ascontiguousarray(arr), None, icc)


def write(
    stream: BinaryIO,
    pixels: U16,
    alpha: npt.NDArray[Any] | None = None,
    *,
    fmt: str,
    icc_profile: bytes | None = None,
    compress_level: int | None = None,
) -> None:
    """Encode uint16 pixels (H, W, 1 or 3) and alpha (H, W) as a 16-bit PNG or TIFF into ``stream``.

    PNG through `encode_png` (``compress_level`` as there); TIFF uncompressed,
    as Pillow writes TIFFs, alpha unassociated. The ICC profile goes into
    an iCCP chunk or the InterColorProfile tag.

    Raises
    ------
    ValueError
        Pixels of another dtype or shape, a format other than PNG or TIFF,
        an encoder failure (``saving.write_atomically`` names the file).
    ImportError
        imagecodecs (PNG) or tifffile (TIFF) is not installed.
    """
    if fmt not in ("PNG", "TIFF"):
        msg = f"16-bit colour or gray+alpha is written as PNG or TIFF; got {fmt}"
        raise ValueError(msg)
    if fmt == "PNG":
        samples = _samples(pixels, alpha)
        arr = samples[:, :, 0] if samples.shape[2] == 1 else samples
        stream.write(
            encode_png(arr, icc_profile=icc_profile, compress_level=compress_level)
        )
        return
    write_pages(stream, [(pixels, alpha)], icc_profile=icc_profile)


def encode_png(
    samples: npt.NDArray[Any],
    *,
    icc_profile: bytes | None = None,
    compress_level: int | None = None,
) -> bytes:
    """Return uint8 or uint16 samples, (H, W) or (H, W, 2 to 4), encoded as a PNG by libpng.

    With ``compress_level`` None, the fast settings: every row filtered with
    Paeth (the filter Pillow's adaptive choice picks on almost every row of a
    photo) and zlib's RLE strategy, which looks for runs alone; on a 4K photo
    about 9x faster than Pillow's defaults for a file 0-4 % larger, and as
    small on flat images. A level (0 to 9) gives libpng's own filter choice
    and zlib's default strategy at that level. The ICC profile goes into an
    iCCP chunk.

    Raises
    ------
    ValueError
        An encoder failure (``saving.write_atomically`` names the file).
    ImportError
        imagecodecs is not installed.
    """
    codec = _codec("PNG")
    if compress_level is None:
        settings = {
            "level": 1,
            "strategy": codec.PNG.STRATEGY.RLE,
            "filter": codec.PNG.FILTER.PAETH,
        }
    else:
        settings = {"level": compress_level}
    try:
        data = codec.png_encode(samples, **settings)
    except RuntimeError as err:  # imagecodecs.PngError
        msg = f"PNG encoder: {err}"
        raise ValueError(msg) from None
    return _with_icc(bytes(data), icc_profile)


def write_pages(
    stream: BinaryIO,
    frames: Iterable[tuple[U16, npt.NDArray[Any] | None]],
    *,
    icc_profile: bytes | None = None,
) -> int:
    """Write (pixels, alpha) frames as the pages of one 16-bit TIFF into ``stream``; return the count.

    Each frame is encoded when the iterable gives it, so frames can be made
    one at a time. Pages are uncompressed, alpha unassociated, each with
    the ICC profile.

    Raises
    ------
    ValueError
        Pixels of another dtype or shape, no frame at all.
    ImportError
        tifffile is not installed.
    """
    tifffile = _codec("TIFF")
    # tifffile names the stream it writes to; a temporary file's descriptor has none.
    handle = tifffile.FileHandle(stream, mode="wb", name="output.tif")
    count = 0
    with tifffile.TiffWriter(handle) as tif:
        for pixels, alpha in frames:
            samples = _samples(pixels, alpha)
            tif.write(
                samples,
                photometric="rgb" if pixels.shape[2] == 3 else "minisblack",
                planarconfig="contig",
                extrasamples=("unassalpha",) if alpha is not None else None,
                iccprofile=icc_profile or None,
                metadata=None,
            )
            count += 1
    if not count:
        msg = "a TIFF needs at least one page; got none"
        raise ValueError(msg)
    return count


def _samples(pixels: U16, alpha: npt.NDArray[Any] | None) -> U16:
    """Check uint16 (H, W, 1 or 3) pixels; return them with alpha as the last sample."""
    if pixels.dtype != np.uint16 or pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        msg = f"16-bit output takes uint16 pixels (H, W, 1 or 3); got {pixels.dtype} {pixels.shape}"
        raise ValueError(msg)
    if alpha is None:
        return np.ascontiguousarray(pixels)
    return np.concatenate([pixels, alpha.astype(np.uint16)[:, :, np.newaxis]], axis=2)


def _with_icc(png: bytes, icc_profile: bytes | None) -> bytes:
    """Insert an iCCP chunk right after the IHDR (before any PLTE or IDAT)."""
    if not icc_profile:
        return png
    body = b"ICC Profile\x00\x00" + zlib.compress(icc_profile)
    crc = zlib.crc32(b"iCCP" + body)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", crc)
    return png[:33] + chunk + png[33:]
