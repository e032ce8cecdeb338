"""End-to-end time and peak memory of ``convcli apply -k sobel`` on PNGs of three sizes, against ImageMagick and a Pillow + OpenCV script.

Run from the repository root::

    .venv/bin/python bench/bench_apply.py            # 3 minutes on 2 quiet cores, at most 6 on busy ones
    .venv/bin/python bench/bench_apply.py --docs     # also rewrites the summary in docs/performance.md
    .venv/bin/python bench/bench_apply.py --venv /tmp/bench_apply_venv   # keep the venv for the next run
    .venv/bin/python bench/bench_apply.py --sizes 960x540 --repeat 2 --out /tmp/apply.md   # a quick check

What a user gets
----------------
By default the bench times a non-editable install, as a user's ``pip install``
leaves it. It builds a wheel of the checkout (``.venv/bin/python -m pip wheel
--no-deps -w TMP .``: the working tree, uncommitted changes included), creates a
fresh venv in its temporary folder (``python -m venv`` with this interpreter's
Python) and installs the wheel there with that venv's pip, with its
dependencies and ``opencv-python-headless`` for the script (``pip install -q``);
pip compiles the bytecode as it installs. convcli runs as ``VENV/bin/convcli``,
the script and the Python startup command as ``VENV/bin/python``; the venv is
deleted at the end.

* ``--venv DIR`` keeps the venv at DIR for later runs: the first run creates it
  and installs everything; later runs reuse it and reinstall only the freshly
  built wheel (``--no-deps --force-reinstall``, then ``pip install WHEEL
  opencv-python-headless``, which does nothing unless the dependencies
  changed), which skips installing numpy, OpenCV and the rest again.
* ``--editable`` times this interpreter's ``convcli`` console script and this
  Python instead (a developer's editable install), as the bench did before.

Bytecode: every timed process (and every install step) gets this environment
without ``PYTHONDONTWRITEBYTECODE`` (this workplace sets it) and without
``PYTHONPYCACHEPREFIX``, so Python writes ``.pyc`` files beside the sources and
reuses them, as on a user's machine (from a venv, ``PYTHONPATH`` and
``PYTHONHOME`` are dropped as well, so nothing from the checkout is imported).
With ``--editable`` the sources are the shared checkout, so
``PYTHONPYCACHEPREFIX`` points into the temporary folder instead: bytecode is
still written and reused, outside the checkout. The untimed runs below leave
every cache in place before the timed ones; the report says how many of the
installed convcli's modules had cached bytecode after the rounds.

Inputs: for each size of ``--sizes`` (default ``3840x2160,1920x1080,960x540``;
``--size WxH`` is one size), ``sample_images/coffee.png`` centre-cropped to the
size's aspect ratio (16:9 for the defaults) and resized with Pillow's LANCZOS
to that size, RGB, saved as PNG with Pillow's defaults. A real photo, not
noise: noise compresses badly and would inflate every encode time.

Contenders
----------
* ``convcli apply IN -k sobel --range rescale -o OUT --json``. ``--range
  rescale`` keeps the per-image 0..max stretch that the peers compute (sobel's
  own default, ``gain``, scales by the kernel instead). ``--json`` makes convcli print
  its own stage seconds (load, filter, save), which are read from every run; it
  also skips drawing the rich table.
* A minimal Pillow + OpenCV script, written to the temporary folder: Pillow
  decodes, ``cv2.Sobel`` dx and dy in float32 with ``BORDER_REFLECT_101``,
  ``cv2.magnitude``, 0..max rescaled onto 0..255 (halves up), ``cv2.imencode`` encodes.
  That is what ``convcli apply -k sobel --range rescale`` computes (per-channel gradient
  magnitude, border ``reflect``, range ``rescale``). It prints its own stage
  seconds.
* ImageMagick (``magick``, else ``convert``; a program whose ``-version`` does
  not print "Version: ImageMagick" counts as not installed, and a shell-script
  wrapper is skipped for a real binary further down PATH): its ``Sobel``
  kernel is one 3x3 kernel (the x derivative), not the gradient magnitude, so
  three commands are timed, plus a decode + encode without a filter. What each
  computes is printed with the report and checked against numpy.

Protocol
--------
Every timed command is a process of its own, with stdin from /dev/null, stdout
and stderr into files, and the temporary folder as its current folder. A small
launcher process (this Python with ``-I -S``: the standard library only, about
10 MiB) starts each one with ``subprocess.Popen`` and waits for it with
``os.wait4``: the wall time runs from just before the start to the exit, and
the ``ru_maxrss`` that ``wait4`` returns is that one child's peak resident set
size (KiB on Linux; reported in MiB). Why a launcher: Linux counts the starting
process's own peak into the child's (the child holds the parent's pages until
it execs; see bench_memory.py), and this process holds numpy, OpenCV and
float64 images, so every child started from here would show its hundreds of
MiB. The launcher's own size is a floor: the report gives what ``true``
measures through it.

1. The inputs are written; each startup command (``convcli --version``,
   ``python -c "import cv2, PIL.Image, numpy"``, ``convert -version``) runs once
   untimed.
2. Warm-up: every contender's full command runs once untimed at every size.
3. ``--repeat`` timed rounds (default 5; figures for the README need 5, so
   ``--docs`` refuses fewer, and refuses ``--editable``). Each round runs every
   startup command once (they read no image: one timing serves all sizes),
   then every size (in ``--sizes`` order) and at each size every contender
   once; the order rotates by one per round, so a busy spell of the shared
   machine hits contenders and sizes alike. Before each round the time left in
   ``--budget`` (seconds for the timed rounds of all sizes together; default
   240: on a quiet 2-core machine a round of the three default sizes took 21 s,
   14.5 of them at 3840x2160, so 5 rounds fit at up to about 2.3 times that) is
   compared with the last round's duration; the rounds stop early rather than
   run over, and the tables say ``(n=k)``; ``--docs`` then leaves the page
   alone.
4. Afterwards each contender's last output at each size is checked against a
   reference computed here with numpy and OpenCV, and the PNG encoders are
   timed in this process on convcli's output at the largest size.

Report
------
Medians throughout (``(n=k)`` where a budget stop left fewer). A header
(command, date, CPU model, load average, versions of this process and of the
timed Python, the install mode, venv path and wheel, bytecode caching, the
memory floor, thread-related environment); a summary table across sizes (median
wall seconds of convcli, the script and ImageMagick ``Sobel``, their ratios,
the median peak MiB of the three, convcli's memory against ImageMagick's, and
the issue's targets, each reported as met or not met, never asserted); the
commands; then per size the detail table (stages, peak MiB, output size), where
the time goes and the output checks; the encoder table once, for the largest
size. ``--out`` is the Markdown file (bench/results/apply.md). ``--docs`` also
writes the summary table and a short "how measured" paragraph into
docs/performance.md between ``<!-- bench_apply:begin -->`` and
``<!-- bench_apply:end -->`` (with bench/page_block.py); without those markers
it stops before measuring.

The issue's targets, on medians, against ImageMagick's ``convert in.png
-morphology Convolve Sobel out.png``:

* 3840x2160: convcli at least 2.5x faster than ImageMagick, its time within
  1.3x of the Pillow + OpenCV script's, its peak memory at most 2x ImageMagick's;
* 1920x1080: at least 1.8x faster than ImageMagick;
* 960x540: its time within 1.2x of ImageMagick's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from benchlib import (
    BYTECODE_VARS,
    IM_LIGHTEN,
    IM_MAGNITUDE,
    PEER_THREAD_VARS,
    ROOT,
    VENV_DROPPED_VARS,
    Launcher,
    Rounds,
    bytecode_set,
    contender_env,
    convcli_sobel,
    cpu_model,
    diff,
    find_imagemagick,
    fmt,
    fmt_mib,
    fmt_ratio,
    git_state,
    imagemagick_limits,
    install_wheel,
    load_rgb,
    md_table,
    median,
    mem_total,
    parse_size,
    ratio,
    step,
    thread_env,
    write_report,
)
from page_block import PERFORMANCE_PAGE, replace_block
from PIL import Image, features

from convcli.images import PNG_LEVEL

SOURCE = ROOT / "sample_images" / "coffee.png"
DEFAULT_OUT = ROOT / "bench" / "results" / "apply.md"
DEFAULT_SIZES = "3840x2160,1920x1080,960x540"
PAGE_MARKERS = ("<!-- bench_apply:begin -->", "<!-- bench_apply:end -->")
MIN_REPORT_ROUNDS = 5  # rounds the figures in the docs need
# The targets per size: (what, limit); see ``target_cells``.
TARGETS: dict[tuple[int, int], list[tuple[str, float]]] = {
    (3840, 2160): [("faster", 2.5), ("script", 1.3), ("memory", 2.0)],
    (1920, 1080): [("faster", 1.8)],
    (960, 540): [("within", 1.2)],
}

PEER_SCRIPT = '''\
"""Per-channel Sobel gradient magnitude of a PNG, as convcli apply -k sobel --range rescale computes it."""

import json
import sys
import time

t0 = time.perf_counter()
import cv2
import numpy as np
from PIL import Image

t1 = time.perf_counter()
with Image.open(sys.argv[1]) as im:
    x = np.asarray(im.convert("RGB"))
t2 = time.perf_counter()
f = x.astype(np.float32)
gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
mag = cv2.magnitude(gx, gy)
t3 = time.perf_counter()
hi = float(mag.max())
mag *= 255.0 / hi if hi > 0 else 0.0  # convcli's "rescale": 0..max onto 0..255
mag += 0.5  # halves round up; the cast truncates
pixels = mag.astype(np.uint8)
t4 = time.perf_counter()
ok, png = cv2.imencode(".png", np.ascontiguousarray(pixels[:, :, ::-1]))  # RGB -> BGR
with open(sys.argv[2], "wb") as out:
    out.write(png.tobytes())  # OpenCV's PNG defaults (level 1, RLE, Sub filter)
t5 = time.perf_counter()
print(
    json.dumps(
        {
            "import": t1 - t0,
            "decode": t2 - t1,
            "filter": t3 - t2,
            "to_pixels": t4 - t3,
            "encode": t5 - t4,
        }
    )
)
'''

STAGES = ("decode", "filter", "to_pixels", "encode")


# Run by the timed Python (with the contenders' environment): versions, and
# which of the installed convcli's modules have cached bytecode.
PROBE = """\
import importlib.util, json, pathlib, sys
info = {"python": sys.version.split()[0], "pycache_prefix": sys.pycache_prefix}
for name in ("numpy", "PIL", "cv2", "imagecodecs", "convcli"):
    try:
        info[name] = __import__(name).__version__
    except ImportError:
        info[name] = None
if info["convcli"]:
    import convcli
    pkg = pathlib.Path(convcli.__file__).parent
    sources = sorted(pkg.rglob("*.py"))
    info["convcli_dir"] = str(pkg)
    info["modules"] = len(sources)
    info["cached"] = sum(
        pathlib.Path(importlib.util.cache_from_source(str(p))).exists() for p in sources
    )
print(json.dumps(info))
"""


@dataclass
class Setup:
    """The timed Python and convcli: how they were installed, and their environment."""

    mode: str  # non-editable (a fresh or a reused venv) or editable
    python: str
    convcli: str | None
    env: dict[str, str]
    description: str
    venv: Path | None = None
    wheel: str | None = None
    seconds: float = 0.0


def install(args: argparse.Namespace, tmp: Path) -> Setup:
    """Build the wheel and install it into a venv, or take this interpreter's convcli."""
    t0 = time.perf_counter()
    if args.editable:
        env = contender_env(True, tmp / "pycache")
        exe = Path(sys.executable).parent / "convcli"
        return Setup(
            "editable (`--editable`)",
            sys.executable,
            str(exe) if exe.exists() else shutil.which("convcli"),
            env,
            "this interpreter's convcli console script and Python "
            f"({sys.executable}); PYTHONPYCACHEPREFIX set to a folder in the "
            "temporary folder, so bytecode is cached outside the checkout",
        )
    v = install_wheel(args.venv, tmp, ["opencv-python-headless"])
    if v.reused:
        mode = "non-editable, reused venv (`--venv`)"
        how = (
            f"the venv {v.venv} kept from an earlier run (`--venv`): its dependencies "
            "as installed then, the wheel reinstalled now (`--no-deps --force-reinstall`)"
        )
    else:
        mode = "non-editable, fresh venv"
        how = v.fresh_text
    return Setup(
        mode,
        str(v.python),
        str(v.convcli),
        v.env,
        f"`{v.wheel.name}`, built from the checkout (`pip wheel --no-deps`), "
        f"installed with its dependencies and opencv-python-headless by `pip install` into {how}",
        v.venv,
        v.wheel.name,
        time.perf_counter() - t0,
    )


def probe(setup: Setup) -> dict[str, object]:
    """What the timed Python imports: versions, convcli's folder and cached bytecode."""
    proc = subprocess.run(
        [setup.python, "-c", PROBE],
        capture_output=True,
        text=True,
        env=setup.env,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:]}
    return json.loads(proc.stdout)


@dataclass
class Contender:
    """One command line timed end to end at one size, and what it computes."""

    key: str
    label: str
    argv: list[str]
    startup: list[str]
    computes: str
    reference: str
    out: Path
    parse: Callable[[str], dict[str, float]] | None = None
    stage_note: str = ""
    walls: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    stages: list[dict[str, float]] = field(default_factory=list)


@dataclass
class Size:
    """One input size: its input, its contenders, and what was checked afterwards."""

    width: int
    height: int
    src: Path
    contenders: list[Contender]
    input_mb: float = 0.0
    checks: dict[str, str] = field(default_factory=dict)
    out_mb: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``WxH``."""
        return f"{self.width}x{self.height}"

    def get(self, key: str) -> Contender | None:
        """The contender ``key``, if it ran."""
        return next((c for c in self.contenders if c.key == key), None)


def shown(argv: list[str], names: dict[str, str]) -> str:
    """The command as a shell line, with temporary paths replaced by short names."""
    return shlex.join([names.get(a, a) for a in argv])


def make_input(path: Path, width: int, height: int) -> None:
    """Write the width x height RGB test photo: coffee.png cropped to its shape, LANCZOS-resized."""
    with Image.open(SOURCE) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    ch = round(w * height / width)
    if ch <= h:
        box = (0, (h - ch) // 2, w, (h - ch) // 2 + ch)
    else:
        cw = round(h * width / height)
        box = ((w - cw) // 2, 0, (w - cw) // 2 + cw, h)
    rgb.crop(box).resize((width, height), Image.Resampling.LANCZOS).save(path)


def parse_convcli(stdout: str) -> dict[str, float]:
    """Stage seconds from ``convcli apply --json``: load, filter and save."""
    seconds = json.loads(stdout)["inputs"][0]["outputs"][0]["seconds"]
    return {
        "decode": seconds["load"],
        "filter": seconds["filter"],
        "encode": seconds["save"],
    }


def parse_peer(stdout: str) -> dict[str, float]:
    """Stage seconds printed by the Pillow + OpenCV script."""
    seconds = json.loads(stdout.strip().splitlines()[-1])
    return {k: seconds[k] for k in STAGES}


def references(src: Path) -> dict[str, np.ndarray]:
    """What each contender should write, computed here (float64 results, unrounded)."""
    import cv2

    with Image.open(src) as im:
        x = np.asarray(im.convert("RGB"), dtype=np.float32)
    out: dict[str, np.ndarray] = {"copy": x.astype(np.float64)}
    for border, name in (
        (cv2.BORDER_REFLECT_101, "reflect"),
        (cv2.BORDER_REPLICATE, "edge"),
    ):
        gx = cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3, borderType=border).astype(
            np.float64
        )
        gy = cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3, borderType=border).astype(
            np.float64
        )
        mag = np.hypot(gx, gy)
        out[f"magnitude-{name}"] = mag * (255.0 / mag.max())
        if name == "edge":
            out["gx-clip"] = np.clip(gx, 0, 255)
            out["maxabs/4"] = np.maximum(np.abs(gx), np.abs(gy)) / 4
    return out


def check(path: Path, ref: np.ndarray) -> str:
    """Max and mean |difference| of the written image from the reference, in 8-bit levels."""
    if not path.exists():
        return "no output"
    return diff(load_rgb(path), np.floor(ref + 0.5))


def encode_table(convcli_png: Path, ref_mag: np.ndarray) -> list[tuple[str, str, str]]:
    """Time the PNG encoders in this process on convcli's output (one run each)."""
    import cv2

    rows: list[tuple[str, str, str]] = []
    if not convcli_png.exists():
        return rows
    with Image.open(convcli_png) as im:
        pixels = np.asarray(im.convert("RGB"))
    img = Image.fromarray(pixels)
    for label, kwargs in (
        (
            "Pillow `save(format='PNG')`, defaults (compress_level 6): a plain Pillow script",
            {},
        ),
        (
            f"Pillow `compress_level={PNG_LEVEL}`: convcli's fallback (animations, no imagecodecs)",
            {"compress_level": PNG_LEVEL},
        ),
    ):
        buf = io.BytesIO()
        t0 = time.perf_counter()
        img.save(buf, format="PNG", **kwargs)
        rows.append((label, fmt(time.perf_counter() - t0), f"{buf.tell() / 1e6:.2f}"))
    from convcli.deep_images import encode_png

    t0 = time.perf_counter()
    fast = encode_png(pixels)
    rows.append(
        (
            "libpng (imagecodecs), Paeth filter, zlib RLE: convcli (`convcli.deep_images.encode_png`)",
            fmt(time.perf_counter() - t0),
            f"{len(fast) / 1e6:.2f}",
        )
    )
    bgr = np.ascontiguousarray(pixels[:, :, ::-1])
    t0 = time.perf_counter()
    ok, data = cv2.imencode(".png", bgr)
    if ok:
        rows.append(
            (
                f"OpenCV {cv2.__version__} `cv2.imencode('.png')`, defaults: the Pillow + OpenCV script",
                fmt(time.perf_counter() - t0),
                f"{data.nbytes / 1e6:.2f}",
            )
        )
    try:
        from convcli import images

        mag32 = ref_mag.astype(np.float32)
        t0 = time.perf_counter()
        images.to_pixels(mag32, "rescale", 255.0, np.dtype(np.uint8))
        rows.append(
            (
                "(not an encode) `convcli.images.to_pixels(rescale)` on the float32 magnitude: part of convcli's save stage",
                fmt(time.perf_counter() - t0),
                "-",
            )
        )
    except (ImportError, AttributeError, TypeError) as err:
        rows.append((f"convcli.images.to_pixels: not measured ({err})", "-", "-"))
    return rows


IM_ROWS = [
    (
        "im-sobel",
        "ImageMagick Sobel",
        ["-morphology", "Convolve", "Sobel"],
        "ONE kernel, the x derivative only: clip(gx, 0, 255) per channel (negative half lost), "
        "border edge (replicate)",
        "gx-clip",
    ),
    (
        "im-both",
        "ImageMagick Sobel:> Lighten",
        IM_LIGHTEN,
        "the documented both-directions form: Sobel rotated by 0/90/180/270 degrees, "
        "the maximum of the 4 results, normalised: max(|gx|, |gy|) / 4 per channel, border edge; "
        "not the magnitude, not rescaled",
        "maxabs/4",
    ),
    (
        "im-mag",
        "ImageMagick magnitude",
        [*IM_MAGNITUDE, "-auto-level"],
        "convcli's result built from IM operators (not an IM recipe): gx/8 + 1/2 and gy/8 + 1/2 "
        "(bias keeps the sign in a Q16 build without HDRI), squared back, summed, square root, "
        "min..max stretched; border edge; squares held at 16 bits lose the faintest edges",
        "magnitude-edge",
    ),
    (
        "im-copy",
        "ImageMagick no filter",
        [],
        "decode + encode only (no filter): the PNG cost of the rows above",
        "copy",
    ),
]


def imports_only(python: str) -> list[str]:
    """The command that imports only what ``convcli apply`` needs, and exits."""
    return [
        python,
        "-c",
        "import numpy, numpy.linalg, PIL.Image, PIL.PngImagePlugin, imagecodecs, typer",
    ]


def contenders_for(
    folder: Path, src: Path, setup: Setup, peer: Path | None, im_exe: str | None
) -> list[Contender]:
    """The contenders found on this machine, reading ``src`` and writing into ``folder``."""
    contenders: list[Contender] = []
    if setup.convcli:
        out = folder / "convcli.png"
        contenders.append(
            Contender(
                "convcli",
                "convcli apply",
                [*convcli_sobel(setup.convcli, "apply", src, out), "--json"],
                [setup.convcli, "--version"],
                "per-channel gradient magnitude sqrt(gx^2 + gy^2) (OpenCV's Sobel kernels), "
                "border reflect (d c b | a b c d), computed in float32, its 0..max mapped onto 0..255 (halves up)",
                "magnitude-reflect",
                out,
                parse_convcli,
                "decode = its `load`, filter = `filter`, encode = `save` (float64 rescale to uint8 + PNG encode)",
            )
        )
    if peer is not None:
        out = folder / "peer.png"
        contenders.append(
            Contender(
                "peer",
                "Pillow + OpenCV script",
                [setup.python, str(peer), str(src), str(out)],
                [setup.python, "-c", "import cv2, PIL.Image, numpy"],
                "the same as convcli: cv2.Sobel dx and dy (float32, BORDER_REFLECT_101), "
                "cv2.magnitude, 0..max onto 0..255 (halves up), decoded by Pillow, encoded by cv2.imencode",
                "magnitude-reflect",
                out,
                parse_peer,
                "its own perf_counter stages",
            )
        )
    if im_exe is not None:
        for key, label, args, computes, reference in IM_ROWS:
            out = folder / f"{key}.png"
            contenders.append(
                Contender(
                    key,
                    label,
                    [im_exe, str(src), *args, str(out)],
                    [im_exe, "-version"],
                    computes,
                    reference,
                    out,
                    None,
                    "total and startup only",
                )
            )
    return contenders


def target_cells(size: Size) -> str:
    """The issue's targets at this size, each with its measured value and met / not met."""
    goals = TARGETS.get((size.width, size.height))
    if not goals:
        return "no goal at this size"
    med = {
        key: (median(c.walls), median(c.peaks))
        for key in ("convcli", "peer", "im-sobel")
        if (c := size.get(key)) is not None
    }
    convcli = med.get("convcli", (None, None))
    peer = med.get("peer", (None, None))
    im = med.get("im-sobel", (None, None))
    cells = []
    for what, limit in goals:
        if what == "faster":
            value = ratio(im[0], convcli[0])
            text = f">= {limit:g}x faster than IM Sobel: IM/convcli"
        elif what == "script":
            value = ratio(convcli[0], peer[0])
            text = f"within {limit:g}x of the script: convcli/script"
        elif what == "memory":
            value = ratio(convcli[1], im[1])
            text = f"peak <= {limit:g}x IM Sobel's: convcli/IM"
        else:  # "within"
            value = ratio(convcli[0], im[0])
            text = f"within {limit:g}x of IM Sobel's time: convcli/IM"
        if value is None:
            cells.append(f"{text} not measured")
            continue
        good = value >= limit if what == "faster" else value <= limit
        shown_value = f"{value:.4f}" if round(value, 2) == limit else f"{value:.2f}"
        cells.append(f"{text} {shown_value}, {'met' if good else '**not met**'}")
    return "; ".join(cells)


def summary_table(sizes: list[Size], repeat: int) -> str:
    """One row per size: times, ratios, peak memory, targets."""
    rows = []
    for size in sizes:
        c = {key: size.get(key) for key in ("convcli", "peer", "im-sobel")}
        wall = {k: median(v.walls) if v else None for k, v in c.items()}
        peak = {k: median(v.peaks) if v else None for k, v in c.items()}
        n = min((len(v.walls) for v in size.contenders), default=0)
        rows.append(
            [
                size.name + (f" (n={n})" if n < repeat else ""),
                fmt(wall["convcli"]),
                fmt(wall["peer"]),
                fmt(wall["im-sobel"]),
                fmt_ratio(ratio(wall["im-sobel"], wall["convcli"])),
                fmt_ratio(ratio(wall["convcli"], wall["peer"])),
                fmt_mib(peak["convcli"]),
                fmt_mib(peak["peer"]),
                fmt_mib(peak["im-sobel"]),
                fmt_ratio(ratio(peak["convcli"], peak["im-sobel"])),
                target_cells(size),
            ]
        )
    header = [
        "size",
        "convcli s",
        "script s",
        "IM Sobel s",
        "IM/convcli",
        "convcli/script",
        "convcli MiB",
        "script MiB",
        "IM Sobel MiB",
        "mem convcli/IM",
        "goals",
    ]
    return md_table(header, rows)


def size_section(
    size: Size, startups: dict[str, list[float]], repeat: int
) -> list[str]:
    """The detail table, where the time goes and the output checks of one size."""
    rounds = min((len(c.walls) for c in size.contenders), default=0)
    base = next((median(c.walls) for c in size.contenders if c.key == "convcli"), None)
    rows: list[list[str]] = []
    shares: list[str] = []
    for c in size.contenders:
        wall = median(c.walls)
        startup = median(startups.get(c.key, []))
        st = {k: median([s[k] for s in c.stages if k in s]) for k in STAGES}
        known = [v for v in (startup, *st.values()) if v is not None]
        rest = wall - sum(known) if wall is not None else None
        if c.parse and wall:
            parts = {"startup": startup, **st, "rest": rest}
            shares.append(
                f"- {c.label}: "
                + ", ".join(
                    f"{k.replace('_', ' ')} {v / wall * 100:.0f} %"
                    for k, v in parts.items()
                    if v is not None
                )
            )
        n = f" (n={len(c.walls)})" if len(c.walls) < repeat else ""
        if c.key == "convcli":
            to_pix_cell = "in encode"
        elif c.parse:
            to_pix_cell = fmt(st["to_pixels"])
        else:
            to_pix_cell = "-"
        rows.append(
            [
                c.label,
                fmt(wall) + n,
                f"{fmt(min(c.walls))}-{fmt(max(c.walls))}" if c.walls else "-",
                fmt_mib(median(c.peaks)),
                fmt(startup),
                fmt(st["decode"]),
                fmt(st["filter"]),
                to_pix_cell,
                fmt(st["encode"]),
                fmt(rest) + ("" if c.parse else " (decode+filter+encode)"),
                f"{size.out_mb[c.key]:.2f}" if c.key in size.out_mb else "-",
                fmt_ratio(ratio(wall, base)),
            ]
        )
    header = [
        "contender",
        "wall s (median)",
        "min-max",
        "peak MiB",
        "startup",
        "decode",
        "filter",
        "to pixels",
        "encode",
        "rest",
        "out MB",
        "x convcli",
    ]
    lines = [
        f"## {size.name}",
        "",
        f"Input: {size.input_mb:.2f} MB. Seconds, medians of {rounds} rounds; peak resident memory "
        "in MiB, medians.",
        "",
        md_table(header, rows),
        "",
        "Where the time goes (share of the median wall time):",
        "",
        *shares,
        "",
        "Check of the last output of each contender against a reference computed in this process "
        "(numpy/OpenCV, float64, rounded half up), in 8-bit levels:",
        "",
        *(
            f"- {c.label} (vs {c.reference}): {size.checks[c.key]}"
            for c in size.contenders
        ),
        "",
    ]
    return lines


def shown_path(path: Path) -> str:
    """``path`` relative to the checkout if inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main() -> None:
    """Install, run the benchmark, print the Markdown report and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="timed rounds: each runs every startup command and every contender at every size once (5)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=240.0,
        help="seconds for the timed rounds of all sizes together; rounds stop early "
        "rather than exceed it (240)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="the Markdown report"
    )
    which_sizes = parser.add_mutually_exclusive_group()
    which_sizes.add_argument(
        "--sizes", help=f"comma-separated WxH sizes of the test photo ({DEFAULT_SIZES})"
    )
    which_sizes.add_argument("--size", help="one WxH size (the same as --sizes WxH)")
    which_install = parser.add_mutually_exclusive_group()
    which_install.add_argument(
        "--venv",
        type=Path,
        help="keep the venv at this folder: create it if missing, else reuse it "
        "(only the freshly built wheel is reinstalled)",
    )
    which_install.add_argument(
        "--editable",
        action="store_true",
        help="time this interpreter's convcli and Python instead of a wheel in a venv",
    )
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also write the summary into docs/performance.md (between its "
        "bench_apply markers)",
    )
    args = parser.parse_args()
    try:
        sizes = [
            parse_size(t) for t in (args.size or args.sizes or DEFAULT_SIZES).split(",")
        ]
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    if len(set(sizes)) < len(sizes):
        parser.error("a size is given twice")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.docs:  # fail now, not after minutes of measuring
        if args.repeat < MIN_REPORT_ROUNDS:
            parser.error(f"--docs needs --repeat {MIN_REPORT_ROUNDS} or more")
        if args.editable:
            parser.error("--docs needs the non-editable install: drop --editable")
        page = PERFORMANCE_PAGE.read_text() if PERFORMANCE_PAGE.exists() else ""
        if not all(m in page for m in PAGE_MARKERS):
            msg = (
                f"{PERFORMANCE_PAGE} has no {PAGE_MARKERS[0]} ... {PAGE_MARKERS[1]} "
                "markers: add them where the summary belongs, then run again"
            )
            raise SystemExit(msg)
    started = time.perf_counter()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench_apply.") as tmp_name:
        tmp = Path(tmp_name)
        setup = install(args, tmp)
        before = probe(setup)
        versions: dict[str, str] = {}
        if setup.convcli:
            versions["convcli"] = step(
                [setup.convcli, "--version"], setup.env, tmp
            ).strip()
        peer: Path | None = None
        if before.get("cv2"):
            peer = tmp / "pil_cv2_sobel.py"
            peer.write_text(PEER_SCRIPT)
        im = find_imagemagick()
        if im is not None:
            versions["ImageMagick"] = im[1]
            versions["ImageMagick path"] = im[2]
            versions["ImageMagick limits"] = imagemagick_limits(im[0])
        missing: dict[str, str] = {}
        if not setup.convcli:
            missing["convcli apply"] = "not installed"
        if peer is None:
            missing["Pillow + OpenCV script"] = (
                f"not installed (no cv2 in {setup.python})"
            )
        if im is None:
            missing.update({row[1]: "not installed" for row in IM_ROWS})

        runs: list[Size] = []
        for width, height in sizes:
            folder = tmp / f"{width}x{height}"
            folder.mkdir()
            src = folder / "in.png"
            make_input(src, width, height)
            contenders = contenders_for(folder, src, setup, peer, im and im[0])
            runs.append(Size(width, height, src, contenders, src.stat().st_size / 1e6))
            print(
                f"input {width}x{height}: {runs[-1].input_mb:.1f} MB", file=sys.stderr
            )
        if not runs[0].contenders:
            msg = "nothing to time: no convcli, no cv2, no ImageMagick"
            raise SystemExit(msg)

        launcher = Launcher(tmp, setup.env, error_tail=500)
        try:
            floor = launcher.run([shutil.which("true") or "/bin/true"]).peak_mib
            # startup commands (the same at every size): one untimed run each here,
            # the timed ones in the rounds
            startups: dict[str, list[float]] = {c.key: [] for c in runs[0].contenders}
            for c in runs[0].contenders:
                launcher.run(c.startup)
            # the floor of a Python CLI: only the imports `convcli apply` needs
            imports_floor: list[float] = []
            launcher.run(imports_only(setup.python))
            # warm-up: every full command once, untimed, at every size
            t_warm = time.perf_counter()
            for size in runs:
                for c in size.contenders:
                    launcher.run(c.argv, c.out)
            warm_seconds = time.perf_counter() - t_warm
            print(f"warm-up: {warm_seconds:.1f} s", file=sys.stderr)

            rounds = Rounds(args.repeat, args.budget)
            for r in rounds:
                k = r % len(runs[0].contenders)
                for c in runs[0].contenders[k:] + runs[0].contenders[:k]:
                    startups[c.key].append(launcher.run(c.startup).wall)
                imports_floor.append(launcher.run(imports_only(setup.python)).wall)
                for size in runs:
                    k = r % len(size.contenders)
                    for c in size.contenders[k:] + size.contenders[:k]:
                        done = launcher.run(c.argv, c.out)
                        c.walls.append(done.wall)
                        c.peaks.append(done.peak_mib)
                        if c.parse:
                            c.stages.append(c.parse(done.stdout))
                        print(
                            f"round {r + 1}, {size.name}: {c.label}: {done.wall:.2f} s, "
                            f"{done.peak_mib:.0f} MiB",
                            file=sys.stderr,
                        )
            stopped, loop_seconds = rounds.stopped, rounds.seconds
        finally:
            launcher.close()
        after = probe(setup)

        largest = max(runs, key=lambda s: s.width * s.height)
        enc_rows: list[tuple[str, str, str]] = []
        for size in runs:
            refs = references(size.src)
            size.checks = {
                c.key: check(c.out, refs[c.reference]) for c in size.contenders
            }
            size.out_mb = {
                c.key: c.out.stat().st_size / 1e6
                for c in size.contenders
                if c.out.exists()
            }
            if size is largest:
                enc_rows = encode_table(
                    size.src.parent / "convcli.png", refs["magnitude-reflect"]
                )
            del refs

        names: dict[str, str] = {}
        for size in runs:
            names[str(size.src)] = "in.png"
            names.update({str(c.out): "out.png" for c in size.contenders})
        if peer is not None:
            names[str(peer)] = "pil_cv2_sobel.py"
        if setup.venv is not None:
            names[setup.python] = "venv/bin/python"
            if setup.convcli:
                names[setup.convcli] = "venv/bin/convcli"
        else:
            names[setup.python] = ".venv/bin/python"
            if setup.convcli:
                names[setup.convcli] = "convcli"

    try:
        import cv2

        bench_cv2 = cv2.__version__
    except ImportError:
        bench_cv2 = "not installed"
    command = shlex.join([".venv/bin/python", "bench/bench_apply.py", *sys.argv[1:]])
    n_rounds = min(len(c.walls) for size in runs for c in size.contenders)
    size_names = [s.name for s in runs]
    title_sizes = (
        ", ".join(size_names[:-1]) + " and " + size_names[-1]
        if len(size_names) > 1
        else size_names[0]
    )
    set_here = bytecode_set()
    if args.editable:
        bytecode = (
            "the timed processes run without PYTHONDONTWRITEBYTECODE and with "
            "PYTHONPYCACHEPREFIX pointing into the temporary folder, as the checkout is "
            f"shared (set in the bench's environment: {set_here or 'neither'})"
        )
    else:
        bytecode = (
            "the install steps and the timed processes run with this environment minus "
            + ", ".join(BYTECODE_VARS + VENV_DROPPED_VARS)
            + f" (set in the bench's environment: {set_here or 'none of them'}), "
            "so Python writes .pyc files beside the sources and reuses them"
        )
    if "error" in after:
        bytecode += f"; the timed Python could not be probed: {after['error']}"
    else:
        where = (
            f", under {after['pycache_prefix']}" if after.get("pycache_prefix") else ""
        )
        bytecode += (
            f"; after the rounds, {after.get('cached')} of the {after.get('modules')} "
            f"modules of the convcli it imports ({after.get('convcli_dir')}) had "
            f"cached bytecode{where}"
        )
    lines = [
        f"# convcli apply, end to end: Sobel on RGB PNGs of {title_sizes}",
        "",
        f"- command: `{command}`",
        f"- date: {date}; wall time of the run: {time.perf_counter() - started:.0f} s "
        f"(install {setup.seconds:.0f} s, untimed warm-up {warm_seconds:.0f} s, "
        f"timed rounds {loop_seconds:.0f} s)",
        f"- machine: {platform.system()} {platform.machine()}, {cpu_model()}, "
        f"nproc {os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), {mem_total()}; "
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after "
        "(a shared machine: other work adds time)",
        f"- install: **{setup.mode}**: {setup.description}",
        f"- timed Python ({names.get(setup.python, setup.python)}): Python {before.get('python')}, "
        f"numpy {before.get('numpy')}, Pillow {before.get('PIL')}, OpenCV {before.get('cv2')}, "
        f"imagecodecs {before.get('imagecodecs')}; "
        f"{versions.get('convcli', 'convcli not installed')} (checkout {git_state()})",
        f"- bytecode: {bytecode}",
        f"- this process (inputs, output checks, encoder table): Python {platform.python_version()}, "
        f"numpy {np.__version__}, Pillow {Image.__version__} (zlib {features.version('zlib')}), "
        f"OpenCV {bench_cv2}",
        f"- ImageMagick: {versions.get('ImageMagick', 'not installed')}",
    ]
    if "ImageMagick path" in versions:
        lines[-1] += (
            f"; {versions['ImageMagick path']}; limits {versions['ImageMagick limits']}"
        )
    lines += [
        "- peak memory: `ru_maxrss` of each process from `os.wait4`, started by a small "
        "launcher process (the standard library only), so the bench's own memory is not "
        f"counted in; the launcher's own size is a floor: `true` measures {floor:.1f} MiB",
        "- inputs: `sample_images/coffee.png` (600x400) centre-cropped to the size's aspect "
        "ratio, resized with Pillow LANCZOS, RGB, saved by Pillow: "
        + ", ".join(f"{s.name} {s.input_mb:.2f} MB" for s in runs),
        f"- rounds: {n_rounds} timed per size"
        + (f" (asked: {args.repeat})" if n_rounds < args.repeat else "")
        + ", after one untimed run of every command at every size"
        + (
            f"; fewer than {MIN_REPORT_ROUNDS}: a check run, not figures for the README"
            if n_rounds < MIN_REPORT_ROUNDS
            else ""
        ),
        f"- thread-related environment: {thread_env(PEER_THREAD_VARS)}",
        "",
        "## Summary",
        "",
        summary_table(runs, args.repeat),
        "",
        "- Seconds: median wall time of whole processes; MiB: median peak resident memory. "
        '"script" is the Pillow + OpenCV script; "IM Sobel" is '
        "`convert in.png -morphology Convolve Sobel out.png`, one kernel (the x derivative), "
        "less work than convcli's gradient magnitude (the other ImageMagick rows are in the "
        "tables per size).",
        "- IM/convcli above 1: convcli is faster; convcli/script below 1: convcli is faster; "
        "mem convcli/IM: convcli's peak memory over ImageMagick's.",
        "- Goals, reported, not asserted: 3840x2160: convcli at least 2.5x "
        "faster than IM Sobel, within 1.3x of the script, peak memory at most 2x IM Sobel's; "
        "1920x1080: at least 1.8x faster than IM Sobel; 960x540: within 1.2x of IM Sobel's time.",
        "- The floor of any Python command line here: a process that only imports what "
        f"`convcli apply` needs (`{shlex.join(imports_only('python')[1:])}`) takes "
        f"{fmt(median(imports_floor))} s (median of {len(imports_floor)}), before it reads "
        "a pixel; the script's startup row below is its own such floor.",
    ]
    if stopped:
        lines.append(f"- {stopped}.")
    lines += [
        "",
        "## Commands",
        "",
        "`in.png` and `out.png` stand for files in one temporary folder per size; the output "
        "is removed before each run.",
        "",
    ]
    for c in runs[0].contenders:
        lines += [
            f"- **{c.label}**: `{shown(c.argv, names)}`",
            f"  - computes: {c.computes}",
            f"  - startup: `{shown(c.startup, names)}`; stages: {c.stage_note}",
        ]
    for label, why in missing.items():
        lines.append(f"- **{label}**: {why}")
    lines += [
        "- **pil_cv2_sobel.py**, the Pillow + OpenCV script (written by the bench):",
        "",
        "```python",
        *PEER_SCRIPT.rstrip().splitlines(),
        "```",
        "",
        "## Per size",
        "",
        "How to read:",
        "",
        "- wall: process start to exit, as the launcher sees it. peak MiB: the process's peak "
        "resident memory. startup: the median of the startup command alone (interpreter + "
        "imports, or the binary's start; timed once per round, for all sizes). Stage columns: "
        "medians of the stage times the program reports itself; rest = wall - startup - stages "
        "(argument parsing, kernel loading, output, freeing memory at exit; medians do not add up exactly).",
        "- x convcli: the contender's median wall time / convcli's (below 1: faster than convcli).",
        "- ImageMagick reports no stages; its decode + encode cost is the 'no filter' row, so its "
        "filter costs roughly its row minus that one.",
        "",
    ]
    for size in runs:
        lines += size_section(size, startups, args.repeat)
    lines += [
        f"## PNG encoding ({largest.name})",
        "",
        "The PNG encoder's settings weigh on every row's encode time:",
        "",
        "- convcli encodes with libpng through imagecodecs: every row Paeth-filtered, zlib's "
        "RLE strategy (`convcli.deep_images.encode_png`); Pillow at `compress_level` "
        f"{PNG_LEVEL} only for animations, `--compress-level`, or without imagecodecs.",
        "- The Pillow + OpenCV script encodes with `cv2.imencode('.png')`: OpenCV 4's default "
        "`IMWRITE_PNG_COMPRESSION` 1 with the Z_RLE strategy and the Sub filter.",
        "- ImageMagick 6: `-quality` for PNG defaults to 75, read as zlib level 7 (tens digit) "
        "and PNG filter 5 (units digit: adaptive filtering).",
        "",
        f"convcli's {largest.name} output encoded in this process (the checkout's convcli), "
        "one run each:",
        "",
        md_table(["encoder", "seconds", "MB"], [list(r) for r in enc_rows]),
        "",
    ]
    write_report("\n".join(lines), args.out)
    if args.docs and n_rounds < MIN_REPORT_ROUNDS:
        msg = (
            f"{PERFORMANCE_PAGE} left alone: the budget stopped the rounds at "
            f"{n_rounds}, fewer than {MIN_REPORT_ROUNDS}; run again with a larger --budget"
        )
        raise SystemExit(msg)
    if args.docs:
        how = (
            f"How measured: `{command}` on {date}, {cpu_model()} "
            f"({len(os.sched_getaffinity(0))} cores, shared); convcli "
            + (
                f"installed from its wheel (`{setup.wheel}`) with its dependencies by pip "
                "into a venv, bytecode cached, as a user's `pip install` leaves it"
                if setup.wheel
                else "from the developer's editable install"
            )
            + f", Python {before.get('python')}, "
            f"{versions.get('ImageMagick', 'ImageMagick not installed')}. Each cell is the "
            f"median of {n_rounds} alternating rounds of whole processes "
            "(`convcli apply in.png -k sobel --range rescale -o out.png --json`, the Pillow + OpenCV script, "
            "`convert in.png -morphology Convolve Sobel out.png`); memory is each process's "
            "peak resident set (`ru_maxrss`). ImageMagick's `Sobel` is one kernel (the x "
            "derivative), less work than convcli's gradient magnitude. Commands, stages, "
            f"the other ImageMagick forms and output checks: `{shown_path(args.out)}`. "
            "The floor of a Python command line: a process that only imports what "
            f"`convcli apply` needs takes {fmt(median(imports_floor))} s here, "
            "before it reads a pixel."
        )
        replace_block(
            PERFORMANCE_PAGE,
            PAGE_MARKERS,
            f"{summary_table(runs, args.repeat)}\n\n{how}\n\n"
            f"The PNG encoders on convcli's {largest.name} output, in one process, one run "
            "each:\n\n"
            + md_table(["encoder", "seconds", "MB"], [list(r) for r in enc_rows]),
        )
        print(f"summary written into {PERFORMANCE_PAGE}", file=sys.stderr)


if __name__ == "__main__":
    main()
