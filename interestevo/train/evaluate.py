"""Full-ranking evaluation with the same sequence pass as training: every target event is scored
from the state after the user's previous event, projected to the target's time."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from ..metrics import (forecast_mse, metrics_by_history, metrics_by_item_frequency, ranking_metrics,
                       target_ranks)
from ..models import SequenceRecommender, interest_forecast
from ..models.repeat import LastSeen
from .batches import SequenceBatch, sequence_batches

ROWS_PER_CHUNK = 2048  # bounds the (rows, catalogue) logits held at once


@dataclass
class Evaluation:
    """Per-target results; :meth:`summary`, :meth:`by_history` and :meth:`by_item_frequency`
    reduce them to metrics."""

    events: np.ndarray  # (M,) global indices of the target events
    items: np.ndarray  # (M,) item index of each target
    ranks: np.ndarray  # (M,) pessimistic 0-based ranks, see interestevo.metrics
    history: np.ndarray  # (M,) number of the user's events before the target
    forecast: np.ndarray | None  # (M, C) predicted category distribution at the target's time
    realised: np.ndarray | None  # (M, C) the target item's (row-normalised) categories
    truth: np.ndarray | None  # (M, C) true interest at the target (synthetic data only)

    def summary(self) -> dict[str, float]:
        """``hit@K``, ``ndcg@K``, ``mrr@K``, ``count``, ``forecast_mse`` (vs the realised categories
        of the target event; NaN without categories) and, on synthetic data, ``forecast_mse_true``."""
        out = ranking_metrics(self.ranks)
        has_forecast = self.forecast is not None
        out["forecast_mse"] = forecast_mse(torch.from_numpy(self.forecast), torch.from_numpy(self.realised)) \
            if has_forecast else float("nan")
        if has_forecast and self.truth is not None:
            out["forecast_mse_true"] = forecast_mse(torch.from_numpy(self.forecast), torch.from_numpy(self.truth))
        return out

    def by_history(self) -> dict[str, dict[str, float]]:
        return metrics_by_history(self.ranks, self.history)

    def by_item_frequency(self, item_counts: np.ndarray) -> dict[str, dict[str, float]]:
        """Metrics by how often the target's item occurs in training (``item_counts`` per item
        index, e.g. :func:`~interestevo.train.training_item_counts`): unseen, rare, frequent."""
        return metrics_by_item_frequency(self.ranks, np.asarray(item_counts)[self.items])


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: SequenceRecommender, inter, target_events: np.ndarray, *, batch_size: int = 256,
             window: int = 64, device: torch.device | str = "cpu", true_interest: np.ndarray | None = None,
             amp: bool = False) -> Evaluation:
    """Rank every item for each of ``target_events`` (indices into ``inter``)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    categories = model.items.categories
    parts: dict[str, list] = {"events": [], "ranks": [], "forecast": [], "realised": []}
    for batch in sequence_batches(inter, target_events, batch_size):
        for win, queries, last_seen in read_windows(model, batch.to(device), window, amp):
            rows = queries[win.targets].float()  # autocast may hand back bfloat16
            targets, at = win.items[win.targets], win.times[win.targets]
            seen = None if last_seen is None else last_seen[win.targets]
            parts["events"].append(win.events[win.targets].cpu())
            for lo in range(0, len(rows), ROWS_PER_CHUNK):
                chunk = slice(lo, lo + ROWS_PER_CHUNK)
                logits = model.score(rows[chunk], at[chunk], None if seen is None else seen[chunk]).float()
                chunk_targets = targets[lo:lo + ROWS_PER_CHUNK]
                parts["ranks"].append(target_ranks(logits, chunk_targets).cpu())
                if categories is not None:
                    parts["forecast"].append(interest_forecast(logits, categories).cpu())
                    parts["realised"].append(categories[chunk_targets].float().cpu())
    model.train(was_training)

    def cat(key, empty_shape):
        return torch.cat(parts[key]).numpy() if parts[key] else np.zeros(empty_shape)

    events = cat("events", (0,)).astype(np.int64)
    ranks = cat("ranks", (0,)).astype(np.int64)
    offsets = np.asarray(inter.user_offsets)
    history = events - offsets[np.asarray(inter.user)[events]]
    items = np.asarray(inter.item)[events]
    forecast = realised = truth = None
    if categories is not None:
        width = categories.shape[1]
        forecast, realised = cat("forecast", (0, width)), cat("realised", (0, width))
        if true_interest is not None:
            truth = np.asarray(true_interest, dtype=np.float32)[events]
    return Evaluation(events, items, ranks, history, forecast, realised, truth)


def read_windows(model: SequenceRecommender, batch: SequenceBatch, window: int, amp: bool = False):
    """Yield (window, queries, last_seen) over a batch, carrying the detached state from window to
    window; ``last_seen`` (see :class:`~interestevo.models.repeat.LastSeen`) is None unless the
    model's scores need it."""
    device = batch.items.device
    state = model.initial_state(len(batch.users), device)
    history = LastSeen(len(batch.users), model.num_items, device) if model.needs_history else None
    for _, win in batch.windows(window):
        state = tuple(s[:, :len(win.users)] for s in state)
        with _autocast(device, amp):
            queries, state = model(win.items, win.dt, win.lengths, state)
        state = tuple(s.detach().float() for s in state)  # autocast may hand back bfloat16
        yield win, queries, None if history is None else history.read(win.items, win.times, win.lengths)
