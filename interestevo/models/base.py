"""The interface every recommender implements, so training, evaluation and serving treat them alike.

A model reads a user's events in order and, for every event j, produces a *query*: the user's
interest vector at the moment of event j, computed from the events before it only. Scores over
the catalogue are dot products of queries with item vectors. Models are stateful across calls
(windows of a long history, or live events in serving) through an explicit ``state`` tuple whose
tensors are all shaped (layers, batch, hidden).
"""
from __future__ import annotations

import torch
from torch import nn

from .item_encoder import ItemEncoder

State = tuple[torch.Tensor, ...]


class SequenceRecommender(nn.Module):
    """Base class: an :class:`ItemEncoder`, a per-item bias, and full-catalogue scoring.

    Subclasses implement :meth:`initial_state`, :meth:`forward` and :meth:`project`.
    """

    #: whether the model reads elapsed time (a model that does not ignores ``dt`` and ``delta``)
    uses_time = False

    def __init__(self, num_items: int, embedding_size: int, item_categories: torch.Tensor | None = None):
        super().__init__()
        self.num_items = num_items
        self.items = ItemEncoder(num_items, embedding_size, item_categories)
        self.item_bias = nn.Parameter(torch.zeros(num_items + 1))

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """The state of a user with no events."""
        raise NotImplementedError

    def forward(self, items: torch.Tensor, dt: torch.Tensor, lengths: torch.Tensor, state: State):
        """Read a window of events.

        Args:
            items: (B, T) item indices, 0 past each row's length.
            dt: (B, T) time since each user's previous event (0 for a first event).
            lengths: (B,) number of real events per row, each >= 1.
            state: the state before the window (from :meth:`initial_state` or a previous window).

        Returns:
            queries (B, T, D): ``queries[:, j]`` is the interest at the time of event j given the
            events before it; and the state after each row's last real event.
        """
        raise NotImplementedError

    def project(self, state: State, delta: torch.Tensor) -> torch.Tensor:
        """(B, D) interest at a request made ``delta`` (B,) time units after the last event."""
        raise NotImplementedError

    def score(self, queries: torch.Tensor) -> torch.Tensor:
        """(..., num_items + 1) logits over the catalogue; the padding item 0 scores -inf."""
        logits = queries @ self.items.table().t() + self.item_bias
        return logits.index_fill(-1, torch.tensor([0], device=logits.device), float("-inf"))

    def score_items(self, queries: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(M, K) logits of ``candidates`` (M, K) or (K,) for ``queries`` (M, D): sampled softmax."""
        vectors = self.items(candidates)
        if candidates.dim() == 1:
            return queries @ vectors.t() + self.item_bias[candidates]
        return (vectors @ queries.unsqueeze(-1)).squeeze(-1) + self.item_bias[candidates]
