"""Worker processes for `convcli.batch`: how they start, how many threads each gets.

Standard library only, so that the CLI can start the worker server before it
imports numpy and Pillow itself: the server's imports then run beside the
CLI's own, on the other core.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import multiprocessing.context

# ctypes and multiprocessing are imported where used: `convcli.core` imports
# this module for `cpus` and `THREADS_ENV`, and must stay quick to import.

THREADS_ENV = "CONVCLI_THREADS"
"""Environment variable that caps the threads of one `conv2d` call (``workers=None``)."""

PRELOAD = ["convcli.batch"]
"""What the worker server imports once, before it forks workers."""


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
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
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    took_mmap = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)
    took_trim = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    return bool(took_mmap and took_trim)


@contextmanager
def held_sigint() -> Iterator[None]:
    """Hold a Ctrl-C back until the block ends, then raise it.

    Starting a worker process must not be cut in half: a half-started worker
    breaks the pool. Outside the main thread (where signals cannot be
    handled) the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


@contextmanager
def worker_environment(threads: int) -> Iterator[None]:
    """Start worker processes with ``threads`` threads each and Ctrl-C ignored.

    Workers inherit the environment and signal dispositions of the moment
    they (or the forkserver they fork from) start: BLAS and convcli's own
    tile threads are capped so that jobs x threads fits the CPUs, and Ctrl-C
    is left to this process, which stops the run in order.
    """
    names = (
        THREADS_ENV,
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
    )
    import multiprocessing.forkserver

    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, str(threads)))
    try:
        with held_sigint():
            ignore = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignore else None
            try:
                if "forkserver" in multiprocessing.get_all_start_methods():
                    pool_context()
                    multiprocessing.forkserver.ensure_running()
            finally:
                if previous is not None:
                    signal.signal(signal.SIGINT, previous)
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
