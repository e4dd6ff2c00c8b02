import math

import numpy as np
import pytest
import torch

from interestevo.metrics import (forecast_mse, metrics_by_history, metrics_by_item_frequency, ranking_metrics,
                                 target_ranks)

NEG_INF = float("-inf")


def test_ranks_count_higher_items_and_ties_pessimistically():
    logits = torch.tensor([
        [NEG_INF, 0.9, 0.5, 0.1, 0.7],  # target 1 is the best: rank 0
        [NEG_INF, 0.9, 0.5, 0.1, 0.7],  # target 3 is the worst: 3 items above
        [NEG_INF, 0.2, 0.2, 0.2, 0.9],  # target 2 ties with items 1 and 3: both count as above
        [NEG_INF, 0.0, 0.0, 0.0, 0.0],  # all tied; padding (-inf) never counts
    ])
    ranks = target_ranks(logits, torch.tensor([1, 3, 2, 4]))
    assert ranks.tolist() == [0, 3, 3, 3]


def test_ranking_metrics_match_hand_computed_values():
    ranks = np.array([0, 3, 12, 25])
    m = ranking_metrics(ranks, ks=(10, 20))
    assert m["count"] == 4
    assert m["hit@10"] == pytest.approx(2 / 4)
    assert m["hit@20"] == pytest.approx(3 / 4)
    # NDCG with one relevant item: 1 / log2(rank + 2) inside the cut-off.
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(2) + 1 / math.log2(5)) / 4)
    assert m["ndcg@20"] == pytest.approx((1.0 + 1 / math.log2(5) + 1 / math.log2(14)) / 4)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 4) / 4)
    assert m["mrr@20"] == pytest.approx((1 + 1 / 4 + 1 / 13) / 4)


def test_ranking_metrics_of_nothing_are_nan_not_zero():
    m = ranking_metrics(np.array([], dtype=np.int64))
    assert m["count"] == 0 and math.isnan(m["ndcg@10"])


def test_metrics_by_history_buckets_prior_event_counts():
    ranks = np.array([0, 0, 50, 50, 1])
    history = np.array([1, 4, 5, 19, 20])
    by = metrics_by_history(ranks, history)
    assert by["1-4"]["count"] == 2 and by["1-4"]["hit@10"] == 1.0
    assert by["5-19"]["count"] == 2 and by["5-19"]["hit@10"] == 0.0
    assert by["20+"]["count"] == 1 and by["20+"]["mrr@10"] == pytest.approx(0.5)


def test_metrics_by_item_frequency_buckets_training_occurrences():
    ranks = np.array([0, 30, 2, 0, 9, 40])
    frequency = np.array([0, 0, 1, 10, 11, 500])
    by = metrics_by_item_frequency(ranks, frequency)
    assert list(by) == ["unseen", "rare", "frequent"]
    assert by["unseen"]["count"] == 2 and by["unseen"]["hit@10"] == 0.5
    assert by["rare"]["count"] == 2 and by["rare"]["mrr@10"] == pytest.approx((1 / 3 + 1) / 2)
    assert by["frequent"]["count"] == 2 and by["frequent"]["hit@10"] == 0.5
    assert math.isnan(metrics_by_item_frequency(ranks[:2], frequency[:2])["rare"]["ndcg@10"])


def test_forecast_mse_averages_over_targets_and_categories():
    forecast = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    realised = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert forecast_mse(forecast, realised) == pytest.approx((0.25 + 0.25 + 0 + 0) / 4)


def test_nan_scores_never_count_as_hits():
    logits = torch.tensor([[-torch.inf, 1.0, float("nan"), 0.5],
                           [-torch.inf, 0.2, float("nan"), 0.9]])
    ranks = target_ranks(logits, torch.tensor([2, 3]))
    assert ranks[0] == logits.shape[1] - 1  # a NaN target is ranked last
    assert ranks[1] == 1  # the NaN item counts as above the target
