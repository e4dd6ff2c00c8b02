"""The interest forecast: a distribution over categories at a future time."""
from __future__ import annotations

import torch


def interest_forecast(logits: torch.Tensor, item_categories: torch.Tensor) -> torch.Tensor:
    """(..., C) forecast: the probability of the next item, summed per category.

    ``item_categories`` is (num_items + 1, C) with row-normalised rows, so the result sums to 1
    wherever every item has at least one category.
    """
    return torch.softmax(logits.float(), dim=-1) @ item_categories.float()
