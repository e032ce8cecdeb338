"""The summary of an `apply` run that made many outputs: one line per output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from convcli.errors import shown

if TYPE_CHECKING:
    from convcli.pipeline import ApplyResult


def outputs_table(results: Sequence[ApplyResult]) -> Table:
    """Return one row per output: input, kernel, output shape, path, time.

    For a run of many image x kernel pairs, where a full table per pair
    (`convcli.render.apply_table`) would be hundreds of lines; ``--explain``
    still shows those. The title names the ``--like`` library, if any.
    """
    n = sum(len(r.outputs) for r in results)
    likes = sorted({r.like for r in results if r.like})
    tag = "".join(f", --like {name}" for name in likes)  # the full row: apply_table
    table = Table(title=f"convcli apply: {n} outputs{tag}", title_justify="left")
    table.add_column("input", no_wrap=True)
    table.add_column("kernel", no_wrap=True)
    table.add_column("output H x W x C", no_wrap=True)
    table.add_column("file", overflow="fold")
    table.add_column("ms", justify="right", no_wrap=True)
    for r in results:
        ms = f"{1000 * sum(r.seconds.values()):8.1f}"  # fixed width: docs mask it
        for out in r.outputs:
            kernel = r.kernel.name + (f" [{out.filter}]" if out.filter else "")
            table.add_row(
                Text(shown(r.input.name)),
                Text(shown(kernel)),
                " x ".join(str(v) for v in out.shape),
                Text(shown(str(out.path))),
                ms,
            )
    return table
