"""The `convcli` command line: the Typer app, its root options, its commands.

Each command is a module of this package (`kernels`, `apply`, `batch`,
`trace`, `plan`): parse the options, call the library, render, choose the exit code.
The options `apply` and `batch` share are declared in `convcli.cli.options`,
and bad input becomes exit code 2 in `convcli.cli.common`. numpy, Pillow and
rich are imported inside the commands that need them, so that
`convcli --help` and `convcli --version` start fast: no module here imports
more than typer, the standard library, `convcli.errors` and `convcli.names`
at load time.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from types import FrameType
from typing import Annotated

import typer

from convcli import __version__
from convcli.cli import apply, batch, kernels, plan, trace
from convcli.cli.common import EXIT_INTERRUPTED, state

__all__ = ["app", "main"]

app = typer.Typer(
    name="convcli",
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion
    pretty_exceptions_enable=False,
    help="Filter images with convolution kernels, and see how a convolution works.",
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the Python traceback of an error.")
    ] = False,
) -> None:
    """Filter images with convolution kernels, and see how a convolution works."""
    state.debug = debug


# In this order in `convcli --help`.
app.command()(kernels.kernels)
app.command()(apply.apply)
app.command()(batch.batch)
app.command()(trace.trace)
app.command()(plan.plan)

# The click commands Typer builds, for the documentation (mkdocs-click):
# `click_command` is the whole command line, `click_apply` one command.
_CLICK_SUBCOMMANDS = {
    f"click_{name}": name for name in ("kernels", "apply", "batch", "trace", "plan")
}


def __getattr__(name: str) -> typer.core.TyperGroup | typer.core.TyperCommand:
    """Build the click command of the command line, or of one of its commands.

    ``click_command`` is the click group Typer builds from `app`, and
    ``click_apply``, ``click_batch``, ``click_trace``, ``click_plan``, ``click_kernels`` are
    its commands: what the documentation generates its option tables from
    (mkdocs-click), so they cannot differ from ``--help``. Built on first
    access only, so ``convcli --help`` does not pay for it. Other names raise
    `AttributeError`.
    """
    if name == "click_command" or name in _CLICK_SUBCOMMANDS:
        group = typer.main.get_command(app)
        assert isinstance(group, typer.core.TyperGroup)
        if name == "click_command":
            return group
        command = group.commands[_CLICK_SUBCOMMANDS[name]]
        assert isinstance(command, typer.core.TyperCommand)
        return command
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def main() -> None:
    """Run the convcli command line.

    SIGTERM and SIGHUP stop a command as Ctrl-C does (no partial file; batch
    prints its summary), and the exit code is 128 + the signal's number: 130,
    143, 129. Python warnings (numpy's overflow to inf, say, which is a
    defined result) are not shown, in this process or in batch's workers,
    unless ``--debug`` comes before the command.
    """
    from convcli import workers

    workers.handle_stop_signals()
    if not _debug(sys.argv[1:]):
        warnings.simplefilter("ignore")
        os.environ["PYTHONWARNINGS"] = "ignore"  # the worker processes, too
    try:
        app()
        code: int | str | None = 0
    except SystemExit as end:
        code = end.code
    except KeyboardInterrupt:  # before or after the command ran
        code = EXIT_INTERRUPTED
    if workers.stopped():  # also a stop whose exception Python dropped
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        code = workers.stop_exit_code()
    _after_the_end(code)
    _flush_quietly()
    for signum in workers.STOP_SIGNALS:  # Python resets its handlers as it exits
        signal.signal(signum, signal.SIG_IGN)
    sys.exit(code)


def _after_the_end(code: int | str | None) -> None:
    """Let a stop signal that comes once the exit code is decided change nothing.

    The summary is printed and only the output's last flush is left: one late
    signal (one Ctrl-C sent to the process and to its group) is absorbed, a
    second one exits at once with the decided code. After the flush, they
    are ignored while Python shuts down.
    """
    from convcli import workers

    late: list[int] = []
    status = code if isinstance(code, int) else int(code is not None)

    def absorb(signum: int, _frame: FrameType | None) -> None:
        late.append(signum)
        if len(late) > 1:
            os._exit(status)

    for signum in workers.STOP_SIGNALS:
        signal.signal(signum, absorb)


def _debug(args: list[str]) -> bool:
    """Whether ``--debug`` is among the root options (those before the command)."""
    for arg in args:
        if not arg.startswith("-"):
            return False
        if arg == "--debug":
            return True
    return False


def _flush_quietly() -> None:
    """Flush stdout and stderr; a reader or terminal that is gone is not an error."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
