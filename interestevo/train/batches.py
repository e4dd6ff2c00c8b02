"""Whole user histories as padded batches, and the windows a long history is read in.

A batch is a set of users, each a row holding all of their events up to their last target; the
model reads every row once and predicts every target position on the way (not one padded sample
per prefix). Rows are sorted longest first, so the users still active in a window are a prefix of
the batch and a carried state is sliced, never gathered.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class SequenceBatch:
    users: torch.Tensor  # (B,) user indices, longest history first
    events: torch.Tensor  # (B, T) global event indices, -1 past a row's length
    items: torch.Tensor  # (B, T) item indices, 0 past a row's length
    dt: torch.Tensor  # (B, T) time since the user's previous event
    times: torch.Tensor  # (B, T) int64 unix seconds of each event, 0 past a row's length
    lengths: torch.Tensor  # (B,) events per row, non-increasing
    targets: torch.Tensor  # (B, T) positions whose event is a target

    @property
    def num_targets(self) -> int:
        return int(self.targets.sum())

    def windows(self, size: int):
        """Yield (start, window) over the columns, each window holding only the rows still active."""
        lengths = self.lengths
        for start in range(0, self.items.shape[1], size):
            active = int((lengths > start).sum())
            cols = slice(start, start + size)
            yield start, SequenceBatch(
                users=self.users[:active], events=self.events[:active, cols], items=self.items[:active, cols],
                dt=self.dt[:active, cols], times=self.times[:active, cols], lengths=(lengths[:active] - start).clamp(max=size),
                targets=self.targets[:active, cols],
            )

    def to(self, device) -> "SequenceBatch":
        return SequenceBatch(*(getattr(self, f).to(device) for f in
                               ("users", "events", "items", "dt", "times", "lengths", "targets")))


def sequence_batches(inter, target_events: np.ndarray, batch_size: int,
                     rng: np.random.Generator | None = None) -> list[SequenceBatch]:
    """Batches covering every user with at least one of ``target_events``.

    Each row runs from the user's first event to their last target event; the events in between
    that are not targets are read as history only. With ``rng``, users of equal length are mixed
    and the batch order is shuffled (training); without, the order is deterministic (evaluation).
    """
    target_events = np.asarray(target_events, dtype=np.int64)
    if len(target_events) == 0:
        return []
    last = _last_targets(inter, target_events)
    users = np.nonzero(last >= 0)[0]
    offsets = np.asarray(inter.user_offsets)
    starts = offsets[users]
    lengths = last[users] + 1 - starts
    tiebreak = rng.random(len(users)) if rng is not None else np.arange(len(users))
    order = np.lexsort((tiebreak, -lengths))
    users, starts, lengths = users[order], starts[order], lengths[order]

    is_target = np.zeros(len(inter.item), dtype=bool)
    is_target[target_events] = True
    items, dt = np.asarray(inter.item), np.asarray(inter.dt, dtype=np.float32)
    timestamps = np.asarray(inter.timestamp, dtype=np.int64)
    batches = []
    for lo in range(0, len(users), batch_size):
        sl = slice(lo, lo + batch_size)
        width = int(lengths[sl].max())
        pos = np.arange(width)
        valid = pos[None, :] < lengths[sl, None]
        events = np.where(valid, starts[sl, None] + pos[None, :], -1)
        safe = np.where(valid, events, 0)
        batches.append(SequenceBatch(
            users=torch.from_numpy(users[sl].copy()),
            events=torch.from_numpy(events),
            items=torch.from_numpy(np.where(valid, items[safe], 0).astype(np.int64)),
            dt=torch.from_numpy(np.where(valid, dt[safe], 0.0).astype(np.float32)),
            times=torch.from_numpy(np.where(valid, timestamps[safe], 0)),
            lengths=torch.from_numpy(lengths[sl].copy()),
            targets=torch.from_numpy(valid & is_target[safe]),
        ))
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def training_item_counts(inter, target_events: np.ndarray) -> np.ndarray:
    """int64 (num_items + 1,): how often each item occurs in the events training reads, i.e. every
    user's events up to their last target in ``target_events``. Items at 0 are cold."""
    user = np.asarray(inter.user)
    read = np.arange(len(user)) <= _last_targets(inter, target_events)[user]
    return np.bincount(np.asarray(inter.item)[read], minlength=inter.num_items + 1).astype(np.int64)


def _last_targets(inter, target_events: np.ndarray) -> np.ndarray:
    """int64 (num_users + 1,): each user's last event in ``target_events``, -1 for users without one.
    A user's row, in training and evaluation alike, runs from their first event to it."""
    target_events = np.asarray(target_events, dtype=np.int64)
    last = np.full(inter.num_users + 1, -1, dtype=np.int64)
    np.maximum.at(last, np.asarray(inter.user)[target_events], target_events)
    return last
