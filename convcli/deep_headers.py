"""PNG and TIFF headers read with the standard library: which files are 16-bit colour.

`sniff` says, from a file's first bytes and its TIFF directories, whether it
is a 16-bit RGB, RGBA or gray+alpha PNG or TIFF (which Pillow would read as
8-bit) and what `convcli.deep_images` will decode: size, samples, frames.
Every offset is checked against the file's length before it is read, and
every walk is bounded: a hostile header costs a few reads, never a loop.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_CHUNKS = 1 << 20
"""The most PNG chunks walked; a file with more is refused as corrupt."""

MAX_PAGES = 100_000
"""The most TIFF pages (IFDs) counted; a file with more is refused as corrupt."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# PNG colour types read here, by the channels they decode to.
PNG_TYPES = {4: 2, 2: 3, 6: 4}  # gray+alpha, RGB, RGBA

# TIFF tags the sniff reads, and the integer field types it understands.
WIDTH, LENGTH, BITS, PHOTOMETRIC, ORIENTATION = 256, 257, 258, 262, 274
SAMPLES, SAMPLE_FORMAT = 277, 339
_WANTED = {WIDTH, LENGTH, BITS, PHOTOMETRIC, ORIENTATION, SAMPLES, SAMPLE_FORMAT}
_FIELDS = {1: "B", 3: "H", 4: "I", 16: "Q", 6: "b", 8: "h", 9: "i", 17: "q"}


@dataclass(frozen=True)
class DeepHeader:
    """What the header of a 16-bit colour (or gray+alpha) PNG or TIFF says.

    Attributes
    ----------
    path : Path
        The file.
    format : str
        ``"PNG"`` or ``"TIFF"``.
    size : (int, int)
        (H, W) of the first frame as ``deep_images.read`` returns it: the orientation the
        header carries applied (a PNG's eXIf chunk after the pixels is seen
        only when the pixels are read, as Pillow does).
    channels : int
        Samples per pixel: 2 (gray, alpha), 3 (RGB) or 4 (RGBA).
    frames : int
        APNG frames (``acTL``) or TIFF pages; 1 for a plain PNG.
    odd_page : int or None
        The first TIFF page whose size or kind differs from the first page's
        (None when every page is alike).
    """

    path: Path
    format: str
    size: tuple[int, int]
    channels: int
    frames: int
    odd_page: int | None = None

    @property
    def alpha(self) -> bool:
        """Whether the last sample is alpha."""
        return self.channels in (2, 4)

    @property
    def colour(self) -> int:
        """Colour channels without the alpha: 1 or 3."""
        return 1 if self.channels <= 2 else 3


def sniff(path: str | os.PathLike[str]) -> DeepHeader | None:
    """Return the header of a 16-bit colour or gray+alpha PNG or TIFF; None for any other file.

    Reads a few header bytes with the standard library: a PNG's IHDR (bit
    depth 16, colour type 2, 4 or 6) and the chunks before its pixels; a
    TIFF's first IFD (BitsPerSample 16, unsigned, RGB with 3 or 4 samples or
    gray with 2) and the chain of IFDs. A file that is not one of these, or
    whose header is malformed or unreadable, gives None: the ordinary reader
    deals with it (and reports it).
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = f.read(8)
            if start == PNG_SIGNATURE:
                return _sniff_png(p, f, size)
            if start[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
                return _sniff_tiff(p, f, size)
    except (OSError, ValueError, struct.error):
        return None
    return None


def _sniff_png(p: Path, f: BinaryIO, size: int) -> DeepHeader | None:
    """Read the IHDR, then acTL and eXIf among the chunks before the first IDAT."""
    ihdr = f.read(25)
    if len(ihdr) < 25 or ihdr[4:8] != b"IHDR":
        return None
    width, height, depth, ctype = struct.unpack(">IIBB", ihdr[8:18])
    if depth != 16 or ctype not in PNG_TYPES or not width or not height:
        return None
    frames, orientation = 1, 1
    pos = 33
    for _ in range(MAX_CHUNKS):
        if pos + 8 > size:
            break
        f.seek(pos)
        length, kind = struct.unpack(">I4s", f.read(8))
        if kind in (b"IDAT", b"IEND"):
            break
        if kind == b"acTL" and length == 8:
            frames = max(1, struct.unpack(">I", f.read(4))[0])
        elif kind == b"eXIf" and length <= 1 << 20:
            orientation = exif_orientation(f.read(length))
        pos += 12 + length
    h, w = _oriented((height, width), orientation)
    return DeepHeader(p, "PNG", (h, w), PNG_TYPES[ctype], frames)


def _sniff_tiff(p: Path, f: BinaryIO, size: int) -> DeepHeader | None:
    """Read every IFD's tags: the first decides, the others are compared with it."""
    ifds = _tiff_ifds(f, size)
    if not ifds:
        return None
    kinds = [_tiff_kind(tags) for tags in ifds]
    if kinds[0] is None:
        return None
    odd = next((i for i, k in enumerate(kinds) if k != kinds[0]), None)
    size_hw, channels = kinds[0]
    return DeepHeader(p, "TIFF", size_hw, channels, len(ifds), odd)


def _tiff_kind(tags: dict[int, tuple[int, ...]]) -> tuple[tuple[int, int], int] | None:
    """Return the oriented (H, W) and samples of a 16-bit colour or gray+alpha IFD, else None."""
    channels = tiff_channels(tags)
    if channels is None:
        return None
    hw = _oriented((tags[LENGTH][0], tags[WIDTH][0]), tags.get(ORIENTATION, (1,))[0])
    return hw, channels


def tiff_channels(tags: dict[int, tuple[int, ...]]) -> int | None:
    """Return the samples per pixel if the IFD is 16-bit unsigned RGB(A) or gray+alpha, else None."""
    samples = tags.get(SAMPLES, (1,))[0]
    bits = tags.get(BITS, (1,))
    photometric = tags.get(PHOTOMETRIC, (-1,))[0]
    if not tags.get(WIDTH, (0,))[0] or not tags.get(LENGTH, (0,))[0]:
        return None
    if set(bits) != {16} or set(tags.get(SAMPLE_FORMAT, (1,))) != {1}:
        return None
    if (photometric, samples) in ((2, 3), (2, 4), (1, 2)):
        return int(samples)
    return None


class _Ifds:
    """A TIFF's chain of IFDs, read with bounded, checked seeks (classic and BigTIFF)."""

    def __init__(self, f: BinaryIO, size: int, order: str, big: bool) -> None:
        self.f, self.size, self.order, self.big = f, size, order, big
        self.count_fmt, self.entry_size = ("Q", 20) if big else ("H", 12)
        self.word = "Q" if big else "I"  # offsets, counts and inline values
        self.word_size = 8 if big else 4

    def raw(self, at: int, n: int) -> bytes:
        """Read ``n`` bytes at ``at``, which must lie inside the file."""
        if at + n > self.size:
            raise ValueError  # past the end: malformed
        self.f.seek(at)
        return self.f.read(n)

    def unpack(self, fmt: str, at: int, n: int) -> tuple[int, ...]:
        """Read ``n`` bytes at ``at`` (inside the file) and unpack them as ``fmt``."""
        return struct.unpack(self.order + fmt, self.raw(at, n))

    def read(self, offset: int) -> tuple[dict[int, tuple[int, ...]], int]:
        """Return the wanted tags of the IFD at ``offset`` and the next IFD's offset."""
        count_size = struct.calcsize(self.count_fmt)
        (count,) = self.unpack(self.count_fmt, offset, count_size)
        if offset < 8 or not 0 < count <= 4096:
            raise ValueError
        table_at = offset + count_size
        table = self.raw(table_at, count * self.entry_size)
        (nxt,) = self.unpack(
            self.word, table_at + count * self.entry_size, self.word_size
        )
        tags: dict[int, tuple[int, ...]] = {}
        for i in range(count):
            entry = table[i * self.entry_size : (i + 1) * self.entry_size]
            tag, kind = struct.unpack(self.order + "HH", entry[:4])
            if tag not in _WANTED or kind not in _FIELDS:
                continue
            (n,) = struct.unpack(self.order + self.word, entry[4 : 4 + self.word_size])
            field = _FIELDS[kind]
            nbytes = n * struct.calcsize(field)
            if not 1 <= n <= 16:
                raise ValueError  # these tags hold a handful of values
            inline = entry[4 + self.word_size :]
            if nbytes <= self.word_size:
                tags[tag] = struct.unpack(f"{self.order}{n}{field}", inline[:nbytes])
            else:
                (where,) = struct.unpack(self.order + self.word, inline)
                tags[tag] = self.unpack(f"{n}{field}", where, nbytes)
        return tags, nxt


def _tiff_ifds(f: BinaryIO, size: int) -> list[dict[int, tuple[int, ...]]] | None:
    """Return the wanted tags of every IFD, in order; None if the structure is malformed.

    Every offset is checked against the file's size before it is read; the
    chain is followed at most `MAX_PAGES` times and never twice through the
    same IFD.
    """
    f.seek(0)
    head = f.read(16)
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None or len(head) < 8:
        return None
    big = struct.unpack(order + "H", head[2:4])[0] == 43
    if big and len(head) < 16:
        return None
    walker = _Ifds(f, size, order, big)
    offset = struct.unpack(
        order + ("Q" if big else "I"), head[8:16] if big else head[4:8]
    )[0]
    found: list[dict[int, tuple[int, ...]]] = []
    seen: set[int] = set()
    try:
        while offset:
            if offset in seen or len(found) >= MAX_PAGES:
                return None
            seen.add(offset)
            tags, offset = walker.read(offset)
            found.append(tags)
    except (ValueError, struct.error):
        return None
    return found


def exif_orientation(block: bytes) -> int:
    """Return the Orientation (tag 274) of an EXIF block (a TIFF structure); 1 when absent or odd."""
    if block.startswith(b"Exif\x00\x00"):
        block = block[6:]
    found = _tiff_ifds(io.BytesIO(block), len(block))
    if not found:
        return 1
    value = found[0].get(ORIENTATION, (1,))[0]
    return value if 1 <= value <= 8 else 1


def _oriented(hw: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Return (H, W) after an EXIF orientation: 5 to 8 are quarter turns, rows and columns swap."""
    return (hw[1], hw[0]) if orientation in (5, 6, 7, 8) else hw


def holds(fmt: str, *, channels: int, alpha: bool) -> bool:
    """Return whether ``deep_images.write`` writes ``fmt`` (Pillow's name) for such pixels in 16 bits.

    PNG and TIFF hold 16-bit RGB, RGBA and gray+alpha; 16-bit gray alone is
    Pillow's (I;16).
    """
    return fmt in ("PNG", "TIFF") and (channels == 3 or (channels == 1 and alpha))
