"""One TIFF bigger than memory, band of rows by band of rows: read, filter, write.

A TIFF input streams when ``--stream`` asks for it, or when its float32 size
(H x W x C x 4 bytes, what the engine works on) is over the memory budget
(``--memory``, a quarter of the machine's memory by default), or when it has
more pixels than the in-memory limit. `probe` reads its header with
tifffile (`convcli.tiff_stream`), bounded by `STREAM_MAX_PIXELS` instead of
Pillow's limit. `apply_streamed` then runs the pair as a `BandJob`: each
band of output rows is computed from the input rows its windows reach (its
halo), with the border rule applied at the image's true top and bottom
only, by the same `convcli.filtering` steps as a whole image, the method
the whole image would take; the bands go into a tiled BigTIFF through a
temporary file renamed when whole. ``rescale`` needs the whole map's range:
a first pass over the bands finds it. Memory is set by the band and a row
of tiles, never by the image.

The bands run on this machine's cores (`run_local`), or on a Dask cluster
through a `BandRunner` the caller gives (`convcli.stream_cluster`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from convcli import core, images
from convcli.blas import limit_this_thread
from convcli.core.geometry import border_index
from convcli.core.stream import band_positions, read_runs
from convcli.errors import ConvcliError
from convcli.filtering import FloatArray, explain_maps, one_map, render, to_output
from convcli.kernels import Kernel
from convcli.names import STREAM_MAX_PIXELS as STREAM_MAX_PIXELS
from convcli.outcome import ApplyResult, Output
from convcli.outcome import result as pair_result
from convcli.plan import ApplyOptions, keeps_sixteen
from convcli.tiff_stream import StreamError, TiffRows, write_tiled
from convcli.workers import one_malloc_arena

T = TypeVar("T")


BAND_BYTES = 16 << 20
"""Float32 bytes of one band's rows, at most, unless the kernel's halo needs
more (a band has at least as many output rows as the kernel spans). On a
40000-wide RGB image, 16 MiB bands filtered sobel faster than 8 MiB ones and
with a lower peak (fewer, larger buffers) than 24 MiB ones."""

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, rows done, rows in all)``: called after each band."""


def memory_budget() -> int:
    """Return the default ``--memory``: a quarter of the machine's memory (2 GiB if unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2 << 30
    return max(int(total) // 4, 256 << 20)


def is_tiff(path: Path) -> bool:
    """Return whether ``path`` starts as a TIFF or BigTIFF does (False if unreadable).

    Only a regular file is opened: a FIFO would block.
    """
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as f:
            return f.read(4) in _TIFF_MAGIC
    except OSError:
        return False


_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def probe(path: Path, options: ApplyOptions) -> images.Header | None:
    """Return the header of ``path`` if it is streamed (`images.Header` with ``streamed``), else None.

    It is streamed with ``--stream``, or when it is a TIFF whose float32 size
    is over the memory budget (``--memory``) or whose pixels are over the
    in-memory limit. One open of the file reads and checks its header.

    Raises
    ------
    ConvcliError
        ``--stream`` for a file that is not a TIFF; a streamed TIFF that
        cannot be read band by band (planar samples, not 8 or 16-bit, not
        gray or RGB), several pages without ``--frame``, over the pixel limit.
    """
    if options.stream is False or path == Path("-"):
        return None
    name = images.shown(path)
    if not is_tiff(path):
        if options.stream:
            msg = (
                f"{name}: --stream reads TIFF files only; convert it to a "
                "tiled TIFF (vips tiffsave IN OUT.tif --tile --bigtiff) to stream it"
            )
            raise ConvcliError(msg)
        return None
    try:
        reader = TiffRows(path, options.frame or 0)
    except (StreamError, OSError):
        if options.stream:
            raise
        return None  # the in-memory path says what is wrong
    with reader:
        (h, w, c), dtype, pages = reader.shape, reader.dtype, reader.pages
        photometric, extra = reader.photometric, reader.extrasamples
    if not options.stream:
        budget = memory_budget() if options.memory is None else options.memory
        limit = images.pixel_limit(options.max_pixels)
        over_limit = options.max_pixels is None and limit is not None and h * w > limit
        if h * w * c * 4 <= budget and not over_limit:
            return None
    gray_or_rgb = (photometric, c > 2) in (("MINISBLACK", False), ("RGB", True))
    if not gray_or_rgb or (c in (2, 4) and extra[:1] != (2,)):  # 2: an alpha
        extras = f", extra samples {list(extra)} (2: an alpha)" if gray_or_rgb else ""
        msg = (
            f"{name}: a {photometric} TIFF of {c} sample(s){extras} is not streamed (gray "
            "or RGB, with or without an alpha, only); --no-stream reads it in memory"
        )
        raise ConvcliError(msg)
    if pages > 1 and options.frame is None:
        msg = (
            f"{name} has {pages} pages, and a streamed TIFF is filtered one page at a "
            "time: --frame 0 takes the first (in a pyramid, the full-size one)"
        )
        raise ConvcliError(msg)
    if dtype not in (np.uint8, np.uint16):
        msg = f"{name}: {dtype} samples are not streamed (8 or 16-bit only); --no-stream reads it in memory"
        raise ConvcliError(msg)
    limit = STREAM_MAX_PIXELS if options.max_pixels is None else options.max_pixels
    if h * w > limit:
        msg = (
            f"{name}: {h} x {w} = {h * w:,} pixels, more than the streaming limit of "
            f"{limit:,}; --max-pixels N raises it"
        )
        raise ConvcliError(msg)
    sixteen = dtype == np.uint16
    mode = _MODES[c] + (";16" if sixteen and c > 1 else "")
    if sixteen and c == 1:
        mode = "I;16"
    return images.Header(
        path=path,
        size=(h, w),
        mode=mode,
        channels=1 if c < 3 else 3,
        alpha=c in (2, 4),
        sixteen=sixteen,
        frames=pages,
        streamed=True,
    )


# ---------------------------------------------------------------------------
# A pair as bands: what each band needs, picklable for a cluster's workers


@dataclass(frozen=True)
class BandJob:
    """One output of a streamed pair: everything a band needs, on any machine.

    ``options`` are the pair's; ``band_options`` the same with no vertical
    padding and the whole image's method, as each band runs them.
    """

    path: Path
    page: int
    shape: tuple[int, int, int]  # the input's (H, W, C), alpha included in C
    mode: str
    peak: float
    kernel: Kernel
    options: ApplyOptions
    band_options: ApplyOptions
    explanation: core.Explanation
    target: Path
    range_: str
    gain: float | None
    bounds: tuple[float, float] | None = None

    @property
    def spans(self) -> list[tuple[int, int]]:
        """The bands, as (first, stop) output rows."""
        out_h = self.explanation.output_shape[0]
        rows = self.band_rows
        return [(r0, min(r0 + rows, out_h)) for r0 in range(0, out_h, rows)]

    @property
    def band_rows(self) -> int:
        """Output rows per band: ``--band-rows``, else about `BAND_BYTES` of input."""
        out_h = self.explanation.output_shape[0]
        if self.options.band_rows is not None:
            return min(self.options.band_rows, out_h)
        budget = self.options.memory or memory_budget()
        row_bytes = 4 * self.shape[1] * self.shape[2]
        input_rows = max(min(BAND_BYTES, budget // 16) // row_bytes, 1)
        sh = self.explanation.stride[0]
        span = self.explanation.dilation[0] * (self.kernel.size[0] - 1) + 1
        return min(max((input_rows - span) // sh + 1, -(-span // sh), 1), out_h)


def make_job(
    header: images.Header,
    kernel: Kernel,
    options: ApplyOptions,
    target: Path,
    index: int = 0,
) -> BandJob:
    """Explain the whole pair and return the `BandJob` of output ``index`` (no ``rescale`` bounds).

    The method is the whole kernel's, as in memory: a stacked bank's filters
    all take the one its first filter chose (`explain_maps`).
    """
    h, w = header.size
    c = (
        1
        if options.channels == "gray"
        else 3
        if options.channels == "rgb"
        else header.channels
    )
    # The method depends on the samples' type, as in memory: the file's, or
    # float32 when colour is premultiplied by alpha.
    premultiplied = header.alpha and options.alpha == "premultiply"
    kind = np.float32 if premultiplied else np.uint16 if header.sixteen else np.uint8
    view = np.broadcast_to(np.zeros((1, 1, 1), kind), (h, w, c))
    # explain_maps reads any samples' type (memory gives it the file's too)
    explanation = explain_maps(cast("FloatArray", view), kernel, options)
    kernel = one_map(kernel, index)
    left, right = explanation.padding[2:]
    band_options = dataclasses.replace(
        options,
        padding=((0, 0), (left, right)),
        stride=explanation.stride,
        dilation=explanation.dilation,
        border=explanation.border,
        method=explanation.method,  # type: ignore[arg-type]
    )
    peak = 65535.0 if header.sixteen else 255.0
    range_ = options.range or kernel.range
    return BandJob(
        path=header.path,
        page=options.frame or 0,
        shape=(h, w, header.channels + int(header.alpha)),
        mode=header.mode,
        peak=peak,
        kernel=kernel,
        options=options,
        band_options=band_options,
        explanation=explanation,
        target=target,
        range_=range_,
        gain=kernel.gains(peak)[0],
    )


_READERS: dict[tuple[Path, int], tuple[tuple[int, int, int], TiffRows]] = {}
_READERS_LOCK = threading.Lock()  # the bands' threads share the readers


def _reader(job: BandJob) -> TiffRows:
    """Return this process's open reader of the job's TIFF (one kept per file and page).

    Under a lock: two bands starting at once would each open one, and the
    second close the first while its band reads it (or leave it open).
    """
    key = (job.path, job.page)
    st = os.stat(job.path)
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    with _READERS_LOCK:
        held = _READERS.get(key)
        if held is not None and held[0] == stamp:
            return held[1]
        _close_all()
        reader = TiffRows(job.path, job.page)
        _READERS[key] = (stamp, reader)
        return reader


def close_readers() -> None:
    """Close the readers this process holds."""
    with _READERS_LOCK:
        _close_all()


def _close_all() -> None:
    """Close every reader held (the caller holds `_READERS_LOCK`)."""
    for _, reader in _READERS.values():
        reader.close()
    _READERS.clear()


def band_picture(job: BandJob, first: int, stop: int) -> images.Picture:
    """Return the input rows output rows ``first..stop-1`` reach, as a `Picture`.

    The samples as read where every row is one of the image's own (a run of
    them is not even copied); float32 where ``constant`` builds rows of cval.

    Rows beyond the image's top and bottom are built by the border rule
    (``cval`` for ``constant``); an alpha carried through is built by
    clamping, as the whole image's alpha is read at each window's centre.
    """
    g = job.explanation
    height, width, channels = job.shape
    colour = channels - int(channels in (2, 4))
    span = g.dilation[0] * (job.kernel.size[0] - 1) + 1
    wanted = band_positions(
        first, stop, stride=g.stride[0], span=span, top=g.padding[0]
    )
    source = border_index(wanted, height, g.border)
    alpha = channels != colour
    carried = np.clip(wanted, 0, height - 1) if job.options.alpha == "carry" else source
    every = np.concatenate([source, carried]) if alpha else source
    needed = np.unique(every[every >= 0])
    if needed.size:
        rows = read_runs(_reader(job).read, needed, (width, channels))
    else:  # a band of padding alone
        rows = np.zeros((1, width, channels), dtype=np.uint16)
        needed = np.zeros(1, dtype=np.intp)
    real = images.Picture(
        rows[:, :, :colour], rows[:, :, colour] if alpha else None, job.mode, job.peak
    )
    real = images.convert_channels(real, job.options.channels)
    cval = float(job.options.cval)
    colour_cval, alpha_cval = cval, cval
    if real.alpha is not None and job.options.alpha == "premultiply":
        # The whole image pads colour x alpha / peak with cval, and alpha / peak
        # with cval: rows whose alpha is cval x peak and colour 1 are those.
        colour_cval, alpha_cval = float(cval != 0), cval * job.peak

    def gather(
        values: npt.NDArray[Any], src: npt.NDArray[np.intp], fill: float
    ) -> npt.NDArray[Any]:
        at = np.searchsorted(needed, np.maximum(src, 0))
        if at[-1] - at[0] == at.size - 1 and (np.diff(at) == 1).all():
            # rows in a run, none built: the samples as read, as a whole image
            # gives them to the filter (which takes them tile by tile as float32)
            return values[at[0] : at[-1] + 1]
        if (src >= 0).all():  # reflected or clamped: the image's own samples
            return values[at]
        out = values[at].astype(np.float32)
        out[src < 0] = fill
        return out

    pixels = gather(real.pixels, source, colour_cval)
    band_alpha = None if real.alpha is None else gather(real.alpha, carried, alpha_cval)
    return images.Picture(pixels, band_alpha, job.mode, job.peak, None)


def compute_band(job: BandJob, first: int, stop: int) -> npt.NDArray[Any]:
    """Return output rows ``first..stop-1`` as the file gets them (alpha last, if any)."""
    picture = band_picture(job, first, stop)
    maps, _, coverage = render(picture, job.kernel, job.band_options)
    _, values = next(maps)
    pixels, alpha = to_output(
        values,
        coverage,
        picture,
        job.target,
        job.options,
        job.range_,
        bounds=job.bounds,
        gain=job.gain,
    )
    if alpha is None:
        return pixels
    return np.concatenate([pixels, alpha[:, :, np.newaxis]], axis=2)


def band_extremes(job: BandJob, first: int, stop: int) -> tuple[float, float]:
    """Return ``rescale``'s range over output rows ``first..stop-1`` (`images.rescale_bounds`)."""
    picture = band_picture(job, first, stop)
    maps, _, _ = render(picture, job.kernel, job.band_options)
    return images.rescale_bounds(next(maps)[1])


# ---------------------------------------------------------------------------
# Running the bands


BandRunner = Callable[
    [Callable[[BandJob, int, int], T], BandJob, Sequence[tuple[int, int]]],
    Iterator[T],
]
"""``runner(fn, job, spans)``: ``fn(job, first, stop)`` of each span, yielded in order."""


def run_local(
    fn: Callable[[BandJob, int, int], T],
    job: BandJob,
    spans: Sequence[tuple[int, int]],
    *,
    threads: int | None = None,
) -> Iterator[T]:
    """Run the bands on this machine's cores, a few ahead, and yield them in order.

    numpy, the TIFF codecs and zlib release the GIL, so threads share the
    work; at most ``threads + 1`` bands are in flight, so that every thread
    filters one while the oldest is written (sobel on a 40000x2048 RGB
    strip: 1.5-1.8 s against 1.7-2.3 s with ``threads``, the same peak). Each band's thread runs its matrix
    products on one BLAS thread (`convcli.blas`): BLAS spreading every
    band's products over every core made them wait on each other (1.4x
    slower on 2 cores); one thread also gives the sums a Dask worker's
    BLAS gives (OpenBLAS rounds float32 sums by its threads: a level, on a
    few pixels in a million), even for an image of one band. A stop (Ctrl-C) cancels the bands
    not started and waits for those running.
    """
    n = threads or min(os.cpu_count() or 1, 4)
    if n == 1:
        for first, stop in spans:
            yield fn(job, first, stop)
        return
    pool = ThreadPoolExecutor(
        max_workers=n, thread_name_prefix="convcli-band", initializer=limit_this_thread
    )
    pending: list[Future[T]] = []
    queue = iter(spans)
    try:
        for span in queue:
            pending.append(pool.submit(fn, job, *span))
            if len(pending) > n:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def apply_streamed(
    header: images.Header,
    kernel: Kernel,
    options: ApplyOptions,
    targets: list[Path],
    outputs: list[Output],
    t0: float,
    *,
    progress: ProgressFn | None = None,
    runner: BandRunner[Any] | None = None,
) -> ApplyResult:
    """Filter a streamed TIFF band by band into tiled BigTIFF ``targets``; return the result.

    A stacked bank writes one output per filter, each in a pass of its own.
    ``rescale`` first finds the map's range in a pass of its own.
    """
    run: BandRunner[Any] = runner or run_local
    if runner is None:
        one_malloc_arena()  # the band threads' freed buffers in one arena
    seconds = {"load": time.perf_counter() - t0, "filter": 0.0, "save": 0.0}
    with TiffRows(header.path, options.frame or 0) as reader:
        compression, icc = reader.compression, reader.icc_profile
    job: BandJob | None = None
    try:
        for index, target in enumerate(targets):
            t1 = time.perf_counter()
            job = make_job(header, kernel, options, target, index)
            one = job.kernel
            spans = job.spans
            if job.range_ == "rescale" and not options.float_output:
                lo, hi = np.inf, -np.inf
                extremes = run(band_extremes, job, spans)
                try:
                    for n, (b_lo, b_hi) in enumerate(extremes):
                        lo, hi = min(lo, b_lo), max(hi, b_hi)
                        _tell(progress, "range", spans, n)
                finally:
                    _close(extremes)
                job = dataclasses.replace(job, bounds=(float(lo), float(hi)))
            out_h, out_w = job.explanation.output_shape[:2]
            dtype, out_c = _output_kind(job, header)
            bands = _numbered(run(compute_band, job, spans), spans, progress)
            try:
                write_tiled(
                    target,
                    (out_h, out_w, out_c),
                    dtype,
                    bands,
                    compression=compression,
                    icc_profile=icc,
                )
            finally:
                _close(bands)
            name = (
                one.filter_names[0]
                if kernel.is_bank and kernel.combine == "stack"
                else None
            )
            color = out_c - int(header.alpha and not options.float_output)
            outputs.append(Output(target, (out_h, out_w, color), name))
            seconds["filter"] += time.perf_counter() - t1
    finally:
        close_readers()
    assert job is not None  # a pair has an output
    done = pair_result(
        header,
        (*header.size, _colour(header, options)),
        kernel,
        job.explanation,
        outputs,
        seconds,
        options,
    )
    return dataclasses.replace(done, bands=(len(job.spans), job.band_rows))


def _close(bands: Iterator[Any]) -> None:
    """Close a runner's bands left part way (an error, a stop) now, not at garbage collection.

    The bands still running are then waited for, or cancelled, before their
    readers close (`close_readers`).
    """
    close = getattr(bands, "close", None)
    if close is not None:
        close()


def _colour(header: images.Header, options: ApplyOptions) -> int:
    """Return the colour channels the filter sees, after ``--channels``."""
    if options.channels == "gray":
        return 1
    return 3 if options.channels == "rgb" else header.channels


def _output_kind(job: BandJob, header: images.Header) -> tuple[np.dtype[Any], int]:
    """Return the output's sample type and its channels (alpha included)."""
    kernel = job.kernel
    colour = _colour(header, job.options)
    out_c = colour if not kernel.is_bank or kernel.weights.shape[1] == 1 else 1
    if job.options.float_output:
        return np.dtype(np.float32), out_c
    alpha = header.alpha
    sixteen = job.peak == 65535.0 and keeps_sixteen(
        header.mode, job.target, channels=out_c, alpha=alpha
    )
    return np.dtype(np.uint16 if sixteen else np.uint8), out_c + int(alpha)


def _numbered(
    bands: Iterator[npt.NDArray[Any]],
    spans: Sequence[tuple[int, int]],
    progress: ProgressFn | None,
) -> Iterator[tuple[int, npt.NDArray[Any]]]:
    """Pair each band with its first row, and tell ``progress`` as each is done."""
    try:
        for done, ((first, _), band) in enumerate(zip(spans, bands, strict=True)):
            yield first, band
            _tell(progress, "filter", spans, done)
    finally:
        _close(bands)


def _tell(
    progress: ProgressFn | None,
    stage: str,
    spans: Sequence[tuple[int, int]],
    done: int,
) -> None:
    """Tell ``progress`` the rows done after band ``done``."""
    if progress is not None:
        progress(stage, spans[done][1], spans[-1][1])
