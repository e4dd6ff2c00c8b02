"""Full-ranking metrics (no sampled negatives): HR@K, NDCG@K and MRR@K, vectorised.

The rank of a target is the number of catalogue items that score above it, counting ties
pessimistically: an item with exactly the target's score counts as above it. A model that
gives many items the same score (popularity) cannot then look better than it is. The padding
item scores -inf and is never counted. Ranks are 0-based: rank 0 is a hit at every K.
"""
from __future__ import annotations

import math

import numpy as np
import torch

KS = (10, 20)
#: cold-start view: (label, lowest, highest) number of prior events of the user, inclusive
HISTORY_BUCKETS = (("1-4", 1, 4), ("5-19", 5, 19), ("20+", 20, None))
#: cold-start view: (label, lowest, highest) training occurrences of the target item, inclusive
ITEM_FREQUENCY_BUCKETS = (("unseen", 0, 0), ("rare", 1, 10), ("frequent", 11, None))
#: time view: (label, lowest, highest) seconds since the user's previous event, inclusive
GAP_BUCKETS = (("< 1 h", 0, 3599), ("1 h - 1 day", 3600, 86_399), ("1 day - 1 week", 86_400, 604_799),
               ("> 1 week", 604_800, None))


def bucket_range(low: int, high: int | None) -> str:
    """``"1-10"``, ``"11+"`` or ``"0"``: a bucket's bounds as the tables print them."""
    return f"{low}+" if high is None else (str(low) if low == high else f"{low}-{high}")


def target_ranks(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(M,) ranks of ``targets`` (M,) among ``logits`` (M, num_items + 1)."""
    target_scores = logits.gather(1, targets.unsqueeze(1)).squeeze(1)
    others = count_at_or_above(logits, target_scores) - 1  # the target ties with itself
    return rank_from_count(others, target_scores, logits.shape[1] - 1)


def count_at_or_above(logits: torch.Tensor, target_scores: torch.Tensor) -> torch.Tensor:
    """(M,) how many of ``logits`` (M, K) score at or above ``target_scores`` (M,): ties count, and
    so do NaN scores (a diverged model must not look good). The counts of blocks of the catalogue's
    columns add up to the whole catalogue's."""
    # Those not below: NaN is not below anything. An int32 sum: an int64 one copies the mask as int64.
    below = (logits < target_scores.unsqueeze(1)).sum(dim=1, dtype=torch.int32)
    return logits.shape[1] - below.long()


def rank_from_count(others: torch.Tensor, target_scores: torch.Tensor, num_items: int) -> torch.Tensor:
    """The ranks of targets with ``others`` (M,) other items at or above their ``target_scores``
    (M,); a NaN target gets the worst rank, ``num_items``."""
    return torch.where(torch.isnan(target_scores), num_items, others)


def ranking_metrics(ranks: np.ndarray | torch.Tensor, ks=KS) -> dict[str, float]:
    """``hit@K``, ``ndcg@K``, ``mrr@K`` averaged over targets, plus ``count``.

    With a single relevant item, NDCG@K is 1 / log2(rank + 2) inside the top K and 0 outside;
    MRR@K is 1 / (rank + 1) inside the top K.
    """
    ranks = torch.as_tensor(ranks, dtype=torch.float64)
    out: dict[str, float] = {}
    for k in ks:
        inside = ranks < k
        n = max(len(ranks), 1)
        out[f"hit@{k}"] = float(inside.sum()) / n
        out[f"ndcg@{k}"] = float(torch.where(inside, 1.0 / torch.log2(ranks + 2), 0.0).sum()) / n
        out[f"mrr@{k}"] = float(torch.where(inside, 1.0 / (ranks + 1), 0.0).sum()) / n
    if len(ranks) == 0:
        out = {key: math.nan for key in out}
    out["count"] = int(len(ranks))
    return out


def metrics_by_history(ranks: np.ndarray | torch.Tensor, history: np.ndarray | torch.Tensor,
                       ks=KS) -> dict[str, dict[str, float]]:
    """:func:`ranking_metrics` per bucket of :data:`HISTORY_BUCKETS` (prior events of the user)."""
    return metrics_by_bucket(ranks, history, HISTORY_BUCKETS, ks)


def metrics_by_item_frequency(ranks: np.ndarray | torch.Tensor, frequency: np.ndarray | torch.Tensor,
                              ks=KS) -> dict[str, dict[str, float]]:
    """:func:`ranking_metrics` per bucket of :data:`ITEM_FREQUENCY_BUCKETS` (training occurrences
    of each target's item)."""
    return metrics_by_bucket(ranks, frequency, ITEM_FREQUENCY_BUCKETS, ks)


def metrics_by_gap(ranks: np.ndarray | torch.Tensor, gap_seconds: np.ndarray | torch.Tensor,
                   ks=KS) -> dict[str, dict[str, float]]:
    """:func:`ranking_metrics` per bucket of :data:`GAP_BUCKETS` (time since the previous event)."""
    return metrics_by_bucket(ranks, gap_seconds, GAP_BUCKETS, ks)


def metrics_by_bucket(ranks, values, buckets, ks=KS) -> dict[str, dict[str, float]]:
    """:func:`ranking_metrics` of the targets whose ``values`` fall in each (label, low, high)."""
    ranks = torch.as_tensor(ranks)
    values = torch.as_tensor(values)
    out = {}
    for label, low, high in buckets:
        keep = values >= low
        if high is not None:
            keep &= values <= high
        out[label] = ranking_metrics(ranks[keep], ks)
    return out


def forecast_mse(forecast: torch.Tensor, realised: torch.Tensor) -> float:
    """Mean over targets of the mean squared difference between two (M, C) distributions."""
    if len(forecast) == 0:
        return math.nan
    return float(((forecast.double() - realised.double()) ** 2).mean())
