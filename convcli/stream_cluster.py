"""``convcli apply --scheduler``: a streamed image's bands as tasks on a Dask cluster.

`DaskBands` is a `convcli.streaming.BandRunner`: each band of output rows is
a task, ``compute_band(job, first, stop)`` (or rescale's ``band_extremes``),
that a worker runs on its own: it opens the input TIFF at the same path (a
file system the workers share), reads the rows the band reaches, its halo
included, and returns the band's output pixels. Bands go out in a bounded
window and come back in order, to the one process that writes the output
file (atomically: a temporary file renamed when whole). A band whose worker
dies is computed again on another: the output is the same as on one
machine. Ctrl-C (SIGTERM, SIGHUP) cancels the bands outstanding.
``distributed`` is imported only here, only when asked for.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from convcli.cluster import CONNECT_TIMEOUT, RETRIES
from convcli.errors import ConvcliError
from convcli.streaming import BandJob

T = TypeVar("T")

BANDS_PER_WORKER = 2
"""Bands in flight per worker thread: enough to keep it fed, few in memory."""


class DaskBands:
    """Run bands on the Dask scheduler at ``scheduler`` (``"local"``: a LocalCluster here).

    The cluster is reached at the first call and kept for the run's later
    passes (rescale's range, a stacked bank's outputs); `close` lets it go.
    """

    def __init__(self, scheduler: str, *, timeout: float = CONNECT_TIMEOUT) -> None:
        self.scheduler = scheduler
        self.timeout = timeout
        self._client: Any = None
        self._cluster: Any = None

    def _connect(self) -> Any:
        """Return the client, connecting (or starting the local cluster) the first time."""
        if self._client is not None:
            return self._client
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            msg = "--scheduler needs Dask's distributed: pip install 'convcli[dask]'"
            raise ConvcliError(msg) from None
        for name in ("distributed", "tornado", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            if self.scheduler == "local":
                self._cluster = LocalCluster(
                    n_workers=min(os.cpu_count() or 1, 8),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,
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
        client = self._connect()
        threads = sum(
            int(w.get("nthreads", 1) or 1)
            for w in client.scheduler_info().get("workers", {}).values()
        )
        window = BANDS_PER_WORKER * max(threads, 1)
        shared = client.scatter(job, broadcast=True, hash=False)
        queue = iter(spans)
        running: deque[Any] = deque()
        try:
            for first, stop in queue:
                running.append(
                    client.submit(fn, shared, first, stop, retries=RETRIES, pure=False)
                )
                if len(running) >= window:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:  # a stop, an error, or a reader that stopped reading
            if running:
                client.cancel(list(running))
            client.cancel([shared])

    def close(self) -> None:
        """Disconnect from the scheduler; stop the local cluster if this run started it."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def dask_band_runner(scheduler: str, *, timeout: float = CONNECT_TIMEOUT) -> DaskBands:
    """Return the `DaskBands` runner for ``scheduler`` (it connects at its first band)."""
    return DaskBands(scheduler, timeout=timeout)
