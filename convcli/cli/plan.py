"""`convcli plan`: the shapes, parameters, multiply-adds and receptive fields of a stack of CNN layers.

The stack comes from the command line (``INPUT LAYER...``), a built-in net
(``--net``) or a layers file (``-f``); `convcli.netplan` computes it, and a
spec it cannot plan is exit 2 naming the layer. Warnings (a stride that
leaves rows out) follow the table, or go to stderr with ``--json``.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from convcli.cli.common import stdout_failures, user_errors
from convcli.cli.options import JsonOpt

if TYPE_CHECKING:
    from convcli.netplan import Plan

MAX_FILE_BYTES = 1 << 20
"""The largest layers file ``-f`` reads (1 MiB), as for kernel files."""

StackArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[INPUT LAYER...]",
        help="The input HxWxC, then the layers: conv:D,K[,s=S][,p=P|same|valid]"
        "[,d=DIL][,g=G], dwconv:K[,s=][,p=][,d=], tconv:D,K[,s=][,p=][,op=][,d=]"
        "[,g=], pool:K[,s=S][,max|avg], relu, flatten, fc:N. K, S, P, DIL, OP "
        "may be ROWSxCOLS pairs: conv:8,3x5.",
        show_default=False,
    ),
]
NetOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="A built-in stack: lenet5, alexnet, vgg16 or cs231n (see --list-nets).",
    ),
]
FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        metavar="FILE",
        help="A layers file ('-' for stdin): the input HxWxC, then one layer a "
        "line; '#' starts a comment.",
    ),
]
ListNetsOpt = Annotated[
    bool, typer.Option("--list-nets", help="List the built-in nets and exit.")
]


def plan(
    stack: StackArg = None,
    net: NetOpt = None,
    file: FileOpt = None,
    list_nets: ListNetsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what a stack of CNN layers does to the shape of its input.

    For each layer: the output H x W x C with the size formula filled in,
    the parameters (weights and biases), the multiply-adds, and the
    receptive field and jump in input pixels; then the totals. Give the
    stack on the command line, as a built-in --net or as a layers file.

    Examples: `convcli plan 32x32x1 conv:6,5 pool:2 conv:16,5 pool:2 flatten
    fc:120 fc:84 fc:10`, `convcli plan --net alexnet`,
    `convcli plan 227x227x3 conv:96,11,s=4 --json`, `convcli plan -f layers.txt`.
    """
    import json

    from convcli import render
    from convcli.netplan import NETS, net_plan
    from convcli.render.plan import net_table, plan_table, plan_warnings

    if list_nets:
        with user_errors():
            plans = {name: net_plan(name) for name in NETS}
        with stdout_failures():
            render.console.print(net_table(NETS, plans))
        return
    with user_errors():
        result, title = _stack(stack, net, file)
        text = json.dumps(result.to_json(), indent=2) if as_json else ""
    warnings = plan_warnings(result)
    with stdout_failures():
        if as_json:
            for warning in warnings:
                render.err_console.print(warning, soft_wrap=True)
            render.print_json(text)
            return
        render.console.print(plan_table(result, title=title))
        for warning in warnings:
            render.console.print(warning)


def _stack(
    stack: list[str] | None, net: str | None, file: Path | None
) -> tuple[Plan, str]:
    """Plan the one stack given (arguments, ``--net`` or ``-f``); return it and its title."""
    from convcli.errors import shown
    from convcli.netplan import NETS, PlanError, make_plan, net_plan, read_plan

    given = [
        name
        for name, value in [
            ("INPUT LAYER...", stack or None),
            ("--net", net),
            ("-f", file),
        ]
        if value is not None
    ]
    if len(given) != 1:
        what = " and ".join(given) or "none"
        msg = f"give one of INPUT LAYER..., --net NAME or -f FILE; got {what}"
        raise PlanError(msg)
    if stack:
        return make_plan(stack[0], stack[1:]), ""
    if net is not None:
        result = net_plan(net)
        name = net.strip().lower()
        return result, f"{name}: {NETS[name].description}"
    assert file is not None
    source, text = _read_layers(file)
    return read_plan(text, source), shown(source)


def _read_layers(path: Path) -> tuple[str, str]:
    """Return a layers file's name and text: a regular file of at most 1 MiB, or stdin."""
    from convcli.netplan import PlanError

    name = str(path)
    if name == "-":
        name, data = "<stdin>", sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    else:
        try:
            mode = path.stat().st_mode
            if not stat.S_ISREG(mode):
                kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
                msg = f"{name}: is {kind}, not a layers file"
                raise PlanError(msg)
            with path.open("rb") as stream:
                data = stream.read(MAX_FILE_BYTES + 1)
        except OSError as err:
            msg = f"{name}: cannot read: {err.strerror or err}"
            raise PlanError(msg) from None
    if len(data) > MAX_FILE_BYTES:
        msg = f"{name}: larger than {MAX_FILE_BYTES:,} bytes: not a layers file"
        raise PlanError(msg)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        msg = f"{name}: not UTF-8 text: not a layers file"
        raise PlanError(msg) from None
    return name, text
