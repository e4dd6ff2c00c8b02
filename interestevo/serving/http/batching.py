"""Micro-batching: concurrent recommendation requests answered by one model call."""
from __future__ import annotations

import asyncio
from typing import Callable


class MicroBatcher:
    """Collects concurrent calls for a few milliseconds and runs them as one ``run_batch(items) ->
    results`` through ``run(run_batch, items)`` (awaitable: on the loop, or in a thread); calls that
    come while a batch computes wait for the next one. A result that is an exception is raised to
    its caller alone; a batch that raises fails every caller of the batch."""

    def __init__(self, run_batch: Callable[[list], list], run, window_s: float, max_batch: int):
        self._run_batch, self._run = run_batch, run
        self._window_s, self._max_batch = window_s, max_batch
        self._pending: list[tuple[object, asyncio.Future]] = []
        self._running = False
        self.batches = 0

    async def submit(self, item):
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                if len(self._pending) < self._max_batch:
                    # Let concurrent requests join: the event loop parses them while this task waits.
                    await asyncio.sleep(self._window_s)
                batch, self._pending = self._pending[:self._max_batch], self._pending[self._max_batch:]
                try:
                    results = await self._run(self._run_batch, [item for item, _ in batch])
                except Exception as error:  # the whole batch failed: every caller hears why
                    results = [error] * len(batch)
                self.batches += 1
                for (_, future), result in zip(batch, results):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._running = False


async def run_here(fn, *args):
    """``run`` for a batcher whose batches compute on the event loop itself."""
    return fn(*args)
