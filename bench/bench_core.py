"""Benchmark ``convcli.conv2d`` against scipy.ndimage, OpenCV and PyTorch (CPU).

Run from the repository root::

    .venv/bin/python bench/bench_core.py                  # full run, about 8 min on 2 cores
    .venv/bin/python bench/bench_core.py --quick          # tiny images, seconds
    .venv/bin/python bench/bench_core.py --cases gray512,bank --repeat 7
    .venv/bin/python bench/bench_core.py --cases gray64,rgb128 --repeat 2
    .venv/bin/python bench/bench_core.py --list           # case ids for --cases

Everything runs in one process. Every contender of a case gets the same numpy
input (seeded ``np.random.default_rng(0)``) and the same weights. The peers come
from the project's ``bench`` extra (``pip install -e '.[bench]'``); one that is
not installed shows "not installed" in its column.

Cases
-----
Depthwise: the kernels 3x3 sobel, 3x3 random, 5x5 Gaussian, 15x15 random,
31x31 Gaussian and 31x31 random on the small images 64x64 and 128x128 (float32
gray and RGB), on 512x512 and 4096x4096 float32 gray, and on a 3840x2160x3
image in float32 and uint8. Filter banks: 16 filters 3x3x3 on 512x512x3 and 32
filters 3x3x16 on 256x256x16, float32. ``--list`` prints the ids.

Contenders
----------
convcli ``direct``, ``separable``, ``fft`` and ``auto`` (the table says which
method ``auto`` picked); ``scipy.ndimage.correlate``; ``cv2.filter2D`` and, for
rank-1 kernels, ``cv2.sepFilter2D`` with the two 1-D factors;
``torch.nn.functional.conv2d`` on CPU: with its default thread count on the
depthwise cases ("torch"), on 1 and on 2 threads on the filter banks ("torch
1t", "torch 2t": ``torch.set_num_threads(n)`` before the cell's runs, its
estimate included, and the previous count restored after, so every other torch
cell keeps the default; the header gives the counts).

The hand-written numpy baseline, depthwise cases on images of at most 128x128
pixels only (SMALL_SIDE; larger images read "n/a"), written in this script:
"numpy pad+taps" times ``xp = np.pad(x, pads, mode="symmetric")`` followed by
the tap loop ``out = w[0,0]*xp[0:H,0:W]; out += w[u,v]*xp[u:u+H, v:v+W]`` over
the other taps (what a user writes by hand; convcli's border="symmetric",
padding "same"); "numpy taps (pre-padded)" times the same loop on an array
padded once outside the timing. The image goes in as it is (a uint8 image is
padded as uint8; the first product with the float32 weights makes float32).

Ratio columns: scipy/auto and torch/auto (> 1: convcli auto is faster);
auto/cv2 and sep/cv2-sep (> 1: OpenCV is faster); on the small images
auto/np pad+taps and auto/np taps, auto's time over the numpy baseline's (> 1:
the hand-written loop is faster; project target <= 2 for the 3x3 kernels at
64x64 and 128x128); on the filter banks auto/torch1t and auto/torch2t, auto's
time over torch's on 1 and 2 threads (project targets against torch 1t: <= 1.2
for 512x512x3 with 16 filters, <= 1.5 for 256x256x16 with 32 filters), and
GEMM/torch1t: the "GEMM floor" column (banks only) times the one matrix product
``(H*W, kh*kw*C) @ (kh*kw*C, D)`` of an im2col made outside the timing, numpy's
BLAS on its default threads: no method that multiplies every weight can go
below it, while torch (oneDNN) may use Winograd's fewer multiplications.

Conventions (what is compared with what)
----------------------------------------
* Depthwise cases: convcli ``padding="same", border="symmetric"``, which is
  scipy's ``mode="reflect"`` and OpenCV's ``BORDER_REFLECT`` (c b a | a b c d),
  so those agree on the whole image. Each 2-D kernel filters every channel on
  its own. All contenders correlate (no kernel flip).
* torch gets float32 NCHW tensors made once outside the timing (the uint8 image
  too: its conversion to float32 is not timed for torch) and zero padding
  ``padding="same"`` (torch has no symmetric padding; its ``"reflect"`` is
  numpy's ``"reflect"``, and ``F.pad`` would add a timed copy). Depthwise uses
  ``groups=C``. Its result is therefore checked on the central region only.
* uint8 input: convcli computes in float32; scipy gets ``output=np.float32``;
  OpenCV gets ``ddepth=cv2.CV_32F``.
* Filter banks, w of shape (D, C, kh, kw): convcli ``padding="same",
  border="constant"``; torch zero padding with weight (D, C, kh, kw); scipy and
  OpenCV loop over filters and channels with zero borders. torch runs on 1 and 2
  threads here, not on its default.

Protocol for one cell (one contender on one case)
-------------------------------------------------
Cases run smallest image first, so that the 512x512 cases are measured before
the large images that take their estimates from them.

1. Estimate: the time of the same contender and kernel on a 512x512 image of
   the same channel count and dtype, scaled by the number of values (pixels x
   channels). It is the median of the 512x512 case where there is one (gray
   float32), else one run on the image's top-left 512x512 crop (RGB: the layout
   changes the code path, torch is several times faster per tap on 3 channels
   with groups=3 than on 1). Over 20 s: the cell is not run and reads
   "skipped (>20 s, est. ...)"; that is how scipy's and torch's 31x31 kernels on
   the large images are skipped. Images smaller than 512x512 (64x64 with
   ``--quick``), such as the 64x64 to 256x256 cases of milliseconds per call,
   have no estimate and are run as they are; their times, which hold the
   per-call overhead, feed no estimate.
2. First run, timed, untraced (scipy's runs under tracemalloc, which costs a
   single C call nothing). Its result is checked against convcli ``direct`` and
   it absorbs one-time costs (thread pools, FFT plans, oneDNN primitives). Over
   20 s: not repeated, the cell reads "skipped (>20 s: 1 run took ...)".
3. Peak extra memory, convcli and scipy only: one call under tracemalloc (numpy
   reports its allocations to it), peak minus the traced memory before the call,
   output included, printed as a multiple of the input's nbytes ("peak/in"; the
   uint8 image has 1 byte per value, so its float32 output alone is 4x).
   convcli's Python tile loops run ~25 % slower traced, so its memory run is a
   separate, untimed call. OpenCV and torch allocate outside tracemalloc's
   sight: "-".
4. Timed runs, adaptive so that the full run stays under 10 minutes on 2 cores:
   a first run of 1 s or more is the cell's only sample ("n=1"); a shorter one
   is followed by ``min(repeat, int(1.5 s / first run))`` (at least 1) timed runs
   whose median is reported. A cell with fewer samples than ``--repeat`` shows
   "(n=k)".
5. Time budget (``--budget``, default 540 s): a cell whose estimated cost (the
   runs above) exceeds the time left, or any cell once the budget is spent,
   reads "skipped (time budget)". Projected from 512x512 timings, the full run
   takes about 8 minutes on an idle 2-core machine (almost half of it convcli
   direct and separable on the random 15x15 and 31x31 kernels, each cell two
   runs of 1-19 s; the 24 small cases add about 15 s), so the budget only trips
   on a slower or busy machine; it then drops the last cells (the uint8 image)
   rather than pass 10 minutes.

Correctness, once per case and outside the timing: every result is compared
with convcli ``direct`` (max abs difference over max abs of the reference,
tolerance 1e-4, float32); the check column lists contenders off by more.

auto's choice
-------------
After the tables the report counts, over every case where convcli ``direct``,
``separable`` and ``fft`` all have a time (none skipped), the cases where
``auto`` hits: the time of the method it picked, read from that method's own
column (not the ``auto`` column), is within 10 % of the fastest of the three
(AUTO_SLACK). It prints "auto picks a method within 10 % of the fastest in K
of N cases (P %)" (project target: at least 90 %), a table of the misses (case,
picked method and its time, fastest method and its time, their ratio) and,
apart and not counted, the cases where one of the three has no time.

Report
------
Markdown on stdout and in bench/results/core.md (``--out`` to change): a
header (command, CPU model, versions, thread counts, how to read), per group a
time-and-ratio table and a peak-memory table, then auto's choice. ``--docs``
also writes it, headings two levels down, between the bench_core markers of
docs/performance.md.

Quick mode (``--quick``) uses only 64x64 and 128x128 images (gray, RGB float32
and RGB uint8) and smaller filter banks (64x64x3, 128x128x16), with one timed
run per cell, and writes bench/results/core-quick.md unless ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import platform
import shlex
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from page_block import PERFORMANCE_PAGE, replace_block

import convcli

SKIP_SECONDS = 20.0  # a cell estimated or measured above this is not repeated
LONG_SECONDS = 1.0  # a first run this long is the cell's only sample
CELL_SECONDS = 1.5  # the timed runs of a shorter cell aim for about this much
BUDGET_SECONDS = 540.0  # default --budget
TOLERANCE = 1e-4  # max |out - ref| / max |ref| in the correctness check
DEFAULT_REPEAT = 5
PROBE_SIDE = 512  # estimates come from 512x512 images (64x64 with --quick)
PROBE_QUICK = 64
RESULTS = Path(__file__).resolve().parent / "results"
PAGE_MARKERS = ("<!-- bench_core:begin -->", "<!-- bench_core:end -->")
CONVCLI_METHODS = ("direct", "separable", "fft", "auto")
SMALL_SIDE = 128  # images of at most 128x128 pixels also get the numpy baselines
BANK_TORCH_THREADS = (1, 2)  # torch thread counts timed on the filter banks
AUTO_SLACK = 1.10  # auto hits when its pick is within 10 % of the fastest method
ENV_VARS = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


# ---------------------------------------------------------------------------
# Cases


@dataclass(frozen=True)
class ImageSpec:
    """A seeded random image: id for --cases, label for the table, shape, dtype."""

    key: str
    label: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def values(self) -> int:
        """Pixels times channels."""
        return int(np.prod(self.shape))

    @property
    def channels(self) -> int:
        """Channels (1 for a 2-D image)."""
        return self.shape[2] if len(self.shape) == 3 else 1

    @property
    def small(self) -> bool:
        """At most SMALL_SIDE x SMALL_SIDE pixels: the numpy baselines run on it."""
        return self.shape[0] * self.shape[1] <= SMALL_SIDE**2

    def make(self) -> np.ndarray:
        """Return the image, from its own ``default_rng(0)``."""
        rng = np.random.default_rng(0)
        if self.dtype == "uint8":
            return rng.integers(0, 256, self.shape, dtype=np.uint8)
        return rng.random(self.shape, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class KernelSpec:
    """A 2-D kernel (kh, kw) or a bank (D, C, kh, kw); factors for rank-1 kernels."""

    key: str
    label: str
    weights: np.ndarray
    factors: tuple[np.ndarray, np.ndarray] | None = None  # (column, row)


@dataclass(frozen=True, eq=False)
class Case:
    """One image with one kernel or filter bank."""

    image: ImageSpec
    kernel: KernelSpec

    @property
    def key(self) -> str:
        """Id matched by --cases."""
        return f"{self.image.key}/{self.kernel.key}"

    @property
    def bank(self) -> bool:
        """Whether the weights are a filter bank."""
        return self.kernel.weights.ndim == 4

    @property
    def border(self) -> str:
        """convcli border: symmetric (scipy reflect) or zeros for banks."""
        return "constant" if self.bank else "symmetric"


def gaussian(size: int, sigma: float) -> np.ndarray:
    """Return a normalized 1-D Gaussian of odd ``size``."""
    r = np.arange(size) - size // 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    return (g / g.sum()).astype(np.float32)


def rank1(key: str, label: str, column: np.ndarray, row: np.ndarray) -> KernelSpec:
    """Return the separable kernel ``outer(column, row)`` with its factors."""
    column = np.asarray(column, np.float32)
    row = np.asarray(row, np.float32)
    return KernelSpec(key, label, np.outer(column, row), (column, row))


def random_kernel(key: str, label: str, shape: tuple[int, ...]) -> KernelSpec:
    """Return standard normal weights of ``shape`` from ``default_rng(0)``."""
    w = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return KernelSpec(key, label, w)


def make_cases(quick: bool) -> list[Case]:
    """Return all cases, depthwise ones first, in table order."""
    kernels = [
        rank1("sobel3", "3x3 sobel", [1, 2, 1], [-1, 0, 1]),
        random_kernel("rand3", "3x3 random", (3, 3)),
        rank1("gauss5", "5x5 gauss s=1", gaussian(5, 1.0), gaussian(5, 1.0)),
        random_kernel("rand15", "15x15 random", (15, 15)),
        rank1("gauss31", "31x31 gauss s=5", gaussian(31, 5.0), gaussian(31, 5.0)),
        random_kernel("rand31", "31x31 random", (31, 31)),
    ]
    bank16 = random_kernel("bank16", "16 filters 3x3x3", (16, 3, 3, 3))
    bank32 = random_kernel("bank32", "32 filters 3x3x16", (32, 16, 3, 3))
    if quick:
        images = [
            ImageSpec("gray64", "64x64 f32", (64, 64), "float32"),
            ImageSpec("gray128", "128x128 f32", (128, 128), "float32"),
            ImageSpec("rgb128-f32", "128x128x3 f32", (128, 128, 3), "float32"),
            ImageSpec("rgb128-u8", "128x128x3 u8", (128, 128, 3), "uint8"),
        ]
        bank_images = [
            ImageSpec("rgb64", "64x64x3 f32", (64, 64, 3), "float32"),
            ImageSpec("c16x128", "128x128x16 f32", (128, 128, 16), "float32"),
        ]
    else:
        images = [
            ImageSpec("gray64", "64x64 f32", (64, 64), "float32"),
            ImageSpec("gray128", "128x128 f32", (128, 128), "float32"),
            ImageSpec("rgb64-f32", "64x64x3 f32", (64, 64, 3), "float32"),
            ImageSpec("rgb128-f32", "128x128x3 f32", (128, 128, 3), "float32"),
            ImageSpec("gray512", "512x512 f32", (512, 512), "float32"),
            ImageSpec("gray4096", "4096x4096 f32", (4096, 4096), "float32"),
            ImageSpec("rgb4k-f32", "3840x2160x3 f32", (2160, 3840, 3), "float32"),
            ImageSpec("rgb4k-u8", "3840x2160x3 u8", (2160, 3840, 3), "uint8"),
        ]
        bank_images = [
            ImageSpec("rgb512", "512x512x3 f32", (512, 512, 3), "float32"),
            ImageSpec("c16x256", "256x256x16 f32", (256, 256, 16), "float32"),
        ]
    cases = [Case(image, kernel) for image in images for kernel in kernels]
    cases += [Case(bank_images[0], bank16), Case(bank_images[1], bank32)]
    return cases


def select(cases: Sequence[Case], patterns: str | None) -> list[Case]:
    """Keep the cases whose id contains one of the comma-separated substrings."""
    if not patterns:
        return list(cases)
    wanted = [p.strip().lower() for p in patterns.split(",") if p.strip()]
    return [c for c in cases if any(p in c.key.lower() for p in wanted)]


# ---------------------------------------------------------------------------
# Contenders


@dataclass(frozen=True)
class Peers:
    """The optional peer modules, None when not installed, and their versions."""

    ndimage: ModuleType | None
    cv2: ModuleType | None
    torch: ModuleType | None
    versions: dict[str, str]
    torch_threads: int | None = None  # torch's default thread count, read at import


def load_peers() -> Peers:
    """Import scipy.ndimage, cv2 and torch where installed."""
    modules: dict[str, ModuleType | None] = {}
    versions: dict[str, str] = {}
    for name, module_name, version_of in (
        ("scipy", "scipy.ndimage", "scipy"),
        ("cv2", "cv2", "cv2"),
        ("torch", "torch", "torch"),
    ):
        try:
            modules[name] = importlib.import_module(module_name)
            versions[name] = str(importlib.import_module(version_of).__version__)
        except (ImportError, OSError):
            modules[name] = None
            versions[name] = "not installed"
    torch = modules["torch"]
    return Peers(
        modules["scipy"],
        modules["cv2"],
        torch,
        versions,
        torch.get_num_threads() if torch is not None else None,
    )


@dataclass(frozen=True)
class Prepared:
    """A zero-argument call to time, and how to turn its result into HWC numpy."""

    call: Callable[[], Any]
    to_array: Callable[[Any], np.ndarray] = np.asarray
    margin: tuple[int, int] = (0, 0)  # rows, columns left out of the check


Builder = Callable[[Case, np.ndarray, Peers], "Prepared | str"]


@dataclass(frozen=True)
class Contender:
    """A column of the tables."""

    key: str
    label: str
    build: Builder
    traced: bool  # peak memory through tracemalloc
    python_loops: bool  # tracing slows it down, so the traced call is not timed
    depthwise_only: bool = False
    bank_only: bool = False
    small_only: bool = False  # "n/a" on images larger than SMALL_SIDE x SMALL_SIDE
    torch_threads: int | None = None  # torch.set_num_threads around its runs

    def applies(self, case: Case) -> bool:
        """Whether the contender has a column in the table of ``case``'s group."""
        return not (self.depthwise_only and case.bank) and not (
            self.bank_only and not case.bank
        )

    def runs_on(self, case: Case) -> bool:
        """Whether the contender is run on ``case`` (else its cell reads "n/a")."""
        return self.applies(case) and (case.image.small or not self.small_only)


@contextmanager
def torch_threads(peers: Peers, threads: int | None) -> Iterator[None]:
    """Set torch's (process-global) thread count inside the block, restore it after."""
    torch = peers.torch
    if threads is None or torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def convcli_builder(method: str) -> Builder:
    """Return a builder for ``convcli.conv2d(method=method)``."""

    def build(case: Case, x: np.ndarray, peers: Peers) -> Prepared | str:
        w, border = case.kernel.weights, case.border

        def call() -> np.ndarray:
            return convcli.conv2d(x, w, padding="same", border=border, method=method)

        return Prepared(call)

    return build


def build_scipy(case: Case, x: np.ndarray, peers: Peers) -> Prepared | str:
    """scipy.ndimage.correlate: one call depthwise, a loop over filters and channels for banks."""
    ndimage = peers.ndimage
    if ndimage is None:
        return "not installed"
    w = case.kernel.weights
    if case.bank:

        def call_bank() -> np.ndarray:
            height, width, channels = x.shape
            out = np.empty((height, width, w.shape[0]), np.float32)
            for d in range(w.shape[0]):
                acc = ndimage.correlate(
                    x[:, :, 0], w[d, 0], output=np.float32, mode="constant"
                )
                for c in range(1, channels):
                    acc += ndimage.correlate(
                        x[:, :, c], w[d, c], output=np.float32, mode="constant"
                    )
                out[:, :, d] = acc
            return out

        return Prepared(call_bank)
    weights = w if x.ndim == 2 else w[:, :, np.newaxis]

    def call() -> np.ndarray:
        return ndimage.correlate(x, weights, output=np.float32, mode="reflect")

    return Prepared(call)


def build_cv2_filter2d(case: Case, x: np.ndarray, peers: Peers) -> Prepared | str:
    """cv2.filter2D (a correlation): BORDER_REFLECT, or zeros and a loop for banks."""
    cv2 = peers.cv2
    if cv2 is None:
        return "not installed"
    w = case.kernel.weights
    ddepth = -1 if x.dtype == np.float32 else cv2.CV_32F
    if case.bank:

        def call_bank() -> np.ndarray:
            height, width, channels = x.shape
            planes = [np.ascontiguousarray(x[:, :, c]) for c in range(channels)]
            out = np.empty((height, width, w.shape[0]), np.float32)
            for d in range(w.shape[0]):
                acc = cv2.filter2D(
                    planes[0], ddepth, w[d, 0], borderType=cv2.BORDER_CONSTANT
                )
                for c in range(1, channels):
                    acc += cv2.filter2D(
                        planes[c], ddepth, w[d, c], borderType=cv2.BORDER_CONSTANT
                    )
                out[:, :, d] = acc
            return out

        return Prepared(call_bank)

    def call() -> np.ndarray:
        return cv2.filter2D(x, ddepth, w, borderType=cv2.BORDER_REFLECT)

    return Prepared(call)


def build_cv2_sep(case: Case, x: np.ndarray, peers: Peers) -> Prepared | str:
    """cv2.sepFilter2D with the kernel's 1-D factors (rank-1 kernels only)."""
    cv2 = peers.cv2
    if cv2 is None:
        return "not installed"
    if case.kernel.factors is None:
        return "n/a"
    column, row = case.kernel.factors
    ddepth = -1 if x.dtype == np.float32 else cv2.CV_32F

    def call() -> np.ndarray:
        return cv2.sepFilter2D(x, ddepth, row, column, borderType=cv2.BORDER_REFLECT)

    return Prepared(call)


def build_torch(case: Case, x: np.ndarray, peers: Peers) -> Prepared | str:
    """torch conv2d on float32 NCHW tensors made here, zero padding "same"."""
    torch = peers.torch
    if torch is None:
        return "not installed"
    functional = torch.nn.functional
    nchw = (
        x[np.newaxis, np.newaxis] if x.ndim == 2 else x.transpose(2, 0, 1)[np.newaxis]
    )
    xt = torch.from_numpy(np.ascontiguousarray(nchw, dtype=np.float32))
    w = case.kernel.weights
    if case.bank:
        wt = torch.from_numpy(np.ascontiguousarray(w))
        groups = 1
        margin = (0, 0)
    else:
        groups = case.image.channels
        wt = torch.from_numpy(
            np.ascontiguousarray(np.broadcast_to(w, (groups, 1, *w.shape)))
        )
        margin = (w.shape[0] // 2, w.shape[1] // 2)

    def call() -> Any:
        with torch.inference_mode():
            return functional.conv2d(xt, wt, padding="same", groups=groups)

    def to_array(y: Any) -> np.ndarray:
        out = y[0].permute(1, 2, 0).numpy()
        return out[:, :, 0] if x.ndim == 2 else out

    return Prepared(call, to_array, margin)


def build_gemm_floor(case: Case, x: np.ndarray, peers: Peers) -> Prepared | str:
    """The floor of a GEMM-based bank: its one matrix product, the im2col made untimed.

    ``(H*W, kh*kw*C) @ (kh*kw*C, D)`` with numpy's BLAS on its default threads:
    what convcli's bank method costs without gathering its columns.
    """
    w = case.kernel.weights  # (D, C, kh, kw)
    depth, channels, kh, kw = w.shape
    height, width = x.shape[:2]
    top, bottom = same_pads(kh)
    left, right = same_pads(kw)
    xp = np.pad(x.astype(np.float32), ((top, bottom), (left, right), (0, 0)))
    cols = np.empty((height, width, kh, kw, channels), np.float32)
    for u in range(kh):
        for v in range(kw):
            cols[:, :, u, v] = xp[u : u + height, v : v + width]
    a = cols.reshape(height * width, kh * kw * channels)
    b = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(kh * kw * channels, depth))
    out = np.empty((height * width, depth), np.float32)

    def call() -> np.ndarray:
        return np.matmul(a, b, out=out)

    def to_array(y: np.ndarray) -> np.ndarray:
        return y.reshape(height, width, depth)

    return Prepared(call, to_array)


def same_pads(size: int) -> tuple[int, int]:
    """Padding (before, after) of ``padding="same"`` for a kernel side of ``size``."""
    before = (size - 1) // 2
    return before, size - 1 - before


def numpy_taps(xp: np.ndarray, w: np.ndarray, height: int, width: int) -> np.ndarray:
    """The hand-written shift-and-accumulate loop over the taps of ``w`` on padded ``xp``."""
    out: np.ndarray = w[0, 0] * xp[0:height, 0:width]
    for u in range(w.shape[0]):
        for v in range(w.shape[1]):
            if u or v:
                out += w[u, v] * xp[u : u + height, v : v + width]
    return out


def numpy_builder(pad_inside: bool) -> Builder:
    """Return a builder for the hand-written numpy baseline (depthwise, small images).

    ``np.pad(x, pads, mode="symmetric")`` (convcli's border="symmetric") either
    inside the timed call (``pad_inside``) or once here, outside the timing.
    """

    def build(case: Case, x: np.ndarray, peers: Peers) -> Prepared | str:
        w = case.kernel.weights
        height, width = x.shape[:2]
        pads = [same_pads(w.shape[0]), same_pads(w.shape[1])] + [(0, 0)] * (x.ndim - 2)
        if pad_inside:

            def call() -> np.ndarray:
                xp = np.pad(x, pads, mode="symmetric")
                return numpy_taps(xp, w, height, width)

            return Prepared(call)
        padded = np.pad(x, pads, mode="symmetric")
        return Prepared(lambda: numpy_taps(padded, w, height, width))

    return build


def make_contenders() -> list[Contender]:
    """Return the contenders in column order, convcli direct (the reference) first."""
    contenders = [
        Contender(m, m, convcli_builder(m), traced=True, python_loops=True)
        for m in CONVCLI_METHODS
    ]
    contenders += [
        Contender("scipy", "scipy", build_scipy, traced=True, python_loops=False),
        Contender(
            "cv2", "cv2 filter2D", build_cv2_filter2d, traced=False, python_loops=False
        ),
        Contender(
            "cv2sep",
            "cv2 sepFilter2D",
            build_cv2_sep,
            traced=False,
            python_loops=False,
            depthwise_only=True,
        ),
        Contender(
            "torch",
            "torch",
            build_torch,
            traced=False,
            python_loops=False,
            depthwise_only=True,
        ),
    ]
    contenders.append(
        Contender(
            "gemm",
            "GEMM floor",
            build_gemm_floor,
            traced=False,
            python_loops=False,
            bank_only=True,
        )
    )
    contenders += [
        Contender(
            f"torch{n}t",
            f"torch {n}t",
            build_torch,
            traced=False,
            python_loops=False,
            bank_only=True,
            torch_threads=n,
        )
        for n in BANK_TORCH_THREADS
    ]
    contenders += [
        Contender(
            key,
            label,
            numpy_builder(pad_inside),
            traced=True,
            python_loops=True,
            depthwise_only=True,
            small_only=True,
        )
        for key, label, pad_inside in (
            ("np_pad", "numpy pad+taps", True),
            ("np_taps", "numpy taps (pre-padded)", False),
        )
    ]
    return contenders


# ---------------------------------------------------------------------------
# Measuring


@dataclass
class Cell:
    """What one contender measured on one case."""

    ms: float | None = None
    runs: int = 0
    note: str = ""  # not installed, n/a, skipped (...), error (...)
    peak: float | None = None  # peak extra bytes / input nbytes

    def text(self, repeat: int) -> str:
        """The time column's text."""
        if self.note:
            return self.note
        if self.ms is None:
            return "-"
        suffix = f" (n={self.runs})" if self.runs < repeat else ""
        return fmt_ms(self.ms) + suffix


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``call`` once with the garbage collector off; return seconds and result."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = call()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed, result


def seconds_only(call: Callable[[], Any]) -> float:
    """Time one call and drop its result before returning."""
    return timed(call)[0]


def traced_peak(call: Callable[[], Any]) -> tuple[int, float, Any]:
    """Run ``call`` under tracemalloc; return peak extra bytes, seconds and result."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        elapsed, result = timed(call)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return peak, elapsed, result


@dataclass(frozen=True)
class Plan:
    """Limits of one cell: repeat count, estimate and the time left in the budget."""

    repeat: int
    estimate: float | None
    estimate_from: str
    time_left: float


def cell_seconds(contender: Contender, run: float) -> float:
    """Seconds a cell takes by the protocol when one run takes ``run`` seconds."""
    memory_run = 1.25 * run if contender.traced and contender.python_loops else 0.0
    timed_runs = 0.0 if run >= LONG_SECONDS else CELL_SECONDS
    return run + memory_run + timed_runs


def measure(
    contender: Contender, prepared: Prepared, nbytes: int, plan: Plan
) -> tuple[Cell, Any]:
    """Run one cell by the protocol of the module docstring; return it and one result."""
    est = plan.estimate
    if est is not None and est > SKIP_SECONDS:
        return Cell(
            note=f"skipped (>{SKIP_SECONDS:g} s, est. {est:.0f} s from {plan.estimate_from})"
        ), None
    if plan.time_left <= 0 or (
        est is not None and cell_seconds(contender, est) > plan.time_left
    ):
        return Cell(note="skipped (time budget)"), None
    peak: float | None = None
    if contender.traced and not contender.python_loops:
        peak_bytes, first, result = traced_peak(prepared.call)
        peak = peak_bytes / nbytes
    else:
        first, result = timed(prepared.call)
    if first > SKIP_SECONDS:
        return Cell(
            note=f"skipped (>{SKIP_SECONDS:g} s: 1 run took {first:.0f} s)"
        ), result
    if contender.traced and contender.python_loops:
        peak = traced_peak(prepared.call)[0] / nbytes
    if first >= LONG_SECONDS:
        samples = [first]
    else:
        n = min(plan.repeat, max(1, int(CELL_SECONDS / first)))
        n = max(1, min(n, int((plan.time_left - first) / first)))
        samples = [seconds_only(prepared.call) for _ in range(n)]
    return Cell(
        ms=statistics.median(samples) * 1e3, runs=len(samples), peak=peak
    ), result


def deviation(reference: np.ndarray, result: Any, prepared: Prepared) -> float:
    """Max abs difference over max abs of the reference, borders left out by margin."""
    out = np.asarray(prepared.to_array(result), dtype=np.float32)
    if out.shape != reference.shape:
        return float("inf")
    mh, mw = prepared.margin
    rows = slice(mh, reference.shape[0] - mh)
    cols = slice(mw, reference.shape[1] - mw)
    ref = reference[rows, cols]
    diff = np.subtract(out[rows, cols], ref)
    np.abs(diff, out=diff)
    tiny = float(np.finfo(np.float32).tiny)
    scale = max(abs(float(ref.min())), abs(float(ref.max())), tiny)
    return float(diff.max()) / scale


@dataclass
class CaseResult:
    """Cells of one case, the method auto picked, and the correctness check."""

    cells: dict[str, Cell] = field(default_factory=dict)
    auto_method: str = "-"
    check: str = "-"


@dataclass
class Estimator:
    """Seconds per value of (contender, kernel, channels, dtype) on a side x side image."""

    side: int
    rates: dict[tuple[str, str, int, str], tuple[float, str]] = field(
        default_factory=dict
    )

    @staticmethod
    def key(contender: Contender, case: Case) -> tuple[str, str, int, str]:
        """Estimates hold for one contender and kernel on one channel count and dtype."""
        return (contender.key, case.kernel.key, case.image.channels, case.image.dtype)

    def estimate(
        self, contender: Contender, case: Case, x: np.ndarray, peers: Peers
    ) -> tuple[float | None, str]:
        """Return the estimated seconds of one run on ``x`` and where it comes from.

        Without a side x side case of the same layout, one run on the top-left
        side x side crop of ``x`` gives the rate.
        """
        key = self.key(contender, case)
        known = self.rates.get(key)
        if known is None and x.shape[0] * x.shape[1] > self.side**2:
            crop = np.ascontiguousarray(x[: self.side, : self.side])
            prepared = contender.build(case, crop, peers)
            if isinstance(prepared, Prepared):
                known = (
                    seconds_only(prepared.call) / crop.size,
                    f"{self.side}x{self.side} crop",
                )
                self.rates[key] = known
        if known is None:
            return None, ""
        return known[0] * x.size, known[1]

    def learn(self, contender: Contender, case: Case, cell: Cell) -> None:
        """Record a measured cell of a side x side image if it is the first of its key.

        Smaller images do not count: their time per value holds the per-call
        overhead and would overestimate the large images.
        """
        key = self.key(contender, case)
        if case.image.shape[:2] != (self.side, self.side):
            return
        if cell.ms is not None and key not in self.rates:
            self.rates[key] = (cell.ms / 1e3 / case.image.values, case.image.label)


def run_case(
    case: Case,
    x: np.ndarray,
    contenders: Sequence[Contender],
    peers: Peers,
    estimator: Estimator,
    repeat: int,
    deadline: float,
) -> CaseResult:
    """Measure every contender on one case and check their results."""
    out = CaseResult()
    out.auto_method = convcli.explain(
        x, case.kernel.weights, padding="same", border=case.border
    ).method
    reference: tuple[str, np.ndarray] | None = None
    deviations: dict[str, float] = {}
    for contender in contenders:
        if not contender.applies(case):
            continue
        if not contender.runs_on(case):
            out.cells[contender.key] = Cell(note="n/a")
            continue
        try:
            prepared = contender.build(case, x, peers)
            if isinstance(prepared, str):
                out.cells[contender.key] = Cell(note=prepared)
                continue
            with torch_threads(peers, contender.torch_threads):
                est, est_from = None, ""
                if time.perf_counter() < deadline:
                    est, est_from = estimator.estimate(contender, case, x, peers)
                plan = Plan(repeat, est, est_from, deadline - time.perf_counter())
                cell, result = measure(contender, prepared, x.nbytes, plan)
        except Exception as exc:  # one failing peer must not end the run
            print(f"  {contender.label}: {type(exc).__name__}: {exc}", file=sys.stderr)
            out.cells[contender.key] = Cell(note=f"error ({type(exc).__name__})")
            continue
        out.cells[contender.key] = cell
        estimator.learn(contender, case, cell)
        if result is not None:
            if reference is None and contender.key in CONVCLI_METHODS:
                reference = (contender.key, np.asarray(result, dtype=np.float32))
            elif reference is not None:
                deviations[contender.label] = deviation(reference[1], result, prepared)
        del result
        print(
            f"  {contender.label:16} {cell.text(repeat)}", file=sys.stderr, flush=True
        )
    out.check = check_text(reference[0] if reference else None, deviations)
    return out


def check_text(reference: str | None, deviations: dict[str, float]) -> str:
    """The check column: "ok (max ...)" or the contenders off by more than TOLERANCE."""
    if reference is None:
        return "no reference"
    bad = {k: v for k, v in deviations.items() if not v <= TOLERANCE}
    vs = "" if reference == "direct" else f" vs {reference}"
    if bad:
        return "WARN " + ", ".join(f"{k} {v:.1e}" for k, v in bad.items()) + vs
    worst = max(deviations.values(), default=0.0)
    return f"ok (max {worst:.0e}{vs})"


# ---------------------------------------------------------------------------
# Report


def fmt_ms(ms: float) -> str:
    """Milliseconds with 3-4 significant digits."""
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def ratio(cells: dict[str, Cell], num: str, den: str) -> str:
    """``num / den`` of two time cells, or "-" when one is missing."""
    a, b = cells.get(num), cells.get(den)
    if a is None or b is None or a.ms is None or b.ms is None or b.ms == 0:
        return "-"
    return fmt_ratio(a.ms / b.ms)


def fmt_ratio(r: float) -> str:
    """A ratio with 3 significant digits (at least 2 decimals below 10)."""
    if r >= 100:
        return f"{r:.0f}"
    if r >= 10:
        return f"{r:.1f}"
    return f"{r:.2f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with padded columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [
        "| "
        + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
        + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in rows
    ]
    return "\n".join(lines)


def group_tables(
    title: str,
    cases: Sequence[Case],
    results: dict[str, CaseResult],
    contenders: Sequence[Contender],
    repeat: int,
) -> str:
    """The time-and-ratio table and the memory table of one group of cases."""
    shown = [c for c in contenders if any(c.applies(case) for case in cases)]
    # The numpy baselines get columns only where the group has a small image.
    shown = [c for c in shown if not c.small_only or any(k.image.small for k in cases)]
    keys = {c.key for c in shown}
    ratios = [
        (label, num, den)
        for label, num, den in (
            ("scipy/auto", "scipy", "auto"),
            ("torch/auto", "torch", "auto"),
            *((f"auto/torch{n}t", "auto", f"torch{n}t") for n in BANK_TORCH_THREADS),
            ("GEMM/torch1t", "gemm", "torch1t"),
            ("auto/cv2", "auto", "cv2"),
            ("sep/cv2-sep", "separable", "cv2sep"),
            ("auto/np pad+taps", "auto", "np_pad"),
            ("auto/np taps", "auto", "np_taps"),
        )
        if num in keys and den in keys
    ]
    header = [
        "image",
        "kernel",
        "auto picks",
        *(c.label for c in shown),
        *(r[0] for r in ratios),
        "check",
    ]
    rows = []
    mem_rows = []
    for case in cases:
        res = results[case.key]
        cells = res.cells
        rows.append(
            [
                case.image.label,
                case.kernel.label,
                res.auto_method,
                *(cells.get(c.key, Cell(note="n/a")).text(repeat) for c in shown),
                *(ratio(cells, num, den) for _, num, den in ratios),
                res.check,
            ]
        )
        mem = []
        for c in shown:
            peak = cells[c.key].peak if c.key in cells else None
            mem.append(f"{peak:.2f}" if peak is not None else "-")
        mem_rows.append([case.image.label, case.kernel.label, *mem])
    mem_header = ["image", "kernel", *(c.label for c in shown)]
    return "\n\n".join(
        [
            f"## {title}",
            "Times in ms (median); direct, separable, fft and auto are convcli.conv2d methods.",
            markdown_table(header, rows),
            f"### {title}: peak extra memory (peak/in)",
            "Peak bytes allocated during one call (output included) / input nbytes; "
            "'-' where tracemalloc cannot see the allocations.",
            markdown_table(mem_header, mem_rows),
        ]
    )


def auto_picks(cases: Sequence[Case], results: dict[str, CaseResult]) -> str:
    """The section on auto's choices: hit rate, misses, cases not counted.

    A case counts when convcli direct, separable and fft all have a time; auto
    hits when the time of the method it picked (that method's own column) is at
    most AUTO_SLACK times the fastest of the three.
    """
    methods = ("direct", "separable", "fft")
    slack = f"{(AUTO_SLACK - 1) * 100:.0f} %"
    counted = 0
    misses: list[list[str]] = []
    uncounted: list[str] = []
    for case in cases:
        res = results[case.key]
        name = f"{case.image.label}, {case.kernel.label}"
        cells = {m: res.cells.get(m, Cell(note="not run")) for m in methods}
        times = {m: cell.ms for m, cell in cells.items() if cell.ms is not None}
        absent = [m for m in methods if m not in times]
        if absent:
            why = "; ".join(f"{m} {cells[m].note or '-'}" for m in absent)
            uncounted.append(f"- {name} (auto picks {res.auto_method}): {why}")
            continue
        counted += 1
        fastest = min(times, key=times.__getitem__)
        picked = times.get(res.auto_method)
        if picked is not None and picked <= AUTO_SLACK * times[fastest]:
            continue
        misses.append(
            [
                name,
                res.auto_method,
                fmt_ms(picked) if picked is not None else "-",
                fastest,
                fmt_ms(times[fastest]),
                fmt_ratio(picked / times[fastest]) if picked is not None else "-",
            ]
        )
    hits = counted - len(misses)
    share = f"{100 * hits / counted:.0f} %" if counted else "-"
    parts = [
        "## auto's choice",
        "A case counts when convcli direct, separable and fft all have a time; auto "
        "hits when the time of the method it picks (that method's own column, not the "
        f"auto column) is within {slack} of the fastest of the three. "
        "Project target: at least 90 %.",
        f"auto picks a method within {slack} of the fastest in {hits} of {counted} "
        f"cases ({share})",
    ]
    if misses:
        header = [
            "case",
            "auto picks",
            "its time (ms)",
            "fastest",
            "its time (ms)",
            "picked/fastest",
        ]
        parts += ["Misses:", markdown_table(header, misses)]
    else:
        parts.append("Misses: none.")
    if uncounted:
        parts += [
            "Not counted (direct, separable or fft has no time):",
            "\n".join(uncounted),
        ]
    return "\n\n".join(parts)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def usable_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def command_line() -> str:
    """The command that started this run, interpreter relative to the cwd where short."""
    exe = sys.executable
    rel = os.path.relpath(exe)
    return shlex.join([rel if not rel.startswith("..") else exe, *sys.argv])


def header_text(
    peers: Peers, args: argparse.Namespace, repeat: int, wall: float
) -> str:
    """The Markdown header: command, machine, versions, threads and how to read."""
    side = PROBE_QUICK if args.quick else PROBE_SIDE
    if repeat == 1:
        timing_note = "- One timed run per cell after a first run; a first run of >= 1 s is itself the sample."
    else:
        timing_note = (
            f"- Median of up to {repeat} timed runs after a first run; a first run of "
            f">= {LONG_SECONDS:g} s is the only sample; '(n=k)' marks cells with fewer "
            f"samples than {repeat}. A shorter first run is followed by min({repeat}, "
            f"int({CELL_SECONDS:g} s / first run)) timed runs (at least 1)."
        )
    torch_default = str(peers.torch_threads) if peers.torch else "-"
    bank_threads = " and ".join(str(n) for n in BANK_TORCH_THREADS)
    bank_columns = ", ".join(f"torch {n}t" for n in BANK_TORCH_THREADS)
    bank_ratios = " and ".join(f"auto/torch{n}t" for n in BANK_TORCH_THREADS)
    cv2_threads = str(peers.cv2.getNumThreads()) if peers.cv2 else "-"
    env = (
        ", ".join(f"{k}={os.environ[k]}" for k in ENV_VARS if k in os.environ)
        or "none set"
    )
    lines = [
        "# convcli core benchmark"
        + (" (quick mode: tiny images)" if args.quick else ""),
        "",
        f"- command: `{command_line()}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; wall time of the run: {wall:.0f} s",
        f"- machine: {platform.system()} {platform.machine()}, {cpu_model()}, "
        f"{os.cpu_count()} cores ({usable_cores()} usable)",
        f"- versions: Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {peers.versions['scipy']}, opencv {peers.versions['cv2']}, "
        f"torch {peers.versions['torch']}, convcli {convcli.__version__}",
        f"- threads: convcli workers {usable_cores()} (default), torch {torch_default} "
        f"(default; filter banks: {bank_threads} by torch.set_num_threads, columns "
        f"{bank_columns}), OpenCV {cv2_threads} (default), scipy.ndimage 1, numpy 1",
        f"- thread-related environment: {env}",
        "",
        "How to read:",
        "",
        timing_note,
        f"- 'skipped (>{SKIP_SECONDS:g} s, est. ...)': not run; estimated from the same contender and "
        f"kernel on a {side}x{side} image of the same channels and dtype (that case, or one "
        "run on the top-left crop), scaled by pixel count (pixels x channels). "
        f"'skipped (>{SKIP_SECONDS:g} s: 1 run took ...)': run once, not repeated. "
        "'skipped (time budget)': the --budget was spent.",
        "- Borders: convcli border='symmetric', padding='same' = scipy mode='reflect' = "
        "OpenCV BORDER_REFLECT. torch: zero padding 'same' (no symmetric mode in torch), "
        "checked on the central region only; its float32 NCHW input (also for the uint8 "
        "image) is made outside the timing. Filter banks: zero padding everywhere; scipy and "
        "OpenCV loop over filters and channels.",
        "- numpy pad+taps: np.pad(x, pads, mode='symmetric') then the loop out = "
        "w[0,0]*xp[0:H,0:W]; out += w[u,v]*xp[u:u+H, v:v+W] over the other taps, as a "
        "user hand-writes it; numpy taps (pre-padded): the same loop on an array padded "
        f"once outside the timing. Depthwise images of at most {SMALL_SIDE}x{SMALL_SIDE} "
        "pixels only ('n/a' on larger ones).",
        "- Ratios: scipy/auto and torch/auto > 1 mean convcli auto is faster; auto/cv2 and "
        "sep/cv2-sep > 1 mean OpenCV is faster (sep/cv2-sep: rank-1 kernels only); "
        "auto/np pad+taps and auto/np taps > 1 mean the hand-written numpy loop is faster "
        "(target: <= 2 for 3x3 kernels at 64x64 and 128x128); "
        f"{bank_ratios} (filter banks) > 1 mean torch on {bank_threads} threads is faster "
        "(targets against torch 1t: <= 1.2 for 512x512x3 with 16 filters, <= 1.5 for "
        "256x256x16 with 32 filters).",
        f"- check: every result against convcli direct, max |diff| / max |ref| <= {TOLERANCE:g}.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="64x64/128x128 images, 1 timed run per cell",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"timed runs per cell (default {DEFAULT_REPEAT}; 1 with --quick)",
    )
    p.add_argument(
        "--cases",
        default=None,
        help="comma-separated substrings of case ids (see --list)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="Markdown file (default bench/results/core.md, core-quick.md with --quick)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=BUDGET_SECONDS,
        help="seconds after which cells are skipped",
    )
    p.add_argument(
        "--docs",
        action="store_true",
        help="also put the report into docs/performance.md between its bench_core markers",
    )
    p.add_argument("--list", action="store_true", help="print the case ids and exit")
    args = p.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the Markdown report."""
    args = parse_args(argv)
    all_cases = make_cases(args.quick)
    if args.list:
        print("\n".join(c.key for c in all_cases))
        return 0
    cases = select(all_cases, args.cases)
    if not cases:
        print(f"no case matches {args.cases!r}; see --list", file=sys.stderr)
        return 2
    repeat = args.repeat or (1 if args.quick else DEFAULT_REPEAT)
    start = time.perf_counter()
    deadline = start + args.budget
    peers = load_peers()
    # torch leaves ~1e6 objects behind: freeze them, else each gc.collect() takes ~0.1 s.
    gc.collect()
    gc.freeze()
    contenders = make_contenders()
    estimator = Estimator(side=PROBE_QUICK if args.quick else PROBE_SIDE)
    results: dict[str, CaseResult] = {}
    images: dict[str, np.ndarray] = {}
    # Smallest images first, so that larger ones have an estimate.
    for case in sorted(cases, key=lambda c: c.image.values):
        x = images.get(case.image.key)
        if x is None:
            x = images[case.image.key] = case.image.make()
        elapsed = time.perf_counter() - start
        print(f"[{elapsed:6.1f} s] {case.key}", file=sys.stderr, flush=True)
        results[case.key] = run_case(
            case, x, contenders, peers, estimator, repeat, deadline
        )
    wall = time.perf_counter() - start
    parts = [header_text(peers, args, repeat, wall)]
    for title, bank in (("Depthwise 2-D kernels", False), ("Filter banks", True)):
        group = [c for c in cases if c.bank == bank]
        if group:
            parts.append(group_tables(title, group, results, contenders, repeat))
    if peers.torch is not None and peers.torch.get_num_threads() != peers.torch_threads:
        print("warning: torch's thread count was not restored", file=sys.stderr)
    table_order = [c for c in cases if not c.bank] + [c for c in cases if c.bank]
    parts.append(auto_picks(table_order, results))
    report = "\n\n".join(parts) + "\n"
    print(report)
    out = (
        Path(args.out)
        if args.out
        else RESULTS / ("core-quick.md" if args.quick else "core.md")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"wrote {out}", file=sys.stderr)
    if args.docs:
        update_page(PERFORMANCE_PAGE, report)
        print(f"updated {PERFORMANCE_PAGE}", file=sys.stderr)
    return 0


def update_page(path: Path, report: str) -> None:
    """Replace the text between the bench_core markers of ``path`` by ``report``.

    The report's headings move two levels down, under the page's own section.
    """
    demoted = "\n".join(
        "##" + line if line.startswith("#") else line for line in report.splitlines()
    )
    replace_block(path, PAGE_MARKERS, demoted)


if __name__ == "__main__":
    sys.exit(main())
