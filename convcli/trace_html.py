"""Draw `convcli trace` as one interactive web page: the layer, its steps, its arithmetic.

The page is the cs231n notes' "Convolution Demo" built from the user's own
numbers: the input volume (every channel of the padded input, padding
marked), every filter with its slices and bias, and the output volume filling
up; the window, the filter at work and the output value highlighted, and the
step's arithmetic written as the text view writes it. It plays, steps, jumps
to the step of a clicked output value, and shows which outputs read a hovered
input value.

One self-contained file, no network: the HTML, CSS and JavaScript of
``trace_page.html`` (package data), with two JSON documents embedded: the one
``convcli trace --json`` prints, and beside it every string the page shows,
written here by `format_number` and `Trace.terms` (the page formats no number
itself, so it cannot disagree with the text view). `check_page_path` checks
where the page goes before anything is written; `save_trace_page` writes it
atomically. Standard library and numpy only.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from convcli.atomic import same_file, target_problem
from convcli.errors import ConvcliError, shown
from convcli.tracing import Trace, format_number, json_text
from convcli.tracing_transposed import VALUE, TransposedTrace

TEMPLATE = "trace_page.html"
"""The page's HTML, CSS and JavaScript, a data file of the package."""

_SLOT = re.compile(r"\{\{(title|json|view)\}\}")

PAGE_SUFFIXES = (".html", ".htm")
"""The names `save_trace_page` writes."""

Traced = Trace | TransposedTrace | Sequence[Trace]
"""What a page shows: one layer, a transposed one (as its convolution), or
several layers (a two-layer demo), each after the one before."""


class PageError(ConvcliError, ValueError):
    """A web page that cannot be written where asked: names the file and the reason."""


def page_document(traced: Traced) -> dict[str, Any]:
    """Return what ``convcli trace --json`` prints for ``traced`` (every step).

    One layer's document; a transposed convolution's, with its convolution
    view under ``convolution``; or ``{"layers": [...]}``. Strict JSON once
    written by `convcli.tracing.json_text`.
    """
    if isinstance(traced, TransposedTrace):
        doc = traced.to_json()
        doc["convolution"] = traced.conv.to_json()
        return doc
    if isinstance(traced, Trace):
        return traced.to_json()
    return {"layers": [t.to_json() for t in traced]}


def _layers(traced: Traced) -> list[tuple[Trace, npt.NDArray[np.bool_] | None]]:
    """Return the traces the page draws, each with the cells it marks as padding.

    A transposed convolution is drawn as its convolution, whose zeros
    (inserted between the input values and around them) are marked.
    """
    if isinstance(traced, TransposedTrace):
        return [(traced.conv, np.asarray(traced.cells != VALUE))]
    if isinstance(traced, Trace):
        return [(traced, None)]
    return [(t, None) for t in traced]


def _names(t: Trace) -> dict[str, Any]:
    """Return the text view's names: x[:,:,c], w0[:,:,i], b0, o[:,:,d] (cs231n's)."""
    channels = int(t.input.shape[0])
    depth, out_h, out_w = (int(n) for n in t.output.shape)
    single = channels == 1 and depth == 1
    per_in = int(t.weights.shape[1])

    def w(d: int) -> str:
        return "w" if single else f"w{d}"

    return {
        "x": ["x" if channels == 1 else f"x[:,:,{c}]" for c in range(channels)],
        "w": [w(d) for d in range(depth)],
        "slices": [
            [w(d) if per_in == 1 else f"{w(d)}[:,:,{i}]" for i in range(per_in)]
            for d in range(depth)
        ],
        "b": ["b" if single else f"b{d}" for d in range(depth)],
        "o": ["o" if single else f"o[:,:,{d}]" for d in range(depth)],
        "at": [  # each output value's name, [d][row][col]
            [
                [f"o[{r},{c}]" if single else f"o[{r},{c},{d}]" for c in range(out_w)]
                for r in range(out_h)
            ]
            for d in range(depth)
        ],
    }


def _strings(values: npt.NDArray[np.floating[Any]]) -> Any:
    """Return an array's values as `format_number` writes them, nested as the array."""
    if values.ndim == 0:
        return format_number(float(values))
    return [_strings(v) for v in values]


def _span(what: str, taps: range) -> str:
    """Return ``rows 0-2``, or ``row 3`` for a window one tap high (the text view's)."""
    if len(taps) == 1:
        return f"{what} {taps[0]}"
    return f"{what}s {taps[0]}-{taps[-1]}"


def _steps(t: Trace, names: dict[str, Any]) -> list[dict[str, Any]]:
    """Return each step's lines as the text view writes them, and its window's taps."""
    steps = []
    for index, step in enumerate(t.steps):
        d = step.filter
        at = names["at"][d][step.row][step.col]
        rows, cols = t.taps(step)
        sums = [format_number(s) for s in step.channel_sums]
        total = " + ".join(sums)
        if step.bias or len(sums) > 1:
            total += f" + {names['b'][d]} ({format_number(step.bias)})"
        value = format_number(step.value)
        steps.append(
            {
                "head": (
                    f"{at} (step {index + 1} of {len(t.steps)}): filter "
                    f"{names['w'][d]} over {_span('row', rows)}, "
                    f"{_span('col', cols)} of the padded input"
                ),
                "terms": [t.terms(step, i) for i in range(len(step.channel_sums))],
                "result": f"{at} = "
                + (f"{total} = " if total != value else "")
                + value,
                "sum": format_number(step.sum),
                "bias": format_number(step.bias),
                "value": value,
                "taps": [list(rows), list(cols)],
            }
        )
    return steps


def _times(*sides: int) -> str:
    return " x ".join(map(str, sides))


def _facts(t: Trace, zeros: bool) -> list[str]:
    """Return the layer in short phrases: shapes, padding, stride, its cost."""
    channels, height, width = (int(n) for n in t.input.shape)
    top, bottom, left, right = t.padding
    depth, out_h, out_w = (int(n) for n in t.output.shape)
    kh, kw = t.kernel
    facts = [f"input x {_times(height, width, channels)}"]
    if zeros:
        facts[0] = (
            f"zero-inserted input {_times(height, width, channels)} (the transposed "
            "convolution as a convolution; grey: the zeros inserted)"
        )
    elif any(t.padding):
        pads = (
            str(top) if len(set(t.padding)) == 1 else f"{top},{bottom},{left},{right}"
        )
        holds = "zeros" if t.cval == 0 else f"the value {format_number(t.cval)}"
        if t.border != "constant":
            holds = f"border {t.border}"
        facts.append(
            f"padding {pads} ({holds}): {_times(*t.padded.shape[1:], channels)}"
        )
    groups = f", groups {t.groups}" if t.groups > 1 else ""
    many = "filter" if depth == 1 else "filters"
    facts.append(f"{depth} {many} {_times(kh, kw, int(t.weights.shape[1]))}{groups}")
    stride = (
        t.stride[0] if t.stride[0] == t.stride[1] else f"{t.stride[0]},{t.stride[1]}"
    )
    facts.append(f"stride {stride}")
    if t.dilation != (1, 1):
        facts.append(f"dilation {t.dilation[0]},{t.dilation[1]}")
    facts.append(f"output o {_times(out_h, out_w, depth)}")
    facts.append(
        f"{t.parameters} parameters, {t.multiply_adds} multiply-adds"
        + (" (flip: kernels rotated 180 degrees)" if t.flip else "")
    )
    return facts


def _padding_mask(t: Trace) -> npt.NDArray[np.bool_]:
    top, _, left, _ = t.padding
    height, width = t.input.shape[1:]
    mask = np.ones(t.padded.shape[1:], dtype=bool)
    mask[top : top + height, left : left + width] = False
    return mask


def page_view(
    traced: Traced, *, title: str = "", lesson: str = "", start: int = 0
) -> dict[str, Any]:
    """Return every string the page shows, beside `page_document`'s numbers.

    Per layer: its names, its short facts, the padded input, the weights,
    the biases and the output as `format_number` writes them, which cells
    are padding, the channels each filter reads, and per step the lines of
    the text view (`Trace.terms` per channel, then the channel sums, the bias
    and the value) with the rows and columns of its window.
    """
    layers = _layers(traced)
    view: dict[str, Any] = {
        "title": title,
        "lesson": lesson,
        "start": start,
        "layers": [],
    }
    for n, (t, cells) in enumerate(layers):
        names = _names(t)
        pad = _padding_mask(t) if cells is None else cells
        view["layers"].append(
            {
                "name": f"layer {n + 1}" + (f", on layer {n}'s output" if n else ""),
                "facts": _facts(t, cells is not None),
                "names": names,
                "padded": _strings(t.padded),
                "pad": pad.astype(int).tolist(),
                "weights": _strings(t.weights),
                "bias": _strings(t.bias),
                "output": _strings(t.output),
                "channels": [list(t.channels_of(d)) for d in range(t.depth)],
                "steps": _steps(t, names),
            }
        )
    return view


def _script_json(doc: Any) -> str:
    r"""Write ``doc`` as strict JSON that cannot end its ``<script>`` element.

    Every ``<`` (only ever inside a string) is written ``\u003c``, so no
    value can spell ``</script>`` or ``<!--``.
    """
    return json_text(doc, indent=None).replace("<", "\\u003c")


def trace_page(
    traced: Traced, *, title: str = "", lesson: str = "", start: int = 0
) -> str:
    """Return the page of a trace: one self-contained HTML document.

    Parameters
    ----------
    traced : Trace, TransposedTrace or sequence of Trace
        One layer; a transposed convolution (shown as its convolution, as
        ``--gif`` shows it); or layers each on the one before's output.
    title, lesson : str, optional
        A heading and a paragraph above the layer.
    start : int, optional
        The step (0-based, of the first layer) the page opens at.

    Returns
    -------
    str
        HTML with its CSS and JavaScript inline and two JSON documents:
        ``#trace-json`` holds `page_document` (what ``--json`` prints) and
        ``#trace-view`` `page_view`. It loads nothing from anywhere.

    Examples
    --------
    >>> from convcli.tracing import trace
    >>> page = trace_page(trace([[1, 2], [3, 4]], [[1, 0], [0, -1]]), title="a 2x2 kernel")
    >>> page.startswith("<!DOCTYPE html>"), "://" in page, "1*1+2*0+3*0+4*-1=-3" in page
    (True, False, True)
    """
    steps = len(_layers(traced)[0][0].steps)
    if isinstance(start, bool) or not 0 <= start < steps:
        msg = f"start must be a step index in 0..{steps - 1}; got {start!r}"
        raise ValueError(msg)
    template = resources.files("convcli").joinpath(TEMPLATE).read_text(encoding="utf-8")
    heading = f"convcli trace: {title}" if title else "convcli trace"
    parts = {
        "title": html.escape(heading),
        "json": _script_json(page_document(traced)),
        "view": _script_json(
            page_view(traced, title=heading, lesson=lesson, start=start)
        ),
    }
    # One pass: a value that spells a {{slot}} is never read as one.
    return _SLOT.sub(lambda m: parts[m.group(1)], template)


def check_page_path(
    path: str | os.PathLike[str],
    inputs: Mapping[str, Path] | None = None,
    outputs: Mapping[str, Path | None] | None = None,
) -> Path:
    """Check where `save_trace_page` will write, before anything is written.

    Parameters
    ----------
    path : str or path-like
        The page to write.
    inputs : mapping of str to Path, optional
        The run's input files by the option that gave them (``{"-i": ...}``):
        the page must be none of them.
    outputs : mapping of str to Path or None, optional
        The run's other outputs by option (``{"--gif": ...}``; None: not
        written): the page must be none of them.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    PageError
        ``path`` is an input or another output (the same path, or the same
        file by a link), does not end in ``.html`` or ``.htm``, is a folder or
        a device, or its folder is missing or not writable. Nothing is left
        behind.
    """
    p = Path(path)
    for option, source in (inputs or {}).items():
        if same_file(p, source):
            msg = (
                f"--html {shown(p)} is the input {option} {shown(source)}; an input "
                "is never overwritten: give the page another name"
            )
            raise PageError(msg)
    for option, other in (outputs or {}).items():
        if other is not None and same_file(p, other):
            msg = (
                f"--html {shown(p)} and {option} {shown(other)} are the same file; "
                "two outputs never share a name: give them different names"
            )
            raise PageError(msg)
    if p.suffix.lower() not in PAGE_SUFFIXES:
        msg = f"{shown(p)}: --html writes a web page; give a name ending in .html"
        raise PageError(msg)
    problem = target_problem(p)
    if problem is not None:
        msg = f"{shown(p)}: {shown(problem)}; --html names the page file to write"
        raise PageError(msg)
    return p


def save_trace_page(
    path: str | os.PathLike[str],
    traced: Traced,
    *,
    title: str = "",
    lesson: str = "",
    start: int = 0,
) -> Path:
    """Write `trace_page` to ``path`` atomically: a temporary file beside it, then a rename.

    Raises
    ------
    PageError
        A name not ending in ``.html`` or ``.htm``, a folder that cannot be
        written, a failed write. No partial file is left behind, and an
        existing ``path`` stays as it was.

    Examples
    --------
    >>> import tempfile
    >>> from convcli.tracing import trace
    >>> t = trace([[1, 2, 3], [4, 5, 6]], [[1, 0], [0, -1]])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     page = save_trace_page(Path(folder) / "t.html", t)
    ...     print(page.name, sorted(p.name for p in Path(folder).iterdir()))
    t.html ['t.html']
    """
    p = Path(path)
    if p.suffix.lower() not in PAGE_SUFFIXES:
        msg = f"{shown(p)}: --html writes a web page; give a name ending in .html"
        raise PageError(msg)
    data = trace_page(traced, title=title, lesson=lesson, start=start).encode("utf-8")
    from convcli.saving import write_atomically  # the images' atomic write

    def write(stream: BinaryIO) -> None:
        stream.write(data)

    try:
        return write_atomically(p, write)
    except ConvcliError as err:  # an ImageError: the same message, the page's class
        raise PageError(str(err)) from None
