"""InterestTracker: live per-user interest state, updated in O(1) per event, batched across users.

>>> tracker = InterestTracker(model, item_ids=data.item_ids, dt_unit="hours")    # doctest: +SKIP
>>> tracker.update(["alice", "bob"], [42, 7], [1_700_000_000, 1_700_000_060])    # doctest: +SKIP
>>> tracker.recommend(["alice"], at=[1_700_086_400], k=5).items                   # doctest: +SKIP
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint, plain_ids, save_checkpoint
from ..data.timestamps import unit_seconds
from ..models import ModelConfig, SequenceRecommender, interest_forecast, model_from_state
from ..models.repeat import SeenItems
from ..train.batches import sequence_batches

#: the unix seconds accepted as event and request times: years 1 to 9999, so int64 arithmetic on
#: them (gaps, sums) can never wrap, and every time has an ISO-8601 form
MIN_SECONDS, MAX_SECONDS = -62_135_596_800, 253_402_300_799


class UnknownUserError(LookupError):
    """A user id the tracker has never seen an event for."""

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0])


@dataclass
class Recommendations:
    items: np.ndarray  # (B, k) original item ids, best first
    scores: torch.Tensor  # (B, k) model scores


@dataclass
class UnknownItem:
    user: object
    item: object
    time: int


def _key(value) -> str:
    # Ids are matched by their text, so "42" from a command line finds the integer id 42.
    return str(value.item() if isinstance(value, np.generic) else value)


def check_user_ids(users, what: str = "users") -> np.ndarray:
    """Users as a 1-d object array; None or NaN ids are refused (they would all be one user "nan")."""
    users = np.asarray(users, dtype=object).reshape(-1)
    for position, user in enumerate(users):
        if user is None or (isinstance(user, (float, np.floating)) and not np.isfinite(user)):
            raise ValueError(f"{what}[{position}] is {user!r}; user ids must be strings or integers")
    return users


class InterestTracker:
    """Holds the recurrent state, last event time and seen items of every user.

    Args:
        model: a trained :class:`~interestevo.models.SequenceRecommender`.
        item_ids: original item id of each item index (position 0, the padding item, is ignored).
        dt_unit: the time unit the model was trained with ("hours" by default).
        model_name, model_config: what :meth:`save` stores to rebuild the model in :meth:`load`.
    """

    def __init__(self, model: SequenceRecommender, item_ids, *, dt_unit: str = "hours",
                 model_name: str | None = None, model_config: ModelConfig | None = None,
                 device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.item_ids = np.asarray(item_ids, dtype=object)
        self._item_index = {_key(item): index for index, item in enumerate(self.item_ids[1:], start=1)}
        self.dt_unit = dt_unit
        self._scale = unit_seconds(dt_unit)
        self.model_name, self.model_config = model_name, model_config
        self.user_ids: list = []
        self._user_slot: dict[str, int] = {}
        self.state = model.initial_state(0, self.device)
        self.last_time = np.zeros(0, dtype=np.int64)
        self._has_events = np.zeros(0, dtype=bool)
        self.seen: list[dict[int, int]] = []  # per user: item index -> unix seconds it last occurred

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    # ----------------------------------------------------------------------------- updates
    @torch.no_grad()
    def update(self, users, items, times) -> list[UnknownItem]:
        """Apply new events, in the given order per user, to every user's state.

        ``times`` are unix seconds. The whole call is checked before anything is applied: an
        event older than its user's last one raises ValueError. Events whose item the model does
        not know are skipped and returned (and warned about); new users are created.
        """
        users, items = check_user_ids(users), np.asarray(items, dtype=object).reshape(-1)
        times = as_unix_seconds(times, len(users))
        if not len(users) == len(items) == len(times):
            raise ValueError(f"users, items and times must have the same length, got "
                             f"{len(users)}, {len(items)} and {len(times)}")
        index = np.array([self._item_index.get(_key(item), 0) for item in items], dtype=np.int64)
        unknown = [UnknownItem(users[i], items[i], int(times[i])) for i in np.flatnonzero(index == 0)]
        if unknown:
            warnings.warn(f"skipped {len(unknown)} event(s) with item ids the model does not know, "
                          f"e.g. {unknown[0].item!r}", stacklevel=3)
        keep = index > 0
        users, index, times = users[keep], index[keep], times[keep]
        slots = self._check_order(users, times)
        self._add_users([u for u, s in zip(users, slots) if s < 0])
        slots = np.array([self._user_slot[_key(u)] for u in users], dtype=np.int64)
        for pick in event_rounds(slots):
            self._step(slots[pick], index[pick], times[pick])
        return unknown

    def _check_order(self, users: np.ndarray, times: np.ndarray) -> np.ndarray:
        slots = np.array([self._user_slot.get(_key(u), -1) for u in users], dtype=np.int64)
        last: dict[str, int] = {}
        for user, slot, t in zip(users, slots, times):
            key = _key(user)
            before = last.get(key, self.last_time[slot] if slot >= 0 else None)
            if before is not None and t < before:
                raise ValueError(f"event of user {user!r} at time {int(t)} is older than that user's last "
                                 f"event at {int(before)}; events must arrive in time order (nothing was applied)")
            last[key] = int(t)
        return slots

    def _add_users(self, users: list) -> None:
        new = []
        for user in users:
            key = _key(user)
            if key not in self._user_slot:
                self._user_slot[key] = len(self.user_ids)
                self.user_ids.append(user.item() if isinstance(user, np.generic) else user)
                self.seen.append({})
                new.append(user)
        if new:
            fresh = self.model.initial_state(len(new), self.device)
            self.state = tuple(torch.cat([s, f], dim=1) for s, f in zip(self.state, fresh))
            self.last_time = np.concatenate([self.last_time, np.full(len(new), -1, np.int64)])
            self._has_events = np.concatenate([self._has_events, np.zeros(len(new), bool)])

    def _step(self, slots: np.ndarray, items: np.ndarray, times: np.ndarray) -> None:
        dt = self._gaps(slots, times)
        slot_t = torch.from_numpy(slots).to(self.device)
        state = advance(self.model, tuple(s[:, slot_t] for s in self.state), items, dt)
        for full, new in zip(self.state, state):
            full[:, slot_t] = new.to(full.dtype)
        self.last_time[slots] = times
        self._has_events[slots] = True
        for slot, item, t in zip(slots.tolist(), items.tolist(), times.tolist()):
            self.seen[slot][item] = t

    def _gaps(self, slots: np.ndarray, times: np.ndarray) -> torch.Tensor:
        return time_gaps(times, self.last_time[slots], self._has_events[slots], self._scale).to(self.device)

    @torch.no_grad()
    def observe_history(self, inter, batch_size: int = 256, window: int = 64) -> None:
        """Load every user's whole history from an ``Interactions`` log at once (batched sequence
        pass, the same state as feeding the events one by one through :meth:`update`)."""
        if self.num_users:
            raise ValueError("observe_history needs an empty tracker")
        user_ids = np.asarray(inter.user_ids, dtype=object)
        self._add_users(list(user_ids[1:]))
        offsets = np.asarray(inter.user_offsets)
        has = offsets[2:] > offsets[1:-1]
        self.last_time[has] = np.asarray(inter.timestamp)[offsets[2:][has] - 1]
        self._has_events[:] = has
        items, stamps = np.asarray(inter.item), np.asarray(inter.timestamp)
        for user in np.flatnonzero(has):
            events = slice(offsets[user + 1], offsets[user + 2])
            self.seen[user].update(zip(items[events].tolist(), stamps[events].tolist()))  # later wins
        for batch in sequence_batches(inter, np.arange(len(inter.item)), batch_size):
            batch = batch.to(self.device)
            state = self.model.initial_state(len(batch.users), self.device)
            slots = batch.users - 1
            for start, win in batch.windows(window):
                state = tuple(s[:, :len(win.users)] for s in state)
                _, state = self.model(win.items, win.dt, win.lengths, state)
                done = win.lengths + start == batch.lengths[:len(win.users)]
                for full, new in zip(self.state, state):
                    full[:, slots[:len(win.users)][done]] = new[:, done].to(full.dtype)

    # ------------------------------------------------------------------------ predictions
    def _slots(self, users) -> np.ndarray:
        slots = []
        for user in np.asarray(users, dtype=object).reshape(-1):
            slot = self._user_slot.get(_key(user))
            if slot is None:
                raise UnknownUserError(f"unknown user id {user!r}: no events were seen for this user")
            slots.append(slot)
        return np.array(slots, dtype=np.int64)

    def last_event_time(self, users) -> np.ndarray:
        """(B,) unix seconds of each user's last applied event."""
        return self.last_time[self._slots(users)].copy()

    def _project(self, users, at) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        slots = self._slots(users)
        at = as_unix_seconds(time.time() if at is None else at, len(slots), "at")
        early = np.flatnonzero(at < self.last_time[slots])
        if len(early):
            i = early[0]
            raise ValueError(f"request time {int(at[i])} for user {self.user_ids[slots[i]]!r} is before that "
                             f"user's last event at {int(self.last_time[slots[i]])}")
        slot_t = torch.from_numpy(slots).to(self.device)
        state = tuple(s[:, slot_t] for s in self.state)
        return slots, self.model.project(state, self._gaps(slots, at)), torch.from_numpy(at).to(self.device)

    @torch.no_grad()
    def recommend(self, users, at=None, k: int = 10, exclude_seen: bool = False) -> Recommendations:
        """Top-``k`` items for each user at request times ``at`` (unix seconds; default: now).

        The interest is projected from each user's last event to ``at``, so the same history gives
        different recommendations an hour and a month later (for models that use time).
        """
        k = check_k(k)
        if len(check_user_ids(users)) == 0:
            return Recommendations(np.empty((0, k), dtype=object), torch.empty(0, k))
        slots, logits = self._scores(users, at)
        seen = [self.seen[s] for s in slots] if exclude_seen else None
        scores, index = top_items(logits, k, seen)
        return Recommendations(self.item_ids[index.cpu().numpy()], scores.cpu())

    @torch.no_grad()
    def forecast(self, users, at=None) -> torch.Tensor:
        """(B, C) predicted interest (distribution over categories) at times ``at``."""
        categories = self.model.items.categories
        if categories is None:
            raise ValueError("the model has no item categories, so it cannot forecast interest over them")
        if len(check_user_ids(users)) == 0:
            return torch.empty(0, categories.shape[1])
        return interest_forecast(self._scores(users, at)[1], categories).cpu()

    @torch.no_grad()
    def scores(self, users, at=None) -> torch.Tensor:
        """(B, num_items + 1) every item's score for each user at request times ``at`` (default: now)."""
        return self._scores(users, at)[1]

    def _scores(self, users, at) -> tuple[np.ndarray, torch.Tensor]:
        slots, queries, at = self._project(users, at)
        last_seen = last_seen_rows(self.model, [self.seen[s] for s in slots.tolist()], self.device)
        return slots, self.model.score(queries, at, last_seen)

    def forget(self, user) -> bool:
        """Erase a user's state, last time and seen items; True if the user was known."""
        slot = self._user_slot.pop(_key(check_user_ids([user])[0]), None)
        if slot is None:
            return False
        keep = torch.from_numpy(np.delete(np.arange(self.num_users), slot)).to(self.device)
        self.state = tuple(s[:, keep].clone() for s in self.state)
        self.last_time = np.delete(self.last_time, slot)
        self._has_events = np.delete(self._has_events, slot)
        del self.user_ids[slot], self.seen[slot]
        self._user_slot = {_key(u): i for i, u in enumerate(self.user_ids)}
        return True

    # --------------------------------------------------------------------------- storage
    def save(self, path: str | Path) -> Path:
        """Write the model and every user's state to ``path`` atomically."""
        if self.model_name is None or self.model_config is None:
            raise ValueError("save needs model_name and model_config to rebuild the model on load")
        seen_counts = [len(s) for s in self.seen]
        seen = [sorted(s.items()) for s in self.seen]
        return save_checkpoint({
            "model_name": self.model_name, "model_config": asdict(self.model_config),
            "num_items": self.model.num_items, "model_state": self.model.state_dict(),
            "item_ids": plain_ids(self.item_ids), "user_ids": plain_ids(np.asarray(self.user_ids, dtype=object)),
            "dt_unit": self.dt_unit, "state": tuple(s.cpu() for s in self.state),
            "last_time": torch.from_numpy(self.last_time.copy()),
            "has_events": torch.from_numpy(self._has_events.copy()),
            "seen_counts": torch.tensor(seen_counts, dtype=torch.long),
            "seen_items": torch.tensor([i for s in seen for i, _ in s], dtype=torch.long),
            "seen_times": torch.tensor([t for s in seen for _, t in s], dtype=torch.long),
        }, path)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "InterestTracker":
        saved = load_checkpoint(path, map_location="cpu")
        config = ModelConfig.from_saved(saved["model_config"])
        model = model_from_state(saved["model_name"], saved["num_items"], config, saved["model_state"])
        tracker = cls(model, saved["item_ids"], dt_unit=saved["dt_unit"], model_name=saved["model_name"],
                      model_config=config, device=device)
        tracker.user_ids = list(saved["user_ids"])
        tracker._user_slot = {_key(u): i for i, u in enumerate(tracker.user_ids)}
        tracker.state = tuple(s.to(device) for s in saved["state"])
        tracker.last_time = saved["last_time"].numpy().copy()
        tracker._has_events = saved["has_events"].numpy().copy()
        bounds = np.concatenate([[0], np.cumsum(saved["seen_counts"].numpy())])
        items = saved["seen_items"].tolist()
        # Trackers written before seen times were kept: the user's last event time stands in.
        times = saved["seen_times"].tolist() if "seen_times" in saved else \
            np.repeat(tracker.last_time, saved["seen_counts"].numpy()).tolist()
        tracker.seen = [dict(zip(items[bounds[i]:bounds[i + 1]], times[bounds[i]:bounds[i + 1]]))
                        for i in range(len(bounds) - 1)]
        return tracker


def as_unix_seconds(times, n: int, what: str = "times") -> np.ndarray:
    """(n,) int64 unix seconds from numbers (a scalar is repeated n times); floats are floored.

    Values outside years 1..9999 (1e30, uint64 beyond int64) and non-finite ones are refused
    rather than wrapped into negative int64.
    """
    values = np.asarray(times)
    if values.ndim == 0:
        values = np.full(n, values)
    values = values.reshape(-1)
    if values.dtype == object:  # e.g. Python ints too large for int64
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be unix seconds (numbers)") from None
    if values.dtype.kind == "b" or values.dtype.kind not in "iuf":
        raise ValueError(f"{what} must be unix seconds (numbers), got dtype {values.dtype}")
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ValueError(f"{what} must be finite unix seconds, got {values[~np.isfinite(values)][0]}")
        values = np.floor(values)
    bad = (values < MIN_SECONDS) | (values > MAX_SECONDS)
    if bad.any():
        raise ValueError(f"{what} must be unix seconds between {MIN_SECONDS} and {MAX_SECONDS} "
                         f"(years 1 to 9999), got {values[bad][0]}")
    return values.astype(np.int64)


def check_k(k) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def time_gaps(times: np.ndarray, last_time: np.ndarray, has_events: np.ndarray, scale: int) -> torch.Tensor:
    """Time since each user's last event in the model's unit, computed as the data layer does
    (int64 seconds, then one division), 0 for a user's first event."""
    diff = np.where(has_events, np.asarray(times, np.int64) - last_time, 0)
    return torch.from_numpy((diff / scale).astype(np.float32))


def advance(model: SequenceRecommender, state: tuple, items: np.ndarray, dt: torch.Tensor) -> tuple:
    """The state after one more event per row (items (B,) indices, dt (B,) gaps in model units)."""
    device = state[0].device
    _, state = model(torch.from_numpy(np.asarray(items, np.int64)).to(device).unsqueeze(1),
                     dt.to(device).unsqueeze(1), torch.ones(len(items), dtype=torch.long), state)
    return state


def last_seen_rows(model: SequenceRecommender, seen: list[dict[int, int]], device) -> SeenItems | None:
    """When each user (a dict item index -> unix seconds) last had each of their items, as one
    row of :class:`SeenItems` per user (sparse: a dense table would be num_items wide per row);
    None when the model's scores do not use it."""
    if not model.needs_history:
        return None
    pairs = [(row, item, when) for row, items in enumerate(seen) for item, when in sorted(items.items())]
    rows, items, times = (torch.tensor(column, dtype=torch.int64, device=device).reshape(-1)
                          for column in (zip(*pairs) if pairs else ((), (), ())))
    return SeenItems(rows, items, times, (len(seen),), model.num_items)


def top_items(logits: torch.Tensor, k: int, seen: list | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and indices of the ``k`` best items per row, without the rows' ``seen`` items."""
    logits = logits.float()
    if seen is not None:
        rows = [r for r, items in enumerate(seen) for _ in items]
        cols = [i for items in seen for i in items]
        logits[rows, cols] = float("-inf")
    scores, index = logits.topk(min(k, logits.shape[1]), dim=1)
    # never pad the list with excluded or padding items: k shrinks to what every row can offer
    k = int(torch.isfinite(scores).sum(dim=1).min()) if len(scores) else k
    return scores[:, :k], index[:, :k]


def event_rounds(keys: np.ndarray):
    """Boolean masks applying every key's r-th event in round r: keys are distinct within a round,
    so a round is one batched model step and each user's events stay in order."""
    rounds = _occurrence(keys)
    for r in range(int(rounds.max()) + 1 if len(rounds) else 0):
        yield rounds == r


def _occurrence(keys: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions hold the same key (vectorised)."""
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(keys)), 0))
    out = np.empty(len(keys), np.int64)
    out[order] = np.arange(len(keys)) - group_start
    return out
