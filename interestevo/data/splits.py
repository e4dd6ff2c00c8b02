"""Evaluation splits: a role per event (train, validation, test) and the targets of each role.

Both splits are rolling: a target is predicted from *all* of its user's earlier events, whatever
their role, so a test event late in a user's history sees the earlier test events too. A user's
first event has no history and is never a target. Because events are sorted by (user, time),
each user's roles form a prefix structure: train events, then validation, then test.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataFormatError
from .interactions import Interactions
from .timestamps import parse_time

TRAIN, VALID, TEST = 0, 1, 2
ROLE_NAMES = {TRAIN: "train", VALID: "valid", TEST: "test"}


@dataclass(frozen=True, eq=False, repr=False)
class Split:
    """Roles of the events of one ``Interactions`` (same order and length).

    ``history_start[j]`` is the first event of j's user, so target j's history is the events
    ``history_start[j]:j``. ``train_end[u]`` and ``valid_end[u]`` are the (absolute, exclusive)
    event indices where user u's train and validation runs end.

    >>> split = leave_one_out_split(data)                                    # doctest: +SKIP
    >>> for j in split.targets(TEST): history = data.item[split.history_start[j]:j]  # doctest: +SKIP
    """

    role: np.ndarray  # int8 (N,): TRAIN, VALID or TEST
    name: str
    history_start: np.ndarray  # int64 (N,)
    train_end: np.ndarray  # int64 (num_users + 1,)
    valid_end: np.ndarray  # int64 (num_users + 1,)

    @property
    def is_first(self) -> np.ndarray:
        """bool (N,): the event is its user's first (no history, never a target)."""
        return self.history_start == np.arange(len(self.role))

    def targets(self, role: int) -> np.ndarray:
        """int64 indices of the events of ``role`` that are prediction targets, in order."""
        if role not in ROLE_NAMES:
            raise DataFormatError(f"role={role!r} is not one of TRAIN=0, VALID=1, TEST=2")
        return np.flatnonzero((self.role == role) & ~self.is_first).astype(np.int64)

    def __str__(self) -> str:
        counts = ", ".join(f"{ROLE_NAMES[r]} {len(self.targets(r)):,}" for r in ROLE_NAMES)
        return f"{self.name} split: targets {counts}"

    __repr__ = __str__


def leave_one_out_split(interactions: Interactions) -> Split:
    """RecBole's leave-one-out: per user the last event is test, the one before validation, the
    rest train. Users with fewer than 3 events keep all of them in train (too short to hold out).
    """
    offsets = interactions.user_offsets
    counts = np.diff(offsets)[1:]  # events per user 1..num_users
    role = np.full(len(interactions), TRAIN, np.int8)
    ends = offsets[2:][counts >= 3]
    role[ends - 1] = TEST
    role[ends - 2] = VALID
    return _split(interactions, role, "leave_one_out")


def temporal_split(interactions: Interactions, t1=0.8, t2=0.9) -> Split:
    """Global temporal split: train ``t < t1``, validation ``t1 <= t < t2``, test ``t >= t2``.

    ``t1``/``t2`` are timestamps (seconds, datetime strings or ``pandas.Timestamp``) or, as
    floats strictly between 0 and 1, quantiles of all event times (default 0.8 and 0.9).
    """
    times = interactions.timestamp
    start, stop = _boundary(times, t1, "t1"), _boundary(times, t2, "t2")
    if start > stop:
        raise DataFormatError(f"t1 ({start}) must not be after t2 ({stop})")
    role = np.full(len(times), TRAIN, np.int8)
    role[times >= start] = VALID
    role[times >= stop] = TEST
    return _split(interactions, role, f"temporal(t1={start}, t2={stop})")


def _boundary(times: np.ndarray, value, name: str) -> int:
    """A split boundary in int64 seconds; fractions in (0, 1) are quantiles of ``times``, anything
    else a time read as every surface reads one (:func:`~.timestamps.parse_time`)."""
    if isinstance(value, (float, np.floating)) and 0.0 < value < 1.0:
        # method="lower" picks an actual event time, so no float rounding of int64 seconds.
        return int(np.quantile(times, value, method="lower"))
    try:
        return parse_time(value, name)
    except DataFormatError as err:
        raise DataFormatError(f"{err}; or a fraction in (0, 1): a quantile of the event times") from None


def _split(interactions: Interactions, role: np.ndarray, name: str) -> Split:
    offsets, user = interactions.user_offsets, interactions.user
    sizes = np.bincount(user[role == TRAIN], minlength=interactions.num_users + 1)
    valid = np.bincount(user[role == VALID], minlength=interactions.num_users + 1)
    train_end = offsets[:-1] + sizes
    return Split(role=role, name=name, history_start=offsets[user],
                 train_end=train_end.astype(np.int64), valid_end=(train_end + valid).astype(np.int64))
