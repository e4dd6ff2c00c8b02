"""Item representations shared by the input of the recurrent models and their output scores."""
from __future__ import annotations

import torch
from torch import nn


class ItemEncoder(nn.Module):
    """An item's vector: its own embedding plus, when categories are known, the mean of its
    categories' embeddings (rare items then borrow strength from their category).

    Row 0 is the padding item; it is zero and is never scored as a recommendation.
    """

    def __init__(self, num_items: int, embedding_size: int, item_categories: torch.Tensor | None = None):
        super().__init__()
        self.num_items = num_items
        self.embedding = nn.Embedding(num_items + 1, embedding_size, padding_idx=0)
        # Small init: scores are dot products of two embeddings, N(0, 1) would saturate the softmax.
        nn.init.normal_(self.embedding.weight, std=0.05)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        if item_categories is not None:
            if item_categories.shape[0] != num_items + 1:
                raise ValueError(
                    f"item_categories must have num_items + 1 = {num_items + 1} rows, got {tuple(item_categories.shape)}"
                )
            self.register_buffer("categories", item_categories.float().clone())
            self.category_embedding = nn.Linear(item_categories.shape[1], embedding_size, bias=False)
            nn.init.normal_(self.category_embedding.weight, std=0.05)
        else:
            self.categories = None
            self.category_embedding = None

    def table(self) -> torch.Tensor:
        """(num_items + 1, embedding_size) vectors of every item, padding row included."""
        table = self.embedding.weight
        if self.category_embedding is not None:
            table = table + self.category_embedding(self.categories)
        return table

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(items, self.table())
