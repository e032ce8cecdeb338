"""TIFF read and written a band of rows at a time, for images bigger than memory.

`TiffRows` reads rows of a tiled or striped TIFF's first page, decoding only
the tiles or strips those rows lie in (tifffile decodes each one). `write_tiled`
writes bands of rows, as `convcli.core.stream.stream_conv2d` yields them, into
a tiled BigTIFF, through a temporary file renamed into place when whole. With
both, memory is set by a band and a row of tiles, never by the image.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.atomic import create_temporary, finish, temporary_name
from convcli.errors import ConvcliError, shown


class StreamError(ConvcliError, ValueError):
    """A TIFF that cannot be streamed: names the file and the reason."""


def _tifffile() -> Any:
    """Import tifffile, its log quiet: its notes on odd tags are not printed on stderr."""
    import logging

    import tifffile

    logger = logging.getLogger("tifffile")
    if not logger.handlers:  # else logging's last resort prints them
        logger.addHandler(logging.NullHandler())
    return tifffile


class TiffRows:
    """Rows of a TIFF's first page, decoded tile by tile (or strip by strip) on demand.

    Use as a context manager; `read` is the ``read_rows`` of `stream_conv2d`.
    """

    def __init__(self, path: str | os.PathLike[str], page: int = 0) -> None:
        tifffile = _tifffile()
        self.path = Path(path)
        try:
            self._file = tifffile.TiffFile(self.path)
        except Exception as err:  # tifffile's own, struct's, OSError: not a TIFF
            raise StreamError(self._unreadable(err)) from None
        try:
            self._open_page(tifffile, page)
        except (
            Exception
        ) as err:  # a header cut short or altered: any error of tifffile's
            self._file.close()
            if isinstance(err, StreamError):
                raise
            raise StreamError(self._unreadable(err)) from None
        try:
            self._fd = os.open(self.path, os.O_RDONLY)  # raw segments: pread
        except OSError as err:
            self._file.close()
            msg = f"{shown(self.path)}: cannot read: {err.strerror or err}"
            raise StreamError(msg) from None
        self._cache: dict[int, npt.NDArray[Any]] = {}  # segment row -> its pixels
        self._lock = threading.Lock()  # the cache and the rows being decoded
        self._loading: dict[int, threading.Event] = {}  # segment rows being decoded
        self._file_lock = threading.Lock()  # one file handle: one reader at a time

    def _unreadable(self, err: Exception) -> str:
        """Return the one line that says the file is not a TIFF tifffile reads."""
        return (
            f"{shown(self.path)}: cannot read as TIFF: {str(err) or type(err).__name__}"
        )

    def _open_page(self, tifffile: Any, page: int) -> None:
        """Read page ``page``'s header: its shape, type, compression, profile, segments."""
        name = shown(self.path)
        self.pages = len(self._file.pages)
        if not self.pages:
            msg = f"{name}: cannot read as TIFF: no page in it (truncated?)"
            raise StreamError(msg)
        if not 0 <= page < self.pages:
            msg = f"{name} has {self.pages} page(s); got page {page}"
            raise StreamError(msg)
        page_ = self._file.pages[page]
        if not isinstance(page_, tifffile.TiffPage):
            page_ = page_.aspage()
        if page_.planarconfig != 1 and page_.samplesperpixel > 1:
            msg = f"{name}: planar (separate) TIFF samples are not streamed"
            raise StreamError(msg)
        self._page = page_
        shape = tuple(int(n) for n in page_.shape)
        if len(shape) not in (2, 3) or (len(shape) == 3 and not 1 <= shape[2] <= 4):
            msg = f"{name}: a TIFF page of shape {shape} is not an image of 1 to 4 channels"
            raise StreamError(msg)
        self.shape: tuple[int, int, int] = (
            (shape[0], shape[1], 1)
            if len(shape) == 2
            else (shape[0], shape[1], shape[2])
        )
        self.dtype = np.dtype(page_.dtype)
        codec = tifffile.COMPRESSION(page_.compression).name
        self.compression = _compression(codec)
        # How the samples read: MINISBLACK, RGB, PALETTE, SEPARATED (CMYK)...,
        # YCbCr decoded as RGB by its JPEG codec; and what the extra ones are.
        photometric = int(page_.photometric)
        names = {int(p): p.name for p in tifffile.PHOTOMETRIC}
        self.photometric = names.get(photometric, str(photometric))
        if self.photometric == "YCBCR" and codec == "JPEG":
            self.photometric = "RGB"
        self.extrasamples = tuple(int(e) for e in page_.extrasamples)
        icc = page_.tags.get(34675)  # InterColorProfile
        self.icc_profile: bytes | None = None if icc is None else bytes(icc.value)
        height, width, _ = self.shape
        if page_.is_tiled:
            self._seg_rows, self._seg_cols = int(page_.tilelength), int(page_.tilewidth)
        else:
            rows = int(page_.rowsperstrip) or height
            self._seg_rows, self._seg_cols = min(rows, height), width
        self._across = math.ceil(width / self._seg_cols)
        # Samples stored as they are (no compression, no predictor, whole
        # bytes): a band's rows are read straight from each segment, no row of
        # segments decoded and kept (59 MiB for a 40000-wide RGB image).
        self._raw = (
            codec == "NONE"
            and int(page_.predictor) == 1
            and int(page_.fillorder) == 1
            and int(page_.bitspersample) == 8 * self.dtype.itemsize
        )
        self._stored = self.dtype.newbyteorder(self._file.byteorder)
        segments = self._across * math.ceil(height / self._seg_rows)
        counts = (len(page_.dataoffsets), len(page_.databytecounts))
        if counts != (segments, segments):
            msg = (
                f"{name}: corrupt or truncated TIFF ({counts[0]} segment offsets "
                f"and {counts[1]} sizes for its {segments} segments)"
            )
            raise StreamError(msg)

    def __enter__(self) -> TiffRows:
        """Return the reader itself; the file closes at the block's end."""
        return self

    def __exit__(self, *_: object) -> None:
        """Close the file."""
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._file.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def read(self, first: int, stop: int) -> npt.NDArray[Any]:
        """Return rows ``first..stop-1`` as (rows, W, C), decoding only their segments.

        The last two rows of segments decoded are kept: bands that overlap
        (their halos) or that share a row of tiles decode it once. Threads may
        read at once: the file is read by one at a time, and each row of
        segments is decoded by the first thread that needs it, outside the lock.
        """
        height, width, channels = self.shape
        if not 0 <= first < stop <= height:
            msg = f"rows {first}..{stop} are outside the image's {height} rows"
            raise ValueError(msg)
        if self._raw:
            return self._read_raw(first, stop)
        out = np.empty((stop - first, width, channels), dtype=self.dtype)
        for seg_row in range(first // self._seg_rows, (stop - 1) // self._seg_rows + 1):
            y = seg_row * self._seg_rows
            rows = self._segment_row(seg_row)
            r0, r1 = max(y, first), min(y + rows.shape[0], stop)
            out[r0 - first : r1 - first] = rows[r0 - y : r1 - y]
        return out

    def _read_raw(self, first: int, stop: int) -> npt.NDArray[Any]:
        """Return rows ``first..stop-1`` of uncompressed segments, read in place.

        Each segment's rows are contiguous in the file: one ``pread`` per
        segment a band reaches, from any thread at once.
        """
        _, width, channels = self.shape
        out = np.zeros((stop - first, width, channels), dtype=self.dtype)
        row_bytes = self._seg_cols * channels * self._stored.itemsize
        page = self._page
        for seg_row in range(first // self._seg_rows, (stop - 1) // self._seg_rows + 1):
            y = seg_row * self._seg_rows
            r0, r1 = max(y, first), min(y + self._seg_rows, stop)
            start, size = (r0 - y) * row_bytes, (r1 - r0) * row_bytes
            for seg_col in range(self._across):
                index = seg_row * self._across + seg_col
                count = int(page.databytecounts[index])
                if not count:  # a segment never written holds zeros
                    continue
                data = b""
                if start + size <= count:
                    try:
                        data = os.pread(
                            self._fd, size, int(page.dataoffsets[index]) + start
                        )
                    except OSError as err:
                        msg = f"{shown(self.path)}: cannot read: {err.strerror or err}"
                        raise StreamError(msg) from None
                if len(data) != size:
                    msg = f"{shown(self.path)}: truncated TIFF (segment {index} is cut short)"
                    raise StreamError(msg)
                block = np.frombuffer(data, self._stored)
                block = block.reshape(r1 - r0, self._seg_cols, channels)
                x = seg_col * self._seg_cols
                c1 = min(x + self._seg_cols, width)
                out[r0 - first : r1 - first, x:c1] = block[:, : c1 - x]
        return out

    def _segment_row(self, seg_row: int) -> npt.NDArray[Any]:
        """Return one row of segments, from the cache, or decoded (once, if threads ask at once)."""
        while True:
            with self._lock:
                if seg_row in self._cache:
                    return self._cache[seg_row]
                loading = self._loading.get(seg_row)
                if loading is None:
                    loading = self._loading[seg_row] = threading.Event()
                    break
            loading.wait()  # another thread decodes it; if it failed, try here
        try:
            rows = self._decode_row(seg_row)
            with self._lock:
                if len(self._cache) >= 2:
                    del self._cache[min(self._cache)]
                self._cache[seg_row] = rows
            return rows
        finally:
            with self._lock:
                del self._loading[seg_row]
            loading.set()

    def _decode_row(self, seg_row: int) -> npt.NDArray[Any]:
        """Read and decode one row of segments (tiles, or a strip)."""
        height, width, channels = self.shape
        y = seg_row * self._seg_rows
        rows = np.zeros((min(self._seg_rows, height - y), width, channels), self.dtype)
        page, fh = self._page, self._file.filehandle
        for seg_col in range(self._across):
            index = seg_row * self._across + seg_col
            count = int(page.databytecounts[index])
            if not count:  # a segment never written holds zeros
                continue
            try:
                with self._file_lock:
                    fh.seek(int(page.dataoffsets[index]))
                    data = fh.read(count)
            except OSError as err:
                msg = f"{shown(self.path)}: cannot read: {err.strerror or err}"
                raise StreamError(msg) from None
            if len(data) != count:
                msg = (
                    f"{shown(self.path)}: truncated TIFF (segment {index} is cut short)"
                )
                raise StreamError(msg)
            try:
                segment, where, _ = page.decode(data, index, jpegtables=page.jpegtables)
            except Exception as err:  # a codec's own error: corrupt data
                msg = f"{shown(self.path)}: corrupt TIFF segment {index} ({err})"
                raise StreamError(msg) from None
            if segment is None:
                continue
            block = np.asarray(segment).reshape(
                segment.shape[-3], segment.shape[-2], -1
            )
            x = int(where[-2])
            c1 = min(x + block.shape[1], width)
            n = min(block.shape[0], rows.shape[0])
            rows[:n, x:c1] = block[:n, : c1 - x]
        return rows


_WRITABLE = {
    "NONE": None,
    "ADOBE_DEFLATE": "zlib",
    "DEFLATE": "zlib",
    "LZW": "lzw",
    "ZSTD": "zstd",
    "PACKBITS": "packbits",
}


def _compression(name: str) -> str | None:
    """Return the compression an output gets for an input's: its own, or deflate for a lossy one."""
    return _WRITABLE.get(name, "zlib")


_ENCODE_BYTES = 8 << 20
"""Bytes of tiles tifffile compresses in one go when it compresses on several
threads (a machine of many cores): its default, 512 MB, would hold 16 rows of
256-pixel tiles of a 40000-wide RGB image at once."""


def write_tiled(
    path: str | os.PathLike[str],
    shape: tuple[int, int, int],
    dtype: npt.DTypeLike,
    bands: Iterable[tuple[int, npt.NDArray[Any]]],
    *,
    tile: int = 256,
    compression: str | None = "zlib",
    icc_profile: bytes | None = None,
) -> Path:
    """Write bands of rows ``(first row, rows)`` into a tiled BigTIFF, atomically.

    The bands must come in order and cover ``shape``'s rows. The file goes
    to a temporary name beside ``path`` and is renamed when whole; any error
    or stop removes it. ``compression`` is tifffile's name (``zlib``, ``lzw``,
    ``zstd``...) or None; ``icc_profile`` is written as the page's profile.
    """
    import tifffile

    p = Path(path)
    height, width, channels = shape
    kind = np.dtype(dtype)

    producer: list[BaseException] = []  # what the bands raised (not the writing)
    given = iter(bands)
    covered = [0]  # rows the bands gave

    def tiles() -> Iterator[npt.NDArray[Any]]:
        """Yield the tiles, a row of them at a time from a buffer of ``tile`` rows."""
        strip = np.zeros((tile, width, channels), dtype=kind)
        held = 0  # rows of `strip` filled
        try:
            for first, rows in given:
                if first != covered[0]:
                    msg = f"bands out of order: row {first} came where {covered[0]} was due"
                    raise ValueError(msg)
                covered[0] += rows.shape[0]
                done = 0
                while done < rows.shape[0]:
                    take = min(tile - held, rows.shape[0] - done)
                    strip[held : held + take] = rows[done : done + take]
                    held, done = held + take, done + take
                    if held == tile or covered[0] >= height:
                        yield from _cut(strip[:held], tile)
                        held = 0
                if covered[0] >= height:
                    return  # the rest of ``bands`` runs after the writing
            msg = f"the bands cover {covered[0]} of {height} rows"
            raise ValueError(msg)
        except BaseException as err:
            producer.append(err)
            raise

    photometric = "rgb" if channels in (3, 4) else "minisblack"
    extra = ("unassalpha",) if channels in (2, 4) else None
    data_shape = (height, width, channels) if channels > 1 else (height, width)
    tmp = temporary_name(p)
    try:
        os.close(create_temporary(tmp))
        pieces = tiles()
        with tifffile.TiffWriter(tmp, bigtiff=True) as writer:
            writer.write(
                data=pieces,
                shape=data_shape,
                dtype=kind,
                tile=(tile, tile),
                photometric=photometric,
                extrasamples=extra,
                compression=compression,
                iccprofile=icc_profile,
                buffersize=_ENCODE_BYTES,
            )
        # tifffile takes the tiles it needs and no more: run ``bands`` to its
        # end (its last band's work after the yield is then done), and check
        # that they cover the image, no more, no less
        if next(given, None) is not None or covered[0] != height:
            msg = f"the bands cover {covered[0]} of {height} rows"
            raise ValueError(msg)
        finish(tmp, p)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if producer or isinstance(err, ConvcliError):  # the input's, named
            raise
        if isinstance(err, OSError):  # disk full, a file size limit, ...
            msg = f"{shown(p)}: cannot write: {err.strerror or err}"
            raise StreamError(msg) from None
        raise
    return p


def _cut(strip: npt.NDArray[Any], tile: int) -> Iterator[npt.NDArray[Any]]:
    """Yield one row of ``tile``-square tiles from ``strip`` (zeros past its edges)."""
    rows, width, channels = strip.shape
    for x in range(0, width, tile):
        block = np.zeros((tile, tile, channels), dtype=strip.dtype)
        part = strip[:, x : x + tile]
        block[:rows, : part.shape[1]] = part
        yield block if channels > 1 else block[:, :, 0]
