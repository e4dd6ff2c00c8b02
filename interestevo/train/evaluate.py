"""Full-ranking evaluation with the same sequence pass as training: every target event is scored
from the state after the user's previous event, projected to the target's time, against the whole
catalogue a block of items at a time, so that memory stays bounded whatever the catalogue's size."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from time import monotonic

import numpy as np
import torch
from tqdm.auto import tqdm

from ..metrics import (count_at_or_above, forecast_mse, metrics_by_history, metrics_by_item_frequency,
                       rank_from_count, ranking_metrics)
from ..models import SequenceRecommender
from ..models.item_activity import WINDOWS
from ..models.repeat import LastSeen
from .batches import SequenceBatch, sequence_batches

log = logging.getLogger("interestevo.train")

ROWS_PER_CHUNK = 2048  # target rows scored together
BLOCK_BYTES = 256 << 20  # bounds a block of (rows, items) scores and their temporaries
# Blocks start at multiples of this many items and hold at least as many, so that a BLAS gives an
# item the same bits in its block's products as in the whole catalogue's (MKL's kernels differ for
# products under 128 columns wide and for tails out of step).
BLOCK_ALIGN = 128
PROGRESS_LOG_SECONDS = 60.0  # a redirected log hears from a long epoch or evaluation at least this often


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
             amp: bool = False, progress: bool = True) -> Evaluation:
    """Rank every item for each of ``target_events`` (indices into ``inter``), the catalogue a block of
    items at a time (see :data:`BLOCK_BYTES`), whatever its size. ``progress``: a bar on a terminal
    (a log line every :data:`PROGRESS_LOG_SECONDS` wherever the log goes)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    categories = model.items.categories
    parts: dict[str, list] = {"events": [], "ranks": [], "forecast": [], "realised": []}
    meter = Progress(len(target_events), "evaluate", "targets", bar=progress)
    for batch in sequence_batches(inter, target_events, batch_size):
        for win, queries, last_seen in read_windows(model, batch.to(device), window, amp):
            rows = queries[win.targets].float()  # autocast may hand back bfloat16
            targets, at = win.items[win.targets], win.times[win.targets]
            seen = None if last_seen is None else last_seen[win.targets]
            parts["events"].append(win.events[win.targets].cpu())
            for lo in range(0, len(rows), ROWS_PER_CHUNK):
                chunk = slice(lo, lo + ROWS_PER_CHUNK)
                ranks, forecast = rank_targets(model, rows[chunk], targets[chunk], at[chunk],
                                               None if seen is None else seen[chunk])
                parts["ranks"].append(ranks.cpu())
                if categories is not None:
                    parts["forecast"].append(forecast.cpu())
                    parts["realised"].append(categories[targets[chunk]].float().cpu())
                meter.update(len(ranks), len(ranks))
    meter.close()
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


def rank_targets(model: SequenceRecommender, rows: torch.Tensor, targets: torch.Tensor, at: torch.Tensor,
                 seen) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(M,) ranks of ``targets`` (see :func:`~interestevo.metrics.target_ranks`) and, with item
    categories, the (M, C) interest forecast (see :func:`~interestevo.models.interest_forecast`),
    for queries ``rows`` (M, D) at ``at`` (M,) with history ``seen``: those of
    ``model.score(rows, at, seen)``, never holding more of it than a block of items."""
    blocks = item_blocks(model.num_items + 1, len(rows), bytes_per_score(model))
    guess = None
    if len(blocks) > 1:
        # A target's score is needed before the block that holds it: score the targets first.
        wanted = targets.unique()
        guess = model.score_block(rows, wanted, at, seen).float()
        guess = guess[torch.arange(len(rows), device=rows.device), torch.searchsorted(wanted, targets)]
    counts, scores, forecast = _scan(model, rows, targets, at, seen, blocks, guess)
    if guess is not None:
        # A product of another width may give a score other last bits than its own block does:
        # those rows are counted again against the score of their block, so that ranks are exact.
        differ = (scores != guess) & ~torch.isnan(scores)
        if differ.any():
            counts = torch.where(differ, _scan(model, rows, targets, at, seen, blocks, scores, forecast=False)[0],
                                 counts)
    return rank_from_count(counts - 1, scores, model.num_items), forecast  # the target ties with itself


def _scan(model, rows, targets, at, seen, blocks, guess, forecast=True):
    """One pass over the catalogue's ``blocks``: how many items score at or above each target (its
    score ``guess``, or, with a single block, the one read from it), the targets' own scores, and
    the forecast (None without categories or unless asked)."""
    categories = model.items.categories if forecast else None
    counts = torch.zeros(len(rows), dtype=torch.int64, device=rows.device)
    scores = torch.full((len(rows),), float("nan"), device=rows.device)
    softmax = None if categories is None else _RunningForecast(len(rows), categories.shape[1], rows.device)
    for lo, hi in blocks:
        logits = model.score_block(rows, torch.arange(lo, hi, device=rows.device), at, seen).float()
        inside = (targets >= lo) & (targets < hi)
        scores[inside] = logits[inside, targets[inside] - lo]
        counts += count_at_or_above(logits, scores if guess is None else guess)
        if softmax is not None:
            softmax.add(logits, categories[lo:hi].float())
        del logits  # freed before the next block is scored
    return counts, scores, None if softmax is None else softmax.result()


class _RunningForecast:
    """``softmax(logits) @ categories`` over blocks of the logits' columns: a running maximum per
    row, the sums so far rescaled whenever it grows."""

    def __init__(self, rows: int, width: int, device):
        self.top = torch.full((rows,), float("-inf"), device=device)
        self.total = torch.zeros(rows, device=device)
        self.weighted = torch.zeros(rows, width, device=device)

    def add(self, logits: torch.Tensor, categories: torch.Tensor) -> None:
        peak = torch.maximum(self.top, logits.amax(dim=1))
        shift = torch.where(torch.isneginf(peak), 0.0, peak)  # exp(-inf - -inf) would be NaN
        rescale = torch.exp(self.top - shift)
        weights = (logits - shift.unsqueeze(1)).exp_()
        self.total = self.total * rescale + weights.sum(dim=1)
        self.weighted = self.weighted * rescale.unsqueeze(1) + weights @ categories
        self.top = peak

    def result(self) -> torch.Tensor:
        return self.weighted / self.total.unsqueeze(1)


def bytes_per_score(model: SequenceRecommender) -> int:
    """Working memory of a block per (row, item): its float32 logits and two temporaries of their
    size, and with the item-activity term that term's features (one float per window)."""
    return 4 * (3 + (len(WINDOWS) if model.activity is not None else 0))


def item_blocks(num_columns: int, rows: int, score_bytes: int) -> list[tuple[int, int]]:
    """(start, stop) of the blocks of ``num_columns`` item indices whose ``rows`` x width scores of
    ``score_bytes`` each fit :data:`BLOCK_BYTES`: widths a multiple of :data:`BLOCK_ALIGN` (one at
    least), a remainder narrower than that merged into the block before it."""
    width = max(1, BLOCK_BYTES // (rows * score_bytes) // BLOCK_ALIGN) * BLOCK_ALIGN
    starts = list(range(0, num_columns, width))
    if len(starts) > 1 and num_columns - starts[-1] < BLOCK_ALIGN:
        starts.pop()
    return [(lo, hi) for lo, hi in zip(starts, starts[1:] + [num_columns])]


class Progress:
    """A tqdm bar on a terminal (``bar``; ``disable=None`` draws only there) and, wherever the log
    goes, a line on the ``interestevo.train`` logger every :data:`PROGRESS_LOG_SECONDS`: steps done
    of ``total``, events per second and the time left."""

    def __init__(self, total: int, desc: str, unit: str, bar: bool = True):
        self.total, self.desc, self.unit = total, desc, unit
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=None if bar else True, leave=False,
                        dynamic_ncols=True)
        self.done = self.events = 0
        self.started = self.logged = monotonic()

    def update(self, steps: int, events: int) -> None:
        self.bar.update(steps)
        self.done += steps
        self.events += events
        now = monotonic()
        if now - self.logged >= PROGRESS_LOG_SECONDS:
            self.logged = now
            elapsed = now - self.started
            log.info("%s: %d/%d %s, %.0f events/s, %s left", self.desc, self.done, self.total, self.unit,
                     self.events / elapsed, _duration(elapsed / self.done * (self.total - self.done)))

    def set_postfix(self, **values) -> None:
        self.bar.set_postfix(**values)

    def close(self) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    """``"1 h 05 min"``, ``"4 min 10 s"``, ``"12 s"``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


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
