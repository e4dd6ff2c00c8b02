"""The steps every path of the tracker shares: ids, gaps, histories in one batched pass, top-k."""
from __future__ import annotations

import numpy as np
import torch

from ..data.timestamps import elapsed
from ..models import SequenceRecommender
from ..models.repeat import SeenItems

#: steps per model call when a whole history runs at once: memory stays rows x WINDOW
WINDOW = 64


def item_key(value) -> str:
    """Ids are matched by their text, so "42" from a command line finds the integer id 42."""
    return str(value.item() if isinstance(value, np.generic) else value)


def plain(value):
    """A numpy scalar id as the Python value it stands for (an integer id stays an integer)."""
    return value.item() if isinstance(value, np.generic) else value


def check_user_ids(users, what: str = "users") -> np.ndarray:
    """Users as a 1-d object array; None or NaN ids are refused (they would all be one user "nan")."""
    users = np.asarray(users, dtype=object).reshape(-1)
    for position, user in enumerate(users):
        if user is None or (isinstance(user, (float, np.floating)) and not np.isfinite(user)):
            raise ValueError(f"{what}[{position}] is {user!r}; user ids must be strings or integers")
    return users


def check_k(k) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def time_gaps(times: np.ndarray, last_time: np.ndarray, has_events: np.ndarray, scale: int) -> torch.Tensor:
    """Time since each user's last event in the model's unit, 0 for a user's first event: the
    data layer's gap computation (:func:`~..data.timestamps.elapsed`), so training and serving agree."""
    return torch.from_numpy(elapsed(times, last_time, has_events, scale))


def run_sequences(model: SequenceRecommender, items: list[np.ndarray], times: list[np.ndarray], state: tuple,
                  last_time: np.ndarray, has: np.ndarray, scale: int, window: int = WINDOW):
    """Run B histories (item indices, unix seconds), each from its row of ``state`` (layers, B, hidden)
    and its last event time (``has``: whether it had one). Rows sorted by length, ``window`` steps
    per model call, so memory is bounded whatever the histories' lengths. Returns each row's state
    (a tuple of (layers, 1, hidden)), last times and has-events; rows without events keep theirs."""
    lengths = np.array([len(x) for x in items], np.int64)
    order = np.argsort(-lengths, kind="stable")
    state = tuple(s[:, torch.from_numpy(order)].clone() for s in state)
    out_last, out_has = np.asarray(last_time, np.int64).copy(), np.asarray(has, bool).copy()
    width = int(lengths.max()) if len(lengths) else 0
    for start in range(0, width, window):
        active = int((lengths > start).sum())
        rows = order[:active]
        stop = min(start + window, width)
        item_pad = np.zeros((active, stop - start), np.int64)
        dt_pad = np.zeros((active, stop - start), np.float32)
        for j, r in enumerate(rows):
            t = np.asarray(times[r], np.int64)[start:stop]
            prev = np.concatenate([[out_last[r]], t[:-1]])
            first_has = np.concatenate([[out_has[r]], np.ones(len(t) - 1, bool)])
            item_pad[j, :len(t)] = items[r][start:stop]
            dt_pad[j, :len(t)] = time_gaps(t, prev, first_has, scale).numpy()
            out_last[r], out_has[r] = t[-1], True
        _, new = model(torch.from_numpy(item_pad), torch.from_numpy(dt_pad),
                       torch.from_numpy(np.minimum(lengths[rows] - start, stop - start)),
                       tuple(s[:, :active] for s in state))
        for full, part in zip(state, new):
            full[:, :active] = part
    results = [None] * len(items)
    for j, r in enumerate(order):
        results[r] = tuple(s[:, j:j + 1] for s in state)
    return results, out_last, out_has


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
    logits = logits.float().clone() if seen is not None else logits.float()  # never mask the caller's
    if seen is not None:
        rows = [r for r, items in enumerate(seen) for _ in items]
        cols = [i for items in seen for i in items]
        logits[rows, cols] = float("-inf")
    scores, index = logits.topk(min(k, logits.shape[1]), dim=1)
    # never pad the list with excluded or padding items: k shrinks to what every row can offer
    k = int(torch.isfinite(scores).sum(dim=1).min()) if len(scores) else k
    return scores[:, :k], index[:, :k]
