"""How active each item is at a moment: the log's events of that item in windows before it.

Items rise and fade: what other users take up at the time of a request says what this user is
likely to take up too (in MovieLens-100K, ranking by the last day's counts beats all-time
popularity by a quarter). This is a time signal about the catalogue, not about one user.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

DAY = 86_400
#: windows (seconds) before the request whose event counts are features; None: all earlier events
WINDOWS = (DAY, 7 * DAY, 30 * DAY, None)
MAX_TABLE_CELLS = 1 << 24  # bounds the tables: bins x items x windows, 256 MiB of float32 at most
MIN_BIN_SECONDS = 3600


class ItemActivity(nn.Module):
    """``log(1 + count)`` of each item's events in each window of :data:`WINDOWS` before a time,
    weighted per user: ``score += (W q + b) · features(item, at)`` (zero-initialised, so a model
    starts as if it had no such term).

    Counts use only events strictly before the start of the time bin (an hour on small logs) that
    holds the request time, so an event never counts towards its own prediction, nor do events of
    the same moment. The events are those of :meth:`observe` (the log the model was trained on),
    kept in the state dict; a request after the log's end sees the counts as of its end.
    """

    def __init__(self, num_items: int, embedding_size: int):
        super().__init__()
        self.num_items = num_items
        self.register_buffer("event_items", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("event_times", torch.zeros(0, dtype=torch.int64))
        self.weights = nn.Linear(embedding_size, len(WINDOWS))
        nn.init.zeros_(self.weights.weight)
        nn.init.zeros_(self.weights.bias)
        self._table: tuple[torch.Tensor, int, int] | None = None  # see tables
        self._register_load_state_dict_pre_hook(self._take_saved_events)

    @torch.no_grad()
    def observe(self, items, times) -> None:
        """Use these events (item indices and unix seconds, any order) for the counts."""
        items = torch.as_tensor(np.asarray(items), dtype=torch.int64).reshape(-1)
        times = torch.as_tensor(np.asarray(times), dtype=torch.int64).reshape(-1)
        if items.shape != times.shape:
            raise ValueError(f"items and times must have the same length, got {items.numel()} and {times.numel()}")
        if items.numel() and (items.min() < 1 or items.max() > self.num_items):
            raise ValueError(f"item indices must be in [1, {self.num_items}]")
        self.event_items = items.to(self.event_items.device)
        self.event_times = times.to(self.event_times.device)
        self._table = None

    def _take_saved_events(self, state_dict, prefix, *_):
        # The number of events is the log's, not a fixed shape: adopt the saved tensors' shapes.
        for name in ("event_items", "event_times"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=getattr(self, name).device))
        self._table = None

    def tables(self) -> tuple[torch.Tensor, int, int]:
        """((bins + 1, len(WINDOWS), num_items + 1) log counts of each window ending at each bin
        start, origin, bin width): computed once per set of events, so a score is a row lookup
        (rows contiguous: one copy per query)."""
        device = self.event_times.device
        if self._table is not None and self._table[0].device == device:
            return self._table
        items, times = self.event_items, self.event_times
        origin = int(times.min()) if times.numel() else 0
        span = int(times.max() - times.min()) + 1 if times.numel() else 1
        width = max(MIN_BIN_SECONDS, math.ceil(span * (self.num_items + 1) / MAX_TABLE_CELLS))
        bins = span // width + 1
        counts = torch.zeros(bins + 1, self.num_items + 1, dtype=torch.int32, device=device)
        counts.index_put_(((times - origin) // width + 1, items), torch.ones_like(items, dtype=torch.int32),
                          accumulate=True)
        before = counts.cumsum(0, dtype=torch.int32)  # row b: events before bin b starts
        tables = []
        for window in WINDOWS:  # windows in whole bins (exact while a bin is an hour)
            if window is None:
                tables.append(before)
            else:
                lag = max(1, round(window / width))
                shifted = torch.zeros_like(before)  # row b: events before bin b - lag starts
                if lag < len(before):
                    shifted[lag:] = before[:-lag]
                tables.append(before - shifted)
        self._table = (torch.log1p(torch.stack(tables, dim=1).float()), origin, width)
        return self._table

    def _bins(self, at: torch.Tensor, tables: torch.Tensor, origin: int, width: int) -> torch.Tensor:
        at = at.to(tables.device, torch.int64).reshape(-1)
        return ((at - origin) // width).clamp(0, len(tables) - 1)  # the bin holding at: events before it

    def features(self, at: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """(M, len(WINDOWS), K) log counts at times ``at`` (M,) of ``items`` (K,) or (M, K), or
        (M, len(WINDOWS), num_items + 1) of the whole catalogue."""
        tables, origin, width = self.tables()
        bins = self._bins(at, tables, origin, width)
        if items is None:
            return tables.index_select(0, bins)
        if items.dim() == 1:  # shared candidates: copy the smaller part first, the rows in use or the columns
            used, where = bins.unique(return_inverse=True)
            if len(used) * tables.shape[2] <= tables.shape[0] * len(items):
                return tables.index_select(0, used).index_select(2, items).index_select(0, where)
            return tables.index_select(2, items).index_select(0, bins)
        return tables[bins.unsqueeze(1), :, items].permute(0, 2, 1)  # (M, K, windows) -> (M, windows, K)

    def forward(self, queries: torch.Tensor, at: torch.Tensor, items: torch.Tensor | None = None,
                base: torch.Tensor | None = None) -> torch.Tensor:
        """(M, K) score terms for ``queries`` (M, D) at times ``at`` (M,); with ``base`` (M, K)
        logits, ``base`` plus the terms (float32 logits take them in the same pass over memory)."""
        weights = self.weights(queries)
        if items is not None:
            terms = torch.bmm(weights.unsqueeze(1), self.features(at, items).to(weights.dtype)).squeeze(1)
        else:
            tables, origin, width = self.tables()
            rows = self._bins(at, tables, origin, width)
            if base is not None and base.dtype == torch.float32:
                return _WeightedRows.apply(weights, tables, rows, base)
            terms = _WeightedRows.apply(weights, tables, rows, None)
        return terms if base is None else base + terms.to(base.dtype)


class _WeightedRows(torch.autograd.Function):
    """``out[m] = base[m] + weights[m] @ tables[rows[m]]`` ((M, F) @ (F, K) per row; no ``base``:
    zero) in chunks of rows, so that the (M, F, K) features are never held whole: the backward
    gathers them again. Float32 whatever autocast says (the tables are float32; only their rows
    are read)."""

    CHUNK = 256

    @staticmethod
    def forward(ctx, weights, tables, rows, base):
        ctx.save_for_backward(weights, tables, rows)
        out = torch.empty(len(rows), tables.shape[2], device=tables.device)
        with torch.autocast(tables.device.type, enabled=False):
            for lo in range(0, len(rows), _WeightedRows.CHUNK):
                chunk = slice(lo, lo + _WeightedRows.CHUNK)
                features = tables.index_select(0, rows[chunk])
                if base is None:
                    torch.bmm(weights[chunk].float().unsqueeze(1), features, out=out[chunk].unsqueeze(1))
                else:
                    torch.baddbmm(base[chunk].unsqueeze(1), weights[chunk].float().unsqueeze(1), features,
                                  out=out[chunk].unsqueeze(1))
        return out

    @staticmethod
    def backward(ctx, grad_out):
        weights, tables, rows = ctx.saved_tensors
        grad = torch.empty(weights.shape, device=tables.device)
        with torch.autocast(tables.device.type, enabled=False):
            for lo in range(0, len(rows), _WeightedRows.CHUNK):
                chunk = slice(lo, lo + _WeightedRows.CHUNK)
                torch.bmm(tables.index_select(0, rows[chunk]), grad_out[chunk].float().unsqueeze(2),
                          out=grad[chunk].unsqueeze(2))
        return grad.to(weights.dtype), None, None, grad_out if ctx.needs_input_grad[3] else None
