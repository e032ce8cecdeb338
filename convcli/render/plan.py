"""The table of ``convcli plan``: a stack of layers, their shapes, costs and receptive fields."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from convcli.netplan import Net, Plan


def _hwc(shape: tuple[int, int, int]) -> str:
    return " x ".join(str(n) for n in shape)


def pair_text(pair: tuple[int, int] | tuple[Fraction, Fraction]) -> str:
    """Write a receptive field or jump: ``11``, or ``3x5`` where the axes differ.

    Examples
    --------
    >>> pair_text((11, 11)), pair_text((3, 5)), pair_text((Fraction(1, 2),) * 2)
    ('11', '3x5', '1/2')
    """
    rows, cols = (str(v) for v in pair)
    return rows if rows == cols else f"{rows}x{cols}"


def plan_table(plan: Plan, *, title: str = "") -> Group:
    """Return one row per layer: output and its size formula, params, multiply-adds, RF, jump.

    The first row is the input (receptive field and jump 1), the last the
    totals; ``title``, if any, is a line of its own above (it may be wider).
    """
    table = Table(
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
        show_edge=False,
        caption="RF: receptive field, jump: distance between outputs, in input pixels"
        + (
            "; ~: an average, after a tconv"
            if any(r.approximate for r in plan.rows)
            else ""
        ),
        caption_justify="left",
    )
    table.add_column("layer", style="bold", overflow="fold")
    table.add_column("output H x W x C")
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("mult-adds", justify="right", no_wrap=True)
    table.add_column("RF", justify="right", no_wrap=True)
    table.add_column("jump", justify="right", no_wrap=True)
    table.add_row("input", _hwc(plan.input), "", "", "1", "1")
    for row in plan.rows:
        output = Text(_hwc(row.output))
        if row.formula:
            output.append("\n" + row.formula, style="dim")
        table.add_row(
            Text(row.layer),
            output,
            f"{row.params:,}",
            f"{row.macs:,}",
            ("~" if row.approximate else "") + pair_text(row.receptive_field),
            pair_text(row.jump),
            style="yellow" if row.warnings else None,
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        f"{plan.total_params:,}",
        f"{plan.total_macs:,}",
        "",
        "",
        style="bold",
    )
    return Group(Text(title, style="bold"), table) if title else Group(table)


def plan_warnings(plan: Plan) -> list[Text]:
    """Return one yellow ``warning: ...`` line per stride that leaves cells out."""
    return [Text(f"warning: {w}", style="yellow") for w in plan.warnings]


def net_table(nets: dict[str, Net], plans: dict[str, Plan]) -> Table:
    """Return the built-in nets: name, input, layers, parameters, what it is."""
    table = Table(title="convcli plan --net NAME", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("input", no_wrap=True)
    table.add_column("layers", justify="right", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("description")
    for name, net in nets.items():
        plan = plans[name]
        table.add_row(
            name,
            _hwc(plan.input),
            str(len(net.layers)),
            f"{plan.total_params:,}",
            Text(net.description),
        )
    return table
