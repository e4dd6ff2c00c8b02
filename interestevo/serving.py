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

from .checkpoint import load_checkpoint, plain_ids, save_checkpoint
from .data.timestamps import unit_seconds
from .models import ModelConfig, SequenceRecommender, interest_forecast, model_from_state
from .train.batches import sequence_batches


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
        users, items = np.asarray(users, dtype=object).reshape(-1), np.asarray(items, dtype=object).reshape(-1)
        times = _as_seconds(times, len(users))
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
        # Round r applies every user's r-th event of this call: users are distinct within a round.
        rounds = _occurrence(slots)
        for r in range(int(rounds.max()) + 1 if len(rounds) else 0):
            pick = rounds == r
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
        state = tuple(s[:, slot_t] for s in self.state)
        _, state = self.model(torch.from_numpy(items).to(self.device).unsqueeze(1),
                              dt.unsqueeze(1), torch.ones(len(slots), dtype=torch.long), state)
        for full, new in zip(self.state, state):
            full[:, slot_t] = new.to(full.dtype)
        self.last_time[slots] = times
        self._has_events[slots] = True
        for slot, item, t in zip(slots.tolist(), items.tolist(), times.tolist()):
            self.seen[slot][item] = t

    def _gaps(self, slots: np.ndarray, times: np.ndarray) -> torch.Tensor:
        """Time since each user's last event in the model's unit, computed as the data layer does
        (int64 seconds, then one division), 0 for a user's first event."""
        diff = np.where(self._has_events[slots], times - self.last_time[slots], 0)
        return torch.from_numpy((diff / self._scale).astype(np.float32)).to(self.device)

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
        at = _as_seconds(time.time() if at is None else at, len(slots))
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
        slots, queries, at = self._project(users, at)
        logits = self.model.score(queries, at, self._last_seen(slots)).float()
        if exclude_seen:
            rows = [r for r, s in enumerate(slots) for _ in self.seen[s]]
            cols = [i for s in slots for i in self.seen[s]]
            logits[rows, cols] = float("-inf")
        # never pad the list with excluded or padding items: k shrinks to what every row can offer
        k = min(k, int(torch.isfinite(logits).sum(dim=1).min()))
        scores, index = logits.topk(k, dim=1)
        return Recommendations(self.item_ids[index.cpu().numpy()], scores.cpu())

    @torch.no_grad()
    def forecast(self, users, at=None) -> torch.Tensor:
        """(B, C) predicted interest (distribution over categories) at times ``at``."""
        categories = self.model.items.categories
        if categories is None:
            raise ValueError("the model has no item categories, so it cannot forecast interest over them")
        slots, queries, at = self._project(users, at)
        return interest_forecast(self.model.score(queries, at, self._last_seen(slots)), categories).cpu()

    def _last_seen(self, slots: np.ndarray) -> torch.Tensor | None:
        """(B, num_items + 1) when each user last had each item (-1: never), for models that use it."""
        if not self.model.needs_history:
            return None
        last = torch.full((len(slots), self.model.num_items + 1), -1, dtype=torch.int64)
        for row, slot in enumerate(slots.tolist()):
            if self.seen[slot]:
                last[row, list(self.seen[slot])] = torch.tensor(list(self.seen[slot].values()))
        return last.to(self.device)

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
        config = ModelConfig(**saved["model_config"])
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


def _as_seconds(times, n: int) -> np.ndarray:
    values = np.asarray(times)
    if values.ndim == 0:
        values = np.full(n, values)
    values = values.reshape(-1)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ValueError("times must be finite unix seconds")
        values = np.floor(values)
    elif values.dtype.kind not in "iu":
        raise ValueError(f"times must be unix seconds (numbers), got dtype {values.dtype}")
    return values.astype(np.int64)


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
