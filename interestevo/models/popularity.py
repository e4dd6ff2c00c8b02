"""Most-popular baseline: the same scores for everyone, at any time."""
from __future__ import annotations

import torch

from .base import SequenceRecommender, State


class PopularityRec(SequenceRecommender):
    """Scores are log training counts. Its interest forecast (softmax of the scores aggregated by
    category) is therefore the global category distribution of the training events."""

    def __init__(self, num_items: int, item_categories: torch.Tensor | None = None):
        super().__init__(num_items, 1, item_categories)
        self.register_buffer("counts", torch.zeros(num_items + 1))
        self.requires_grad_(False)

    def fit(self, target_items: torch.Tensor) -> "PopularityRec":
        """Count how often each item is a training target (the model's only 'training')."""
        self.counts.copy_(torch.bincount(target_items.cpu(), minlength=self.num_items + 1)[: self.num_items + 1].float())
        return self

    def initial_state(self, batch_size: int, device=None) -> State:
        return (torch.zeros(1, batch_size, 1, device=device),)

    def forward(self, items, dt, lengths, state):
        return torch.zeros(*items.shape, 1, device=items.device), state

    def project(self, state, delta):
        return torch.zeros(state[0].shape[1], 1, device=state[0].device)

    def score(self, queries, at=None, last_seen=None):
        # +1 smoothing: never-seen items rank below seen ones but stay finite.
        logits = torch.log(self.counts + 1.0).expand(*queries.shape[:-1], -1)
        return logits.index_fill(-1, torch.tensor([0], device=logits.device), float("-inf"))

    def score_items(self, queries, candidates, at=None, last_seen=None):
        return torch.log(self.counts[candidates] + 1.0).expand(queries.shape[0], *candidates.shape[-1:])
