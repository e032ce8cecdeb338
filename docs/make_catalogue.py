"""Write the kernel catalogue page, docs/catalogue.md, and its pictures.

Everything on the page comes from convcli's catalogue, `convcli.list_kernels`
(the files of ``filters/`` and the parametric generators at their default
parameters), grouped by family (`FAMILIES`): each kernel's description, its
weights as ``convcli kernels NAME`` writes them, its properties, and a picture
of what ``convcli apply`` makes of a 128 x 96 crop of
``sample_images/coffee.png`` with its defaults (padding same, border reflect,
the kernel's own range and combine).

The pictures go to ``docs/images/kernels/``: ``crop.png``, the input, and one
``NAME.png`` per kernel; a bank that keeps its maps apart (``combine: stack``)
shows them tiled in one picture, left to right and top to bottom. Every PNG is
written by Pillow (through `convcli.saving.save`) at zlib level 9.

    .venv/bin/python docs/make_catalogue.py          # rewrite the page and pictures
    .venv/bin/python docs/make_catalogue.py --check  # exit 1, naming what is stale

Pictures are compared by their decoded pixels, not their bytes (PNG bytes
change with the zlib and Pillow versions), and one whose pixels are unchanged
is not rewritten; pictures of kernels no longer in the catalogue are deleted.
Folders in ``$CONVCLI_KERNEL_PATH`` are ignored: the page documents the
built-in catalogue. ``tests/test_docs_catalogue.py`` runs the check.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from convcli.images import load
from convcli.kernels import FILTERS_DIR, KERNEL_PATH_ENV, Kernel, list_kernels
from convcli.pipeline import ApplyOptions, apply_one

# The cells, shapes and ranks exactly as `convcli kernels NAME` writes them.
from convcli.render.kernels import kernel_shape, separable_label, weight_cell
from convcli.saving import save
from convcli.tracing import format_number

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGE = DOCS / "catalogue.md"
PICTURES = DOCS / "images" / "kernels"
PHOTO = ROOT / "sample_images" / "coffee.png"

CROP = (72, 344, 96, 128)
"""The crop of the photo: top, left, height, width. It holds the coffee's
crema, the cup's rim, the spoon's handle, the saucer's rim and the wood grain;
at this size all the pictures together stay under 1 MB."""

SHOWN = 2
"""The pictures are shown this many times their size, pixels kept square."""

CROP_NAME = "crop"
"""The input's picture, ``crop.png`` (no kernel may have this name)."""

PNG_LEVEL = 9
"""zlib level of the pictures."""

GAP = 4
"""White pixels between the tiles of a stacked bank's picture."""

BESIDE = 48
"""The widest weights (in characters) that leave room for the picture beside them."""

FULL = 76
"""The widest line of a bank's weights, filters side by side, below its picture."""

SPACING = " " * 4
"""Between two filters of a bank side by side."""

Pixels = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Family:
    """A group of kernels on the page: a heading, a sentence, the kernels in order."""

    title: str
    anchor: str
    intro: str
    names: tuple[str, ...]


FAMILIES = [
    Family(
        "Blur and smoothing",
        "blur-and-smoothing",
        "Weights that are never negative and sum to 1: each pixel becomes a "
        "weighted mean of its neighbourhood, so noise and fine detail fade "
        "while the overall brightness stays.",
        ("box", "binomial", "gaussian", "motion", "smooth", "smooth_more", "blur"),
    ),
    Family(
        "Sharpening",
        "sharpening",
        "A positive centre and negative neighbours, summing to 1: flat areas "
        "stay as they are, and the difference between a pixel and its "
        "neighbourhood is amplified.",
        ("sharpen", "detail", "edge_enhance", "edge_enhance_more", "unsharp"),
    ),
    Family(
        "Edges and gradients",
        "edges-and-gradients",
        "First-derivative kernels that sum to 0. An `_x` kernel finds vertical "
        "edges (positive where the image gets brighter to the right), a `_y` "
        "kernel horizontal ones (positive where it gets brighter downward); "
        "the name alone is a bank of both, combined into the gradient "
        "magnitude, which finds edges in every direction. `roberts` is such a "
        "bank of two diagonal differences.",
        (
            "sobel_x",
            "sobel_y",
            "sobel",
            "prewitt_x",
            "prewitt_y",
            "prewitt",
            "scharr_x",
            "scharr_y",
            "scharr",
            "farid_x",
            "farid_y",
            "farid",
            "roberts",
        ),
    ),
    Family(
        "Compass and basis banks",
        "compass-and-basis-banks",
        "Banks of many directional masks: a compass kernel keeps, at each "
        "pixel, the strongest response of its 8 directions; Frei-Chen keeps "
        "its 9 maps apart, one output each.",
        ("kirsch", "compass", "frei_chen"),
    ),
    Family(
        "Laplacian, outlines and blobs",
        "laplacian-outlines-and-blobs",
        "Second-derivative kernels that sum to 0: they respond on both sides "
        "of an edge, and to spots and thin lines, but not to a steady "
        "ramp. The Gaussian ones (`log`, `dog`) smooth first, so they pick "
        "out blobs of about their size rather than noise.",
        ("laplacian", "laplacian8", "outline", "contour", "log", "dog"),
    ),
    Family(
        "Identity and relief",
        "identity-and-relief",
        "The kernel that changes nothing (a reference for the pictures), and "
        "Pillow's relief effect.",
        ("identity", "emboss"),
    ),
]
"""The page's sections, in order; a kernel in none of them goes to `OTHER`."""

OTHER = Family(
    "Other kernels",
    "other-kernels",
    "Kernels of the catalogue that no family above names yet.",
    (),
)


@dataclass
class Generation:
    """A fresh page and its pictures, by file name."""

    page: str
    pictures: dict[str, Pixels] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# The catalogue and its pictures


@contextmanager
def _builtin_only() -> Iterator[None]:
    """Hide ``$CONVCLI_KERNEL_PATH`` for a while, so the user's kernels stay out."""
    saved = os.environ.pop(KERNEL_PATH_ENV, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[KERNEL_PATH_ENV] = saved


def builtin_kernels() -> list[Kernel]:
    """Return the built-in catalogue, sorted by name.

    Returns
    -------
    list of Kernel
        `convcli.list_kernels` with ``$CONVCLI_KERNEL_PATH`` ignored.
    """
    with _builtin_only():
        return list_kernels()


def crop_pixels() -> Pixels:
    """Return the crop of the sample photo that every picture starts from.

    Returns
    -------
    ndarray of uint8
        (H, W, 3) pixels, `CROP` of ``sample_images/coffee.png``.
    """
    top, left, height, width = CROP
    pixels = load(PHOTO).pixels
    return np.ascontiguousarray(pixels[top : top + height, left : left + width])


def tile(maps: list[Pixels]) -> Pixels:
    """Tile same-sized images in a square-ish grid, `GAP` white pixels apart.

    Parameters
    ----------
    maps : list of ndarray
        (H, W, C) images, all of one shape and dtype.

    Returns
    -------
    ndarray
        The grid, left to right then top to bottom; white where no map is.
    """
    columns = math.ceil(math.sqrt(len(maps)))
    rows = math.ceil(len(maps) / columns)
    h, w, c = maps[0].shape
    sheet = np.full(
        (rows * h + (rows - 1) * GAP, columns * w + (columns - 1) * GAP, c),
        255,
        dtype=maps[0].dtype,
    )
    for i, pixels in enumerate(maps):
        y, x = (i // columns) * (h + GAP), (i % columns) * (w + GAP)
        sheet[y : y + h, x : x + w] = pixels
    return sheet


def pictures(kernels: list[Kernel]) -> dict[str, Pixels]:
    """Run the crop through every kernel as ``convcli apply`` does, by default.

    Parameters
    ----------
    kernels : list of Kernel
        The catalogue.

    Returns
    -------
    dict
        Pixels by file name: ``crop.png`` (the input) and ``NAME.png`` per kernel.
    """
    crop = crop_pixels()
    made = {f"{CROP_NAME}.png": crop}
    with tempfile.TemporaryDirectory() as scratch:
        image = save(Path(scratch) / f"{CROP_NAME}.png", crop)  # lossless
        for kernel in kernels:
            out = Path(scratch) / kernel.name
            out.mkdir()
            result = apply_one(image, kernel, ApplyOptions(), out)
            maps = [load(output.path).pixels for output in result.outputs]
            made[f"{kernel.name}.png"] = maps[0] if len(maps) == 1 else tile(maps)
    return made


# ---------------------------------------------------------------------------
# The page


def _md(text: str) -> str:
    """Escape what Markdown would read as markup (``2*ceil(3*sigma)``, ``a|b``)."""
    for char in "\\`*_[]<>|":
        text = text.replace(char, "\\" + char)
    return text


def _sentence(text: str) -> str:
    """End a description with a full stop."""
    return text if text.endswith((".", "!", "?")) else text + "."


def _number(value: float) -> str:
    """Write a sum or bias as ``convcli kernels`` does (6 decimals, then short)."""
    return format_number(round(value, 6))


def _filter_names(kernel: Kernel) -> tuple[str, ...]:
    """Return the names of a bank's filters, ``f0, f1, ...`` if it has none."""
    return kernel.filter_names or tuple(f"f{d}" for d in range(kernel.weights.shape[0]))


def grid(weights: npt.NDArray[np.float64]) -> list[str]:
    """Write one 2-D slice of weights, a line per row, columns aligned right.

    Parameters
    ----------
    weights : ndarray
        (kh, kw) weights.

    Returns
    -------
    list of str
        The rows, each cell as ``convcli kernels`` writes it (sign always
        written: ``-1 0 +1``), cells two spaces apart.
    """
    cells = [[weight_cell(float(v)).plain for v in row] for row in weights]
    widths = [max(len(row[j]) for row in cells) for j in range(len(cells[0]))]
    return [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]


def weights_block(kernel: Kernel, width: int) -> str:
    """Write a kernel's weights as a fenced text block; a bank filter by filter.

    Parameters
    ----------
    kernel : Kernel
        A 2-D kernel or a (D, C, kh, kw) bank.
    width : int
        The widest line wanted, in characters: a bank's filters stand side by
        side, as many to a row as fit (at least one).

    Returns
    -------
    str
        The block. A bank's filters each have a ``filter NAME`` line above
        them (and their channel, if the bank has several), as
        ``convcli kernels`` shows them.
    """
    if not kernel.is_bank:
        return "```text\n" + "\n".join(grid(kernel.weights)) + "\n```"
    channels = kernel.weights.shape[1]
    pieces = [
        [f"filter {name}" + (f", channel {c}" if channels > 1 else ""), *grid(w)]
        for name, filters in zip(_filter_names(kernel), kernel.weights, strict=True)
        for c, w in enumerate(filters)
    ]
    for columns in range(len(pieces), 0, -1):
        rows = [pieces[i : i + columns] for i in range(0, len(pieces), columns)]
        widths = [
            max(len(line) for row in rows if j < len(row) for line in row[j])
            for j in range(columns)
        ]
        if sum(widths) + len(SPACING) * (columns - 1) <= width or columns == 1:
            break
    blocks = [
        "\n".join(
            SPACING.join(
                p[i].ljust(w) for p, w in zip(row, widths, strict=False)
            ).rstrip()
            for i in range(len(row[0]))
        )
        for row in rows
    ]
    return "```text\n" + "\n\n".join(blocks) + "\n```"


def _sums(kernel: Kernel) -> str:
    """Write the sum of the weights; of each filter for a bank."""
    if not kernel.is_bank:
        return f"**sum** {_number(kernel.total)}"
    sums = [_number(float(f.sum())) for f in kernel.weights]
    if len(set(sums)) == 1:
        return f"**sum** {sums[0]} (each filter)"
    each = ", ".join(
        f"{name} {s}" for name, s in zip(_filter_names(kernel), sums, strict=True)
    )
    return f"**sums** {_md(each)}"


COMBINED = {
    "magnitude": "magnitude (the root of the sum of the squared maps)",
    "sum": "sum (the maps added)",
    "max": "max (the strongest map at each pixel)",
    "stack": "stack (one output per filter)",
}


def properties(kernel: Kernel) -> str:
    """Write a kernel's properties: shape, sum, separable, combine, range, bias, origin.

    Parameters
    ----------
    kernel : Kernel
        Any kernel of the catalogue.

    Returns
    -------
    str
        Two lines of Markdown: the numbers, then where the kernel comes from
        (its file relative to the checkout, or the generator).
    """
    facts = [f"**shape** {kernel_shape(kernel)}", _sums(kernel)]
    facts.append(f"**separable** {separable_label(kernel)}")
    if kernel.is_bank:
        facts.append(f"**combine** {COMBINED.get(kernel.combine, kernel.combine)}")
    facts.append(f"**range** {kernel.range}")
    if kernel.bias:
        facts.append("**bias** " + " ".join(_number(b) for b in kernel.bias))
    if kernel.source == "generator":
        where = "generated in code"
    else:
        path = Path(kernel.source)
        where = (
            f"`filters/{path.name}`"
            if path.parent.resolve() == FILTERS_DIR.resolve()
            else f"`{path.name}`"
        )
    origin = f"**origin** {_md(kernel.origin)}; " if kernel.origin else ""
    return " · ".join(facts) + "  \n" + origin + f"**source** {where}"


def parameters(kernel: Kernel) -> str:
    """Write a generator's parameters with their defaults, as a spec to copy.

    Parameters
    ----------
    kernel : Kernel
        A catalogue kernel; only a generator has parameters.

    Returns
    -------
    str
        A sentence with ``NAME:key=value,...``, or ``""``.
    """
    if not kernel.params:
        return ""
    spec = ",".join(f"{k}={format_number(v)}" for k, v in kernel.params.items())
    return (
        f"Parameters, with their defaults: `{kernel.name}:{spec}`. The weights "
        "and the picture here are at the defaults."
    )


def picture(name: str, alt: str, shape: tuple[int, ...], *, side: bool) -> str:
    """Write a picture's Markdown: shown `SHOWN` times its size, pixels kept square.

    Parameters
    ----------
    name : str
        The file's stem in ``docs/images/kernels/``.
    alt : str
        What the picture shows.
    shape : tuple of int
        The picture's (H, W, C).
    side : bool
        Float it to the right of the text that follows.

    Returns
    -------
    str
        An image with its attributes (``attr_list``).
    """
    attrs = f'width="{SHOWN * shape[1]}" style="image-rendering: pixelated"'
    if side:
        attrs += " align=right"
    return f"![{_md(alt)}](images/kernels/{name}.png){{ {attrs} }}"


def section(kernel: Kernel, shape: tuple[int, ...]) -> str:
    """Write one kernel's section of the page.

    Parameters
    ----------
    kernel : Kernel
        Any kernel of the catalogue.
    shape : tuple of int
        The (H, W, C) of its picture.

    Returns
    -------
    str
        Heading (anchored at the kernel's name), description, parameters,
        picture, weights and properties. The picture floats on the right if
        the weights fit in `BESIDE` characters; else it comes before them
        (a bank that keeps its maps apart: after them, at full width).
    """
    name = kernel.name
    tiled = kernel.is_bank and kernel.combine == "stack"
    if tiled:
        alt = (
            f"The crop through {name}: its {kernel.weights.shape[0]} outputs, "
            f"{', '.join(_filter_names(kernel))}, left to right and top to bottom"
        )
    else:
        alt = f"The crop through {name}"
    block = weights_block(kernel, BESIDE)
    beside = not tiled and max(map(len, block.split("\n"))) <= BESIDE
    if not beside:
        block = weights_block(kernel, FULL)
    shown = picture(name, alt, shape, side=beside)
    parts = [
        f"### `{name}` {{ #{name} }}",
        shown if beside else "",
        _md(_sentence(kernel.description)),
        parameters(kernel),
        shown if not (beside or tiled) else "",
        block,
        properties(kernel),
        shown if tiled else "",
    ]
    return "\n\n".join(part for part in parts if part)


def families(kernels: list[Kernel]) -> list[tuple[Family, list[Kernel]]]:
    """Group the catalogue by `FAMILIES`; the kernels they do not name under `OTHER`.

    Parameters
    ----------
    kernels : list of Kernel
        The catalogue.

    Returns
    -------
    list of (Family, list of Kernel)
        Every kernel exactly once, in the families' order; empty families left out.

    Raises
    ------
    SystemExit
        A family names a kernel that is not in the catalogue, or names one twice.
    """
    by_name = {k.name: k for k in kernels}
    named = [name for family in FAMILIES for name in family.names]
    missing = sorted(set(named) - set(by_name))
    twice = sorted({name for name in named if named.count(name) > 1})
    if missing or twice or CROP_NAME in by_name:
        problems = [
            f"FAMILIES names kernels not in the catalogue: {', '.join(missing)}"
            if missing
            else "",
            f"FAMILIES names kernels twice: {', '.join(twice)}" if twice else "",
            f"a kernel is called {CROP_NAME!r}, as the input's picture"
            if CROP_NAME in by_name
            else "",
        ]
        sys.exit("docs/make_catalogue.py: " + "; ".join(filter(None, problems)))
    groups = [(f, [by_name[name] for name in f.names]) for f in FAMILIES]
    rest = [k for k in kernels if k.name not in set(named)]
    groups.append((OTHER, sorted(rest, key=lambda k: k.name)))
    return [(f, members) for f, members in groups if members]


def summary(groups: list[tuple[Family, list[Kernel]]]) -> str:
    """Write the families, then the table of every kernel: name, shape, what it does.

    Parameters
    ----------
    groups : list of (Family, list of Kernel)
        As `families` returns them.

    Returns
    -------
    str
        A line of links to the families, and a Markdown table, each name
        linked to its section, in the page's order.
    """
    links = " · ".join(f"[{f.title}](#{f.anchor})" for f, _ in groups)
    rows = ["| kernel | shape | what it does |", "|---|---|---|"]
    rows += [
        f"| [`{k.name}`](#{k.name}) | {kernel_shape(k)} | {_md(k.description)} |"
        for _, members in groups
        for k in members
    ]
    return f"Families: {links}.\n\n" + "\n".join(rows)


def page(kernels: list[Kernel], shapes: dict[str, tuple[int, ...]]) -> str:
    """Write the whole page.

    Parameters
    ----------
    kernels : list of Kernel
        The catalogue.
    shapes : dict
        The (H, W, C) of each picture, by file name (as `pictures` names them).

    Returns
    -------
    str
        docs/catalogue.md, ending with one newline; the same text for the same
        catalogue on any machine (no dates, no absolute paths).
    """
    top, left, height, width = CROP
    groups = families(kernels)
    generators = sum(k.source == "generator" for k in kernels)
    crop_alt = (
        "The input: the coffee, the rim of the cup, the spoon's handle, "
        "the saucer's rim and the wood grain"
    )
    intro = f"""\
# Kernel catalogue

<!-- Generated by docs/make_catalogue.py from convcli's catalogue: do not edit by hand. Run `.venv/bin/python docs/make_catalogue.py` to rewrite it. -->

Every kernel here is used by its name: `convcli apply IMAGE -k NAME`. The
parametric ones ({generators} of them) take parameters after a colon, as in
`convcli apply IMAGE -k gaussian:sigma=2`; without them they use the defaults
listed in their section. `convcli kernels NAME` shows the same weights and
properties in the terminal, and `convcli kernels` lists them all. Each picture
is what `convcli apply crop.png -k NAME` writes with its defaults (padding
`same`, border `reflect`, the kernel's own range and combine), where
`crop.png` is the {width} x {height} pixels of `sample_images/coffee.png` from
column {left}, row {top}. A **range** says how the float result becomes pixels:
`offset` puts 0 at mid-grey and `gain` at black, both at a scale set by the
kernel alone, so every image shows the same edge alike
([the formulas and which kernel takes which](reference.md#float-results-to-pixels)):

{picture(CROP_NAME, crop_alt, shapes[f"{CROP_NAME}.png"], side=False)}

Weights are cross-correlation weights (the window times the kernel, not
flipped), with signs always written; x derivatives are positive where the
image gets brighter to the right, y derivatives where it gets brighter
downward. The other kernels ({len(kernels) - generators} of them) are the
files of `filters/`, whose comments say how each reproduces its origin.

## All kernels

{summary(groups)}
"""
    sections = [
        f"## {family.title} {{ #{family.anchor} }}\n\n{family.intro}\n\n"
        + "\n\n".join(section(k, shapes[f"{k.name}.png"]) for k in members)
        for family, members in groups
    ]
    return intro + "\n" + "\n\n".join(sections) + "\n"


def generate() -> Generation:
    """Make the page and its pictures from the catalogue, in memory.

    Returns
    -------
    Generation
        The page's text and the pictures' pixels by file name.
    """
    kernels = builtin_kernels()
    made = pictures(kernels)
    shapes = {name: pixels.shape for name, pixels in made.items()}
    return Generation(page=page(kernels, shapes), pictures=made)


# ---------------------------------------------------------------------------
# Checking and writing


def _same_pixels(path: Path, pixels: Pixels) -> bool:
    """Whether the picture at ``path`` decodes to exactly ``pixels``."""
    if not path.is_file():
        return False
    old = load(path).pixels
    return old.shape == pixels.shape and bool(np.array_equal(old, pixels))


def _strays(expected: dict[str, Pixels]) -> list[Path]:
    """Return the files of the pictures' folder that the page does not use."""
    if not PICTURES.is_dir():
        return []
    return sorted(p for p in PICTURES.iterdir() if p.name not in expected)


def stale(fresh: Generation) -> list[str]:
    """Say what differs between the files and a fresh generation.

    Parameters
    ----------
    fresh : Generation
        As `generate` returns it.

    Returns
    -------
    list of str
        One line per stale, missing or stray file (empty: all up to date).
    """
    problems = []
    if not PAGE.is_file():
        problems.append(f"{PAGE.relative_to(ROOT)}: missing")
    elif PAGE.read_text(encoding="utf-8") != fresh.page:
        problems.append(f"{PAGE.relative_to(ROOT)}: differs from a fresh generation")
    for name, pixels in sorted(fresh.pictures.items()):
        path = PICTURES / name
        if not path.is_file():
            problems.append(f"{path.relative_to(ROOT)}: missing")
        elif not _same_pixels(path, pixels):
            problems.append(f"{path.relative_to(ROOT)}: pixels differ")
    problems += [
        f"{p.relative_to(ROOT)}: stray, no kernel of the catalogue has this picture"
        for p in _strays(fresh.pictures)
    ]
    return problems


def write(fresh: Generation) -> list[str]:
    """Write the page and every changed picture; delete stray pictures.

    Parameters
    ----------
    fresh : Generation
        As `generate` returns it.

    Returns
    -------
    list of str
        What was written or deleted.
    """
    done = []
    if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != fresh.page:
        PAGE.write_text(fresh.page, encoding="utf-8")
        done.append(f"wrote {PAGE.relative_to(ROOT)}")
    PICTURES.mkdir(parents=True, exist_ok=True)
    for name, pixels in sorted(fresh.pictures.items()):
        path = PICTURES / name
        if not _same_pixels(path, pixels):
            save(path, pixels, compress_level=PNG_LEVEL)
            done.append(f"wrote {path.relative_to(ROOT)}")
    for path in _strays(fresh.pictures):
        path.unlink()
        done.append(f"deleted {path.relative_to(ROOT)}")
    return done


def main(argv: list[str] | None = None) -> int:
    """Rewrite the page and pictures, or with ``--check`` report what is stale.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: the command line's).

    Returns
    -------
    int
        The exit code: 1 if ``--check`` found something stale, else 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="report what is stale, change nothing"
    )
    args = parser.parse_args(argv)
    fresh = generate()
    if args.check:
        problems = stale(fresh)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    done = write(fresh)
    for line in done:
        print(line)
    total = sum(p.stat().st_size for p in PICTURES.glob("*.png"))
    print(
        f"{len(fresh.pictures) - 1} kernels, {len(fresh.pictures)} pictures, "
        f"{total:,} bytes of pictures; {'up to date' if not done else 'done'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
