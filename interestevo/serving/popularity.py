"""Cold start: the items most popular in the training log before a request time."""
from __future__ import annotations

import numpy as np


class PopularityTimeline:
    """Item counts of the events strictly before any time, exactly, in O(events / snapshots).

    Counts are kept at ``snapshots`` evenly spaced positions of the time-sorted log; a query adds
    the few events between the nearest snapshot and its time.
    """

    def __init__(self, items: np.ndarray, times: np.ndarray, num_items: int, snapshots: int = 256):
        order = np.argsort(times, kind="stable")
        self.items, self.times = np.asarray(items, np.int64)[order], np.asarray(times, np.int64)[order]
        self.num_items = num_items
        self.step = max(1, -(-len(self.items) // snapshots))
        marks = range(0, len(self.items) + 1, self.step)
        self._counts = np.zeros((len(marks), num_items + 1), np.int64)
        for row, end in enumerate(marks):
            if row:
                start = end - self.step
                self._counts[row] = self._counts[row - 1] + np.bincount(
                    self.items[start:end], minlength=num_items + 1)

    def counts_before(self, at: int) -> np.ndarray:
        """(num_items + 1,) occurrences of each item in events with time < ``at``."""
        end = int(np.searchsorted(self.times, at, side="left"))
        row = end // self.step
        return self._counts[row] + np.bincount(self.items[row * self.step:end], minlength=self.num_items + 1)

    def top(self, at: int, k: int, exclude: set[int] = frozenset()) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most frequent items before ``at`` (ties: lower index first) and their counts;
        items never seen before ``at`` are not recommended, so the list may be shorter."""
        counts = self.counts_before(at)
        counts[0] = 0
        if exclude:
            counts[list(exclude)] = 0
        order = np.argsort(-counts, kind="stable")[:k]
        order = order[counts[order] > 0]
        return order, counts[order]
