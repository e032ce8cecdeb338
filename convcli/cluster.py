"""`convcli batch --scheduler`: the items of a batch on a Dask cluster.

`dask_executor` returns the `convcli.batch.Executor` that `convcli.batch.run`
takes to run on a cluster instead of its local process pool; this module
uses `convcli.batch`, never the other way round. The work per item is
`convcli.batch.process_item`, as on the local process pool; Dask's
``distributed`` scheduler only places it. Items go out in bounded
windows (never millions of futures at once), results come back as they end,
a task whose worker dies is retried elsewhere (outputs are written atomically,
so a killed attempt leaves no partial file), and Ctrl-C (SIGTERM, SIGHUP)
records the items already finished and cancels what is outstanding. ``distributed`` is imported only here, only when asked for
(``pip install 'convcli[dask]'``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from convcli import workers
from convcli.batch import (
    Executor,
    Item,
    ItemResult,
    Plan,
    process_item,
    remove_temporaries,
)
from convcli.errors import ConvcliError
from convcli.workers import STOP_SIGNALS, THREADS_ENV

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a scheduler before giving up (``--scheduler-timeout``)."""

RETRIES = 2
"""Extra attempts of an item whose worker died."""

PRELOAD = "convcli.cluster"
"""The module a local cluster's workers preload: its `dask_setup` leaves the stop signals to the command."""

WINDOW_PER_WORKER = 4
"""Items in flight per worker: enough to keep workers fed, few to cancel."""


def dask_executor(scheduler: str, *, timeout: float = CONNECT_TIMEOUT) -> Executor:
    """Return an `Executor` that runs a batch's items with `run_on_dask`.

    ``scheduler`` is an address (``tcp://HOST:PORT``), or ``"local"`` for a
    LocalCluster of ``jobs`` workers; ``timeout`` is how long to wait for it.
    """

    def execute(
        items: Sequence[Item],
        plan: Plan,
        *,
        jobs: int,
        fail_fast: bool,
        done: dict[Path, ItemResult],
        report: Callable[[ItemResult], None],
    ) -> None:
        run_on_dask(
            items,
            plan,
            scheduler,
            jobs=jobs,
            fail_fast=fail_fast,
            done=done,
            report=report,
            timeout=timeout,
        )

    return execute


def run_on_dask(
    items: Sequence[Item],
    plan: Plan,
    scheduler: str,
    *,
    jobs: int,
    fail_fast: bool,
    done: dict[Path, ItemResult],
    report: Callable[[ItemResult], None],
    timeout: float = CONNECT_TIMEOUT,
) -> None:
    """Run the items on the Dask scheduler at ``scheduler`` (``"local"``: start one).

    ``"local"`` starts a `distributed.LocalCluster` of ``jobs`` one-thread
    worker processes on this machine. Each result is recorded in ``done``
    and passed to ``report`` as it arrives.

    Raises
    ------
    ConvcliError
        Dask is not installed, or the scheduler cannot be reached within
        ``timeout`` seconds.
    KeyboardInterrupt
        After cancelling the outstanding items.
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        msg = "--scheduler needs Dask's distributed: pip install 'convcli[dask]'"
        raise ConvcliError(msg) from None
    quiet_logs()
    cluster: Any = None
    client: Any
    try:
        if scheduler == "local":
            start_resource_tracker()
            cluster = LocalCluster(
                n_workers=jobs,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
                preload=[PRELOAD],  # each worker runs dask_setup as it starts
            )
            client = Client(cluster, timeout=timeout)
        else:
            client = Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as err:
        if cluster is not None:
            cluster.close()
        msg = f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s ({err})"
        raise ConvcliError(msg) from None
    running: dict[Any, Item] = {}
    cancelled = False  # cancelled tasks already running on a remote cluster go on
    try:
        # every worker: scheduler_info() lists 5 at most in distributed 2025.7
        # to 2026.6 (dask/distributed#9045, #9308)
        found: dict[str, int] = client.nthreads()
        window = WINDOW_PER_WORKER * max(1, len(found))
        per_host: dict[str, int] = {}
        for address, nthreads in found.items():
            host = str(address).split("://")[-1].rsplit(":", 1)[0]
            per_host[host] = per_host.get(host, 0) + int(nthreads or 1)
        client.run(_prepare_worker, per_host)
        shared_plan = client.scatter(plan, broadcast=True)
        queue = iter(items)
        finished = as_completed()

        def submit_more() -> None:
            for item in queue:
                future = client.submit(
                    process_item, item, shared_plan, retries=RETRIES, pure=False
                )
                running[future] = item
                finished.add(future)
                if len(running) >= window:
                    return

        submit_more()
        for future in finished:
            item = running.pop(future)
            try:
                result = future.result()
            except Exception as err:  # every attempt failed: the workers died
                reason = f"{type(err).__name__}: {err}".rstrip(": ")
                result = ItemResult(item.path, "failed", error=f"{item.path}: {reason}")
            done[item.path] = result
            report(result)
            if fail_fast and result.status == "failed":
                client.cancel(list(running))
                cancelled = bool(running)
                running.clear()
                break
            submit_more()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP
        _collect_finished(running, done, report)
        client.cancel(list(running))
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        # A .tmp left now is a killed worker's: every item has ended, or the
        # local cluster's workers are gone (a remote one may still be writing).
        if cluster is not None or not (running or cancelled):
            remove_temporaries(items, plan)


def _collect_finished(
    running: dict[Any, Item],
    done: dict[Path, ItemResult],
    report: Callable[[ItemResult], None],
) -> None:
    """Record the items whose task had finished when the run was stopped.

    Their outputs are on disk: the summary must count them. A result that
    cannot be fetched within a second is left out (its item counts as not
    started; its outputs, whole files, stay).
    """
    with workers.held_signals():
        for future, item in list(running.items()):
            if future.status != "finished":
                continue
            try:
                result = future.result(timeout=1)
            except Exception:  # the cluster is going away: leave it out
                continue
            running.pop(future)
            done[item.path] = result
            report(result)


def _prepare_worker(per_host: dict[str, int], dask_worker: Any = None) -> None:
    """Set a Dask worker up as the local pool's workers are (run on each by `Client.run`).

    ``per_host`` counts the task slots (threads of all workers) on each host:
    each slot gets an equal share of the host's CPUs (`CONVCLI_THREADS`;
    Dask's nanny already starts workers with one BLAS thread), and it keeps freed memory for the next image rather
    than page-faulting it in again (Dask's nanny sets a small
    ``MALLOC_TRIM_THRESHOLD_``): measured on 640x480 PNGs, each item took
    twice the CPU time of the local pool's without this.
    """
    host = str(getattr(dask_worker, "ip", "") or "")
    slots = per_host.get(host) or int(getattr(dask_worker, "nthreads", 1) or 1)
    # every task slot on this host gets an equal share of its CPUs
    os.environ[THREADS_ENV] = str(workers.threads_per_worker(slots))
    workers.reuse_freed_memory()


def quiet_logs() -> None:
    """Silence Dask's logging, the loggers its configuration gives a level of their own too.

    Dask sets ``distributed.client`` to WARNING: a worker killed mid-run
    would print "Couldn't gather 1 keys, rescheduling" on the command's
    stderr, though its task is computed again and the run ends well.
    """
    quiet = ("distributed", "tornado", "asyncio")
    for name in [*quiet, *logging.root.manager.loggerDict]:
        if name.split(".")[0] in quiet:
            logging.getLogger(name).setLevel(logging.CRITICAL)


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with the stop signals blocked.

    The local cluster's worker processes share it; it ignores SIGINT and
    SIGTERM but not SIGHUP, and one killed by a closed terminal's SIGHUP is
    started again, printing a traceback for each of the cluster's semaphores.
    Started here, on the main thread, it keeps SIGHUP blocked (a mask started
    from Dask's own thread would not).
    """
    from multiprocessing import resource_tracker

    if not hasattr(signal, "pthread_sigmask"):  # Windows: no SIGHUP, no tracker
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def dask_setup(worker: Any = None) -> None:
    """Leave the stop signals to the command (run by each local worker as it starts).

    Ctrl-C at a terminal (a closed terminal's SIGHUP too) reaches the whole
    process group: the command cancels its tasks and closes the cluster it
    started, whose nannies stop their workers; a worker that took the signal
    itself would die first, printing a traceback. Dask calls this for a
    ``preload`` module, on the worker process's main thread.
    """
    del worker
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
