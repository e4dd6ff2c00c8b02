"""Re-consumption: how a user's own past events with an item change its score, by elapsed time.

Logs differ most here: in MovieLens nobody rates a film twice, in music and shopping logs people
come back to what they had, the more so the more recent it was. A recurrent state cannot hold
the set of a long history's items, so the score gets a learned term per item the user has had,
a function of the time since they last had it (log2-bucketed seconds, as TiSASRec buckets time
intervals). Its weights start at zero, and the data decide its sign and its decay.
"""
from __future__ import annotations

import torch
from torch import nn

ELAPSED_BUCKETS = 40  # floor(log2(1 + seconds)): 0 s, 1 s, 2-3 s, ... up to 2^39 s


def log2_buckets(seconds: torch.Tensor, count: int) -> torch.Tensor:
    """floor(log2(1 + seconds)) of elapsed ``seconds`` >= 0, at most ``count - 1``: the float's
    exponent, exact for the whole seconds times are."""
    return (torch.frexp(seconds.double() + 1.0).exponent - 1).clamp(0, count - 1)


class RepeatScores(nn.Module):
    """``score[item] += bias[bucket(at - last_seen[item])]`` for items the user has had.

    With ``use_time=False`` every elapsed time counts as 0 (one learned weight for "had it"): how
    ``timelstm-no-dt`` was built before every model had this term, kept so its checkpoints load
    as trained (the choice is saved in the state dict as ``time_aware``).
    """

    def __init__(self, use_time: bool = True):
        super().__init__()
        self.uses_time = use_time
        self.bias = nn.Parameter(torch.zeros(ELAPSED_BUCKETS))
        self.register_buffer("time_aware", torch.tensor(use_time))
        self._register_load_state_dict_pre_hook(self._take_saved_choice)

    def _take_saved_choice(self, state_dict, prefix, *_):
        if prefix + "time_aware" in state_dict:
            self.uses_time = bool(state_dict[prefix + "time_aware"])

    def forward(self, at: torch.Tensor, last_seen, items: torch.Tensor | None = None,
                base: torch.Tensor | None = None) -> torch.Tensor:
        """(M, K) terms at times ``at`` (M,) from ``last_seen``, a :class:`SeenItems` of M rows or
        an (M, num_items + 1) int64 tensor of unix seconds (-1: never), for ``items`` (K,) or
        (M, K), or the whole catalogue; with ``base`` (M, K) logits, ``base`` plus the terms
        (added where a user had an item only, not through a dense table of mostly zeros)."""
        seen = last_seen if isinstance(last_seen, SeenItems) else SeenItems.from_dense(last_seen)
        if items is not None:  # candidates: the ones each row's user had, in their columns
            rows, cols, times = seen.at_columns(items)
            return self._terms(at, rows, cols, times, (seen.shape.numel(), items.shape[-1]), base)
        return self._terms(at, seen.rows, seen.items, seen.times, (seen.shape.numel(), seen.num_items + 1), base)

    def _terms(self, at, rows, cols, times, shape, base) -> torch.Tensor:
        if self.uses_time:
            bucket = log2_buckets((at.reshape(-1)[rows] - times).clamp(min=0), ELAPSED_BUCKETS)
        else:
            bucket = torch.zeros_like(rows)
        if base is None:
            return self.bias.new_zeros(shape).index_put((rows, cols), self.bias[bucket])
        # (row, item) pairs are unique, so accumulating adds each term once
        return base.index_put((rows, cols), self.bias[bucket].to(base.dtype), accumulate=True)


class SeenItems:
    """When each query row's user last had each of the items they had, stored sparsely: one
    ``(row, item, time)`` triple per item a row has had (a user has had few of the catalogue's
    items, so this is far smaller than a dense ``(rows, num_items + 1)`` table of times).

    ``shape`` is the shape of the query rows (e.g. ``(B, T)`` for a window); ``rows`` index them
    flattened. Indexing (a mask, a slice, an index over ``shape``) selects query rows like a tensor.
    """

    def __init__(self, rows: torch.Tensor, items: torch.Tensor, times: torch.Tensor, shape, num_items: int):
        self.rows, self.items, self.times = rows, items, times
        self.shape, self.num_items = torch.Size(shape), num_items

    @classmethod
    def from_dense(cls, last_seen: torch.Tensor) -> "SeenItems":
        """From (..., num_items + 1) int64 unix seconds, -1 for never."""
        flat = last_seen.reshape(-1, last_seen.shape[-1])
        rows, items = torch.nonzero(flat >= 0, as_tuple=True)
        return cls(rows, items, flat[rows, items], last_seen.shape[:-1], last_seen.shape[-1] - 1)

    def at_columns(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(row, column, time) for each column of ``items`` ((K,) shared by every row, or (rows, K))
        whose item the row had: a lookup of the sorted (row, item) pairs, never a dense table of the
        catalogue (a candidate may occur in several columns)."""
        count = self.shape.numel()
        candidates = items.expand(count, -1) if items.dim() == 1 else items.reshape(count, items.shape[-1])
        width = self.num_items + 1
        keys, order = (self.rows * width + self.items).sort()
        wanted = (torch.arange(count, device=items.device).unsqueeze(1) * width + candidates).reshape(-1)
        if len(keys) == 0:
            none = wanted[:0]
            return none, none, none
        position = torch.searchsorted(keys, wanted).clamp(max=len(keys) - 1)
        found = torch.nonzero(keys[position] == wanted).squeeze(1)
        columns = candidates.shape[1]
        return found // columns, found % columns, self.times[order[position[found]]]

    def dense(self) -> torch.Tensor:
        """(*shape, num_items + 1) int64 unix seconds, -1 for never."""
        out = torch.full((self.shape.numel(), self.num_items + 1), -1, dtype=torch.int64, device=self.rows.device)
        out[self.rows, self.items] = self.times
        return out.reshape(*self.shape, self.num_items + 1)

    def reshape(self, *shape: int) -> "SeenItems":
        shape = torch.Size(shape)
        if shape.numel() != self.shape.numel():
            raise ValueError(f"cannot reshape rows of shape {tuple(self.shape)} to {tuple(shape)}")
        return SeenItems(self.rows, self.items, self.times, shape, self.num_items)

    def __getitem__(self, index) -> "SeenItems":
        device = self.rows.device
        picked = torch.arange(self.shape.numel(), device=device).reshape(self.shape)[index]
        new_row = torch.full((self.shape.numel(),), -1, dtype=torch.int64, device=device)
        new_row[picked.reshape(-1)] = torch.arange(picked.numel(), device=device)
        rows = new_row[self.rows]
        kept = rows >= 0
        return SeenItems(rows[kept], self.items[kept], self.times[kept], picked.shape, self.num_items)


class LastSeen:
    """Per row of a batch, the last time (unix seconds) each item occurred among the events read
    so far; carried across the windows of a batch like a recurrent state.

    >>> history = LastSeen(rows=2, num_items=5)                     # doctest: +SKIP
    >>> before = history.read(window_items, window_times, lengths)  # SeenItems of shape (B, T)
    """

    def __init__(self, rows: int, num_items: int, device=None):
        self.num_items = num_items
        self.last = torch.full((rows, num_items + 1), -1, dtype=torch.int64, device=device)

    def read(self, items: torch.Tensor, times: torch.Tensor, lengths: torch.Tensor) -> SeenItems:
        """What each of the window's events (B, T) had before it (B = the rows still active, a
        prefix of the batch), then record the window's events."""
        batch, steps = items.shape
        device = items.device
        position = torch.arange(steps, device=device).expand(batch, steps)
        real = position < lengths.unsqueeze(1)
        # An item had before position j is either carried from earlier windows and not yet seen
        # again in this window, or the latest of its occurrences at positions i < j.
        first = torch.full((batch, self.num_items + 1), steps, dtype=torch.int64, device=device)
        first.scatter_reduce_(1, items, torch.where(real, position, steps), "amin")
        carried = self._carried(batch, first, lengths, steps)
        recent = _latest_earlier(items, times, lengths, real, steps, self.num_items)
        rows, seen_items, seen_times = (torch.cat(parts) for parts in zip(carried, recent))
        self.last[:batch].scatter_reduce_(1, items, torch.where(real, times, -1), "amax")
        return SeenItems(rows, seen_items, seen_times, (batch, steps), self.num_items)

    def _carried(self, batch: int, first: torch.Tensor, lengths: torch.Tensor, steps: int):
        """(flat row, item, time) of the carried items at each position until they recur."""
        row, item = torch.nonzero(self.last[:batch] >= 0, as_tuple=True)
        # positions up to its first recurrence in the window, that one included, see its carried time
        until = torch.minimum(first[row, item] + 1, lengths[row])
        offsets = torch.cumsum(until, 0) - until
        row, item, times = (t.repeat_interleave(until) for t in (row, item, self.last[row, item]))
        j = torch.arange(len(row), device=row.device) - offsets.repeat_interleave(until)
        return row * steps + j, item, times


def _latest_earlier(items, times, lengths, real, steps: int, num_items: int):
    """(flat row, item, time) for each pair of positions i < j of a row where i is the latest
    occurrence of its item before j."""
    batch = items.shape[0]
    device = items.device
    # next[b, i]: the next position of the same item in row b (steps if none)
    key = torch.arange(batch, device=device).unsqueeze(1) * (num_items + 1) + items
    key = torch.where(real, key, -1) * steps + torch.arange(steps, device=device)
    order = key.reshape(-1).argsort()
    sorted_key = key.reshape(-1)[order] // steps
    following = torch.full_like(order, steps)
    same = sorted_key[1:] == sorted_key[:-1]
    following[:-1] = torch.where(same, order[1:] % steps, steps)
    next_position = torch.empty_like(following)
    next_position[order] = following
    row, j, i = _earlier_pairs(batch, steps, lengths, device)
    latest = next_position.reshape(batch, steps)[row, i] >= j
    row, j, i = row[latest], j[latest], i[latest]
    return row * steps + j, items[row, i], times[row, i]


def _earlier_pairs(batch: int, steps: int, lengths: torch.Tensor, device):
    """(row, j, i) for every pair of real positions i < j of each row."""
    j, i = torch.tril_indices(steps, steps, offset=-1, device=device)
    row = torch.arange(batch, device=device).repeat_interleave(len(j))
    j, i = j.repeat(batch), i.repeat(batch)
    real = j < lengths[row]
    return row[real], j[real], i[real]
