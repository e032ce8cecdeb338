"""Worker processes for `convcli.batch`, and how every command stops on a signal.

Standard library only, so that the CLI can start the worker server before it
imports numpy and Pillow itself: the server's imports then run beside the
CLI's own, on the other core.

Stopping: `handle_stop_signals` makes SIGTERM and SIGHUP stop a command as
Ctrl-C does (they raise `Stopped`, a `KeyboardInterrupt`), and
`stop_exit_code` gives the exit code, 128 + the signal's number.

`Pool` runs tasks on worker processes, one task per worker at a time. A
worker that dies (SIGKILL, the out-of-memory killer) fails only the task it
held; the next task gets a new worker. Workers leave SIGINT, SIGTERM and
SIGHUP to the main process, which stops the run in order, and end as soon as
the main process is gone, however it ended.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import multiprocessing.context
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

# ctypes and multiprocessing are imported where used: `convcli.core` imports
# this module for `cpus` and `THREADS_ENV`, and must stay quick to import.

THREADS_ENV = "CONVCLI_THREADS"
"""Environment variable that caps the threads of one `conv2d` call (``workers=None``)."""

PRELOAD = ["convcli.batch"]
"""What the worker server imports once, before it forks workers."""

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP")
    if hasattr(signal, name)  # Windows has no SIGHUP
)
"""The signals that stop a command in order: Ctrl-C, ``kill``, a closed terminal."""

ORPHAN_GRACE = 30.0
"""Seconds a worker whose main process is gone has to clean up before it exits anyway."""


# ---------------------------------------------------------------------------
# Stopping on a signal


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP asked this process to stop: handled as Ctrl-C is.

    A `KeyboardInterrupt`, so that every ``except KeyboardInterrupt`` (a
    temporary file's clean-up, a batch's orderly stop) treats it alike.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


SAME_SIGNAL = 0.5
"""Seconds within which a second stop signal is the first one delivered again.

`timeout -s INT` and some shells signal both the process and its group: one
Ctrl-C arrives twice. Only a signal this long after the first one is a second
request ("stop now")."""

_first_stop: list[int] = []  # the signal that first asked this process to stop
_first_stop_at: list[float] = []  # and when (time.monotonic)


def _echo() -> bool:
    """Whether a stop signal arriving now repeats the first one (see `SAME_SIGNAL`)."""
    return bool(_first_stop_at) and time.monotonic() - _first_stop_at[0] < SAME_SIGNAL


def _stop(signum: int) -> None:
    """Record ``signum`` (if it is the first) and raise what it means."""
    if not _first_stop:
        _first_stop.append(signum)
        _first_stop_at.append(time.monotonic())
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Stopped(signum)


def _on_stop_signal(signum: int, _frame: FrameType | None) -> None:
    if not _echo():  # one Ctrl-C delivered twice must not cut the orderly stop short
        _stop(signum)


def handle_stop_signals() -> None:
    """Make SIGINT, SIGTERM and SIGHUP raise in the main thread, and remember the first.

    SIGINT raises `KeyboardInterrupt` as Python's own handler does; SIGTERM
    and SIGHUP raise `Stopped`. Call it from the main thread of a command's
    process (``convcli.cli.main`` does).
    """
    reset_stop()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _on_stop_signal)


def stopped() -> bool:
    """Whether a stop signal came since `handle_stop_signals` (or `reset_stop`)."""
    return bool(_first_stop)


def raise_if_stopped() -> None:
    """Raise the recorded stop again, if a stop signal came.

    The handler raises at once, but an exception raised inside a callback
    Python runs on its own (a weakref callback of the import system, say) is
    printed and dropped: "Exception ignored in ...". Long loops call this
    between steps, so that such a lost Ctrl-C still stops them.
    """
    if _first_stop:
        signum = _first_stop[0]
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Stopped(signum)


def reset_stop() -> None:
    """Forget the signal that stopped this process (a new command starts)."""
    _first_stop.clear()
    _first_stop_at.clear()


def stop_exit_code() -> int:
    """Return the exit code of a stopped command: 128 + the first stop signal (130 for Ctrl-C)."""
    return 128 + (_first_stop[0] if _first_stop else signal.SIGINT)


@contextmanager
def held_signals() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back until the block ends, then raise the first.

    Starting a worker process, or taking a result out of its pipe, must not
    be cut in half. Outside the main thread (where signals cannot be
    handled) the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        if not _echo():
            caught.append(signum)

    previous = {signum: signal.signal(signum, hold) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        _stop(caught[0])


@contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Block SIGINT, SIGTERM and SIGHUP in the block; one that came is delivered after it.

    A process started meanwhile inherits them blocked, across ``exec``: the
    forkserver never sees them, and its workers unblock them (`_serve`).
    Where signals cannot be blocked (Windows), they are ignored instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not hasattr(signal, "pthread_sigmask"):
        ignored = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in ignored.items():
                signal.signal(signum, handler)
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# ---------------------------------------------------------------------------
# How workers start


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_MMAP_THRESHOLD_MAX = 32 << 20  # the largest glibc accepts on 64-bit
_TRIM_THRESHOLD = 256 << 20


def reuse_freed_memory() -> bool:
    """Make this process reuse the memory it frees, image after image (glibc only).

    By default glibc gives each large buffer its own mmap and unmaps it when
    freed, so the next image touches fresh pages again: on 640x480 PNGs
    that was 4,400 page faults and 18 ms of system time per image, a fifth
    of the run (`bench/bench_batch.py`). Buffers up to 32 MiB now come from
    the heap, and up to 256 MiB of freed heap is kept. Returns whether the
    C library took the settings.
    """
    return _mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) and _mallopt(
        _M_TRIM_THRESHOLD, _TRIM_THRESHOLD
    )


def one_malloc_arena() -> bool:
    """Make every thread of this process allocate from one glibc arena (glibc only).

    A streamed image's band threads each got an arena of their own, each
    keeping the freed buffers of its bands: 20 to 45 MiB more at the peak of
    a 40000-wide image, for no time saved. Returns whether glibc took it.
    """
    return _mallopt(_M_ARENA_MAX, 1)


def _mallopt(param: int, value: int) -> bool:
    """Call glibc's ``mallopt``; False where there is none (musl, macOS, Windows)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(param, value))


@contextmanager
def worker_environment(threads: int) -> Iterator[None]:
    """Start worker processes with ``threads`` threads each and the stop signals ignored.

    Workers inherit the environment and signal dispositions of the moment
    they (or the forkserver they fork from) start: BLAS and convcli's own
    tile threads are capped so that jobs x threads fits the CPUs, and
    SIGINT, SIGTERM and SIGHUP are left to this process, which stops the run
    in order (the forkserver and its resource tracker start with them
    blocked, so a signal to the whole process group stops nothing half-way,
    and one that comes while they start is not lost).
    """
    names = (
        THREADS_ENV,
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
    )
    import multiprocessing.forkserver
    import multiprocessing.resource_tracker

    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, str(threads)))
    try:
        with held_signals():
            if "forkserver" in multiprocessing.get_all_start_methods():
                # The tracker first, on its own: starting it unblocks SIGINT and
                # SIGTERM here (a pending one is then held), and the forkserver
                # must start with all three blocked.
                with _stop_signals_blocked():
                    multiprocessing.resource_tracker.ensure_running()
                with _stop_signals_blocked():
                    pool_context()
                    multiprocessing.forkserver.ensure_running()
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pool_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a clean server process that has convcli loaded.

    Not plain fork: the parent may run threads (the progress bar's), and a
    fork copies their locks mid-use. Where there is no forkserver, spawn.
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def cpus() -> int:
    """Return the number of CPUs this process may run on (``--jobs``'s default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def start_server(jobs: int) -> None:
    """Start the worker server now, with ``jobs``'s thread caps, if jobs > 1.

    Returns at once; the server imports `PRELOAD` in its own process while
    the caller goes on. `convcli.batch.run` later forks its workers from it.
    """
    import multiprocessing

    if jobs > 1 and "forkserver" in multiprocessing.get_all_start_methods():
        with worker_environment(threads_per_worker(jobs)):
            pass


def threads_per_worker(jobs: int) -> int:
    """Return the threads each of ``jobs`` workers may use: the CPUs shared out."""
    return max(1, cpus() // jobs)


# ---------------------------------------------------------------------------
# The pool


@dataclass
class Outcome:
    """How one task of a `Pool` ended: its result, or why there is none.

    ``started`` is False for a task the pool gave back unstarted: its worker
    died before reaching it, or `Pool.stop_starting` came first.
    """

    key: Any
    ok: bool
    value: Any  # the task's result if ok; else the reason, one line
    died: bool = False  # its worker died while it ran: what it wrote may be half done
    started: bool = True


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    keys: deque[Any] = field(default_factory=deque)  # its tasks: running, then queued


DEPTH = 2
"""Tasks a worker holds: the one it runs and the next, so it never waits for this process."""

_SKIPPED = "skipped"  # a worker's reply to a task it did not start


class Pool:
    """Up to ``size`` worker processes that run ``function`` on tasks, one at a time each.

    Unlike `concurrent.futures.ProcessPoolExecutor`, whose pool breaks as a
    whole when one worker dies, a dead worker here fails only the task it
    was running (`Outcome.died`); the task it held next comes back unstarted,
    and the next task starts a new worker. Each worker holds `DEPTH` tasks,
    so that it never waits for this process between two; `stop_starting`
    makes them start no more. Workers ignore SIGINT, SIGTERM and SIGHUP (the
    main process decides), and end when the main process is gone, whatever
    ended it: each watches a pipe that only the main process holds open.

    Drive it from the main thread: `submit` while `has_room`, `wait`, then
    take what ended from `finished`; `close` at the end, always.
    """

    def __init__(
        self,
        function: Callable[[Any], Any],
        size: int,
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self.size = max(1, size)
        self.finished: deque[Outcome] = deque()
        self._function = function
        self._initializer = initializer
        self._initargs = initargs
        self._context = pool_context()
        # Workers read these; only this process writes: EOF means it is gone.
        self._lifeline, self._lifeline_end = self._context.Pipe(duplex=False)
        self._stop, self._stop_end = self._context.Pipe(duplex=False)
        self._stopping = False
        self._workers: list[_Worker] = []

    def workers(self) -> int:
        """Return how many worker processes there are now."""
        return len(self._workers)

    def busy(self) -> int:
        """Return how many tasks the workers hold (running or next)."""
        return sum(len(w.keys) for w in self._workers)

    def has_room(self) -> bool:
        """Return whether `submit` can give out a task now."""
        return not self._stopping and self.busy() < self.size * DEPTH

    def submit(self, key: Any, task: Any) -> None:
        """Give ``task`` to the least busy worker, starting one while there are fewer than ``size``.

        Call it inside `held_signals`, with `has_room`. ``key`` comes back in
        the task's `Outcome`.

        Raises
        ------
        OSError
            No worker process could be started (a process limit, no memory).
        """
        for _attempt in range(3):
            idle = [w for w in self._workers if not w.keys]
            if idle or len(self._workers) >= self.size:
                worker = min(idle or self._workers, key=lambda w: len(w.keys))
            else:
                worker = self._start()
            if not worker.keys and not worker.process.is_alive():
                self._discard(worker)  # it died while idle: another one takes the task
                continue
            try:
                worker.conn.send(task)
            except OSError:
                self._bury(worker)
                continue
            worker.keys.append(key)
            return
        msg = "worker processes die as soon as they start"
        raise OSError(msg)

    def stop_starting(self) -> None:
        """Have the workers start no more tasks; those they hold come back unstarted."""
        if not self._stopping:
            self._stopping = True
            self._stop_end.send_bytes(b"stop")

    def wait(self, timeout: float | None = None) -> None:
        """Block until a task ends (or ``timeout``), and add what ended to `finished`.

        The wait itself may be interrupted (Ctrl-C); taking results out of
        the pipes is not.
        """
        from multiprocessing.connection import wait

        busy = [w for w in self._workers if w.keys]
        if not busy:
            return
        watched: list[Any] = [w.conn for w in busy]
        watched += [w.process.sentinel for w in busy]
        ready = wait(watched, timeout)
        if not ready:
            return
        with held_signals():
            for worker in busy:
                self._harvest(worker, ready)

    def _harvest(self, worker: _Worker, ready: list[Any]) -> None:
        """Take the worker's results, or its death, into `finished`."""
        try:
            while worker.keys and worker.conn.poll():
                status, value = worker.conn.recv()
                key = worker.keys.popleft()
                started = status != _SKIPPED
                self.finished.append(
                    Outcome(key, status == "ok", value, False, started)
                )
        except (EOFError, OSError):
            pass  # it died: below
        else:
            if worker.process.sentinel not in ready:
                return
        self._bury(worker)

    def _bury(self, worker: _Worker) -> None:
        """Record a dead worker's tasks: the first ran and failed, the rest never started."""
        worker.process.join(timeout=5)
        reason = _death(worker.process.exitcode)
        for i, key in enumerate(worker.keys):
            self.finished.append(
                Outcome(key, False, reason, died=i == 0, started=i == 0)
            )
        worker.keys.clear()
        self._discard(worker)

    def kill(self) -> list[Any]:
        """Kill every worker now; return the keys of the tasks they held.

        What they were writing may be left half done: the caller cleans up.
        """
        held = [key for w in self._workers for key in w.keys]
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.kill()
        for worker in list(self._workers):
            self._discard(worker)
        return held

    def close(self) -> list[Any]:
        """End every worker: idle ones in order, busy ones killed; return their tasks' keys.

        Safe to call twice. After it, no worker of this pool is alive.
        """
        for worker in self._workers:
            if not worker.keys:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        busy = [w for w in self._workers if w.keys]
        held = [key for w in busy for key in w.keys]
        for worker in busy:
            if worker.process.is_alive():
                worker.process.kill()
        deadline = time.monotonic() + 5
        for worker in list(self._workers):
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            self._discard(worker)
        for conn in (self._lifeline, self._lifeline_end, self._stop, self._stop_end):
            conn.close()
        return held

    def _start(self) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(  # type: ignore[attr-defined]
            target=_serve,
            args=(
                child_end,
                self._lifeline,
                self._stop,
                self._function,
                self._initializer,
                self._initargs,
            ),
            name="convcli-worker",
        )
        try:
            process.start()
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        worker = _Worker(process, parent_end)
        self._workers.append(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.join(timeout=5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=5)
        worker.conn.close()
        try:
            worker.process.close()
        except ValueError:  # still running: the kernel has not reaped it yet
            pass
        if worker in self._workers:
            self._workers.remove(worker)


def _death(exitcode: int | None) -> str:
    """Say how a worker process ended, from its exit code."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"its worker process was killed by {name}"
    return f"its worker process ended unexpectedly (exit code {exitcode})"


# ---------------------------------------------------------------------------
# Inside a worker


_orphaned = threading.Event()  # the main process is gone: stop, clean up, exit


def _serve(
    conn: Connection,
    lifeline: Connection,
    stop: Connection,
    function: Callable[[Any], Any],
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
) -> None:
    """Take a task, send ``(status, result or reason)`` back; until told to end (a worker's life)."""
    for signum in STOP_SIGNALS:  # the main process decides
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term_in_worker)
    if hasattr(signal, "pthread_sigmask"):  # blocked since the forkserver started
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    threading.Thread(target=_watch, args=(lifeline,), daemon=True).start()
    try:
        if initializer is not None:
            initializer(*initargs)
        while True:
            try:
                task = conn.recv()
            except (EOFError, OSError):
                return  # the main process is gone
            if task is None:
                return
            if stop.poll():  # readable: the main process stops starting tasks
                reply: tuple[str, Any] = (_SKIPPED, None)
            else:
                try:
                    reply = ("ok", function(task))
                except Exception as err:  # the task's own failure, as one line
                    reply = ("failed", f"{type(err).__name__}: {err}".rstrip(": "))
            try:
                conn.send(reply)
            except (OSError, ValueError):  # the main process is gone
                return
            except Exception as err:  # a result that does not pickle
                conn.send(("failed", f"{type(err).__name__}: {err}"))
    except KeyboardInterrupt:  # `Stopped` by `_watch`: its temporary files are gone
        return


def _on_term_in_worker(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM in a worker: stop only once the main process is gone (it decides)."""
    if _orphaned.is_set():
        raise Stopped(signum)


def _watch(lifeline: Connection) -> None:
    """Wait for the main process to end; then stop this worker (a thread of it)."""
    try:
        lifeline.recv_bytes()  # nothing is ever sent: this returns at EOF
    except (EOFError, OSError):
        pass
    _orphaned.set()
    os.kill(os.getpid(), signal.SIGTERM)  # raises `Stopped` in the main thread
    time.sleep(ORPHAN_GRACE)
    os._exit(1)
