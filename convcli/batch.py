"""Whole folders: find the images, check the plan, filter them in parallel, report every item.

`find_images` lists the work, `check_plan` refuses a run that would write over
an input or write one file twice, and `run` does the work and returns one
`ItemResult` per input, in input order. Who does the items is `run`'s
``executor``: by default `run_locally`, a `convcli.workers.Pool` of processes
(or this process for one job); `convcli.cluster` builds one for a Dask
cluster. Nothing here prints: progress is a callback, and the CLI draws it. A
bad file becomes a failed item and the run goes on; outputs are written
atomically by `convcli.images.save`, so an interrupted item leaves nothing
behind. The ``--manifest`` is `convcli.manifest`'s (`manifest_line` is
re-exported here).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from convcli import workers
from convcli.atomic import temporaries
from convcli.errors import ConvcliError
from convcli.images import FORMATS
from convcli.kernels import Kernel
from convcli.manifest import finite_json as finite_json
from convcli.manifest import manifest_line as manifest_line
from convcli.pipeline import ApplyOptions, apply_one, output_tags, planned_outputs

_T = TypeVar("_T")

DEFAULT_GLOBS: tuple[str, ...] = tuple(f"*{ext}" for ext in FORMATS)
"""What `find_images` takes without ``--glob``: every ending convcli reads (any case)."""


@dataclass(frozen=True)
class Item:
    """One input image and where its outputs go."""

    path: Path  # as found, under the input folder
    relative: Path  # to the input folder; the outputs mirror it
    out_dir: Path  # the folder its outputs go into
    index: int = 0  # its place in the listing, for --name's {n}


@dataclass(frozen=True)
class ItemResult:
    """What became of one input: ``done``, ``skipped`` or ``failed`` (with why).

    A folder that cannot be listed is a failed result too, with the folder
    as its ``input``.
    """

    input: Path
    status: str
    outputs: list[Path] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    input_bytes: int = 0
    output_bytes: list[int] = field(default_factory=list)
    sha256: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return this result as a JSON-ready dict (paths as strings)."""
        doc = asdict(self)
        doc["input"] = str(self.input)
        doc["outputs"] = [str(p) for p in self.outputs]
        return doc


@dataclass(frozen=True)
class Plan:
    """What one run does to every item: each kernel with its options, the policy."""

    pairs: tuple[tuple[Kernel, ApplyOptions], ...]
    skip_existing: bool = False

    def numbers(self, item: Item) -> list[int]:
        """Return the ``{n}`` of each kernel's first output for ``item`` (`convcli.naming`).

        Outputs are numbered from 1, item by item in listing order, kernel by
        kernel, filter by filter.
        """
        counts = [len(output_tags(kernel)) for kernel, _ in self.pairs]
        first = item.index * sum(counts) + 1
        return [first + sum(counts[:i]) for i in range(len(counts))]

    def outputs(self, item: Item) -> list[Path]:
        """Return every path the item's outputs take, kernel by kernel."""
        return [
            p
            for (kernel, options), n in zip(self.pairs, self.numbers(item), strict=True)
            for p in planned_outputs(item.path, kernel, options, item.out_dir, number=n)
        ]


# ---------------------------------------------------------------------------
# Finding work


def find_images(
    in_dir: Path,
    out_dir: Path,
    *,
    recursive: bool = False,
    globs: Sequence[str] = DEFAULT_GLOBS,
    unlisted: list[ItemResult] | None = None,
) -> list[Item]:
    """List the images under ``in_dir`` whose names match a glob, sorted.

    Hidden files and folders (names starting with ``.``) are left out, a
    folder reached twice through symbolic links is walked once, and
    ``out_dir`` is never searched when it lies inside ``in_dir``, so a run
    does not feed on its own outputs. Globs match the file name, ignoring
    case. Whatever matches is listed, so that what cannot be read fails as
    an item and is reported: a broken link, a FIFO, a device.

    A folder inside ``in_dir`` that cannot be listed (no permission, gone)
    is added to ``unlisted`` as a failed `ItemResult`; without ``unlisted``,
    it raises.

    Raises
    ------
    ConvcliError
        ``in_dir`` is not a folder or cannot be listed, ``out_dir`` is
        ``in_dir`` itself, or (without ``unlisted``) a folder inside cannot
        be listed.
    """
    if not in_dir.is_dir():
        msg = f"{in_dir}: not a folder"
        raise ConvcliError(msg)
    root = in_dir.resolve()
    out_resolved = out_dir.resolve()
    if out_resolved == root:
        msg = f"{out_dir}: the output folder is the input folder; choose another -o"
        raise ConvcliError(msg)
    patterns = [g.lower() for g in globs]
    found: list[Item] = []
    seen: set[tuple[int, int]] = set()
    failures: list[ItemResult] = []

    def cannot_list(err: OSError) -> None:
        folder = Path(err.filename) if err.filename else in_dir
        reason = str(err.strerror or err).lower()
        if folder == in_dir or folder.resolve() == root:
            msg = f"{in_dir}: cannot list the folder: {reason}"
            raise ConvcliError(msg)
        error = (
            f"{folder}: cannot list the folder: {reason}; its images were not filtered"
        )
        failures.append(ItemResult(folder, "failed", error=error))

    for folder, dirs, files in _walk(in_dir, recursive, cannot_list):
        try:
            info = os.stat(folder)
        except OSError as err:  # gone since it was listed
            cannot_list(err)
            dirs[:] = []
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            dirs[:] = []
            continue
        seen.add(key)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (Path(folder, d).resolve() != out_resolved)
        )
        for name in sorted(files):
            if name.startswith("."):
                continue
            if not any(fnmatch.fnmatchcase(name.lower(), p) for p in patterns):
                continue
            path = Path(folder, name)
            relative = path.relative_to(in_dir)
            found.append(
                Item(path, relative, out_dir / relative.parent, index=len(found))
            )
    if failures and unlisted is None:
        raise ConvcliError(failures[0].error)
    if unlisted is not None:
        unlisted.extend(failures)
    return found


def _walk(
    in_dir: Path, recursive: bool, onerror: Callable[[OSError], None]
) -> Iterator[tuple[str, list[str], list[str]]]:
    for folder, dirs, files in os.walk(in_dir, onerror=onerror, followlinks=True):
        yield folder, dirs, files
        if not recursive:
            dirs[:] = []
            return


def check_plan(
    items: Sequence[Item], plan: Plan, *, manifest: Path | None = None
) -> None:
    """Refuse a run that would write over an input, write one file twice, or into a folder.

    Every planned output (and the manifest) is compared with every input and
    with the others, by resolved path and, for files that exist, by device
    and inode (a hard link is the same file). Run it before the first write.

    Raises
    ------
    ConvcliError
        Naming both sides: the output and the input it would replace, the two
        inputs whose outputs are one file, or the manifest and what it is.
    """
    inputs: _Files[Path] = _Files()
    for item in items:
        inputs.add(item.path.resolve(), _stat(item.path), item.path)
    outputs: _Files[tuple[Path, Path]] = _Files()  # -> (output, its input)
    folders: dict[Path, Path] = {}  # each output folder resolved once

    for item in items:
        for out in plan.outputs(item):
            if out.parent not in folders:
                folders[out.parent] = out.parent.resolve()
            where, info = folders[out.parent] / out.name, _stat(out)
            same = inputs.find(where, info)
            if same is not None:
                msg = (
                    f"{out}: the output of {item.path} would overwrite the input "
                    f"{same}; choose another -o"
                )
                raise ConvcliError(msg)
            other = outputs.find(where, info)
            if other is not None:
                also = "" if other[0] == out else f" (as {other[0]})"
                fix = "rename one of them"
                template = plan.pairs[0][1].name if plan.pairs else None
                if template is not None:
                    fix = f"--name {template!r} gives them one name; add {{stem}}, {{kernel}}, {{filter}} or {{n}}"
                msg = (
                    f"{out}: the output of both {other[1]}{also} and {item.path}; {fix}"
                )
                raise ConvcliError(msg)
            if info is not None and stat.S_ISDIR(info.st_mode):
                msg = f"{out}: the output of {item.path} is an existing folder; move it away"
                raise ConvcliError(msg)
            outputs.add(where, info, (out, item.path))
    if manifest is None:
        return
    where, info = manifest.resolve(), _stat(manifest)
    same = inputs.find(where, info)
    if same is not None:
        msg = f"{manifest}: the manifest would overwrite the input {same}; choose another --manifest"
        raise ConvcliError(msg)
    other = outputs.find(where, info)
    if other is not None:
        msg = (
            f"{manifest}: the manifest is also {other[0]}, the output of {other[1]}; "
            "choose another --manifest"
        )
        raise ConvcliError(msg)


class _Files(Generic[_T]):
    """Files by resolved path and, for those that exist, by (device, inode)."""

    def __init__(self) -> None:
        self.by_path: dict[Path, _T] = {}
        self.by_inode: dict[tuple[int, int], _T] = {}

    def add(self, where: Path, info: os.stat_result | None, value: _T) -> None:
        self.by_path.setdefault(where, value)
        if info is not None:
            self.by_inode.setdefault((info.st_dev, info.st_ino), value)

    def find(self, where: Path, info: os.stat_result | None) -> _T | None:
        found = self.by_path.get(where)
        if found is None and info is not None:
            found = self.by_inode.get((info.st_dev, info.st_ino))
        return found


def _stat(path: Path) -> os.stat_result | None:
    """Return what ``stat`` says of a path (links followed), or None if it does not exist."""
    try:
        return path.stat()
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------
# Doing it


_worker_plan: list[Plan] = []


def _init_worker(plan: Plan) -> None:
    """Keep the plan (kernels loaded once per worker)."""
    workers.reuse_freed_memory()
    _worker_plan[:] = [plan]


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def process_item(item: Item, plan: Plan) -> ItemResult:
    """Filter one image with every kernel; a failure is a result, not an exception."""
    t0 = time.perf_counter()
    try:
        info = item.path.stat()
    except OSError as err:
        reason = str(err.strerror).lower()
        if item.path.is_symlink():
            reason = f"broken symbolic link (to {os.readlink(item.path)})"
        return ItemResult(item.path, "failed", error=f"{item.path}: {reason}")
    size = info.st_size
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block the reader for ever
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a file")
        error = f"{item.path}: {kind}, not an image file"
        return ItemResult(item.path, "failed", error=error)
    planned = plan.outputs(item)
    if plan.skip_existing and all(p.is_file() for p in planned):
        return ItemResult(
            item.path,
            "skipped",
            outputs=planned,
            input_bytes=size,
            output_bytes=[p.stat().st_size for p in planned],
            sha256=[_digest(p) for p in planned],
        )
    written: list[Path] = []
    try:
        item.out_dir.mkdir(parents=True, exist_ok=True)
        for (kernel, options), n in zip(plan.pairs, plan.numbers(item), strict=True):
            result = apply_one(item.path, kernel, options, item.out_dir, number=n)
            written.extend(o.path for o in result.outputs)
    except Exception as err:  # a bad file must not stop the batch
        return ItemResult(
            item.path,
            "failed",
            outputs=written,
            error=_reason(item, err),
            seconds=time.perf_counter() - t0,
            input_bytes=size,
        )
    return ItemResult(
        item.path,
        "done",
        outputs=written,
        seconds=time.perf_counter() - t0,
        input_bytes=size,
        output_bytes=[p.stat().st_size for p in written],
        sha256=[_digest(p) for p in written],
    )


def _reason(item: Item, err: Exception) -> str:
    """Return one line: the item's path and what went wrong."""
    if isinstance(err, ConvcliError | ValueError):
        message = str(err)
    elif isinstance(err, OSError):
        message = f"{item.path}: {err.strerror or err}"
    else:  # a decoder's own exception, MemoryError, ...
        message = f"{item.path}: {type(err).__name__}: {err}"
    if str(item.path) not in message:
        message = f"{item.path}: {message}"
    return " ".join(message.split())


def _work(item: Item) -> ItemResult:
    return process_item(item, _worker_plan[0])


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM, SIGHUP) stopped the run; ``results`` holds the items that finished."""

    def __init__(self, results: list[ItemResult]) -> None:
        super().__init__("interrupted")
        self.results = results


class Executor(Protocol):
    """What runs a batch's items: `run_locally`, or `convcli.cluster.dask_executor`'s.

    It runs ``items`` with ``jobs`` workers, records each result in ``done``
    (by input path) and passes it to ``report`` as it ends, and with
    ``fail_fast`` starts no item after the first failure. On Ctrl-C it
    drops the items not started, finishes (or cancels) the running ones and
    lets the `KeyboardInterrupt` go on; `run` turns it into `Interrupted`.
    """

    def __call__(
        self,
        items: Sequence[Item],
        plan: Plan,
        *,
        jobs: int,
        fail_fast: bool,
        done: dict[Path, ItemResult],
        report: Callable[[ItemResult], None],
    ) -> None:
        """Run the items, recording each result in ``done`` and passing it to ``report``."""


def run(
    items: Sequence[Item],
    plan: Plan,
    *,
    jobs: int = 1,
    fail_fast: bool = False,
    on_item: Callable[[ItemResult], None] | None = None,
    executor: Executor | None = None,
) -> list[ItemResult]:
    """Process every item; return one result per item that ran, in input order.

    ``jobs`` processes work at once (1: in this process). ``on_item`` is
    called in this process as each item ends. With ``fail_fast`` the first
    failure stops the run: items not started are left out of the results.
    ``executor`` runs the items somewhere else than `run_locally` does (see
    `convcli.cluster.dask_executor`); items whose outputs clash are failed
    here first, whichever runs the rest (`check_plan` refuses such a run
    before it starts).

    Raises
    ------
    Interrupted
        On Ctrl-C, SIGTERM or SIGHUP: items not started are dropped, items
        running are finished (their outputs are whole files), and the
        exception carries the results so far.
    """
    execute = executor or run_locally
    report = on_item or (lambda _: None)
    done: dict[Path, ItemResult] = {}
    order = {item.path: i for i, item in enumerate(items)}

    def ordered() -> list[ItemResult]:
        return sorted(done.values(), key=lambda r: order[r.input])

    try:
        todo, clashes = _without_clashes(items, plan)
        for result in clashes:
            done[result.input] = result
            report(result)
        execute(todo, plan, jobs=jobs, fail_fast=fail_fast, done=done, report=report)
    except KeyboardInterrupt:
        raise Interrupted(ordered()) from None
    return ordered()


def run_locally(
    items: Sequence[Item],
    plan: Plan,
    *,
    jobs: int,
    fail_fast: bool,
    done: dict[Path, ItemResult],
    report: Callable[[ItemResult], None],
) -> None:
    """Run the items on a pool of ``jobs`` processes, or in this process.

    One job or one item runs here, with no pool to start. The default
    `Executor` of `run`.
    """
    if jobs <= 1 or len(items) <= 1:
        if len(items) > 1:
            workers.reuse_freed_memory()
        for item in items:
            result = process_item(item, plan)
            done[item.path] = result
            report(result)
            if fail_fast and result.status == "failed":
                break
    else:
        _run_pool(items, plan, jobs, fail_fast, done, report)


SAME_CTRL_C = workers.SAME_SIGNAL
"""Seconds within which a second SIGINT is the same Ctrl-C delivered twice.

`timeout -s INT` and some shells signal both the process and its group."""


def _run_pool(
    items: Sequence[Item],
    plan: Plan,
    jobs: int,
    fail_fast: bool,
    done: dict[Path, ItemResult],
    report: Callable[[ItemResult], None],
) -> None:
    """Run the items on ``jobs`` worker processes, recording each result in ``done``.

    Each worker runs one item at a time (and holds the next, see
    `convcli.workers.Pool`). A worker that dies (killed, out of memory) fails
    only the item it was running, whose temporary files are removed; the item
    it held next goes back in line, and gets a new worker. On Ctrl-C, SIGTERM or SIGHUP (a
    `KeyboardInterrupt` here) no item starts and the running ones finish
    before the exception goes on; a second one, `SAME_CTRL_C` seconds or more
    later, kills the workers and removes their temporary files. However this
    ends, no worker is left running.
    """
    running: dict[Path, Item] = {}
    with workers.worker_environment(workers.threads_per_worker(jobs)):
        pool = workers.Pool(
            _work, min(jobs, len(items)), initializer=_init_worker, initargs=(plan,)
        )
        try:
            _drive(pool, items, plan, fail_fast, running, done, report)
        finally:
            # Only after an unexpected error are workers still busy here.
            killed = pool.close()
            remove_temporaries([running[k] for k in killed if k in running], plan)


def _drive(
    pool: workers.Pool,
    items: Sequence[Item],
    plan: Plan,
    fail_fast: bool,
    running: dict[Path, Item],
    done: dict[Path, ItemResult],
    report: Callable[[ItemResult], None],
) -> None:
    """Give the workers the items, and collect the results as they end."""
    queue = deque(items)

    def collect() -> None:
        # With the stop signals held: a result taken is a result recorded.
        with workers.held_signals():
            while pool.finished:
                outcome = pool.finished[0]
                item = running.pop(outcome.key)
                if not outcome.started:  # its worker died first, or the run stops
                    queue.appendleft(item)
                    pool.finished.popleft()
                    continue
                if outcome.ok:
                    result = outcome.value
                else:
                    if outcome.died:  # it may have been writing
                        remove_temporaries([item], plan)
                    error = f"{item.path}: {outcome.value}"
                    result = ItemResult(item.path, "failed", error=error)
                done[item.path] = result
                report(result)
                pool.finished.popleft()
                if fail_fast and result.status == "failed":
                    pool.stop_starting()

    def feed() -> None:
        while queue and pool.has_room():
            with workers.held_signals():  # a worker starting is not cut in half
                item = queue.popleft()
                running[item.path] = item
                try:
                    pool.submit(item.path, item)
                except OSError as err:
                    running.pop(item.path)
                    if pool.workers():  # run on with the workers there are
                        pool.size = pool.workers()
                        queue.appendleft(item)
                        return
                    error = f"{item.path}: cannot start a worker process: {err}"
                    result = ItemResult(item.path, "failed", error=error)
                    done[item.path] = result
                    report(result)

    try:
        feed()
        while running:
            pool.wait()
            workers.raise_if_stopped()  # a stop whose exception Python dropped
            collect()
            feed()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: no item starts any more
        first = time.monotonic()
        pool.stop_starting()
        while running:
            try:
                collect()
                pool.wait()
            except KeyboardInterrupt:
                if time.monotonic() - first < SAME_CTRL_C:
                    continue  # one Ctrl-C sent to the process and to its group
                collect()
                killed = pool.kill()  # a second Ctrl-C: stop the workers now
                remove_temporaries([running.pop(k) for k in killed], plan)
                raise
        raise


def remove_temporaries(items: Sequence[Item], plan: Plan) -> None:
    """Remove the temporary files killed workers may have left beside the outputs.

    Call it only once no worker writes any more: a temporary file is a write
    in progress until then.

    Writes go through `convcli.atomic`, which names their temporary files.
    """
    for item in items:
        for target in plan.outputs(item):
            for tmp in temporaries(target):
                tmp.unlink(missing_ok=True)


def _without_clashes(
    items: Sequence[Item], plan: Plan
) -> tuple[list[Item], list[ItemResult]]:
    """Fail every item whose output path an earlier item also writes."""
    owner: dict[Path, Path] = {}
    kept, failed = [], []
    for item in items:
        paths = plan.outputs(item)
        taken = next((p for p in paths if p in owner), None)
        if taken is not None:
            msg = (
                f"{item.path}: its output {taken} is also the output of "
                f"{owner[taken]}; rename one of them"
            )
            failed.append(ItemResult(item.path, "failed", error=msg))
            continue
        owner.update(dict.fromkeys(paths, item.path))
        kept.append(item)
    return kept, failed
