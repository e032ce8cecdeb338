"""End-to-end time of ``convcli apply -k sobel`` on a 4K PNG, against ImageMagick and a Pillow + OpenCV script.

Run from the repository root::

    .venv/bin/python bench/bench_apply.py                 # about 3-4 minutes on 2 cores
    .venv/bin/python bench/bench_apply.py --repeat 3 --out /tmp/apply.md

Every contender is a separate process started the same way (``subprocess.run``),
on the same input file, writing a PNG into the same temporary folder; the wall
time runs from the start of the process to its exit.

Input: ``sample_images/coffee.png`` centre-cropped to 16:9 and upscaled with
Pillow's LANCZOS to 3840x2160 RGB, saved as PNG with Pillow's defaults. A real
photo, not noise: noise compresses badly and would inflate every encode time.

Contenders
----------
* ``convcli apply IN -k sobel -o OUT --json`` (the console script beside this
  Python, else the one on PATH). ``--json`` makes convcli print its own stage
  seconds (load, filter, save), which are read from every run; it also skips
  drawing the rich table.
* A minimal Pillow + OpenCV script, written to the temporary folder: Pillow
  decodes, ``cv2.Sobel`` dx and dy in float32 with ``BORDER_REFLECT_101``,
  ``cv2.magnitude``, 0..max rescaled onto 0..255 (halves up), ``cv2.imencode`` encodes.
  That is what ``convcli apply -k sobel`` computes (per-channel gradient
  magnitude, border ``reflect``, range ``rescale``). It prints its own stage
  seconds.
* ImageMagick (``magick``, else ``convert``; a program whose ``-version`` does
  not print "Version: ImageMagick" counts as not installed, and a shell-script
  wrapper is skipped for a real binary further down PATH): its ``Sobel``
  kernel is one 3x3 kernel (the x derivative), not the gradient magnitude, so
  three commands are timed, plus a decode + encode without a filter. What each
  computes is printed with the table and checked against numpy.

Protocol: the input is written once; every startup command (``convcli
--version``, ``python -c "import cv2, PIL.Image, numpy"``, ``convert
-version``) runs once untimed, then ``--repeat`` timed times. Then ``--repeat``
rounds, each running every contender once (the order rotates per round), so a
busy spell of the shared machine hits all of them alike. Before each round the
time left in ``--budget`` is compared with the last round's duration; the
rounds stop early rather than run over, and the table says ``(n=k)``.
Reported: medians. Afterwards each contender's last output is checked against
a reference computed here with numpy and OpenCV, and the PNG encoders are
timed in-process on the convcli output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import re
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
from PIL import Image, features

from convcli.images import PNG_LEVEL

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "sample_images" / "coffee.png"
DEFAULT_OUT = ROOT / "bench" / "results" / "apply.md"
WIDTH, HEIGHT = 3840, 2160

PEER_SCRIPT = '''\
"""Per-channel Sobel gradient magnitude of a PNG, as convcli apply -k sobel computes it."""

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


# ImageMagick's Sobel command lines (bench_batch.py runs the same ones).
IM_LIGHTEN = [
    "-define",
    "convolve:scale=!",
    "-define",
    "morphology:compose=Lighten",
    "-morphology",
    "Convolve",
    "Sobel:>",
]
IM_MAGNITUDE = [
    "-define",
    "convolve:scale=50%!",
    "-bias",
    "50%",
    "(",
    "-clone",
    "0",
    "-morphology",
    "Convolve",
    "Sobel",
    ")",
    "(",
    "-clone",
    "0",
    "-morphology",
    "Convolve",
    "Sobel:90",
    ")",
    "-delete",
    "0",
    "-function",
    "Polynomial",
    "2,-2,0.5",
    "-compose",
    "plus",
    "-composite",
    "-evaluate",
    "pow",
    "0.5",
]


@dataclass
class Contender:
    """One command line timed end to end, and what it computes."""

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
    startups: list[float] = field(default_factory=list)
    stages: list[dict[str, float]] = field(default_factory=list)


def shown(argv: list[str], names: dict[str, str]) -> str:
    """The command as a shell line, with temporary paths replaced by short names."""
    return shlex.join([names.get(a, a) for a in argv])


def is_script(path: str) -> bool:
    """Whether ``path`` is an interpreted script (starts with ``#!``)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def imagemagick_version(exe: str) -> str | None:
    """The version line of ImageMagick at ``exe``, or None if it is something else."""
    try:
        proc = subprocess.run(
            [exe, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"^Version: (ImageMagick \S+ \S+.*?)\s*$", proc.stdout, re.M)
    return m.group(1) if proc.returncode == 0 and m else None


def find_imagemagick() -> tuple[str, str, str] | None:
    """ImageMagick's ``magick`` or ``convert`` on PATH: (path, version line, note).

    Every candidate must print "Version: ImageMagick" for ``-version`` (a
    stand-in ``convert`` that only shows files does not). A shell-script
    wrapper is passed over for a real binary of the same name later on PATH, so
    that its own start is not timed.
    """
    for name in ("magick", "convert"):
        found: list[tuple[str, str]] = []
        for folder in os.get_exec_path():
            exe = os.path.join(folder, name)
            if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                continue
            if any(os.path.samefile(exe, e) for e, _ in found):
                continue
            version = imagemagick_version(exe)
            if version:
                found.append((exe, version))
        for exe, version in found:
            if not is_script(exe):
                first = shutil.which(name)
                note = "" if first == exe else f" (first on PATH: {first}, a wrapper)"
                return exe, version, f"{exe} -> {os.path.realpath(exe)}{note}"
        if found:
            exe, version = found[0]
            return exe, version, f"{exe} (a script wrapper; its start is timed too)"
    return None


def make_input(path: Path) -> None:
    """Write the WIDTH x HEIGHT RGB test photo: coffee.png cropped to 16:9, LANCZOS-resized."""
    with Image.open(SOURCE) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    ch = round(w * HEIGHT / WIDTH)
    if ch <= h:
        box = (0, (h - ch) // 2, w, (h - ch) // 2 + ch)
    else:
        cw = round(h * WIDTH / HEIGHT)
        box = ((w - cw) // 2, 0, (w - cw) // 2 + cw, h)
    rgb.crop(box).resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS).save(path)


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


def run(argv: list[str], out: Path | None = None) -> tuple[float, str]:
    """Run ``argv`` once; return (wall seconds, stdout). The output file is removed first."""
    if out is not None:
        out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        msg = f"{shlex.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}"
        raise RuntimeError(msg)
    return wall, proc.stdout


def fmt(seconds: float | None) -> str:
    """Seconds with 3 significant digits, '-' for None."""
    return "-" if seconds is None else f"{seconds:.3g}"


def median(values: list[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def load_rgb(path: Path) -> np.ndarray:
    """A PNG as a float64 (H, W, 3) array."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


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
    got = load_rgb(path)
    if got.shape != ref.shape:
        return f"shape {got.shape} != {ref.shape}"
    d = np.abs(got - np.floor(ref + 0.5))
    inner = d[1:-1, 1:-1]
    return (
        f"max {d.max():.0f} (inside the 1-px border {inner.max():.0f}), "
        f"mean {d.mean():.3f}, {np.mean(d > 1) * 100:.2g} % off by >1"
    )


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


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with padded columns."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            + " |"
        )

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else "unknown"


def mem_total() -> str:
    """MemTotal from /proc/meminfo, in GiB."""
    try:
        m = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    except OSError:
        return "unknown"
    return f"{int(m.group(1)) / 2**20:.0f} GiB" if m else "unknown"


def git_state() -> str:
    """The commit of the checkout, and whether convcli/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "convcli"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes in convcli/" if dirty else "")


def imagemagick_limits(exe: str) -> str:
    """ImageMagick's memory, map and thread limits (from its policy.xml)."""
    try:
        text = subprocess.run(
            [exe, "-list", "resource"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return "unknown"
    found = re.findall(r"^\s*(Memory|Map|Thread):\s*(\S+)", text, re.M)
    return ", ".join(f"{k.lower()} {v}" for k, v in found) or "unknown"


def build(
    tmp: Path, src: Path
) -> tuple[list[Contender], dict[str, str], dict[str, str]]:
    """The contenders found on this machine; also names and versions for the header."""
    versions: dict[str, str] = {}
    missing: dict[str, str] = {}
    contenders: list[Contender] = []
    py = sys.executable

    exe = Path(py).parent / "convcli"
    convcli = str(exe) if exe.exists() else shutil.which("convcli")
    if convcli:
        versions["convcli"] = run([convcli, "--version"])[1].strip()
        versions["convcli path"] = convcli
        contenders.append(
            Contender(
                "convcli",
                "convcli apply",
                [
                    convcli,
                    "apply",
                    str(src),
                    "-k",
                    "sobel",
                    "-o",
                    str(tmp / "convcli.png"),
                    "--json",
                ],
                [convcli, "--version"],
                "per-channel gradient magnitude sqrt(gx^2 + gy^2) (OpenCV's Sobel kernels), "
                "border reflect (d c b | a b c d), computed in float32, its 0..max mapped onto 0..255 (halves up)",
                "magnitude-reflect",
                tmp / "convcli.png",
                parse_convcli,
                "decode = its `load`, filter = `filter`, encode = `save` (float64 rescale to uint8 + PNG encode)",
            )
        )
    else:
        missing["convcli apply"] = "not installed"

    try:
        import cv2

        versions["OpenCV"] = cv2.__version__
        script = tmp / "pil_cv2_sobel.py"
        script.write_text(PEER_SCRIPT)
        contenders.append(
            Contender(
                "peer",
                "Pillow + OpenCV script",
                [py, str(script), str(src), str(tmp / "peer.png")],
                [py, "-c", "import cv2, PIL.Image, numpy"],
                "the same as convcli: cv2.Sobel dx and dy (float32, BORDER_REFLECT_101), "
                "cv2.magnitude, 0..max onto 0..255 (halves up), decoded by Pillow, encoded by cv2.imencode",
                "magnitude-reflect",
                tmp / "peer.png",
                parse_peer,
                "its own perf_counter stages",
            )
        )
    except ImportError:
        missing["Pillow + OpenCV script"] = "not installed (no cv2 in this Python)"

    im = find_imagemagick()
    im_rows = [
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
    if im is None:
        for _, label, _, _, _ in im_rows:
            missing[label] = "not installed"
    else:
        exe_im, version, note = im
        versions["ImageMagick"] = version
        versions["ImageMagick path"] = note
        versions["ImageMagick limits"] = imagemagick_limits(exe_im)
        for key, label, args, computes, reference in im_rows:
            out = tmp / f"{key}.png"
            contenders.append(
                Contender(
                    key,
                    label,
                    [exe_im, str(src), *args, str(out)],
                    [exe_im, "-version"],
                    computes,
                    reference,
                    out,
                    None,
                    "total and startup only",
                )
            )
    return contenders, versions, missing


def main() -> None:
    """Run the benchmark, print the Markdown report and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed runs per contender (5)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=230.0,
        help="seconds for the timed runs; rounds stop early rather than exceed it (230)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="the Markdown report"
    )
    parser.add_argument(
        "--size", default="3840x2160", help="WxH of the test photo (3840x2160)"
    )
    args = parser.parse_args()
    global WIDTH, HEIGHT  # the test photo's size, read by the helpers
    WIDTH, HEIGHT = (int(n) for n in args.size.lower().split("x"))
    started = time.perf_counter()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench_apply.") as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "in.png"
        make_input(src)
        contenders, versions, missing = build(tmp, src)
        names = {str(src): "in.png", sys.executable: ".venv/bin/python"}
        for c in contenders:
            names[str(c.out)] = "out.png"
        names[str(tmp / "pil_cv2_sobel.py")] = "pil_cv2_sobel.py"
        if "convcli path" in versions:
            names[versions["convcli path"]] = "convcli"
        print(
            f"input {WIDTH}x{HEIGHT} RGB PNG, {src.stat().st_size / 1e6:.1f} MB",
            file=sys.stderr,
        )

        # startup: one untimed run (page cache), then --repeat timed runs
        for c in contenders:
            run(c.startup)
            c.startups = [run(c.startup)[0] for _ in range(args.repeat)]

        t_loop = time.perf_counter()
        last_round = 0.0
        stopped = ""
        for r in range(args.repeat):
            spent = time.perf_counter() - t_loop
            if r and spent + last_round > args.budget:
                stopped = (
                    f"stopped after {r} rounds: the next would pass the {args.budget:.0f} s budget "
                    f"({spent:.0f} s spent, last round {last_round:.0f} s)"
                )
                break
            t_round = time.perf_counter()
            order = (
                contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
            )
            for c in order:
                wall, stdout = run(c.argv, c.out)
                c.walls.append(wall)
                if c.parse:
                    c.stages.append(c.parse(stdout))
                print(f"round {r + 1}: {c.label}: {wall:.2f} s", file=sys.stderr)
            last_round = time.perf_counter() - t_round
        loop_seconds = time.perf_counter() - t_loop

        refs = references(src)
        checks = {c.key: check(c.out, refs[c.reference]) for c in contenders}
        sizes = {
            c.key: c.out.stat().st_size / 1e6 for c in contenders if c.out.exists()
        }
        enc_rows = encode_table(tmp / "convcli.png", refs["magnitude-reflect"])
        input_mb = src.stat().st_size / 1e6

    base = next((median(c.walls) for c in contenders if c.key == "convcli"), None)
    rows: list[list[str]] = []
    shares: list[str] = []
    for c in contenders:
        wall = median(c.walls)
        startup = median(c.startups)
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
        n = f" (n={len(c.walls)})" if len(c.walls) < args.repeat else ""
        to_pix = st["to_pixels"]
        if c.key == "convcli":
            to_pix_cell = "in encode"
        elif c.parse:
            to_pix_cell = fmt(to_pix)
        else:
            to_pix_cell = "-"
        rows.append(
            [
                c.label,
                fmt(wall) + n,
                f"{fmt(min(c.walls))}-{fmt(max(c.walls))}" if c.walls else "-",
                fmt(startup),
                fmt(st["decode"]),
                fmt(st["filter"]),
                to_pix_cell,
                fmt(st["encode"]),
                fmt(rest) + ("" if c.parse else " (decode+filter+encode)"),
                f"{sizes[c.key]:.2f}" if c.key in sizes else "-",
                f"{wall / base:.2f}" if wall and base else "-",
            ]
        )
    for label, why in missing.items():
        rows.append([label, why, *["-"] * 9])
    header = [
        "contender",
        "wall s (median)",
        "min-max",
        "startup",
        "decode",
        "filter",
        "to pixels",
        "encode",
        "rest",
        "out MB",
        "x convcli",
    ]
    table = md_table(header, rows)

    lines = [
        f"# convcli apply, end to end: Sobel on a {WIDTH}x{HEIGHT} RGB PNG",
        "",
        f"- command: `{shlex.join(['.venv/bin/python', 'bench/bench_apply.py', *sys.argv[1:]])}`",
        f"- date: {date}; wall time of the run: {time.perf_counter() - started:.0f} s "
        f"(timed rounds {loop_seconds:.0f} s)",
        f"- machine: {platform.system()} {platform.machine()}, {cpu_model()}, "
        f"nproc {os.cpu_count()} ({len(os.sched_getaffinity(0))} usable), {mem_total()}; "
        f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after "
        "(a shared machine: other work adds time)",
        f"- versions: Python {platform.python_version()}, numpy {np.__version__}, "
        f"Pillow {Image.__version__} (zlib {features.version('zlib')}), "
        f"OpenCV {versions.get('OpenCV', 'not installed')}, "
        f"{versions.get('convcli', 'convcli not installed')} (checkout {git_state()}), "
        f"{versions.get('ImageMagick', 'ImageMagick not installed')}",
    ]
    if "ImageMagick path" in versions:
        lines.append(
            f"- ImageMagick: {versions['ImageMagick path']}; limits {versions['ImageMagick limits']}"
        )
    lines += [
        f"- input: `sample_images/coffee.png` (600x400) centre-cropped to 16:9, upscaled "
        f"with Pillow LANCZOS to {WIDTH}x{HEIGHT} RGB, saved by Pillow: {input_mb:.1f} MB",
        "- thread-related environment: "
        + (
            ", ".join(
                f"{k}={os.environ[k]}"
                for k in (
                    "OMP_NUM_THREADS",
                    "MAGICK_THREAD_LIMIT",
                    "OPENCV_FOR_THREADS_NUM",
                )
                if k in os.environ
            )
            or "none set"
        ),
        "",
        "## Commands",
        "",
        "`in.png` and `out.png` stand for files in one temporary folder; the output is removed before each run.",
        "",
    ]
    for c in contenders:
        lines += [
            f"- **{c.label}**: `{shown(c.argv, names)}`",
            f"  - computes: {c.computes}",
            f"  - startup: `{shown(c.startup, names)}`; stages: {c.stage_note}",
        ]
    lines += [
        "- **pil_cv2_sobel.py**, the Pillow + OpenCV script (written by the bench):",
        "",
        "```python",
        *PEER_SCRIPT.rstrip().splitlines(),
        "```",
        "",
        f"## Results, seconds (median of {args.repeat} runs)",
        "",
        table,
        "",
        "How to read:",
        "",
        "- wall: process start to exit, as `subprocess.run` sees it. startup: the median of the "
        "startup command alone (interpreter + imports, or the binary's start). Stage columns: "
        "medians of the stage times the program reports itself; rest = wall - startup - stages "
        "(argument parsing, kernel loading, output, freeing memory at exit; medians do not add up exactly).",
        "- x convcli: the contender's median wall time / convcli's (below 1: faster than convcli).",
        "- ImageMagick reports no stages; its decode + encode cost is the 'no filter' row, so its "
        "filter costs roughly its row minus that one.",
    ]
    if stopped:
        lines.append(f"- {stopped}.")
    lines += ["", "Where the time goes (share of the median wall time):", "", *shares]
    lines += [
        "",
        "Check of the last output of each contender against a reference computed in this process "
        "(numpy/OpenCV, float64, rounded half up), in 8-bit levels:",
        "",
    ]
    lines += [f"- {c.label} (vs {c.reference}): {checks[c.key]}" for c in contenders]
    lines += [
        "",
        "## PNG encoding",
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
        "The same convcli output encoded in this process, one run each:",
        "",
        md_table(["encoder", "seconds", "MB"], [list(r) for r in enc_rows]),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(f"\nwritten to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
