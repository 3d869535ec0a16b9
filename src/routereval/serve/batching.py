"""Micro-batching: concurrent single-prompt requests share one encoder pass.

Requests put ``(prompt, cost_weight, future)`` on a queue; one worker task takes the first
waiting item, then whatever else is queued, and waits at most ``max_wait_s`` for more,
up to ``max_batch`` prompts. The batch runs in a worker thread (the event loop keeps
accepting requests meanwhile), and under load the next batch gathers while the current
one runs, so an idle server adds no more than ``max_wait_s`` to a lone request.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Sequence

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
    on_batch
        Called with the size and seconds of each batch run (metrics).
    """

    def __init__(self, fn: BatchFn, *, max_batch: int = 64, max_wait_s: float = 0.002,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
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
        deadline = time.perf_counter() + self.max_wait_s
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
        while True:
            batch = await self._gather()
            live = [item for item in batch if not item[2].done()]  # a cancelled request needs no answer
            if not live:
                continue
            prompts = [p for p, _, _ in live]
            lam = np.array([c for _, c, _ in live], dtype=np.float64)
            try:
                scores, choice = await asyncio.to_thread(self._timed, prompts, lam)
            except Exception as e:  # every waiter gets the error, the worker keeps serving
                for _, _, fut in live:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for i, (_, _, fut) in enumerate(live):
                if not fut.done():
                    fut.set_result((scores[i], int(choice[i])))
