"""The ``--manifest`` of ``convcli batch``: one strict JSON line per item, written atomically.

`manifest_line` says what made an item's outputs (`convcli.batch` re-exports
it, and uses this module, never the reverse); `Manifest` writes the lines
as items end, to a temporary file that is renamed into place when the run
ends, so that a manifest never replaces a file half written, and a failed
write (a full disk) is recorded rather than raised.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
from dataclasses import asdict, replace
from pathlib import Path
from typing import IO, Any, Protocol

from convcli.atomic import create_temporary, finish, temporary_name
from convcli.errors import ConvcliError
from convcli.kernels import Kernel
from convcli.pipeline import ApplyOptions


class Result(Protocol):
    """What a manifest line records of an item (`convcli.batch.ItemResult`)."""

    def to_json(self) -> dict[str, Any]:
        """Return the item's result as a JSON-ready dict."""


class Pairs(Protocol):
    """What made an item's outputs (`convcli.batch.Plan`)."""

    @property
    def pairs(self) -> tuple[tuple[Kernel, ApplyOptions], ...]:
        """Each kernel with its options."""


def manifest_line(result: Result, plan: Pairs) -> str:
    """Return one JSON line: the item, its outputs, each kernel and its options.

    A kernel is recorded with its spec's parameters (``sigma`` of
    ``gaussian:sigma=3``), its shape and its weights' SHA-256, and the
    options with ``range`` resolved to the one used, so that a line says
    exactly what made its outputs. Strict JSON: a non-finite number (``--cval
    inf``) is written as the string ``"Infinity"``, ``"-Infinity"`` or ``"NaN"``,
    as ``trace --json`` and ``kernels --json`` write one.
    """
    record = {
        **result.to_json(),
        "kernels": [
            {
                "name": kernel.name,
                "source": kernel.source,
                "params": dict(kernel.params),
                "shape": list(kernel.weights.shape),
                "weights_sha256": hashlib.sha256(kernel.weights.tobytes()).hexdigest(),
                "options": _options_json(options, kernel),
            }
            for kernel, options in plan.pairs
        ],
    }
    return json.dumps(finite_json(record), allow_nan=False) + "\n"


def finite_json(value: Any) -> Any:
    """Return ``value`` with each non-finite float as ``"Infinity"``, ``"-Infinity"`` or ``"NaN"``.

    Python's ``float()`` and JavaScript's ``Number()`` read these back.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return (
            "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        )
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def _options_json(options: ApplyOptions, kernel: Kernel) -> dict[str, Any]:
    doc = asdict(replace(options, range=options.range or kernel.range))
    return {k: list(v) if isinstance(v, tuple) else v for k, v in doc.items()}


class Manifest:
    """The ``--manifest`` file: one JSON line per item, as each item ends.

    Written to a temporary ``.<name>.<random>.tmp`` beside the file and renamed
    into place by `close`, whatever ended the run (a file already there is
    replaced only then, never truncated first). A path that is not a regular
    file (``/dev/stdout``, a FIFO with a reader) is written directly. Writing
    never raises: the first failure (a full disk) is kept in `error`, and
    the lines after it are dropped.
    """

    def __init__(self, path: Path, stream: IO[str], tmp: Path | None) -> None:
        self.path = path
        self.error: str | None = None
        self._stream = stream
        self._tmp = tmp
        self._closed = False

    @classmethod
    def open(cls, path: Path) -> Manifest:
        """Start the manifest at ``path``; call it after `check_plan`.

        Raises
        ------
        ConvcliError
            ``path`` is a folder, its folder does not exist or cannot be
            written, or it is a FIFO that no process reads.
        """
        try:
            info: os.stat_result | None = path.stat()
        except OSError:
            info = None
        tmp: Path | None = None
        try:
            if info is not None and stat.S_ISDIR(info.st_mode):
                msg = f"{path}: cannot write the manifest: it is a folder"
                raise ConvcliError(msg)
            if info is not None and not stat.S_ISREG(info.st_mode):
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                os.set_blocking(fd, True)
                return cls(path, os.fdopen(fd, "w", encoding="utf-8"), None)
            tmp = temporary_name(path)  # named first: a stop below finds it
            fd = create_temporary(tmp)
        except OSError as err:
            reason = (
                "a FIFO that no process reads"
                if err.errno == errno.ENXIO
                else err.strerror
            )
            msg = f"{path}: cannot write the manifest: {reason or err}"
            raise ConvcliError(msg) from None
        except BaseException:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise
        try:
            return cls(path, os.fdopen(fd, "w", encoding="utf-8"), tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def write(self, line: str) -> None:
        """Write one line and flush it; after a failure, do nothing."""
        if self._closed or self.error is not None:
            return
        try:
            self._stream.write(line)
            self._stream.flush()
        except OSError as err:
            self._fail(err)

    def close(self) -> None:
        """Finish the file: rename the temporary file into place (or remove it after a failure)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stream.close()  # after a failed write, this fails too
        except OSError as err:
            self._fail(err)
        if self._tmp is None:
            return
        try:
            if self.error is None:
                finish(self._tmp, self.path)
        except OSError as err:
            self._fail(err)
        finally:
            self._tmp.unlink(missing_ok=True)

    def _fail(self, err: OSError) -> None:
        if self.error is None:
            reason = str(err.strerror or err).lower()
            self.error = f"{self.path}: cannot write the manifest: {reason}"
