"""``convcli apply --scheduler``: a streamed image's bands as tasks on a Dask cluster.

`DaskBands` is a `convcli.streaming.BandRunner`: each band of output rows is
a task, ``compute_band(job, first, stop)`` (or rescale's ``band_extremes``),
that a worker runs on its own: it opens the input TIFF at the same absolute
path (a file system the workers share), reads the rows the band reaches, its
halo included, and returns the band's output pixels. Bands go out in a
bounded window and come back in order, to the one process that writes the
output file (atomically: a temporary file renamed when whole). A band whose
worker dies is computed again on another: the output is the same as on one
machine whose BLAS runs one thread per band, as Dask's workers do (OpenBLAS
rounds float32 sums differently with more threads: a level, on a few pixels
in a million). Ctrl-C (SIGTERM, SIGHUP) cancels the bands outstanding.
``distributed`` is imported only here, only when asked for.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import weakref
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any, TypeVar

from convcli.cluster import (
    CONNECT_TIMEOUT,
    PRELOAD,
    RETRIES,
    quiet_logs,
    start_resource_tracker,
)
from convcli.errors import ConvcliError, shown
from convcli.streaming import BandJob

T = TypeVar("T")

BANDS_PER_WORKER = 2
"""Bands in flight per worker thread: enough to keep it fed, few in memory."""


class DaskBands:
    """Run bands on the Dask scheduler at ``scheduler`` (``"local"``: a LocalCluster here).

    The cluster is reached at the first call (`dask_band_runner` reaches an
    address at once) and kept for the run's later passes (rescale's range, a
    stacked bank's outputs, the next image); `close` lets it go.
    """

    def __init__(self, scheduler: str, *, timeout: float = CONNECT_TIMEOUT) -> None:
        self.scheduler = scheduler
        self.timeout = timeout
        self._client: Any = None
        self._cluster: Any = None
        self._live: weakref.WeakSet[Generator[Any, None, None]] = weakref.WeakSet()

    def _connect(self) -> Any:
        """Return the client, connecting (or starting the local cluster) the first time."""
        if self._client is not None:
            return self._client
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            msg = "--scheduler needs Dask's distributed: pip install 'convcli[dask]'"
            raise ConvcliError(msg) from None
        quiet_logs()
        try:
            if self.scheduler == "local":
                start_resource_tracker()
                self._cluster = LocalCluster(
                    n_workers=min(os.cpu_count() or 1, 8),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,
                    preload=[PRELOAD],  # each worker runs dask_setup as it starts
                )
                self._client = Client(self._cluster, timeout=self.timeout)
            else:
                self._client = Client(self.scheduler, timeout=self.timeout)
        except (OSError, TimeoutError) as err:
            self.close()
            msg = f"cannot reach the Dask scheduler at {self.scheduler} within {self.timeout:g} s ({err})"
            raise ConvcliError(msg) from None
        return self._client

    def __call__(
        self,
        fn: Callable[[BandJob, int, int], T],
        job: BandJob,
        spans: Sequence[tuple[int, int]],
    ) -> Iterator[T]:
        """Yield ``fn(job, first, stop)`` of each span, in order, computed on the cluster."""
        bands = self._bands(fn, job, spans)
        self._live.add(bands)
        return bands

    def _bands(
        self,
        fn: Callable[[BandJob, int, int], T],
        job: BandJob,
        spans: Sequence[tuple[int, int]],
    ) -> Generator[T, None, None]:
        """Yield the bands `__call__` asks for (`close` closes this if it is left open)."""
        client = self._connect()
        # every worker's threads: scheduler_info() lists 5 workers at most in
        # distributed 2025.7 to 2026.6 (dask/distributed#9045, #9308)
        threads = sum(int(n or 1) for n in client.nthreads().values())
        window = BANDS_PER_WORKER * max(threads, 1)
        given = job.path
        # A worker started in another folder reads the input by its absolute path.
        job = dataclasses.replace(job, path=job.path.absolute())
        shared: list[Any] = [client.scatter(job, broadcast=True, hash=False)]
        queue = iter(spans)
        running: deque[Any] = deque()
        try:
            for first, stop in queue:
                running.append(
                    client.submit(
                        fn, shared[0], first, stop, retries=RETRIES, pure=False
                    )
                )
                if len(running) >= window:
                    yield _band(running.popleft(), given, self.scheduler)
            while running:
                band = _band(running.popleft(), given, self.scheduler)
                if not running:  # the last: nothing is left on the cluster after it,
                    client.cancel(shared)  # even if the reader never asks past it
                    shared.clear()
                yield band
        finally:  # a stop, an error, or a reader that stopped reading
            if running or shared:
                client.cancel([*running, *shared])

    def close(self) -> None:
        """Disconnect from the scheduler; stop the local cluster if this run started it.

        A reader that stopped reading left its bands' generator open: it is
        closed first, so that it cancels its bands while the client can.
        """
        client, cluster = self._client, self._cluster
        try:
            for bands in list(self._live):
                bands.close()
            self._client = None
            if client is not None:
                client.close()
        finally:  # a stop while disconnecting still stops the workers started here
            self._cluster = None
            if cluster is not None:
                cluster.close()


_LOST = "lost the connection to the Dask scheduler at {} mid-run"


def _band(future: Any, path: Path, scheduler: str) -> Any:
    """Return a band's result, or say in one line why the cluster could not give it.

    Dask's own errors name neither the file nor the scheduler: a worker on a
    machine that mounts the files elsewhere gets "No such file or directory";
    a scheduler gone mid-run cancels every band, in a message of two lines.
    """
    try:
        return future.result()
    except CancelledError as err:
        reason = str(getattr(err, "reason", "") or "cancelled")
        lost = reason == "scheduler-connection-lost"
        msg = f"the Dask scheduler at {scheduler} cancelled a band ({reason})"
        raise ConvcliError(_LOST.format(scheduler) if lost else msg) from None
    except OSError as err:
        if future.status != "error":  # not the task's: the scheduler went away
            raise ConvcliError(_LOST.format(scheduler)) from None
        msg = (
            f"{shown(path)}: a Dask worker cannot read it ({err.strerror or err}); "
            "the workers must see the input at the same path"
        )
        raise ConvcliError(msg) from None


def dask_band_runner(scheduler: str, *, timeout: float = CONNECT_TIMEOUT) -> DaskBands:
    """Return the `DaskBands` runner for ``scheduler``, connected to it if it is an address.

    A scheduler that cannot be reached is bad input, found before the plan:
    `ConvcliError` here (exit 2, nothing written), not a failed pair later.
    ``"local"`` starts its cluster at the first band: a plan that fails
    does not wait for it.

    Raises
    ------
    ConvcliError
        Dask is not installed, or the scheduler cannot be reached within ``timeout``.
    """
    runner = DaskBands(scheduler, timeout=timeout)
    if scheduler != "local":
        runner._connect()
    return runner
