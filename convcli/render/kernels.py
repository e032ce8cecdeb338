"""The kernel views of ``convcli kernels``: one kernel's weights and properties, the catalogue."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
from rich.text import Text

from convcli.kernels import GENERATORS, Kernel
from convcli.tracing import format_number

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult


# ---------------------------------------------------------------------------
# convcli kernels: one kernel's weights and properties, the catalogue
#
# Both are laid out as lines of text for the width they are printed at
# (`__rich_console__`), so that a number is never cut: a grid too wide is
# shown as integers times a scale, when that is exact, or in blocks of
# columns; prose wraps at spaces.

_GAP = "  "  # between the cells of a grid, and the columns of the catalogue
_SIDE = "    "  # between a bank's filters side by side
_MAX_DENOMINATOR = 10**6  # of an integer form's scale, 1/d
_MAX_NUMERATOR = 10**15  # written in full by format_number
_NOISE = 1e-12  # a sum this small against the magnitudes is rounding: 0


def _params(kernel: Kernel) -> str:
    gen = GENERATORS.get(kernel.name)
    if gen is None or kernel.source != "generator":
        return ""
    return ", ".join(f"{k}={format_number(v)}" for k, v in gen.defaults.items())


def kernel_shape(kernel: Kernel) -> str:
    """Return ``3x3``, or ``2 x 1x3x3`` for a bank (D x C x kh x kw)."""
    kh, kw = kernel.size
    if not kernel.is_bank:
        return f"{kh}x{kw}"
    depth, channels = kernel.weights.shape[:2]
    return f"{depth} x {channels}x{kh}x{kw}"


def separable_label(kernel: Kernel) -> str:
    """Return ``yes`` for a rank-1 kernel, else ``no (rank R)``."""
    rank = kernel.rank
    return "yes" if rank == 1 else f"no (rank {rank})"


def weight_cell(value: float) -> Text:
    """One weight: sign always written (+2, -1, 0), coloured by sign as well."""
    if value == 0:
        return Text("0", style="dim")
    text = format_number(value)
    return Text(
        text if value < 0 else f"+{text}", style="red" if value < 0 else "green"
    )


def sum_text(weights: np.ndarray) -> str:
    """Write the sum of some weights; rounding noise (``1e-17`` for 0) is 0.

    Examples
    --------
    >>> sum_text(np.array([[-1, 0, 1], [-2, 0, 2.0]]) * 0.1)
    '0'
    >>> sum_text(np.full((3, 3), 1 / 9))
    '1'
    """
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(weights.sum())
        size = float(np.abs(weights).sum())
    if math.isfinite(size) and abs(total) <= _NOISE * size:
        total = 0.0
    return format_number(total)


def _filter_names(kernel: Kernel) -> tuple[str, ...]:
    depth = kernel.weights.shape[0]
    return kernel.filter_names or tuple(f"f{i}" for i in range(depth))


def _bank_sums(kernel: Kernel) -> tuple[str, str]:
    """Return a bank's sum if every filter has the same, else ``""`` and each one.

    The sums of the filters group runs of filters with the same sum:
    ``0 (g1 to g8), 3 (g9)``.
    """
    sums = [sum_text(f) for f in kernel.weights]
    if len(set(sums)) == 1:
        return sums[0], ""
    runs: list[list[str]] = []  # sum, first name, last name
    for name, total in zip(_filter_names(kernel), sums, strict=True):
        if runs and runs[-1][0] == total:
            runs[-1][2] = name
        else:
            runs.append([total, name, name])
    return "", ", ".join(
        _keep(f"{total} ({first})" if first == last else f"{total} ({first} to {last})")
        for total, first, last in runs
    )


def _properties(kernel: Kernel) -> list[tuple[str, str]]:
    """Return what ``convcli kernels NAME`` lists under the weights, label and text."""
    if kernel.is_bank:
        same, each = _bank_sums(kernel)
        total = f"{same} (each filter)" if same else each
    else:
        total = sum_text(kernel.weights)
    rows = [
        ("shape", kernel_shape(kernel)),
        ("sum", total),
        ("separable", separable_label(kernel)),
    ]
    if kernel.is_bank:  # a 2-D kernel has one map: nothing to combine
        rows.append(("combine", kernel.combine))
    rows.append(("range", kernel.range))
    if kernel.bias:
        rows.append(("bias", " ".join(format_number(b) for b in kernel.bias)))
    if kernel.params:
        params = ", ".join(f"{k}={format_number(v)}" for k, v in kernel.params.items())
        rows.append(("parameters", params))
    if kernel.origin:
        rows.append(("origin", kernel.origin))
    rows.append(("source", kernel.source))
    return rows


def integer_form(weights: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Return integers ``n`` and ``d > 1`` with ``n / d == weights`` (2-D) exactly, or None.

    Exactly: each weight is ``n / d`` rounded to float64 once, or ``n``
    times the float64 nearest ``1/d`` (a kernel file's ``scale: 1/7``), to
    the last bit. ``d`` is at most 10**6 and every ``n`` below 10**15 in
    magnitude, so that both are written in full.

    Examples
    --------
    >>> n, d = integer_form(np.array([[1, 2, 1]]) / 16)
    >>> n.tolist(), d
    ([[1, 2, 1]], 16)
    >>> integer_form(np.array([[0.1, 0.2]]))
    (array([[1, 2]]), 10)
    >>> integer_form(np.arange(7.0).reshape(1, 7) * (1 / 7))[1]  # n * 0.14285...
    7
    >>> integer_form(np.array([[1.0, 2.0]])) is None  # integers already
    True
    """
    fractions: dict[float, Fraction] = {}
    denominator = 1
    for value in set(weights.ravel().tolist()):
        if not math.isfinite(value):
            return None
        fraction = Fraction(value).limit_denominator(_MAX_DENOMINATOR)
        denominator = math.lcm(denominator, fraction.denominator)
        if denominator > _MAX_DENOMINATOR:
            return None
        fractions[value] = fraction
    if denominator == 1:
        return None
    step = 1 / denominator
    numerators: dict[float, int] = {}
    for value, fraction in fractions.items():
        n = int(fraction * denominator)  # a whole number: d is a multiple
        if abs(n) >= _MAX_NUMERATOR or value not in (n / denominator, n * step):
            return None
        numerators[value] = n
    return np.array(
        [[numerators[v] for v in row] for row in weights.tolist()]
    ), denominator


def _wrap(text: str, width: int, indent: int = 0) -> list[str]:
    """Wrap prose at spaces to ``width``; later lines indented by ``indent``.

    A word longer than a line is split, never cut; a text written with
    `_keep` stays on one line.
    """
    parts = textwrap.wrap(
        text,
        max(width, indent + 8),
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
    )
    return [part.replace(_NBSP, " ") for part in parts] or [""]


_NBSP = "\u00a0"


def _keep(text: str) -> str:
    """Return ``text`` with spaces that `_wrap` does not break at."""
    return text.replace(" ", _NBSP)


def _widths(cells: list[list[Text]]) -> list[int]:
    return [max(row[j].cell_len for row in cells) for j in range(len(cells[0]))]


def _grid_width(widths: list[int]) -> int:
    return sum(widths) + len(_GAP) * (len(widths) - 1)


def _cell_run(row: list[Text], widths: list[int], columns: range) -> Text:
    line = Text()
    for j in columns:
        if j != columns.start:
            line.append(_GAP)
        line.append(" " * (widths[j] - row[j].cell_len))
        line.append_text(row[j])
    return line


def _column_blocks(widths: list[int], room: int) -> list[range]:
    """Split the columns into runs that fit in ``room``, one column at least.

    As few runs as fit, their sizes as even as fit (13 columns 4 at a time:
    4, 3, 3, 3 rather than 4, 4, 4, 1).
    """
    greedy = []
    start = 0
    while start < len(widths):
        end, used = start + 1, widths[start]
        while end < len(widths) and used + len(_GAP) + widths[end] <= room:
            used += len(_GAP) + widths[end]
            end += 1
        greedy.append(range(start, end))
        start = end
    size, longer = divmod(len(widths), len(greedy))
    even = []
    start = 0
    for i in range(len(greedy)):
        end = start + size + (i < longer)
        even.append(range(start, end))
        start = end
    if all(_grid_width(widths[b.start : b.stop]) <= room for b in even):
        return even
    return greedy


def _blocks_of_columns(cells: list[list[Text]], width: int) -> list[Text]:
    """Draw a grid in blocks of columns, numbered from 0 above and at the left."""
    gutter = len(str(len(cells) - 1))
    widths = [max(w, len(str(j))) for j, w in enumerate(_widths(cells))]
    lines: list[Text] = []
    for block in _column_blocks(widths, width - gutter - len(_GAP)):
        if lines:
            lines.append(Text())
        numbers = " " * gutter + "".join(_GAP + str(j).rjust(widths[j]) for j in block)
        lines.append(Text(numbers, style="dim"))
        for r, row in enumerate(cells):
            line = Text(str(r).rjust(gutter) + _GAP, style="dim")
            line.append_text(_cell_run(row, widths, block))
            lines.append(line)
    return lines


@dataclass(frozen=True)
class _Slice:
    """One 2-D slice of weights to draw, with its label."""

    label: str
    weights: np.ndarray

    def lines(self, width: int) -> list[Text]:
        """Draw the slice in ``width`` columns with every digit that `format_number` writes.

        As it is if it fits; else as integers times ``1/d`` when that is exact
        and narrower; in blocks of columns if it still does not fit.
        """
        notes = [self.label] if self.label else []
        cells = [[weight_cell(float(v)) for v in row] for row in self.weights]
        if _grid_width(_widths(cells)) > width:
            exact = integer_form(self.weights)
            if exact is not None:
                numerators, denominator = exact
                whole = [[weight_cell(float(n)) for n in row] for row in numerators]
                if _grid_width(_widths(whole)) < _grid_width(_widths(cells)):
                    notes.append(f"1/{denominator} times")
                    cells = whole
        widths = _widths(cells)
        if _grid_width(widths) <= width:
            grid = [_cell_run(row, widths, range(len(widths))) for row in cells]
        else:
            notes.append("in blocks of columns; rows, cols from 0")
            grid = _blocks_of_columns(cells, width)
        head = ", ".join(notes) + (":" if len(notes) > 1 or not self.label else "")
        labels = [Text(part, style="italic") for part in _wrap(head, width, 2)]
        return [*labels, *grid] if notes else grid


def _side_by_side(pieces: list[list[Text]], width: int) -> list[Text]:
    """Place blocks of lines next to each other, as many to a row as fit."""
    sizes = [max(line.cell_len for line in piece) for piece in pieces]
    for columns in range(len(pieces), 0, -1):
        widths = [max(sizes[j::columns]) for j in range(columns)]
        if columns == 1 or sum(widths) + len(_SIDE) * (columns - 1) <= width:
            break
    lines: list[Text] = []
    for start in range(0, len(pieces), columns):
        row = pieces[start : start + columns]
        if lines:
            lines.append(Text())
        for i in range(max(len(piece) for piece in row)):
            line = Text()
            for j, piece in enumerate(row):
                part = piece[i].copy() if i < len(piece) else Text()
                if j < len(row) - 1:
                    part.pad_right(widths[j] + len(_SIDE) - part.cell_len)
                line.append_text(part)
            line.rstrip()
            lines.append(line)
    return lines


class _Lines:
    """What rich prints as lines laid out for the console's width (`lines`)."""

    def lines(self, width: int) -> list[Text]:
        """Return the lines, each within ``width`` if a word fits."""
        raise NotImplementedError

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        """Yield the lines for the console's width; none is cropped or folded."""
        for line in self.lines(options.max_width):
            line.no_wrap = True
            line.overflow = "ignore"
            yield line


class KernelView(_Lines):
    """One kernel as ``convcli kernels NAME`` shows it: title, weights, properties.

    Everything is computed when it is made (a rank may be refused); the
    lines are laid out for the width the console prints them at.
    """

    def __init__(self, kernel: Kernel) -> None:
        self.title = f"{kernel.name}: {kernel.description}".rstrip(": ")
        if kernel.is_bank:
            channels = kernel.weights.shape[1]
            self.slices = [
                _Slice(
                    f"filter {name}" + (f", channel {c}" if channels > 1 else ""),
                    filters[c],
                )
                for name, filters in zip(
                    _filter_names(kernel), kernel.weights, strict=True
                )
                for c in range(channels)
            ]
        else:
            self.slices = [_Slice("", kernel.weights)]
        self.properties = _properties(kernel)

    def lines(self, width: int) -> list[Text]:
        """Return the lines of the view, each within ``width`` if a number fits."""
        lines = [Text(part, style="bold") for part in _wrap(self.title, width, 2)]
        lines += _side_by_side([s.lines(width) for s in self.slices], width)
        label = max(len(name) for name, _ in self.properties) + len(_GAP)
        for name, value in self.properties:
            if width - label >= 16:
                parts = _wrap(value, width - label)
                lines.append(Text(name.ljust(label), style="bold").append(parts[0]))
                lines += [Text(" " * label + part) for part in parts[1:]]
            else:  # a narrow console: the value under its name
                lines.append(Text(name, style="bold"))
                lines += [Text("  " + part) for part in _wrap(value, width - 2)]
        return lines


@dataclass(frozen=True)
class _Entry:
    """One kernel of the catalogue, its facts written."""

    name: str
    shape: str
    separable: str
    total: str
    more: str  # generator parameters; a bank's combine and sums
    description: str


def _entry(kernel: Kernel) -> _Entry:
    more = [_params(kernel)] if _params(kernel) else []
    if kernel.is_bank:
        same, each = _bank_sums(kernel)
        total = f"{same} each" if same else "varies"
        more.append(f"combine {kernel.combine}")
        if each:
            more.append(f"sums {each}")
    else:
        total = sum_text(kernel.weights)
    return _Entry(
        kernel.name,
        kernel_shape(kernel),
        separable_label(kernel),
        total,
        "; ".join(more),
        kernel.description,
    )


_HEADER = _Entry("name", "shape", "separable", "sum", "parameters, combine", "")
_INDENT = 5  # of a description, under its kernel's name
_ROOM = 16  # the least width of the last column for the columns to be used


class KernelCatalogue(_Lines):
    """The catalogue as ``convcli kernels`` shows it, for the console's width.

    A line of facts for each kernel (name, shape, separable, sum, then the
    generator's parameters or the bank's combine) in columns, and the
    description under it, wrapped; on a console wide enough for it all
    (about 170 columns), the description ends the line. On a console too
    narrow for the columns, the facts are written as prose under the name.
    Everything is computed when it is made; the lines are laid out when
    the console prints them.
    """

    def __init__(self, kernels: list[Kernel]) -> None:
        self.entries = [_entry(k) for k in kernels]

    def lines(self, width: int) -> list[Text]:
        """Return the lines of the catalogue, each within ``width`` if a word fits."""
        rows = [_HEADER, *self.entries]
        columns = [
            max(len(e.name) for e in rows),
            max(len(e.shape) for e in rows),
            max(len(e.separable) for e in rows),
            max(len(e.total) for e in rows),
        ]
        start = 1 + sum(columns) + len(_GAP) * len(columns)
        more = max(len(e.more) for e in rows)
        about = max(len(e.description) for e in self.entries)
        one_line = start + more + len(_GAP) + about <= width
        lines: list[Text] = []
        for e in rows:
            if one_line:
                line = self._facts(e, columns, width)[0]
                line.pad_right(start + more + len(_GAP) - line.cell_len)
                line.append("description" if e is _HEADER else e.description)
                lines.append(line)
            elif width - start >= _ROOM:
                lines += self._facts(e, columns, width)
                lines += self._indented(e.description, width)
            elif e is not _HEADER:  # the facts as prose
                lines.append(Text(f" {e.name}", style="bold"))
                facts = f"shape {e.shape}, separable {e.separable}, sum {e.total}"
                lines += self._indented(
                    facts + (f"; {e.more}" if e.more else ""), width
                )
                lines += self._indented(e.description, width)
            if e is _HEADER and lines:
                lines[0].stylize("bold")
        count = f"{len(self.entries)} kernels; convcli kernels NAME shows the weights of one."
        lines += [Text(part, style="dim") for part in _wrap(count, width)]
        return lines

    @staticmethod
    def _facts(e: _Entry, columns: list[int], width: int) -> list[Text]:
        """Write the line of facts; the last column wraps under itself."""
        start = 1 + sum(columns) + len(_GAP) * len(columns)
        line = Text(" ")
        line.append(e.name.ljust(columns[0]), style="bold")
        line.append(_GAP + e.shape.ljust(columns[1]) + _GAP)
        line.append(e.separable.ljust(columns[2]) + _GAP)
        line.append(e.total.rjust(columns[3]) + _GAP)
        more = _wrap(e.more, width - start)
        line.append(more[0])
        line.rstrip()
        return [line] + [Text(" " * start + part) for part in more[1:]]

    @staticmethod
    def _indented(text: str, width: int) -> list[Text]:
        if not text:
            return []
        return [Text(" " * _INDENT + part) for part in _wrap(text, width - _INDENT)]


def kernel_table(kernels: list[Kernel]) -> KernelCatalogue:
    """Return the catalogue: a line of facts and the description for each kernel."""
    return KernelCatalogue(kernels)


def kernel_view(kernel: Kernel) -> KernelView:
    """Return one kernel's weights, then its properties."""
    return KernelView(kernel)
