"""Images per second of ``convcli batch -k sobel`` on a folder of PNGs, against mogrify and a Pillow + OpenCV loop.

Run from the repository root::

    .venv/bin/python bench/bench_batch.py                       # 300 images, 3 rounds: about 20 minutes
    .venv/bin/python bench/bench_batch.py --count 100 --docs  # about 8 minutes; rewrites docs/performance.md's section

Every contender is one command, started with ``subprocess.run`` on the same
folder of inputs and writing into its own empty output folder; the wall time
runs from the start of the process to its exit, as a user sees it (start-up,
finding the files and a process pool included). CPU time is the children's
user + system time (``getrusage``), so CPU / wall tells how many cores a
command kept busy.

Input: ``--count`` photo-like 640x480 RGB PNGs (smooth colour gradients, a few
soft-edged discs and rectangles, Gaussian noise of 3 levels), each made by
``numpy.random.default_rng([6, index])`` and saved by Pillow with its defaults.
Noise, not content, sets how much zlib can squeeze, and so the decode and
encode costs; these images take about 460 KB each, as a 640x480 photo does.
They are made once and cached in ``$TMPDIR/convcli-bench-batch-640x480-v1``
(delete it to remake them); each run links the first ``--count`` of them into
its own input folder.

Contenders
----------
* ``convcli batch in -k sobel --range rescale -o out --jobs 1`` and ``--jobs 2``
  (``rescale``: the 0..max stretch the other contenders compute), the console
  script beside this Python, with ``--json``: it prints convcli's own clock of
  the run and each item's seconds (and draws no table).
* ImageMagick 6 ``mogrify -path out ... in/*.png``, one process for the whole
  folder. mogrify rejects ``( -clone )`` and ``-compose``, and runs all its
  per-image operators before its list operators (``-duplicate``, ``+append``,
  ``-evaluate-sequence``), whatever their order on the command line, so
  bench_apply.py's magnitude chain cannot be written for it; the row is the one-operator form that bench_apply.py times as "Sobel:>
  Lighten", plus ``-auto-level`` for the rescale: max(|gx|, |gy|) per channel,
  not the magnitude. (``-fx`` can compute the magnitude, at about 37 s per
  image.)
* The magnitude itself from ImageMagick: bench_apply.py's "ImageMagick
  magnitude" command line, run by ``convert`` once per image from a ``sh``
  loop (one process per image, one after another).
* A plain Pillow + OpenCV loop (the script is printed in the report): Pillow
  decodes, ``cv2.Sobel`` dx and dy in float32, ``cv2.magnitude``, 0..max onto
  0..255, Pillow encodes with its defaults; in one process, and split over 2
  processes by ``multiprocessing.Pool``.

Protocol: the startup commands run once untimed, then ``--repeat`` timed
times. Then ``--repeat`` rounds, each running every contender once (the order
rotates per round, so a busy spell of the shared machine hits all of them
alike); before each round the time left in ``--budget`` is compared with the
last round's duration, and the rounds stop early rather than run over.
Reported: medians; the target ratios also per round (paired). Afterwards: the
stages of convcli and of the loop timed in this process on the first
``--sample`` images, mogrify on those images with and without
``MAGICK_THREAD_LIMIT=1`` and without a filter, and a check of three outputs
of every contender against references computed here.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import hashlib
import importlib.util
import io
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from benchlib import (
    IM_LIGHTEN,
    IM_MAGNITUDE,
    PEER_THREAD_VARS,
    ROOT,
    Rounds,
    convcli_sobel,
    cpu_model,
    diff,
    find_imagemagick,
    fmt,
    git_state,
    imagemagick_limits,
    load_rgb,
    md_table,
    median,
    mem_total,
    thread_env,
    write_report,
)
from page_block import PERFORMANCE_PAGE, replace_block
from PIL import Image, features

DEFAULT_OUT = ROOT / "bench" / "results" / "batch.md"
PAGE_MARKERS = ("<!-- bench_batch:begin -->", "<!-- bench_batch:end -->")
WIDTH, HEIGHT = 640, 480
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
QUIET = 0.25  # cores taken by other work below which a run counts as undisturbed
CACHE = Path(tempfile.gettempdir()) / f"convcli-bench-batch-{WIDTH}x{HEIGHT}-v1"

LOOP_SCRIPT = '''\
"""Per-channel Sobel gradient magnitude of every PNG in a folder, with Pillow + OpenCV."""

import sys
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def sobel(src, dst):
    with Image.open(src) as im:
        x = np.asarray(im.convert("RGB"), dtype=np.float32)
    gx = cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    mag = cv2.magnitude(gx, gy)
    hi = float(mag.max())
    mag *= 255.0 / hi if hi > 0 else 0.0  # convcli's "rescale": 0..max onto 0..255
    mag += 0.5  # halves round up; the cast truncates
    Image.fromarray(mag.astype(np.uint8)).save(dst)  # Pillow's PNG defaults (level 6)


if __name__ == "__main__":
    src_dir, out_dir, processes = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    pairs = [(p, out_dir / p.name) for p in sorted(src_dir.glob("*.png"))]
    if processes == 1:
        for src, dst in pairs:
            sobel(src, dst)
    else:
        with Pool(processes) as pool:
            pool.starmap(sobel, pairs, chunksize=1)
'''


@dataclass
class Contender:
    """One command that filters the whole input folder, and what it computes."""

    key: str
    label: str
    processes: str
    argv: list[str]
    computes: str
    reference: str
    out: Path
    out_name: Callable[[str], str]
    parse: Callable[[str], dict[str, float]] | None = None
    env: dict[str, str] | None = None
    shown_as: str = ""  # the command as the report shows it, if not argv
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    others: list[float] = field(default_factory=list)
    own: list[dict[str, float]] = field(default_factory=list)
    sizes: list[float] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Inputs


def make_photo(index: int) -> np.ndarray:
    """Test image ``index``: colour gradients and waves, soft-edged shapes, mild noise (uint8)."""
    rng = np.random.default_rng([6, index])
    rows = np.arange(HEIGHT, dtype=np.float32)[:, None]
    cols = np.arange(WIDTH, dtype=np.float32)[None, :]
    u, v = rows / HEIGHT, cols / WIDTH
    img = np.empty((HEIGHT, WIDTH, 3), np.float32)
    for c in range(3):
        a, b = rng.uniform(-120, 120, 2)
        base = rng.uniform(60, 200)
        fr, fc = rng.uniform(1, 4, 2)
        phase = rng.uniform(0, 2 * np.pi)
        img[:, :, c] = (
            base
            + a * u
            + b * v
            + 25 * np.sin(2 * np.pi * (fr * u + 0.7 * fc * v) + phase)
        )
    for _ in range(int(rng.integers(4, 9))):
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        if rng.random() < 0.5:
            r0, c0 = rng.uniform(0, HEIGHT), rng.uniform(0, WIDTH)
            radius = rng.uniform(20, 140)
            mask = np.clip(radius - np.hypot(rows - r0, cols - c0) + 0.5, 0, 1)
        else:
            top, bottom = np.sort(rng.uniform(0, HEIGHT, 2))
            left, right = np.sort(rng.uniform(0, WIDTH, 2))
            mask = np.clip(np.minimum(rows - top, bottom - rows) + 0.5, 0, 1) * np.clip(
                np.minimum(cols - left, right - cols) + 0.5, 0, 1
            )
        m = (mask * rng.uniform(0.5, 1.0))[:, :, None]
        img = img * (1 - m) + colour * m
    img += rng.normal(0, 3.0, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def cached_inputs(count: int) -> list[Path]:
    """The first ``count`` test images in the cache folder, made if missing."""
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = []
    made = 0
    t0 = time.perf_counter()
    for index in range(count):
        path = CACHE / f"img{index:04d}.png"
        if not path.exists():
            tmp = path.with_name(f".{path.name}.tmp")
            Image.fromarray(make_photo(index)).save(tmp, format="PNG")
            os.replace(tmp, path)
            made += 1
        paths.append(path)
    if made:
        print(
            f"made {made} test images in {time.perf_counter() - t0:.0f} s ({CACHE})",
            file=sys.stderr,
        )
    return paths


def link_inputs(paths: list[Path], folder: Path) -> None:
    """Hard-link (else copy) the inputs into ``folder``, which holds nothing else."""
    folder.mkdir()
    for p in paths:
        try:
            os.link(p, folder / p.name)
        except OSError:
            shutil.copyfile(p, folder / p.name)


# ---------------------------------------------------------------------------
# Running


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so that their CPU time is counted.

    convcli's pool workers are forked by a forkserver process, which outlives
    convcli by a moment; without this, init reaps the forkserver and the
    workers' CPU time never reaches ``RUSAGE_CHILDREN`` here.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def reap_orphans() -> None:
    """Wait for every adopted descendant (a forkserver exits once convcli has)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def machine_seconds() -> tuple[float, float]:
    """CPU seconds of all cores since boot from /proc/stat: (all, idle + iowait)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return 0.0, 0.0
    ticks = [int(f) for f in fields]
    hz = os.sysconf("SC_CLK_TCK")
    return sum(ticks) / hz, (ticks[3] + ticks[4]) / hz


@dataclass
class Run:
    """One command's wall time, its own CPU time, the CPU others took meanwhile."""

    wall: float
    cpu: float
    others: float  # CPU seconds of every other process (and steal) during the run
    stdout: str


def run(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` once and measure it (CPU: it and all its descendants)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    all0, idle0 = machine_seconds()
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )
    wall = time.perf_counter() - t0
    all1, idle1 = machine_seconds()
    reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        msg = f"{shlex.join(argv)[:300]} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}"
        raise RuntimeError(msg)
    others = max(0.0, (all1 - all0) - (idle1 - idle0) - cpu)
    return Run(wall, cpu, others, proc.stdout)


def run_contender(c: Contender, names: list[str]) -> None:
    """Run one contender into its emptied output folder; check it wrote every output."""
    shutil.rmtree(c.out, ignore_errors=True)
    c.out.mkdir()
    r = run(c.argv, c.env)
    missing = [n for n in names if not (c.out / c.out_name(n)).is_file()]
    if missing:
        msg = f"{c.label}: {len(missing)} of {len(names)} outputs missing, e.g. {missing[0]}"
        raise RuntimeError(msg)
    c.walls.append(r.wall)
    c.cpus.append(r.cpu)
    c.others.append(r.others)
    c.sizes.append(sum(f.stat().st_size for f in c.out.iterdir()) / 1e6)
    if c.parse:
        c.own.append(c.parse(r.stdout))


def parse_convcli(stdout: str) -> dict[str, float]:
    """convcli's own clock of the run, and the median of its per-item seconds."""
    doc = json.loads(stdout)
    seconds = [item["seconds"] for item in doc["items"]]
    return {
        "in_run": doc["summary"]["seconds"],
        "item_median": statistics.median(seconds),
        "item_sum": sum(seconds),
    }


def imagemagick_features(exe: str) -> str:
    """The ``Features:`` line of ``exe -version``."""
    out = run([exe, "-version"]).stdout
    m = re.search(r"^Features:\s*(.*?)\s*$", out, re.M)
    return m.group(1) if m else "unknown"


def build(
    tmp: Path, src: Path, names: list[str]
) -> tuple[list[Contender], dict[str, str], dict[str, str]]:
    """The contenders found on this machine; also versions and notes for the header."""
    versions: dict[str, str] = {}
    missing: dict[str, str] = {}
    contenders: list[Contender] = []
    py = sys.executable
    files = [str(src / n) for n in names]

    exe = Path(py).parent / "convcli"
    convcli = str(exe) if exe.exists() else shutil.which("convcli")
    if convcli:
        versions["convcli"] = run([convcli, "--version"]).stdout.strip()
        versions["convcli path"] = convcli
        for jobs in (1, 2):
            out = tmp / f"convcli-j{jobs}"
            contenders.append(
                Contender(
                    f"convcli-j{jobs}",
                    f"convcli batch --jobs {jobs}",
                    str(jobs),
                    [
                        *convcli_sobel(convcli, "batch", src, out),
                        "--jobs",
                        str(jobs),
                        "--json",
                    ],
                    "per-channel gradient magnitude sqrt(gx^2 + gy^2), border reflect, float32, "
                    "0..max onto 0..255 (halves up); PNG zlib level 1",
                    "magnitude-reflect",
                    out,
                    lambda n: n.removesuffix(".png") + ".sobel.rescale.png",
                    parse_convcli,
                )
            )
        if importlib.util.find_spec("distributed") is None:
            missing["convcli batch --scheduler local"] = (
                "Dask's distributed not installed"
            )
        else:
            out = tmp / "convcli-dask"
            contenders.append(
                Contender(
                    "convcli-dask",
                    "convcli batch --scheduler local -j 2",
                    "2 (Dask LocalCluster)",
                    [
                        *convcli_sobel(convcli, "batch", src, out),
                        "--scheduler",
                        "local",
                        "--jobs",
                        "2",
                        "--json",
                    ],
                    "as convcli batch, each item placed by a Dask LocalCluster of 2 "
                    "one-thread worker processes started by the command",
                    "magnitude-reflect",
                    out,
                    lambda n: n.removesuffix(".png") + ".sobel.rescale.png",
                    parse_convcli,
                )
            )
    else:
        missing["convcli batch"] = "not installed"

    try:
        import cv2

        versions["OpenCV"] = f"{cv2.__version__} ({cv2.getNumThreads()} threads)"
        script = tmp / "pil_cv2_sobel_dir.py"
        script.write_text(LOOP_SCRIPT)
        for procs in (1, 2):
            out = tmp / f"loop-p{procs}"
            contenders.append(
                Contender(
                    f"loop-p{procs}",
                    "Pillow + OpenCV loop" + (f", Pool({procs})" if procs > 1 else ""),
                    str(procs),
                    [py, str(script), str(src), str(out), str(procs)],
                    "the same as convcli (cv2.Sobel, BORDER_REFLECT_101, cv2.magnitude, "
                    "0..max onto 0..255); PNG zlib level 6 (Pillow's default)",
                    "magnitude-reflect",
                    out,
                    lambda n: n,
                )
            )
    except ImportError:
        missing["Pillow + OpenCV loop"] = "not installed (no cv2 in this Python)"

    im = find_imagemagick()
    if im is None:
        missing["ImageMagick mogrify"] = missing["ImageMagick convert loop"] = (
            "not installed"
        )
        return contenders, versions, missing
    exe_im, version, note = im
    seven = Path(exe_im).name == "magick"
    mogrify = [exe_im, "mogrify"] if seven else [str(Path(exe_im).with_name("mogrify"))]
    versions["ImageMagick"] = version
    versions["ImageMagick path"] = note
    versions["ImageMagick limits"] = imagemagick_limits(exe_im)
    versions["ImageMagick features"] = imagemagick_features(exe_im)
    threads = re.search(r"thread (\d+)", versions["ImageMagick limits"])
    omp = "OpenMP" in versions["ImageMagick features"]
    im_procs = "1" + (
        f" (OpenMP, up to {threads.group(1) if threads else '?'} threads)"
        if omp
        else ""
    )
    out = tmp / "mogrify"
    contenders.append(
        Contender(
            "mogrify",
            "ImageMagick mogrify, Sobel:> Lighten",
            im_procs,
            [*mogrify, "-path", str(out), *IM_LIGHTEN, "-auto-level", *files],
            "max(|gx|, |gy|) per channel (Sobel rotated by 0/90/180/270 degrees, the maximum), "
            "border edge, min..max onto 0..255 (-auto-level): NOT the magnitude; "
            "PNG zlib level 7 (quality 75)",
            "maxabs-edge",
            out,
            lambda n: n,
        )
    )
    out = tmp / "convert-loop"
    loop = (
        'for f in "$1"/*.png; do '
        + shlex.join([exe_im, "__IN__", *IM_MAGNITUDE, "-auto-level", "__OUT__"])
        .replace("__IN__", '"$f"')
        .replace("__OUT__", '"$2/${f##*/}"')
        + " || exit 1; done"
    )
    contenders.append(
        Contender(
            "convert-loop",
            "ImageMagick magnitude, convert per image",
            "1 per image" + (" (OpenMP)" if omp else ""),
            ["sh", "-c", loop, "sh", str(src), str(out)],
            "gx/8 + 1/2 and gy/8 + 1/2 (Q16), squared back, summed, square root, "
            "min..max onto 0..255 (-auto-level): the magnitude, border edge; PNG zlib level 7",
            "magnitude-edge",
            out,
            lambda n: n,
            shown_as=loop.replace('"$1"', "in").replace('"$2/', '"out/')
            + "  # run by sh -c",
        )
    )
    return contenders, versions, missing


# ---------------------------------------------------------------------------
# Where the time goes, in this process


def stage_times(paths: list[Path], tmp: Path) -> dict[str, list[float]]:
    """Per-image seconds of convcli's and the loop's stages, one pass over ``paths``."""
    import cv2

    from convcli.kernels import load_kernel
    from convcli.pipeline import ApplyOptions, apply_one

    kernel = load_kernel("sobel")
    options = ApplyOptions()
    out = tmp / "stages"
    out.mkdir()
    times: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        times.setdefault(key, []).append(seconds)

    for p in paths:
        result = apply_one(p, kernel, options, out)
        for stage, seconds in result.seconds.items():
            add(f"convcli {stage}", seconds)
        written = result.outputs[0].path
        t0 = time.perf_counter()
        hashlib.sha256(written.read_bytes()).hexdigest()
        add("convcli sha256", time.perf_counter() - t0)

        t0 = time.perf_counter()
        with Image.open(p) as im:
            x = np.asarray(im.convert("RGB"), dtype=np.float32)
        t1 = time.perf_counter()
        gx = cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
        gy = cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
        mag = cv2.magnitude(gx, gy)
        t2 = time.perf_counter()
        mag *= 255.0 / float(mag.max())
        mag += 0.5
        pixels = mag.astype(np.uint8)
        t3 = time.perf_counter()
        img = Image.fromarray(pixels)
        img.save(io.BytesIO(), format="PNG")
        t4 = time.perf_counter()
        img.save(io.BytesIO(), format="PNG", compress_level=1)
        t5 = time.perf_counter()
        add("loop decode", t1 - t0)
        add("loop filter", t2 - t1)
        add("loop to pixels", t3 - t2)
        add("loop encode (level 6)", t4 - t3)
        add("encode at level 1 (convcli's)", t5 - t4)
    return times


def imagemagick_threads(
    c: Contender, files: list[str], tmp: Path, repeat: int
) -> list[tuple[str, float, float]]:
    """mogrify on ``files``: default threads, MAGICK_THREAD_LIMIT=1, and no filter."""
    out = tmp / "mogrify-sample"
    exe = c.argv[: c.argv.index("-path")]
    variants = [
        ("Sobel:> Lighten, default threads", [*IM_LIGHTEN, "-auto-level"], None),
        (
            "Sobel:> Lighten, MAGICK_THREAD_LIMIT=1",
            [*IM_LIGHTEN, "-auto-level"],
            {"MAGICK_THREAD_LIMIT": "1"},
        ),
        ("no filter (decode + encode only)", [], None),
    ]
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    for _ in range(repeat):
        for label, args, env in variants:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            r = run([*exe, "-path", str(out), *args, *files], env)
            walls.setdefault(label, []).append(r.wall)
            cpus.setdefault(label, []).append(r.cpu)
    return [
        (label, statistics.median(walls[label]), statistics.median(cpus[label]))
        for label, _, _ in variants
    ]


# ---------------------------------------------------------------------------
# Checks


def references(src: Path) -> dict[str, np.ndarray]:
    """What each contender should write for ``src`` (float64, unrounded, 0..255)."""
    import cv2

    x = load_rgb(src).astype(np.float32)
    out: dict[str, np.ndarray] = {}
    for border, name in (
        (cv2.BORDER_REFLECT_101, "reflect"),
        (cv2.BORDER_REPLICATE, "edge"),
    ):
        gx = cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3, borderType=border)
        gy = cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3, borderType=border)
        gx, gy = gx.astype(np.float64), gy.astype(np.float64)
        mag = np.hypot(gx, gy)
        if name == "reflect":
            out["magnitude-reflect"] = mag * (255.0 / mag.max())  # convcli: 0..max
        else:
            maxabs = np.maximum(np.abs(gx), np.abs(gy))
            for key, m in (("magnitude-edge", mag), ("maxabs-edge", maxabs)):
                out[key] = (m - m.min()) * (255.0 / (m.max() - m.min()))  # -auto-level
    return out


def checks(contenders: list[Contender], src: Path, names: list[str]) -> list[str]:
    """Each contender's outputs for three inputs against the references; convcli against the loop."""
    lines = []
    picks = sorted({names[0], names[len(names) // 2], names[-1]})
    by_key = {c.key: c for c in contenders}
    for name in picks:
        refs = {k: np.floor(v + 0.5) for k, v in references(src / name).items()}
        lines.append(f"- `{name}`:")
        for c in contenders:
            got = load_rgb(c.out / c.out_name(name))
            lines.append(
                f"  - {c.label} vs {c.reference}: {diff(got, refs[c.reference])}"
            )
        if "convcli-j1" in by_key and "loop-p1" in by_key:
            a = load_rgb(by_key["convcli-j1"].out / by_key["convcli-j1"].out_name(name))
            b = load_rgb(by_key["loop-p1"].out / name)
            lines.append(f"  - convcli batch vs the Pillow + OpenCV loop: {diff(a, b)}")
        if "convcli-j1" in by_key and "mogrify" in by_key:
            a = load_rgb(by_key["convcli-j1"].out / by_key["convcli-j1"].out_name(name))
            b = load_rgb(by_key["mogrify"].out / name)
            lines.append(
                f"  - convcli batch vs mogrify (magnitude vs max(|gx|, |gy|), not the same image): {diff(a, b)}"
            )
    return lines


# ---------------------------------------------------------------------------
# Report


def shown(argv: list[str], names: dict[str, str], files: set[str]) -> str:
    """The command as a shell line: temporary paths shortened, the file list as a glob."""
    out: list[str] = []
    for a in argv:
        if a in files:
            if "in/*.png" not in out:
                out.append("in/*.png")
            continue
        for long in sorted(names, key=len, reverse=True):
            a = a.replace(long, names[long])
        out.append(a)
    return " ".join(a if a == "in/*.png" else shlex.quote(a) for a in out)


def others_cell(c: Contender) -> str:
    """Median cores other work took during the contender's runs; the worst too, if not quiet."""
    shares = [o / w for o, w in zip(c.others, c.walls, strict=True)]
    if not shares:
        return "-"
    cell = f"{statistics.median(shares):.2f}"
    return cell + (f" (max {max(shares):.2f})" if max(shares) >= QUIET else "")


def verdict(ratio: float | None, target: float) -> str:
    """'met' or 'missed' against a target ratio."""
    if ratio is None:
        return "not measured"
    return "met" if ratio >= target else "missed"


def main() -> None:
    """Run the benchmark, print the Markdown report, write it to ``--out`` (and the docs page)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--count", type=int, default=300, help="images in the folder (300)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of every contender (3)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=1500.0,
        help="seconds for the timed rounds; rounds stop early rather than exceed it (1500)",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=20,
        help="images for the in-process stage times and the mogrify thread check (20)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="the Markdown report"
    )
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also put the table into docs/performance.md between its bench_batch markers",
    )
    parser.add_argument(
        "--only",
        metavar="KEYS",
        help="run only the contenders whose keys start with these, comma-separated "
        "(keys: convcli-j1, convcli-j2, convcli-dask, loop-p1, loop-p2, mogrify, convert-loop)",
    )
    args = parser.parse_args()
    if args.count < 3 or args.repeat < 1 or args.sample < 1:
        parser.error("--count must be >= 3, --repeat and --sample >= 1")
    started = time.perf_counter()
    subreaper = become_subreaper()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    load_before = os.getloadavg()
    cached = cached_inputs(args.count)
    command = shlex.join(["python", "bench/bench_batch.py", *sys.argv[1:]]).replace(
        "python", ".venv/bin/python", 1
    )

    with tempfile.TemporaryDirectory(prefix="bench_batch.") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "in"
        link_inputs(cached, src)
        names = [p.name for p in cached]
        input_mb = sum(p.stat().st_size for p in cached) / 1e6
        contenders, versions, missing = build(tmp, src, names)
        if args.only:
            prefixes = tuple(args.only.split(","))
            contenders = [c for c in contenders if c.key.startswith(prefixes)]
        short = {str(src): "in", sys.executable: ".venv/bin/python"}
        for c in contenders:
            short[str(c.out)] = "out"
        short[str(tmp / "pil_cv2_sobel_dir.py")] = "pil_cv2_sobel_dir.py"
        if "convcli path" in versions:
            short[versions["convcli path"]] = "convcli"
        files = {str(src / n) for n in names}
        print(
            f"input: {args.count} {WIDTH}x{HEIGHT} RGB PNGs, {input_mb:.0f} MB",
            file=sys.stderr,
        )

        # Fixed costs: one untimed run (page cache), then --repeat timed runs.
        empty = tmp / "empty"
        empty.mkdir()
        two = tmp / "two"
        link_inputs(cached[:2], two)
        startup_cmds: list[tuple[tuple[str, ...], str, list[str]]] = []
        if "convcli path" in versions:
            exe = versions["convcli path"]

            def batch_argv(folder: Path, jobs: int) -> list[str]:
                return convcli_sobel(
                    exe, "batch", folder, tmp / f"{folder.name}-out-j{jobs}"
                )

            startup_cmds += [
                ((), "`convcli --version`", [exe, "--version"]),
                (
                    ("convcli-j1", "convcli-j2"),
                    "`convcli batch` on an empty folder (`--jobs 1 --json`)",
                    [*batch_argv(empty, 1), "--jobs", "1", "--json"],
                ),
                (
                    (),
                    "`convcli batch` on 2 images, `--jobs 1 --json`",
                    [*batch_argv(two, 1), "--jobs", "1", "--json"],
                ),
                (
                    (),
                    "`convcli batch` on 2 images, `--jobs 2 --json` (forkserver and 2 workers)",
                    [*batch_argv(two, 2), "--jobs", "2", "--json"],
                ),
            ]
        if "OpenCV" in versions:
            startup_cmds.append(
                (
                    ("loop-p1", "loop-p2"),
                    "`python -c 'import cv2, PIL.Image, numpy'`",
                    [sys.executable, "-c", "import cv2, PIL.Image, numpy"],
                )
            )
        im_exe = next((c.argv[0] for c in contenders if c.key == "mogrify"), None)
        if im_exe:
            startup_cmds.append(
                (("mogrify",), "`mogrify -version`", [im_exe, "-version"])
            )
        startups: list[tuple[str, float]] = []
        startup_of: dict[str, float] = {}
        for keys, label, argv in startup_cmds:
            run(argv)
            seconds = statistics.median(run(argv).wall for _ in range(args.repeat))
            startups.append((label, seconds))
            startup_of.update(dict.fromkeys(keys, seconds))
        if "mogrify" in startup_of:
            startup_of["convert-loop"] = startup_of["mogrify"] * args.count

        rounds = Rounds(args.repeat, args.budget)
        for r in rounds:
            k = r % len(contenders)
            for c in contenders[k:] + contenders[:k]:
                run_contender(c, names)
                print(
                    f"round {r + 1}: {c.label}: {c.walls[-1]:.1f} s "
                    f"({args.count / c.walls[-1]:.1f} images/s, CPU {c.cpus[-1]:.1f} s, "
                    f"others {c.others[-1] / c.walls[-1]:.2f} cores)",
                    file=sys.stderr,
                )
        stopped, loop_seconds = rounds.stopped, rounds.seconds

        print("checks, stages, mogrify threads ...", file=sys.stderr)
        check_lines = checks(contenders, src, names)
        sample = cached[: args.sample]
        stages = stage_times(sample, tmp) if "OpenCV" in versions else {}
        mogrify = next((c for c in contenders if c.key == "mogrify"), None)
        im_threads = (
            imagemagick_threads(mogrify, [str(p) for p in sample], tmp, args.repeat)
            if mogrify
            else []
        )
        load_after = os.getloadavg()

    n = args.count
    by_key = {c.key: c for c in contenders}
    wall_of = {c.key: median(c.walls) for c in contenders}
    ref_rate = wall_of.get("mogrify")
    rows: list[list[str]] = []
    for c in contenders:
        wall = wall_of[c.key]
        cpu = median(c.cpus)
        rounds = f" (n={len(c.walls)})" if len(c.walls) < args.repeat else ""
        rows.append(
            [
                c.label,
                c.processes,
                fmt(wall) + rounds,
                f"{fmt(min(c.walls))}-{fmt(max(c.walls))}",
                f"{wall / n * 1000:.1f}" if wall else "-",
                f"{n / wall:.2f}" if wall else "-",
                f"{cpu / n * 1000:.0f}" if cpu is not None else "-",
                f"{cpu / wall:.2f}" if cpu is not None and wall else "-",
                others_cell(c),
                fmt(startup_of.get(c.key)),
                f"{statistics.median(c.sizes):.1f}",
                f"{ref_rate / wall:.2f}" if ref_rate and wall else "-",
            ]
        )
    for label, why in missing.items():
        rows.append([label, "-", why, *["-"] * 9])
    table = md_table(
        [
            "contender",
            "processes",
            "wall s (median)",
            "min-max",
            "ms/image",
            "images/s",
            "CPU ms/image",
            "CPU/wall",
            "others' cores",
            "fixed start s",
            "out MB",
            "x mogrify rate",
        ],
        rows,
    )

    def ratio(a: str, b: str) -> tuple[float | None, list[tuple[float, float]]]:
        """Rate of ``b`` over rate of ``a`` (= wall a / wall b): of the medians, and per round.

        Each round also gives the larger of the two runs' others' cores.
        """
        if a not in by_key or b not in by_key:
            return None, []
        ca, cb = by_key[a], by_key[b]
        wa, wb = wall_of[a], wall_of[b]
        paired = [
            (x / y, max(oa / x, ob / y))
            for x, y, oa, ob in zip(
                ca.walls, cb.walls, ca.others, cb.others, strict=True
            )
        ]
        return (wa / wb if wa and wb else None), paired

    def rounds_text(paired: list[tuple[float, float]]) -> str:
        """Per-round ratios, the disturbed ones marked; the median of the quiet ones."""
        text = ", ".join(
            f"{r:.2f}" + (f" (others {o:.2f} cores)" if o >= QUIET else "")
            for r, o in paired
        )
        quiet = [r for r, o in paired if o < QUIET]
        if quiet and len(quiet) < len(paired):
            text += (
                f"; median of the {len(quiet)} rounds in which other work took less than "
                f"{QUIET} core during both runs: {statistics.median(quiet):.2f}"
            )
        return text

    jobs_ratio, jobs_rounds = ratio("convcli-j1", "convcli-j2")
    best = min(
        (k for k in ("convcli-j1", "convcli-j2") if k in by_key),
        key=lambda k: wall_of[k] or float("inf"),
        default=None,
    )
    im_ratio, im_rounds = ratio("mogrify", best) if best else (None, [])
    mag_ratio, mag_rounds = ratio("convert-loop", best) if best else (None, [])
    loop_ratio, loop_rounds = ratio("loop-p1", "loop-p2")
    targets = []
    if jobs_ratio:
        targets.append(
            f"- **convcli `--jobs 2` against `--jobs 1`**: {fmt(jobs_ratio)}x the images per second "
            f"(target >= 1.8x: **{verdict(jobs_ratio, 1.8)}**; per round {rounds_text(jobs_rounds)})."
        )
    if im_ratio and best:
        targets.append(
            f"- **convcli (best of jobs 1 and 2: `{by_key[best].label}`) against mogrify**: "
            f"{fmt(im_ratio)}x mogrify's images per second (target >= 2x: **{verdict(im_ratio, 2.0)}**; "
            f"per round {rounds_text(im_rounds)})."
        )
    if mag_ratio and best:
        targets.append(
            f"- {by_key[best].label} against ImageMagick computing the magnitude itself (`convert` "
            f"per image): {fmt(mag_ratio)}x (per round {rounds_text(mag_rounds)})."
        )
    disturbed = sum(
        o / w >= QUIET
        for c in contenders
        if c.processes.startswith("2")
        for o, w in zip(c.others, c.walls, strict=True)
    )
    if disturbed:
        targets.append(
            f"- Caveat: in {disturbed} of the 2-process runs, other work on this shared machine "
            f"held {QUIET} core or more (column others' cores, per run in the round lines above), "
            "so the second core was not all theirs: those runs measure the machine's load as much "
            "as the programs."
        )
    if "convcli-dask" in by_key and "convcli-j2" in by_key:
        dask_ratio, dask_rounds = ratio("convcli-dask", "convcli-j2")
        pool_wall = wall_of["convcli-j2"]
        dask_wall = wall_of["convcli-dask"]
        per_item = 1000 * (dask_wall - pool_wall) / n
        targets.append(
            f"- **Dask LocalCluster against the process pool** (both 2 workers): the pool "
            f"is {fmt(dask_ratio)}x as fast (per round {rounds_text(dask_rounds)}); Dask costs "
            f"{per_item:.1f} ms more per item, cluster start-up included "
            f"({dask_wall - pool_wall:.2f} s over {n} images)."
        )
    if loop_ratio:
        targets.append(
            f"- For comparison, the Pillow + OpenCV loop on 2 processes: {fmt(loop_ratio)}x its "
            f"rate on 1 (per round {rounds_text(loop_rounds)})."
        )
    machine = (
        f"{platform.system()} {platform.machine()}, {cpu_model()}, "
        f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {mem_total()}"
    )
    loads = (
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        "(a shared machine: other work adds time)"
    )
    header = [
        f"- command: `{command}`",
        f"- date: {date}; wall time of the run: {time.perf_counter() - started:.0f} s "
        f"(timed rounds {loop_seconds:.0f} s)",
        f"- machine: {machine}; {loads}",
        f"- input: {n} generated {WIDTH}x{HEIGHT} RGB PNGs (photo-like: gradients, soft shapes, "
        f"noise of 3 levels; `default_rng([6, index])`), {input_mb / n * 1000:.0f} KB each, "
        f"{input_mb:.0f} MB in all",
    ]
    lines = [
        f"# convcli batch: Sobel on {n} {WIDTH}x{HEIGHT} PNGs, images per second",
        "",
        *header,
        f"- versions: Python {platform.python_version()}, numpy {np.__version__}, "
        f"Pillow {Image.__version__} (zlib {features.version('zlib')}), "
        f"OpenCV {versions.get('OpenCV', 'not installed')}, "
        f"{versions.get('convcli', 'convcli not installed')} (checkout {git_state()}), "
        f"{versions.get('ImageMagick', 'ImageMagick not installed')}",
    ]
    if "ImageMagick path" in versions:
        lines.append(
            f"- ImageMagick: {versions['ImageMagick path']}; features: {versions['ImageMagick features']}; "
            f"limits {versions['ImageMagick limits']}"
        )
    lines += [
        f"- thread-related environment: {thread_env(PEER_THREAD_VARS)}",
        "",
        "## Commands",
        "",
        "`in` is the folder of inputs, `out` a contender's own output folder, emptied before each run.",
        "",
    ]
    for c in contenders:
        lines += [
            f"- **{c.label}**: `{c.shown_as or shown(c.argv, short, files)}`",
            f"  - computes: {c.computes}",
        ]
    lines += [
        "- **pil_cv2_sobel_dir.py**, the Pillow + OpenCV loop (written by the bench):",
        "",
        "```python",
        *LOOP_SCRIPT.rstrip().splitlines(),
        "```",
        "",
        f"## Results ({n} images, median of {args.repeat} rounds)",
        "",
        table,
        "",
        *targets,
        "",
        "How to read:",
        "",
        "- wall: process start to exit, as `subprocess.run` sees it; ms/image = wall / count, "
        "images/s = count / wall (fixed costs included).",
        "- CPU ms/image: user + system time of the command and its children (pool workers, "
        "`convert` processes) / count. CPU/wall: the cores kept busy on average (at most 2 here)."
        + (
            ""
            if subreaper
            else " convcli's pool workers (forked by a forkserver that init reaps) are NOT counted."
        ),
        "- others' cores: CPU time the rest of the machine took during the run (all cores' busy "
        "time in /proc/stat minus this command's CPU, steal included) / wall, median over the "
        f"rounds, and the worst run when it reached {QUIET} core. {os.cpu_count()} minus it is "
        "what the command could have had.",
        "- fixed start: the median of the startup command alone (see below; the convert loop: "
        "its `-version` time x count).",
        "- x mogrify rate: images/s / mogrify's images/s. mogrify computes max(|gx|, |gy|), "
        "not the magnitude (see Commands); the convert row computes the magnitude.",
    ]
    if "OpenMP" in versions.get("ImageMagick features", ""):
        lines.append(
            "- ImageMagick is built with OpenMP and may run its operators on several threads "
            f"({versions['ImageMagick limits']}); see its CPU/wall, and the "
            "MAGICK_THREAD_LIMIT=1 check below. The headline rows use its default."
        )
    if stopped:
        lines.append(f"- {stopped}.")
    lines += ["", "## Where the time goes", "", "Fixed costs (median):", ""]
    lines.append(
        md_table(["command", "seconds"], [[label, fmt(s)] for label, s in startups])
    )
    for key in ("convcli-j1", "convcli-j2"):
        c = by_key.get(key)
        if c and c.own:
            in_run = statistics.median(o["in_run"] for o in c.own)
            item = statistics.median(o["item_median"] for o in c.own)
            busy = statistics.median(o["item_sum"] / o["in_run"] for o in c.own)
            lines.append(
                f"\n{c.label}: convcli's own clock of the run {fmt(in_run)} s (wall minus that: "
                f"{fmt(median(c.walls) - in_run if median(c.walls) else None)} s of start-up and exit); "
                f"an item takes {item * 1000:.0f} ms (median), items in flight on average {busy:.2f}."
            )
    if stages:
        rows = [
            [k, f"{statistics.median(v) * 1000:.1f}", f"{sum(v) / len(v) * 1000:.1f}"]
            for k, v in stages.items()
        ]
        lines += [
            "",
            f"Stages in this process, on the first {len(sample)} images, ms per image "
            "(convcli: `convcli.pipeline.apply_one`'s own load, filter and save, save = "
            "to pixels + PNG encode at level 1 + atomic rename; sha256: what `batch` hashes "
            "for every output; the loop's stages as its script runs them, encoded to memory):",
            "",
            md_table(["stage", "median ms", "mean ms"], rows),
        ]
    if im_threads:
        rows = [
            [
                label,
                f"{wall / len(sample) * 1000:.0f}",
                f"{cpu / wall:.2f}",
            ]
            for label, wall, cpu in im_threads
        ]
        lines += [
            "",
            f"mogrify on the first {len(sample)} images (median of {args.repeat} runs):",
            "",
            md_table(["mogrify", "ms/image", "CPU/wall"], rows),
        ]
    lines += [
        "",
        "## Checks",
        "",
        "Outputs against references computed here (OpenCV Sobel in float32, magnitude in float64, "
        "rescaled as each contender does, rounded half up), in 8-bit levels. convcli and the loop "
        "both map 0..max onto 0..255; ImageMagick's `-auto-level` maps min..max (min is near 0 "
        "for these images).",
        "",
        *check_lines,
        "",
    ]
    write_report("\n".join(lines), args.out)
    if args.docs:
        snippet = "\n".join(
            [
                *header,
                "",
                table,
                "",
                *targets,
                "",
                f"Commands, stage times and output checks: `{args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}`.",
            ]
        )
        replace_block(PERFORMANCE_PAGE, PAGE_MARKERS, snippet)
        print(f"updated {PERFORMANCE_PAGE}", file=sys.stderr)


if __name__ == "__main__":
    main()
