"""Peak memory of whole ``convcli apply`` processes on a 4K RGB PNG, kernel by kernel.

Run from the repository root::

    .venv/bin/python bench/bench_memory.py                  # about 1 minute on 2 cores
    .venv/bin/python bench/bench_memory.py --docs         # also rewrites the table in docs/performance.md
    .venv/bin/python bench/bench_memory.py --kernels sobel_x,kirsch,frei_chen --runs 5

Protocol: one generated 3840x2160 RGB PNG (smooth gradients plus noise,
``default_rng(12)``) is written to a temporary folder, by a child process of its
own. Each run is a fresh ``python -m convcli apply IN -k KERNEL -o OUT/ --json``
process; its peak resident set size is the ``ru_maxrss`` that ``os.wait4``
returns for that one child (so earlier runs never count, as they would with
``getrusage(RUSAGE_CHILDREN)``). This script imports neither numpy nor Pillow
and keeps no image: Linux counts the forking parent's resident pages in the
child's peak (the child holds them until it execs), so a big parent would
inflate every figure alike.
``--runs`` rounds run every kernel once each, the order alternating from round
to round, so that a busy spell of the shared machine hits all alike. Reported:
the median per kernel, and its ratio to the first kernel (``sobel_x``, one
2-D kernel: the least a run can hold is the input, one float32 map and the
output). The issue's target: ``kirsch`` (a bank of 8 filters, combined by
their maximum) at most 1.5x ``sobel_x``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import cpu_model, md_table
from page_block import PERFORMANCE_PAGE, replace_block

ROOT = Path(__file__).resolve().parents[1]
PAGE_MARKERS = ("<!-- bench_memory:begin -->", "<!-- bench_memory:end -->")
TARGET = 1.5


def make_input(path: Path, width: int, height: int) -> None:
    """Write a photo-like RGB PNG: gradients, a few soft discs, noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(12)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.empty((height, width, 3), np.float32)
    rgb[:, :, 0] = 255 * xx / width
    rgb[:, :, 1] = 255 * yy / height
    rgb[:, :, 2] = 128
    for _ in range(6):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(0.05, 0.25) * height
        disc = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        rgb += disc[:, :, np.newaxis] * rng.uniform(-120, 120, 3).astype(np.float32)
    rgb += rng.normal(0, 6, rgb.shape).astype(np.float32)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)


def peak_rss_mib(argv: list[str]) -> float:
    """Run ``argv`` as a fresh child; return its peak resident set size in MiB."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        msg = f"{' '.join(argv)} failed ({proc.returncode}): {err.strip()[-500:]}"
        raise RuntimeError(msg)
    return usage.ru_maxrss / 1024  # Linux reports KiB


def measure(kernels: list[str], runs: int, width: int, height: int) -> str:
    """Run every kernel ``runs`` times, alternating; return the Markdown report."""
    samples: dict[str, list[float]] = {k: [] for k in kernels}
    with tempfile.TemporaryDirectory(prefix="bench_memory.") as tmp:
        src = Path(tmp) / "in.png"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--make-input",
                str(src),
                "--size",
                f"{width}x{height}",
            ],
            check=True,
        )
        for r in range(runs):
            order = kernels if r % 2 == 0 else kernels[::-1]
            for kernel in order:
                out = Path(tmp) / "out"
                argv = [sys.executable, "-m", "convcli", "apply", str(src)]
                argv += ["-k", kernel, "-o", f"{out}/", "--json"]
                samples[kernel].append(peak_rss_mib(argv))
                for f in out.iterdir():
                    f.unlink()
                print(
                    f"round {r + 1}: {kernel} {samples[kernel][-1]:.0f} MiB",
                    file=sys.stderr,
                )
    base = statistics.median(samples[kernels[0]])
    rows = []
    for kernel in kernels:
        med = statistics.median(samples[kernel])
        each = ", ".join(f"{s:.0f}" for s in samples[kernel])
        rows.append([kernel, f"{med:.0f}", each, f"{med / base:.2f}"])
    table = md_table(
        ["kernel", "peak RSS MiB (median)", "runs", f"ratio to {kernels[0]}"], rows
    )
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = [
        f"- command: `{' '.join(['.venv/bin/python bench/bench_memory.py', *sys.argv[1:]])}`",
        f"- date: {date}; machine: {platform.system()} {platform.machine()}, "
        f"{cpu_model()}, {os.cpu_count()} cores",
        f"- input: a generated {width}x{height} RGB PNG; each run a fresh "
        f"`convcli apply IN -k KERNEL -o OUT/ --json` process, peak RSS from "
        f"`os.wait4`, median of {runs} runs in alternating order",
    ]
    verdict = []
    if "kirsch" in samples and kernels[0] == "sobel_x":
        ratio = statistics.median(samples["kirsch"]) / base
        met = "met" if ratio <= TARGET else "NOT met"
        verdict = [
            f"- kirsch (8 maps, combined by their maximum) against sobel_x: "
            f"{ratio:.2f}x (target <= {TARGET}x: **{met}**)"
        ]
    return "\n".join([*head, "", table, "", *verdict])


def main() -> None:
    """Parse the arguments, measure, print the table (and place it in the docs page)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kernels",
        default="sobel_x,sobel,kirsch,frei_chen",
        help="comma-separated kernel specs; the first is the baseline (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds (default: 3)")
    parser.add_argument(
        "--size", default="3840x2160", help="WxH (default: %(default)s)"
    )
    parser.add_argument(
        "--docs", action="store_true", help="place the table in docs/performance.md"
    )
    parser.add_argument("--make-input", metavar="PNG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.make_input:  # in a child process of its own: see the docstring
        make_input(Path(args.make_input), width, height)
        return
    report = measure(args.kernels.split(","), args.runs, width, height)
    print(report)
    if args.docs:
        replace_block(PERFORMANCE_PAGE, PAGE_MARKERS, report)


if __name__ == "__main__":
    main()
