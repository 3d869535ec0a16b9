"""Where the cells run: in this process, in N local processes, or on a Dask cluster.

``backend.run(fn, items)`` calls ``fn(item)`` on the workers and yields ``(item, result, error)``
in the order they finish (``error`` a one-line string when the call raised or its worker was
lost), with a ``running`` count for the progress bar; the parent process writes each cell's rows
as they arrive. A task carries the corpus path, never the corpus: each worker opens it itself.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterator

from routereval.errors import ParameterError
from routereval.validate import check_int, option


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    """BLAS/OpenMP/torch threads of each of ``workers`` processes, so that together they fill the cores once."""
    return max(1, cpu_count() // max(1, workers))


def parse_cluster(spec: str) -> tuple[str, Any]:
    """``local:N`` -> ("local", N); ``tcp://HOST:PORT`` -> ("tcp", spec); else a ParameterError."""
    if spec.startswith("local:"):
        n = spec[len("local:"):]
        if n.isdigit() and int(n) >= 1:
            return "local", int(n)
    elif spec.startswith("tcp://") and spec[len("tcp://"):].rpartition(":")[2].isdigit():
        return "tcp", spec
    raise ParameterError(f"--cluster {spec!r}: expected local:N (a Dask LocalCluster of N workers) "
                         "or tcp://HOST:PORT (a running dask scheduler)")


class Backend:
    """Base: ``run(fn, items)`` yields ``(item, result, error)`` as calls finish; ``running`` counts calls in flight."""

    running: int = 0
    description = "this process"
    threads: int | None = None  # BLAS/OpenMP/torch threads each worker process should use

    def run(self, fn: Callable, items: list) -> Iterator[tuple[Any, Any, str | None]]:  # pragma: no cover
        raise NotImplementedError

    def start(self) -> None:
        """Reach the workers (a cluster); before anything is written. Idempotent."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialBackend(Backend):
    """The cells one after the other in this process."""

    def run(self, fn, items):
        for item in items:
            self.running = 1
            try:
                result, error = fn(item), None
            except Exception as e:  # noqa: BLE001 - reported per item, like a lost worker
                result, error = None, f"{type(e).__name__}: {e}"
            self.running = 0
            yield item, result, error


def _watch_parent(parent: int) -> None:
    """Exit this worker when its parent dies (a SIGKILLed sweep must not leave workers computing)."""
    import time

    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def _init_worker(threads: int | None, parent: int) -> None:
    from routereval.experiments.runner import limit_threads

    limit_threads(threads)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


class ProcessBackend(Backend):
    """``workers`` local processes (spawned: no inherited locks or threads), BLAS threads divided."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"{workers} local processes"
        self.threads = threads_per_worker(workers)
        self._pool = None

    def run(self, fn, items):
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_init_worker, initargs=(self.threads, os.getpid()))
        pending = list(reversed(items))
        futures: dict[Any, Any] = {}

        def refill() -> None:
            # one call per worker at a time, so that "running" is honest and a kill loses little
            while pending and len(futures) < self.workers:
                item = pending.pop()
                futures[self._pool.submit(fn, item)] = item
            self.running = len(futures)

        while pending or futures:
            refill()
            done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
            finished = [(futures.pop(fut), fut) for fut in done]
            # the freed workers start their next call before the caller writes these results
            # (no worker idles while the parent writes Parquet; the bar counts them as running)
            refill()
            for item, fut in finished:
                yield (item, *_outcome(fut))
        self.running = 0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _outcome(fut) -> tuple[Any, str | None]:
    """(result, None) of a finished future, or (None, error): a crashed worker fails the call, not the sweep."""
    try:
        return fut.result(), None
    except Exception as e:  # noqa: BLE001 - BrokenProcessPool, KilledWorker, ...
        return None, f"worker lost or call failed: {type(e).__name__}: {e}"


class DaskBackend(Backend):
    """A Dask ``LocalCluster`` of N worker processes (``local:N``) or a running scheduler (``tcp://...``)."""

    def __init__(self, spec: str) -> None:
        self.kind, self.arg = parse_cluster(spec)
        self._client = self._cluster = None
        self.description = f"Dask {spec}"
        # a LocalCluster's workers share this machine's cores; a remote cluster's are sized by its admin
        self.threads = threads_per_worker(self.arg) if self.kind == "local" else None

    def _connect(self):
        from distributed import Client, LocalCluster

        if self.kind == "local":
            self._cluster = LocalCluster(n_workers=self.arg, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=40)
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(self.arg, timeout=10)
            except OSError as e:
                raise ParameterError(f"--cluster {self.arg}: cannot reach the dask scheduler ({e})") from None
        return self._client

    def start(self) -> None:
        if self._client is None:
            self._connect()

    def run(self, fn, items):
        import uuid

        from distributed import as_completed

        client = self._client or self._connect()
        futures = {}
        for item in items:
            # pure=False and a fresh key: every submission runs (a retried cell must not come from a cache)
            futures[client.submit(fn, item, pure=False, key=f"routereval-{uuid.uuid4().hex}")] = item
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        self.running = min(len(futures), n_workers)
        for fut in as_completed(list(futures)):
            item = futures.pop(fut)
            self.running = min(len(futures), n_workers)  # the others wait in the scheduler's queue
            yield (item, *_outcome(fut))
            fut.release()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_backend(*, workers: int = 1, cluster: str | None = None) -> Backend:
    """The backend of ``--workers N`` / ``--cluster SPEC`` (validated here, before any work)."""
    workers = check_int(workers, option("workers"), low=1)
    if cluster is not None:
        if workers != 1:
            raise ParameterError("give --workers or --cluster, not both")
        parse_cluster(cluster)
        return DaskBackend(cluster)
    return SerialBackend() if workers == 1 else ProcessBackend(workers)
