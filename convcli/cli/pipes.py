"""`-` as an input (an image read from stdin) and `-o -` (the one output to stdout).

The pipeline works on files, so stdin's bytes go to a private temporary
folder first (named after the format the bytes say they are), and the output
for stdout is written there and then copied out. The folder is removed
however the run ends. Messages name ``-`` (stdin) and ``-o -``, never the
temporary files.
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from convcli.errors import ConvcliError

if TYPE_CHECKING:
    from convcli.pipeline import ApplyResult

STDIO = "-"

FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="EXT",
        help="The outputs' format: png, jpeg, tiff, webp, bmp, gif [the input's; "
        "PNG with -o -].",
    ),
]

# Pillow's format name -> the ending the pipeline reads it by.
_ENDINGS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "TIFF": ".tif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "GIF": ".gif",
}


@dataclass
class Pipes:
    """Where stdin's image and stdout's output live during a run."""

    inputs: list[Path]
    out_text: str | None
    to_stdout: Path | None = None  # the temporary file copied to stdout at the end
    stdin_file: Path | None = None
    _folder: Path | None = field(default=None, repr=False)

    def open(self, fmt: str | None) -> None:
        """Read stdin if ``-`` is an input; plan stdout if ``-o -``.

        Call `close` afterwards, however this ends: it removes what was read.

        Raises
        ------
        ConvcliError
            ``-`` twice, stdin a terminal or not an image, ``-o -`` with a
            terminal as stdout, an unknown ``--format``.
        """
        dashes = [p for p in self.inputs if str(p) == STDIO]
        to_stdout = self.out_text == STDIO
        if not dashes and not to_stdout:
            return
        if len(dashes) > 1:
            msg = "-: stdin is one image; give - once"
            raise ConvcliError(msg)
        if dashes and self.out_text is None:  # beside stdin is nowhere
            msg = "-: an image from stdin needs -o: a file, a folder, or - for stdout"
            raise ConvcliError(msg)
        fmt = fmt or "png"
        ending = "." + fmt.lower().lstrip(".")
        from convcli.images import FORMATS

        if to_stdout and ending not in FORMATS:
            msg = f"--format {fmt}: not an image format ({', '.join(e[1:] for e in FORMATS)})"
            raise ConvcliError(msg)
        if to_stdout and sys.stdout.isatty():
            msg = "-o -: stdout is a terminal; send the image into a pipe or a file (> out.png)"
            raise ConvcliError(msg)
        self._folder = Path(tempfile.mkdtemp(prefix="convcli-"))
        if dashes:
            self.stdin_file = self._read_stdin()
            self.inputs = [
                self.stdin_file if str(p) == STDIO else p for p in self.inputs
            ]
        if to_stdout:
            self.to_stdout = self._folder / f"stdout{ending}"
            self.out_text = str(self.to_stdout)

    def _read_stdin(self) -> Path:
        """Copy stdin's image into the temporary folder; return its file."""
        if sys.stdin.isatty():
            msg = "-: stdin is a terminal; pipe an image in (cat a.png | convcli ...)"
            raise ConvcliError(msg)
        data = sys.stdin.buffer.read()
        if not data:
            msg = "-: stdin is empty; pipe an image in"
            raise ConvcliError(msg)
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as img:
                kind = img.format or ""
        except (UnidentifiedImageError, OSError, ValueError):
            msg = f"-: stdin is not an image convcli reads ({', '.join(_ENDINGS)})"
            raise ConvcliError(msg) from None
        if kind not in _ENDINGS:
            msg = f"-: stdin holds a {kind or 'unknown'} image; convcli reads {', '.join(_ENDINGS)}"
            raise ConvcliError(msg)
        assert self._folder is not None
        path = self._folder / f"stdin{_ENDINGS[kind]}"
        path.write_bytes(data)
        return path

    def shown(self, text: str) -> str:
        """Return a message with the temporary files named as the user named them."""
        if self._folder is None:
            return text
        if self.stdin_file is not None:
            text = text.replace(str(self.stdin_file), "- (stdin)")
        if self.to_stdout is not None:
            text = text.replace(str(self.to_stdout), "-o - (stdout)")
        return text.replace(str(self._folder), "<temporary folder>")

    @contextmanager
    def named(self) -> Iterator[None]:
        """Re-raise a `ConvcliError` or ValueError with the temporary files named as given."""
        try:
            yield
        except (ConvcliError, ValueError) as err:
            text = self.shown(str(err))
            if text == str(err):
                raise
            raise ConvcliError(text) from None

    def as_given(self, result: ApplyResult) -> ApplyResult:
        """Return ``result`` with the temporary files named ``-``, as the user gave them."""
        if self._folder is None:
            return result
        dash = Path(STDIO)
        outputs = [
            replace(o, path=dash) if o.path == self.to_stdout else o
            for o in result.outputs
        ]
        source = dash if result.input == self.stdin_file else result.input
        return replace(result, input=source, outputs=outputs)

    def write_stdout(self) -> None:
        """Copy the output to stdout (binary), once the run made it.

        Stop signals are held until the copy ends (then the exit code says
        so): a reader gets the whole image or nothing, as a file gets its
        rename. A reader that goes away ends the copy (EPIPE).
        """
        if self.to_stdout is None or not self.to_stdout.is_file():
            return
        from convcli.workers import held_signals

        with held_signals(), self.to_stdout.open("rb") as source:
            shutil.copyfileobj(source, sys.stdout.buffer)
            sys.stdout.buffer.flush()

    def close(self) -> None:
        """Remove the temporary folder and everything in it."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
