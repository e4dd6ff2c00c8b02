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


class RepeatScores(nn.Module):
    """``score[item] += bias[bucket(at - last_seen[item])]`` for items the user has had.

    With ``use_time=False`` every elapsed time counts as 0 (one learned weight for "had it").
    """

    def __init__(self, use_time: bool = True):
        super().__init__()
        self.uses_time = use_time
        self.bias = nn.Parameter(torch.zeros(ELAPSED_BUCKETS))

    def forward(self, at: torch.Tensor, last_seen: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """(M, K) terms at times ``at`` (M,) from ``last_seen`` (M, num_items + 1) int64 unix
        seconds (-1: never), for ``items`` (K,) or (M, K), or the whole catalogue."""
        if items is not None:
            index = items.expand(len(last_seen), -1) if items.dim() == 1 else items
            last_seen = last_seen.gather(1, index)
        rows, cols = torch.nonzero(last_seen >= 0, as_tuple=True)  # a user has had few of the items
        if self.uses_time:
            # floor(log2(1 + elapsed)) as the float's exponent: exact for the integers seconds are.
            elapsed = (at.reshape(-1)[rows] - last_seen[rows, cols]).clamp(min=0).double()
            bucket = (torch.frexp(elapsed + 1.0).exponent - 1).clamp(max=ELAPSED_BUCKETS - 1)
        else:
            bucket = torch.zeros_like(rows)
        terms = self.bias.new_zeros(last_seen.shape)
        return terms.index_put((rows, cols), self.bias[bucket])


class LastSeen:
    """Per row of a batch, the last time (unix seconds) each item occurred among the events read
    so far; carried across the windows of a batch like a recurrent state.

    >>> history = LastSeen(rows=2, num_items=5)                     # doctest: +SKIP
    >>> before = history.read(window_items, window_times, lengths)  # (B, T, 6): before each event
    """

    def __init__(self, rows: int, num_items: int, device=None):
        self.last = torch.full((rows, num_items + 1), -1, dtype=torch.int64, device=device)

    def read(self, items: torch.Tensor, times: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, num_items + 1) last times before each of the window's events (B = the rows still
        active, a prefix of the batch), then record the window's events."""
        batch, steps = items.shape
        device = items.device
        before = self.last[:batch].unsqueeze(1).repeat(1, steps, 1)
        # Each earlier event (row b, position i) of the window sets its item's time at every later
        # position j of its row: B * T^2 / 2 small writes instead of a pass over (B, T, items) per step.
        row, later, earlier = _earlier_pairs(batch, steps, lengths, device)
        flat = (row * steps + later) * before.shape[2] + items[row, earlier]
        before.view(-1).scatter_reduce_(0, flat, times[row, earlier], "amax")
        last = torch.arange(batch, device=device), lengths - 1
        after = before[last]
        after[last[0], items[last]] = times[last]
        self.last[:batch] = after
        return before


def _earlier_pairs(batch: int, steps: int, lengths: torch.Tensor, device):
    """(row, j, i) for every pair of real positions i < j of each row."""
    j, i = torch.tril_indices(steps, steps, offset=-1, device=device)
    row = torch.arange(batch, device=device).repeat_interleave(len(j))
    j, i = j.repeat(batch), i.repeat(batch)
    real = j < lengths[row]
    return row[real], j[real], i[real]
