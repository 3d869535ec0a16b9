"""Micro-batching: concurrent single-prompt requests share one encoder pass.

Requests put ``(prompt, cost_weight, future)`` on a queue; one worker task takes the first
waiting item, then whatever else is queued, and waits at most ``max_wait_s`` for more,
up to ``max_batch`` prompts. The batch runs in a worker thread (the event loop keeps
accepting requests meanwhile). Up to ``concurrency`` batches run at once (one per encoder
thread): when one is running, the next gathers and starts on the free thread instead of
waiting, so a small batch never holds up the cores. Under load a batch gathers while the
others run; an idle server adds no more than ``max_wait_s`` to a lone request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Sequence

import numpy as np

# fn(prompts, cost_weights) -> (scores (n, m), choice (n,))
BatchFn = Callable[[Sequence[str], np.ndarray], tuple[np.ndarray, np.ndarray]]


class MicroBatcher:
    """Gathers single prompts into batches for ``fn``.

    Parameters
    ----------
    fn
        Routes a batch: ``fn(prompts, cost_weights) -> (scores (n, m), choice (n,))``.
    max_batch
        Most prompts per batch.
    max_wait_s
        Longest time the first prompt of a batch waits for others.
    concurrency
        Most batches running at once (the encoder's threads).
    on_batch
        Called with the size and seconds of each batch run (metrics).
    """

    def __init__(self, fn: BatchFn, *, max_batch: int = 64, max_wait_s: float = 0.002, concurrency: int = 1,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.concurrency = concurrency
        self.on_batch = on_batch
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._task = None

    async def submit(self, prompt: str, cost_weight: float) -> tuple[np.ndarray, int]:
        """Route one prompt; returns its (m,) scores and chosen model index."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        fut = asyncio.get_running_loop().create_future()
        await self._queue.put((prompt, cost_weight, fut))
        return await fut

    async def run_batch(self, prompts: Sequence[str], cost_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Route a batch given by one request, off the event loop."""
        return await asyncio.to_thread(self._timed, list(prompts), cost_weights)

    def _timed(self, prompts: list[str], cost_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t0 = time.perf_counter()
        out = self.fn(prompts, cost_weights)
        if self.on_batch is not None:
            self.on_batch(len(prompts), time.perf_counter() - t0)
        return out

    async def _gather(self) -> list[tuple[str, float, asyncio.Future]]:
        q = self._queue
        batch = [await q.get()]
        # an idle encoder starts at once: waiting for company only pays while other batches run
        deadline = time.perf_counter() + (self.max_wait_s if self._running else 0.0)
        while len(batch) < self.max_batch:
            try:
                batch.append(q.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(q.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        free = asyncio.Semaphore(self.concurrency)
        while True:
            await free.acquire()  # gather only when a thread can run the batch: it takes all that queued meanwhile
            try:
                batch = await self._gather()
            except BaseException:
                free.release()
                raise
            task = asyncio.get_running_loop().create_task(self._route(batch, free))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _route(self, batch: list[tuple[str, float, asyncio.Future]], free: asyncio.Semaphore) -> None:
        try:
            live = [item for item in batch if not item[2].done()]  # a cancelled request needs no answer
            if not live:
                return
            prompts = [p for p, _, _ in live]
            lam = np.array([c for _, c, _ in live], dtype=np.float64)
            try:
                scores, choice = await asyncio.to_thread(self._timed, prompts, lam)
            except Exception as e:  # every waiter gets the error, the worker keeps serving
                for _, _, fut in live:
                    if not fut.done():
                        fut.set_exception(e)
                return
            for i, (_, _, fut) in enumerate(live):
                if not fut.done():
                    fut.set_result((scores[i], int(choice[i])))
        finally:
            free.release()
