"""Everything the terminal shows: consoles, tables, kernel grids, trace views, errors.

The only package that imports rich. Functions here build renderables from
library values and print nothing on their own, except `error` and `print_json`.
One module per job: `console` (the consoles, the error line), `kernels` (the
catalogue and one kernel's weights), `tables` (apply's and batch's tables, the
progress bar), `runs` (apply's one line per output), `trace` (the text view of
``convcli trace``).
"""

from __future__ import annotations

from convcli.render.console import console, err_console, error, print_json
from convcli.render.kernels import kernel_table, kernel_view
from convcli.render.tables import (
    apply_table,
    band_progress,
    batch_counts,
    batch_progress,
    batch_table,
)
from convcli.render.trace import (
    TRACE_LEGEND,
    TraceLabels,
    demo_table,
    trace_header,
    trace_step,
    trace_summary,
)

__all__ = [
    "TRACE_LEGEND",
    "TraceLabels",
    "apply_table",
    "band_progress",
    "batch_counts",
    "batch_progress",
    "batch_table",
    "console",
    "demo_table",
    "err_console",
    "error",
    "kernel_table",
    "kernel_view",
    "print_json",
    "trace_header",
    "trace_step",
    "trace_summary",
]
