"""Whole folders: find the images, filter them in parallel, report every item.

`find_images` lists the work, `run` does it and returns one `ItemResult` per
input, in input order. Who does the items is `run`'s ``executor``: by default
`run_locally`, a process pool (or this process for one job); `convcli.cluster`
builds one for a Dask cluster. Nothing here prints: progress is a callback,
and the CLI draws it. A bad file becomes a failed item and the run goes on;
outputs are written atomically by `convcli.images.save`, so an interrupted
item leaves nothing behind.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from convcli import workers
from convcli.errors import ConvcliError
from convcli.images import FORMATS
from convcli.kernels import Kernel
from convcli.pipeline import ApplyOptions, apply_one, planned_outputs

DEFAULT_GLOBS: tuple[str, ...] = tuple(f"*{ext}" for ext in FORMATS)
"""What `find_images` takes without ``--glob``: every ending convcli reads (any case)."""


@dataclass(frozen=True)
class Item:
    """One input image and where its outputs go."""

    path: Path  # as found, under the input folder
    relative: Path  # to the input folder; the outputs mirror it
    out_dir: Path  # the folder its outputs go into


@dataclass(frozen=True)
class ItemResult:
    """What became of one input: ``done``, ``skipped`` or ``failed`` (with why)."""

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

    def outputs(self, item: Item) -> list[Path]:
        """Return every path the item's outputs take, kernel by kernel."""
        return [
            p
            for kernel, options in self.pairs
            for p in planned_outputs(item.path, kernel, options, item.out_dir)
        ]


# ---------------------------------------------------------------------------
# Finding work


def find_images(
    in_dir: Path,
    out_dir: Path,
    *,
    recursive: bool = False,
    globs: Sequence[str] = DEFAULT_GLOBS,
) -> list[Item]:
    """List the images under ``in_dir`` whose names match a glob, sorted.

    Hidden files and folders (names starting with ``.``) are left out, a
    folder reached twice through symbolic links is walked once (a broken
    link to a file is listed, so that it fails and is reported), and
    ``out_dir`` is never searched when it lies inside ``in_dir``, so a run
    does not feed on its own outputs. Globs match the file name, ignoring
    case.

    Raises
    ------
    ConvcliError
        ``in_dir`` is not a folder, or ``out_dir`` is ``in_dir`` itself.
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
    for folder, dirs, files in _walk(in_dir, recursive):
        stat = os.stat(folder)
        key = (stat.st_dev, stat.st_ino)
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
            if not path.is_file() and not path.is_symlink():
                continue  # a fifo, a socket: not something to read
            # A broken link is listed: it fails as an item, so it is reported.
            relative = path.relative_to(in_dir)
            found.append(Item(path, relative, out_dir / relative.parent))
    return found


def _walk(in_dir: Path, recursive: bool) -> Iterator[tuple[str, list[str], list[str]]]:
    for folder, dirs, files in os.walk(in_dir, followlinks=True):
        yield folder, dirs, files
        if not recursive:
            dirs[:] = []
            return


# ---------------------------------------------------------------------------
# Doing it


_worker_plan: list[Plan] = []


def _init_worker(plan: Plan) -> None:
    """Keep the plan (kernels loaded once per worker); leave Ctrl-C to the main process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    workers.reuse_freed_memory()
    _worker_plan[:] = [plan]


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def process_item(item: Item, plan: Plan) -> ItemResult:
    """Filter one image with every kernel; a failure is a result, not an exception."""
    t0 = time.perf_counter()
    try:
        size = item.path.stat().st_size
    except OSError as err:
        reason = str(err.strerror).lower()
        if item.path.is_symlink():
            reason = f"broken symbolic link (to {os.readlink(item.path)})"
        return ItemResult(item.path, "failed", error=f"{item.path}: {reason}")
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
        for kernel, options in plan.pairs:
            result = apply_one(item.path, kernel, options, item.out_dir)
            written.extend(o.path for o in result.outputs)
    except Exception as err:  # a bad file must not stop the batch
        if isinstance(err, ConvcliError | ValueError):
            message = str(err)
        elif isinstance(err, OSError):
            message = f"{item.path}: {err.strerror or err}"
        else:  # a decoder's own exception, MemoryError, ...
            message = f"{item.path}: {type(err).__name__}: {err}"
        if str(item.path) not in message:
            message = f"{item.path}: {message}"
        return ItemResult(
            item.path,
            "failed",
            outputs=written,
            error=message,
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


def _work(item: Item) -> ItemResult:
    return process_item(item, _worker_plan[0])


class Interrupted(Exception):
    """Ctrl-C stopped the run; ``results`` holds the items that finished."""

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
    here first, whichever runs the rest.

    Raises
    ------
    Interrupted
        On Ctrl-C: items not started are dropped, items running are finished
        (their outputs are whole files), and the exception carries the
        results so far.
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


def _run_pool(
    items: Sequence[Item],
    plan: Plan,
    jobs: int,
    fail_fast: bool,
    done: dict[Path, ItemResult],
    report: Callable[[ItemResult], None],
) -> None:
    """Run the items on ``jobs`` processes, recording each result in ``done``.

    On Ctrl-C (KeyboardInterrupt here), items not started are dropped and
    the running ones finish before the exception goes on; a second Ctrl-C
    kills the workers and removes their temporary files.
    """
    with workers.worker_environment(workers.threads_per_worker(jobs)):
        pool = ProcessPoolExecutor(
            max_workers=min(jobs, len(items)),
            mp_context=workers.pool_context(),
            initializer=_init_worker,
            initargs=(plan,),
        )
        _drive(pool, items, plan, jobs, fail_fast, done, report)


SAME_CTRL_C = 0.5
"""Seconds within which a second SIGINT is the same Ctrl-C delivered twice.

`timeout -s INT` and some shells signal both the process and its group."""


def _drive(
    pool: ProcessPoolExecutor,
    items: Sequence[Item],
    plan: Plan,
    jobs: int,
    fail_fast: bool,
    done: dict[Path, ItemResult],
    report: Callable[[ItemResult], None],
) -> None:
    """Feed the pool a few items per worker and collect results as they end."""
    running: dict[Future[ItemResult], Item] = {}
    queue = iter(items)

    def collect(future: Future[ItemResult]) -> ItemResult:
        item = running[future]
        try:
            result = future.result()
        except Exception as err:  # the worker died (killed, out of memory)
            reason = f"{type(err).__name__}: {err}".rstrip(": ")
            result = ItemResult(item.path, "failed", error=f"{item.path}: {reason}")
        # Only now: a Ctrl-C before this line leaves the item to be collected again.
        running.pop(future)
        done[item.path] = result
        report(result)
        return result

    def refill() -> None:
        # A few items per worker in flight, so that Ctrl-C and --fail-fast
        # have little queued work to drop.
        for item in queue:
            try:
                with workers.held_sigint():  # submit may start a worker process
                    running[pool.submit(_work, item)] = item
            except BrokenProcessPool as err:
                result = ItemResult(item.path, "failed", error=f"{item.path}: {err}")
                done[item.path] = result
                report(result)
                continue
            if len(running) >= 2 * jobs:
                break

    try:
        refill()
        stop = False
        while running:
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                failed = collect(future).status == "failed"
                stop = stop or (fail_fast and failed)
            if not stop:
                refill()
    except KeyboardInterrupt:
        first = time.monotonic()
        for future in list(running):
            if future.cancel():
                running.pop(future)
        while running:
            try:
                for future in list(running):
                    collect(future)
            except KeyboardInterrupt:
                if time.monotonic() - first < SAME_CTRL_C:
                    continue  # one Ctrl-C sent to the process and to its group
                _terminate(pool)  # a second Ctrl-C: stop the workers now
                remove_temporaries(items, plan)
                raise
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True, cancel_futures=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Kill the workers (ProcessPoolExecutor has no public way to)."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
    for process in list(processes.values()):
        process.join(timeout=5)
    pool.shutdown(wait=False, cancel_futures=True)


def remove_temporaries(items: Sequence[Item], plan: Plan) -> None:
    """Remove the temporary files killed workers may have left beside the outputs.

    Call it only once no worker writes any more: a temporary file is a write
    in progress until then.

    `convcli.images.save` writes ``.<name>.<random>.tmp`` beside ``<name>``.
    """
    for item in items:
        for target in plan.outputs(item):
            for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
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


def manifest_line(result: ItemResult, plan: Plan) -> str:
    """Return one JSON line: the item, its outputs, each kernel and its options.

    A kernel is recorded with its spec's parameters (``sigma`` of
    ``gaussian:sigma=3``), its shape and its weights' SHA-256, and the
    options with ``range`` resolved to the one used, so that a line says
    exactly what made its outputs.
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
    return json.dumps(record) + "\n"


def _options_json(options: ApplyOptions, kernel: Kernel) -> dict[str, Any]:
    doc = asdict(replace(options, range=options.range or kernel.range))
    return {k: list(v) if isinstance(v, tuple) else v for k, v in doc.items()}
