"""The shapes, parameters, multiply-adds and receptive fields of a stack of CNN layers.

What ``convcli plan`` computes, as data: `parse_layer` reads one layer spec
(``conv:96,11,s=4``), `make_plan` walks an input ``HxWxC`` through a stack of
them, `read_plan` does the same for the text of a layers file, and `NETS`
holds the built-in stacks. Standard library only: no array is made, nothing
is printed or opened. The formulas are PyTorch's (floor for conv and pool,
``(n - 1)*s - 2p + d*(k-1) + op + 1`` for tconv) and TensorFlow's for
``same`` padding; docs/commands/plan.md says them all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from convcli.errors import ConvcliError

Pair = tuple[int, int]
Shape = tuple[int, int, int]

MAX_SIZE = 10**9
"""The largest size, depth, kernel, stride or count a plan takes or makes."""
MAX_LAYERS = 10_000
"""The most layers one plan takes."""

USAGE = {
    "conv": "conv:D,K[,s=S][,p=P|same|valid][,d=DIL][,g=G]",
    "dwconv": "dwconv:K[,s=S][,p=P|same|valid][,d=DIL]",
    "tconv": "tconv:D,K[,s=S][,p=P][,op=OP][,d=DIL][,g=G]",
    "pool": "pool:K[,s=S][,max|avg]", "relu": "relu", "flatten": "flatten", "fc": "fc:N",
}  # fmt: skip
"""Each layer kind's grammar; K, S, P, DIL, OP may be ``ROWSxCOLS`` pairs."""

# Each kind's numbers before the options, and the keys it takes.
_ARGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "conv": (("D", "K"), ("s", "p", "d", "g")), "dwconv": (("K",), ("s", "p", "d")),
    "tconv": (("D", "K"), ("s", "p", "op", "d", "g")), "pool": (("K",), ("s", "mode")),
    "relu": ((), ()), "flatten": ((), ()), "fc": (("N",), ()),
}  # fmt: skip
_NAMES = {
    "D": "D (the number of filters)", "K": "K (the kernel size)", "N": "N (the number of outputs)",
    "s": "s (the stride)", "p": "p (the padding)", "d": "d (the dilation)", "g": "g (the groups)",
    "op": "op (the output padding)", "mode": "the pool's max or avg",
}  # fmt: skip


class PlanError(ConvcliError, ValueError):
    """A layer spec, input or layers file that cannot be planned: says which and why."""


@dataclass(frozen=True)
class Layer:
    """One parsed layer spec; pairs are ``(rows, cols)``, padding is per side."""

    spec: str
    kind: str
    depth: int = 0  # D of conv and tconv, N of fc
    kernel: Pair = (1, 1)
    stride: Pair = (1, 1)
    padding: Pair | str = (0, 0)  # or "same"
    dilation: Pair = (1, 1)
    groups: int = 1
    output_padding: Pair = (0, 0)
    mode: str = "max"  # pool only


@dataclass(frozen=True)
class LayerRow:
    """One layer of a plan: its output, cost, receptive field and how the size came.

    ``receptive_field`` and ``jump`` are ``(rows, cols)`` in input pixels; a
    jump is a fraction after a transposed layer (1/2: two outputs per input
    pixel), and the layers after one are ``approximate``: the recurrence with
    that average jump, which one output may miss by a few pixels. ``formula`` is the size formula with the numbers filled in, one
    line per axis where the axes differ; ``warnings`` name the rows or
    columns a stride leaves out.
    """

    layer: str
    output: Shape
    params: int
    macs: int
    receptive_field: Pair
    jump: tuple[Fraction, Fraction]
    formula: str = ""
    warnings: tuple[str, ...] = ()
    approximate: bool = False  # after a tconv: the recurrence's average

    def to_json(self) -> dict[str, Any]:
        """Return the row's ``--json`` object (a pair only where the axes differ)."""
        return {
            "layer": self.layer,
            "output": list(self.output),
            "params": self.params,
            "macs": self.macs,
            "receptive_field": _json_pair(self.receptive_field),
            "jump": _json_pair(self.jump),
        }


@dataclass(frozen=True)
class Plan:
    """An input ``(H, W, C)`` and one `LayerRow` per layer."""

    input: Shape
    rows: tuple[LayerRow, ...]

    @property
    def total_params(self) -> int:
        """Return the parameters of every layer, weights and biases."""
        return sum(row.params for row in self.rows)

    @property
    def total_macs(self) -> int:
        """Return the multiply-adds of every layer, for one input."""
        return sum(row.macs for row in self.rows)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Return every layer's warnings, in order."""
        return tuple(w for row in self.rows for w in row.warnings)

    def to_json(self) -> dict[str, Any]:
        """Return the ``--json`` document: input, layers, total_params, total_macs."""
        return {
            "input": list(self.input),
            "layers": [row.to_json() for row in self.rows],
            "total_params": self.total_params,
            "total_macs": self.total_macs,
        }


@dataclass(frozen=True)
class Net:
    """A built-in stack: its name, what it is, and ``INPUT LAYER...`` as typed."""

    name: str
    description: str
    stack: str

    @property
    def input(self) -> str:
        """Return the input, ``HxWxC``."""
        return self.stack.split()[0]

    @property
    def layers(self) -> tuple[str, ...]:
        """Return the layer specs, in order."""
        return tuple(self.stack.split()[1:])


_VGG16 = " ".join(
    f"conv:{depth},3,p=1 " * count + "pool:2"
    for depth, count in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
)
NETS: dict[str, Net] = {
    net.name: net
    for net in [
        Net(
            "lenet5",
            "LeNet-5 (LeCun et al., 1998) as drawn today: every map connected",
            "32x32x1 conv:6,5 pool:2 conv:16,5 pool:2 flatten fc:120 fc:84 fc:10",
        ),
        Net(
            "alexnet",
            "AlexNet (Krizhevsky et al., 2012) in one tower, without groups",
            "227x227x3 conv:96,11,s=4 pool:3,s=2 conv:256,5,p=2 pool:3,s=2 "
            "conv:384,3,p=1 conv:384,3,p=1 conv:256,3,p=1 pool:3,s=2 "
            "flatten fc:4096 fc:4096 fc:1000",
        ),
        Net(
            "vgg16",
            "VGG16 (Simonyan and Zisserman, 2014): 13 3x3 convs, 5 pools, 3 fc",
            f"224x224x3 {_VGG16} flatten fc:4096 fc:4096 fc:1000",
        ),
        Net(
            "cs231n",
            "the cs231n notes' example: two 3x3x3 filters, stride 2, padding 1",
            "5x5x3 conv:2,3,s=2,p=1",
        ),
    ]
}
"""The stacks of ``convcli plan --net NAME``. Activations are left out: they
change no shape, count or receptive field."""


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _number(text: str, what: str, least: int) -> int:
    """Read one whole number, ``least`` to `MAX_SIZE`."""
    if not re.fullmatch(r"[0-9]+", text):
        msg = f"{_NAMES.get(what, what)} must be a whole number; got {_short(text)!r}"
        raise PlanError(msg)
    value = int(text) if len(text) <= 12 else MAX_SIZE + 1
    if value < least:
        msg = f"{_NAMES.get(what, what)} must be at least {least}; got {value}"
        raise PlanError(msg)
    if value > MAX_SIZE:
        msg = (
            f"{_NAMES.get(what, what)} must be at most {MAX_SIZE:,}; got {_short(text)}"
        )
        raise PlanError(msg)
    return value


def _pair(text: str, what: str, least: int) -> Pair:
    """Read ``N`` or ``ROWSxCOLS``."""
    rows, x, cols = text.partition("x")
    if x and not (rows and cols and "x" not in cols):
        msg = f"{_NAMES[what]} must be N or ROWSxCOLS; got {_short(text)!r}"
        raise PlanError(msg)
    return _number(rows, what, least), _number(cols or rows, what, least)


def parse_input(text: str) -> Shape:
    """Read an input ``HxWxC``.

    Examples
    --------
    >>> parse_input("227x227x3")
    (227, 227, 3)
    """
    parts = "".join(text.split()).lower().split("x")
    if len(parts) != 3:
        msg = f"the input must be HxWxC, e.g. 32x32x3; got {_short(text)!r}"
        raise PlanError(msg)
    h, w, c = (_number(p, what, 1) for p, what in zip(parts, "HWC", strict=True))
    return h, w, c


def parse_layer(text: str) -> Layer:
    """Read one layer spec; `USAGE` holds the grammar of each kind.

    Raises `PlanError` (a `ValueError`) saying what is wrong and what is
    allowed: an unknown kind or key, a missing or extra number, a number
    out of range.

    Examples
    --------
    >>> layer = parse_layer("conv:8,3x5,s=1x2,same")
    >>> layer.depth, layer.kernel, layer.stride, layer.padding
    (8, (3, 5), (1, 2), 'same')
    """
    spec = "".join(text.split())
    kind, _, rest = spec.lower().partition(":")
    if kind not in USAGE:
        known = ", ".join(USAGE)
        msg = f"unknown layer {_short(kind)!r}; the layers are {known}"
        raise PlanError(msg)
    positional: list[str] = []
    options: dict[str, str] = {}
    for arg in rest.split(",") if rest else []:
        if not arg:
            msg = f"an empty item between commas; write {USAGE[kind]}"
            raise PlanError(msg)
        key, eq, value = arg.partition("=")
        if not eq and arg in ("same", "valid"):
            key, value = "p", arg
        elif not eq and arg in ("max", "avg") and kind == "pool":
            key, value = "mode", arg
        elif not eq:
            if options:
                msg = f"{_short(arg)!r} comes after a key=value; write {USAGE[kind]}"
                raise PlanError(msg)
            positional.append(arg)
            continue
        if key not in _ARGS[kind][1]:
            allowed = ", ".join(f"{k}=" for k in _ARGS[kind][1] if k != "mode")
            takes = f"takes {allowed}" if allowed else "takes no key=value"
            msg = f"{kind} {takes}, not {_short(key)!r}: {USAGE[kind]}"
            raise PlanError(msg)
        if key in options:
            msg = f"{_NAMES.get(key, key)} is given twice"
            raise PlanError(msg)
        options[key] = value
    names = _ARGS[kind][0]
    if len(positional) != len(names):
        takes = f"{len(names)} number{'s' * (len(names) > 1)} ({','.join(names)})"
        msg = (
            f"{kind} takes {takes if names else 'no number'} before its options; "
            f"got {len(positional)}: {USAGE[kind]}"
        )
        raise PlanError(msg)
    values = dict(zip(names, positional, strict=True))
    return _layer(spec, kind, values, options)


def _layer(
    spec: str, kind: str, values: dict[str, str], options: dict[str, str]
) -> Layer:
    """Check the numbers of a spec whose words `parse_layer` has sorted."""
    kernel = _pair(values["K"], "K", 1) if "K" in values else (1, 1)
    count = values.get("D", values.get("N"))
    depth = _number(count, "D" if "D" in values else "N", 1) if count else 0
    stride = _pair(options["s"], "s", 1) if "s" in options else (1, 1)
    if kind == "pool" and "s" not in options:
        stride = kernel
    padding: Pair | str = (0, 0)
    pad = options.get("p", "0")
    if pad == "same" and kind == "tconv":
        msg = "tconv takes p=N or p=ROWSxCOLS, not same (PyTorch has no same for it)"
        raise PlanError(msg)
    if pad == "same":
        padding = "same"
    elif pad != "valid":
        padding = _pair(pad, "p", 0)
    dilation = _pair(options.get("d", "1"), "d", 1)
    groups = _number(options.get("g", "1"), "g", 1)
    output_padding = _pair(options.get("op", "0"), "op", 0)
    for op, s, d in zip(output_padding, stride, dilation, strict=True):
        if op >= max(s, d):
            msg = (
                f"op (the output padding) must be smaller than the stride or the "
                f"dilation, as in PyTorch; got op={op} with s={s}, d={d}"
            )
            raise PlanError(msg)
    return Layer(
        spec, kind, depth, kernel, stride, padding, dilation, groups, output_padding,
        options.get("mode", "max"),
    )  # fmt: skip


@dataclass(frozen=True)
class _Axis:
    """One axis of a windowed layer: the size it makes, and the formula that says how."""

    out: int
    formula: str
    lost: int = 0  # positions of the padded input no window reaches
    after: int = 0  # padding after the input
    shown: str = ""  # "(28 - 5 + 2*0)/2"


def _window_axis(n: int, k: int, s: int, pad: int | str, d: int) -> _Axis:
    """Return one axis of a conv, dwconv or pool: ``floor((n + 2p - k_eff)/s) + 1``."""
    if pad == "same":
        out = -(-n // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
        before, after = total // 2, total - total // 2
    else:
        assert isinstance(pad, int)
        before = after = pad
    span = f"({d}*({k}-1)+1)" if d > 1 else f"{k}"
    pads = f"2*{before}" if before == after else f"{before}+{after}"
    shown = f"({n} - {span} + {pads})/{s}"
    numerator = n + before + after - d * (k - 1) - 1
    out = numerator // s + 1
    lost = numerator % s if numerator >= 0 else 0
    formula = f"{f'floor({shown})' if lost else shown} + 1 = {out}"
    return _Axis(out, formula, lost, after, shown)


def _transposed_axis(n: int, k: int, s: int, p: int, d: int, op: int) -> _Axis:
    """Return one axis of a tconv: ``(n - 1)*s - 2p + d*(k-1) + op + 1``."""
    out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
    taps = f"{d}*({k} - 1)" if d > 1 else f"({k} - 1)"
    return _Axis(out, f"({n} - 1)*{s} - 2*{p} + {taps} + {op} + 1 = {out}")


def _decimal(numerator: int, s: int) -> str:
    """Write ``numerator / s`` as a decimal: ``11.5``, ``7.667...``."""
    value = Fraction(numerator, s)
    text = f"{float(value):.3f}".rstrip("0").rstrip(".")
    return text if value * 1000 == int(value * 1000) else text + "..."


def _count(n: int, unit: str) -> str:
    """Return ``the last row``, ``the last 3 rows``."""
    return f"the last {unit}" if n == 1 else f"the last {n} {unit}s"


def _stride_warnings(
    spec: str, shape: Shape, axes: tuple[_Axis, _Axis], stride: Pair
) -> tuple[str, ...]:
    """Warn where the stride does not divide ``n + 2p - k_eff``: the floor drops cells.

    The cells left out are the last ones of the padded input; where they are
    all padding, the warning says that no input value is lost. Two equal axes
    make one warning.
    """
    h, w, _ = shape
    found: list[tuple[_Axis, tuple[str, ...], int]] = [
        (axis, (unit,), s)
        for axis, unit, s in zip(axes, ("row", "column"), stride, strict=True)
        if axis.lost
    ]
    if len(found) == 2 and axes[0] == axes[1] and stride[0] == stride[1]:
        found = [(axes[0], ("row", "column"), stride[0])]
    warnings = []
    for axis, units, s in found:
        numerator = axis.lost + (axis.out - 1) * s
        real = axis.lost - axis.after
        if real > 0:
            cells = " and ".join(_count(real, unit) for unit in units)
            padded = " (and the padding after it)" if axis.after else ""
            what, tail = f"{cells} of the {h}x{w} input{padded}", ""
        else:
            cells = " and ".join(_count(axis.lost, f"padded {u}") for u in units)
            what, tail = cells, ": padding only, no input value is lost"
        n = real if real > 0 else axis.lost
        verb = "never enters" if len(units) == 1 and n == 1 else "never enter"
        warnings.append(
            f"{spec}: {axis.shown} = {_decimal(numerator, s)} is not an integer: "
            f"{what} {verb} a window{tail} (the floor is taken, as in PyTorch)"
        )
    return tuple(warnings)


def _axes(layer: Layer, shape: Shape) -> tuple[_Axis, _Axis]:
    """Return the two axes of a conv, dwconv, pool or tconv on ``shape``."""
    h, w, _ = shape
    pads: tuple[int | str, ...] = (
        (layer.padding,) * 2 if isinstance(layer.padding, str) else layer.padding
    )
    numbers = zip((h, w), layer.kernel, layer.stride, pads, layer.dilation, strict=True)
    if layer.kind == "tconv":
        ops = layer.output_padding
        rows, cols = (
            _transposed_axis(n, k, s, int(p), d, op)
            for (n, k, s, p, d), op in zip(numbers, ops, strict=True)
        )
    else:
        rows, cols = (_window_axis(n, k, s, p, d) for n, k, s, p, d in numbers)
    if min(rows.out, cols.out) >= 1:
        return rows, cols
    why = next(a.formula for a in (rows, cols) if a.out < 1) + " < 1"
    if layer.kind != "tconv":
        spans = _spans(layer)
        why = f"a {spans[0]}x{spans[1]} window does not fit in the {h}x{w} input"
        if isinstance(layer.padding, tuple) and any(layer.padding):
            ph, pw = layer.padding
            why += f" padded to {h + 2 * ph}x{w + 2 * pw}"
    msg = f"{why}: the output would be {rows.out} x {cols.out}"
    raise PlanError(msg)


def _group_size(layer: Layer, channels: int) -> int:
    """Return C / G for a conv or tconv, once G divides both C and D."""
    g = layer.groups
    for count, what in [(channels, "input channels"), (layer.depth, "filters (D)")]:
        if count % g:
            msg = f"g={g} groups must divide the {count} {what}"
            raise PlanError(msg)
    return channels // g


def _formula(rows: _Axis, cols: _Axis) -> str:
    """One formula where both axes compute the same, else one line per axis."""
    if rows.formula == cols.formula:
        return rows.formula
    return f"H: {rows.formula}\nW: {cols.formula}"


def _spans(layer: Layer) -> Pair:
    """Return ``k_eff = d*(k-1) + 1`` per axis: the window's extent."""
    (kh, kw), (dh, dw) = layer.kernel, layer.dilation
    return dh * (kh - 1) + 1, dw * (kw - 1) + 1


def tconv_reach(k: int, s: int, d: int = 1) -> int:
    """Return the span of input cells one transposed-conv output reads, at most.

    Output ``o`` reads input ``i`` through tap ``t`` when ``o + p = i*s + t*d``,
    so the taps one output uses are ``s / gcd(d, s)`` apart; the widest set
    starts at tap 0.

    Examples
    --------
    >>> tconv_reach(3, 2), tconv_reach(4, 2), tconv_reach(3, 1), tconv_reach(3, 2, 3)
    (2, 2, 3, 4)
    """
    g = math.gcd(d, s)
    return (k - 1) * g // s * (d // g) + 1


Field = tuple[Fraction, Fraction]


def _grow(field: Field, reach: Pair, jump: Field) -> Field:
    """``r + (k - 1) * j`` per axis."""
    return field[0] + (reach[0] - 1) * jump[0], field[1] + (reach[1] - 1) * jump[1]


def _step(
    layer: Layer, shape: Shape, field: Field, jump: Field, image: Pair
) -> tuple[LayerRow, Field, Field]:
    """Return one layer's row on ``shape``, and the receptive field and jump after it."""
    h, w, c = shape
    kh, kw = layer.kernel
    (sh, sw), warnings = layer.stride, tuple[str, ...]()
    out, formula, params, macs = shape, "", 0, 0
    if layer.kind in ("conv", "dwconv", "pool"):
        rows, cols = _axes(layer, shape)
        formula = _formula(rows, cols)
        warnings = _stride_warnings(layer.spec, shape, (rows, cols), layer.stride)
        out = (rows.out, cols.out, layer.depth if layer.kind == "conv" else c)
        taps = kh * kw * (_group_size(layer, c) if layer.kind == "conv" else 1)
        if layer.kind != "pool":
            params, macs = out[2] * taps + out[2], rows.out * cols.out * out[2] * taps
        field, jump = _grow(field, _spans(layer), jump), (jump[0] * sh, jump[1] * sw)
    elif layer.kind == "tconv":
        rows, cols = _axes(layer, shape)
        formula = _formula(rows, cols)
        _group_size(layer, c)
        taps = layer.depth // layer.groups * kh * kw  # each input cell stamps these
        out = (rows.out, cols.out, layer.depth)
        params, macs = c * taps + layer.depth, h * w * c * taps
        reach = (
            tconv_reach(kh, sh, layer.dilation[0]),
            tconv_reach(kw, sw, layer.dilation[1]),
        )
        field, jump = _grow(field, reach, jump), (jump[0] / sh, jump[1] / sw)
    elif layer.kind == "fc":  # a volume is flattened first
        inputs = h * w * c
        out = (1, 1, layer.depth)
        params, macs = inputs * layer.depth + layer.depth, inputs * layer.depth
        formula = f"{h}*{w}*{c} = {inputs:,} inputs" if h * w > 1 else f"{c:,} inputs"
        field = jump = (Fraction(image[0]), Fraction(image[1]))
    elif layer.kind == "flatten":
        out = (1, 1, h * w * c)
        formula = f"{h}*{w}*{c} = {h * w * c:,}"
    if max(out) > MAX_SIZE:
        msg = (
            f"the output would be {out[0]} x {out[1]} x {out[2]}: "
            f"a plan takes sizes up to {MAX_SIZE:,}"
        )
        raise PlanError(msg)
    if max(*field, *jump) > MAX_SIZE:
        msg = f"the receptive field or the jump would be over {MAX_SIZE:,} input pixels"
        raise PlanError(msg)
    if min(jump) * MAX_SIZE < 1:
        msg = f"the jump would be under 1/{MAX_SIZE:,} of an input pixel"
        raise PlanError(msg)
    field_cells = (math.ceil(field[0]), math.ceil(field[1]))
    row = LayerRow(layer.spec, out, params, macs, field_cells, jump, formula, warnings)
    return row, field, jump


def _plan(specs: Sequence[str], places: Sequence[str]) -> Plan:
    """Walk the input (``specs[0]``) through the layers; ``places`` prefix errors."""
    prefix = [f"{place}: " if place else "" for place in places]
    try:
        shape = parse_input(specs[0])
    except PlanError as err:
        msg = f"{prefix[0]}{err}"
        raise PlanError(msg) from None
    if len(specs) == 1:
        msg = f"{prefix[0]}no layers after the input {specs[0]}: give one or more, e.g. conv:6,5"
        raise PlanError(msg)
    if len(specs) > MAX_LAYERS + 1:
        msg = (
            f"{prefix[0]}{len(specs) - 1:,} layers is too many (at most {MAX_LAYERS:,})"
        )
        raise PlanError(msg)
    start, image = shape, (shape[0], shape[1])
    field = jump = (Fraction(1), Fraction(1))
    rows, approximate = [], False
    for i, spec in enumerate(specs[1:], 1):
        try:
            layer = parse_layer(spec)
            row, field, jump = _step(layer, shape, field, jump, image)
        except PlanError as err:
            msg = f"{prefix[i]}layer {i} ({_short(spec)}): {err}"
            raise PlanError(msg) from None
        if approximate and layer.kind != "fc":
            row = replace(row, approximate=True)
        approximate = layer.kind == "tconv" or (approximate and layer.kind != "fc")
        rows.append(row)
        shape = row.output
    return Plan(start, tuple(rows))


def make_plan(input_spec: str, layers: Sequence[str]) -> Plan:
    """Walk an input ``HxWxC`` through a stack of layer specs.

    Raises `PlanError` naming the layer (``layer 3 (conv:0,3): ...``) and
    the reason: a bad spec, a window that does not fit, groups that do not
    divide the channels, a size past `MAX_SIZE`.

    Examples
    --------
    >>> p = make_plan("227x227x3", ["conv:96,11,s=4"])
    >>> p.rows[0].output, p.rows[0].params, p.rows[0].macs, p.rows[0].receptive_field
    ((55, 55, 96), 34944, 105415200, (11, 11))
    """
    specs = [input_spec, *layers]
    return _plan(specs, [""] * len(specs))


def read_plan(text: str, source: str) -> Plan:
    r"""Plan the stack a layers file holds; errors name ``source`` and the line.

    Items are separated by spaces or new lines, ``#`` starts a comment, and
    the first item is the input ``HxWxC``: one layer per line reads best.

    Examples
    --------
    >>> read_plan("# LeNet's start\n32x32x1\nconv:6,5  # C1\n", "lenet.txt").rows[0].output
    (28, 28, 6)
    """
    items = [
        (word, f"{source}:{number}")
        for number, line in enumerate(text.splitlines(), 1)
        for word in line.split("#", 1)[0].split()
    ]
    if not items:
        msg = (
            f"{source}: no input: the first item must be the input HxWxC, e.g. 32x32x1"
        )
        raise PlanError(msg)
    specs, places = zip(*items, strict=True)
    return _plan(specs, places)


def net_plan(name: str) -> Plan:
    """Plan one of the built-in `NETS` by name.

    Examples
    --------
    >>> net_plan("lenet5").total_params
    61706
    """
    net = NETS.get(name.strip().lower())
    if net is None:
        msg = f"unknown net {_short(name)!r}; the nets are {', '.join(NETS)}"
        raise PlanError(msg)
    return make_plan(net.input, net.layers)


def _json_pair(pair: tuple[int, int] | Field) -> Any:
    """One number where both axes agree, else ``[rows, cols]``; a fraction as a float."""
    values = [int(v) if Fraction(v).denominator == 1 else float(v) for v in pair]
    return values[0] if values[0] == values[1] else values
