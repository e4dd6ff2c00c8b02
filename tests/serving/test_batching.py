"""The service's micro-batcher: which calls share a model call."""
from __future__ import annotations

import asyncio
import time

from interestevo.serving.http.batching import MicroBatcher

WINDOW_S = 0.3
COMPUTE_S = 0.2


def run_batcher(arrivals: list[float]) -> tuple[list[list[int]], list[float]]:
    """Submit item n at ``arrivals[n]`` seconds; returns the batches run and when each call was answered."""
    batches: list[list[int]] = []

    def run_batch(items):
        batches.append(list(items))
        time.sleep(COMPUTE_S)
        return [item * 10 for item in items]

    async def main():
        loop = asyncio.get_running_loop()
        batcher = MicroBatcher(run_batch, lambda fn, items: loop.run_in_executor(None, fn, items), WINDOW_S, 64)
        start = loop.time()

        async def call(n):
            await asyncio.sleep(arrivals[n])
            assert await batcher.submit(n) == n * 10
            return loop.time() - start

        return await asyncio.gather(*[call(n) for n in range(len(arrivals))])

    return batches, asyncio.run(main())


def test_simultaneous_calls_share_one_model_call():
    batches, answered = run_batcher([0.0] * 8)
    assert batches == [list(range(8))]
    assert min(answered) >= WINDOW_S + COMPUTE_S - 0.05


def test_calls_that_come_while_a_batch_computes_form_the_next_one_in_order():
    # call 0's batch runs from 0.3 to 0.5 s; calls 1-3 arrive while it computes
    batches, answered = run_batcher([0.0, 0.35, 0.4, 0.45])
    assert batches == [[0], [1, 2, 3]]
    assert answered[0] < min(answered[1:])
