"""What the routes share: the tracker, the thread that runs its writes, the batcher, the metrics.

Concurrent recommendation requests are micro-batched into one model call, computed on the event
loop itself: they only read, and a second thread would hand the interpreter lock to and fro with
the loop at every tensor operation (measured at 500 requests/s: p99 12.5-17.2 ms inline against
17.0-46.0 ms on a worker thread). Everything that writes (events, forget, reload) and the longer
reads (interest, explanations) run in one worker thread, so the store sees one write at a time, in
arrival order, and each user's events stay in order.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..tracker import InterestTracker, RecommendRequest
from .batching import MicroBatcher, run_here
from .metrics import Metrics


@dataclass
class ServiceSettings:
    api_keys: tuple[str, ...] = ()  # empty: no authentication
    api_key_file: str | None = None  # where api_keys came from: a reload reads it again (key rotation)
    public_reads: bool = False  # with api_keys: reads need no key
    max_body_bytes: int = 4 * 1024 * 1024
    batch_window_s: float = 0.002
    max_batch: int = 256
    recompute_chunk: int = 512  # users per transaction when a reload recomputes states
    processes: int = 1  # serve --workers: with more, a reload restarts every process (SIGHUP to the parent)


class Service:
    """The tracker, its worker thread, the recommendation batcher and the metrics."""

    def __init__(self, tracker: InterestTracker, settings: ServiceSettings):
        self.tracker, self.settings = tracker, settings
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="interestevo-engine")
        self.metrics = Metrics(tracker.store)
        self.batcher = MicroBatcher(self._recommend_batch, run_here, settings.batch_window_s, settings.max_batch)

    async def run(self, fn, *args):
        """``fn(*args)`` on the worker thread, after everything submitted before it."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def _recommend_batch(self, requests: list[RecommendRequest]) -> list:
        self.metrics.batch_size.observe(len(requests))
        return self.tracker.answer(requests)

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        self.tracker.store.close()
