"""Item representations shared by the input of the recurrent models and their output scores."""
from __future__ import annotations

import torch
from torch import nn


class ItemEncoder(nn.Module):
    """An item's vector and bias.

    The vector is the item's own embedding, plus the mean of its categories' embeddings when
    categories are known (rare items then borrow strength from their category), plus, with text
    features, a learned projection of the item's text vector (a learned fallback vector stands
    in for items without text).

    With text, items never seen in training are *cold*: their id embedding and bias were never
    trained, so they are scored through text and categories alone, with a bias predicted from
    the text. During training each item's id part is hidden with probability ``id_dropout``, so
    the text path learns to score on its own (as in DropoutNet), and cold items are left out of
    the softmax: nothing is known about them yet.

    Row 0 is the padding item; it is zero and is never scored as a recommendation.
    """

    def __init__(self, num_items: int, embedding_size: int, item_categories: torch.Tensor | None = None,
                 text=None, id_dropout: float = 0.0):
        super().__init__()
        self.num_items = num_items
        self.embedding = nn.Embedding(num_items + 1, embedding_size, padding_idx=0)
        # Small init: scores are dot products of two embeddings, N(0, 1) would saturate the softmax.
        nn.init.normal_(self.embedding.weight, std=0.05)
        with torch.no_grad():
            self.embedding.weight[0].zero_()
        self.bias = nn.Parameter(torch.zeros(num_items + 1))
        if item_categories is not None:
            self.register_buffer("categories", self._rows(item_categories, "item_categories").float().clone())
            self.category_embedding = nn.Linear(item_categories.shape[1], embedding_size, bias=False)
            nn.init.normal_(self.category_embedding.weight, std=0.05)
        else:
            self.categories = self.category_embedding = None
        self.text_projection = None
        if text is not None:
            self._init_text(text, embedding_size, id_dropout)

    def _init_text(self, text, embedding_size: int, id_dropout: float) -> None:
        if not 0.0 <= id_dropout < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1), got {id_dropout}")
        vectors = self._rows(torch.as_tensor(text.vectors), "text.vectors").float().clone()
        has_text = self._rows(torch.as_tensor(text.has_text), "text.has_text").bool().clone()
        if vectors.dim() != 2 or has_text.dim() != 1:
            raise ValueError(f"text.vectors must be (num_items + 1, dim) and text.has_text (num_items + 1,); "
                             f"got {tuple(vectors.shape)} and {tuple(has_text.shape)}")
        self.register_buffer("text_vectors", vectors)
        self.register_buffer("has_text", has_text)
        # Items with training events; the rest are cold. Set by mark_trained before training.
        trained = torch.ones(self.num_items + 1, dtype=torch.bool)
        trained[0] = False
        self.register_buffer("trained", trained)
        self.text_projection = nn.Linear(vectors.shape[1], embedding_size, bias=False)
        self.text_fallback = nn.Parameter(torch.zeros(vectors.shape[1]))
        self.text_bias = nn.Linear(vectors.shape[1], 1)  # the bias of an item seen through its text
        nn.init.zeros_(self.text_bias.weight)
        nn.init.zeros_(self.text_bias.bias)
        self.id_dropout = id_dropout

    def _rows(self, tensor: torch.Tensor, name: str) -> torch.Tensor:
        if tensor.shape[0] != self.num_items + 1:
            raise ValueError(f"{name} must have num_items + 1 = {self.num_items + 1} rows, got {tuple(tensor.shape)}")
        return tensor

    @property
    def uses_text(self) -> bool:
        return self.text_projection is not None

    @torch.no_grad()
    def mark_trained(self, item_counts) -> None:
        """Record which items have training events (counts per item index, padding included)."""
        if self.uses_text:
            counts = torch.as_tensor(item_counts, device=self.trained.device)
            self.trained.copy_(self._rows(counts, "item_counts") > 0)
            self.trained[0] = False

    def lookup(self, items: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectors (..., D) and biases (...) of ``items`` (indices); None: the whole catalogue."""
        pick = (lambda table: table) if items is None else (lambda table: table[items])
        ids = self.embedding.weight if items is None else nn.functional.embedding(items, self.embedding.weight)
        bias = pick(self.bias)
        shared = 0.0 if self.categories is None else self.category_embedding(pick(self.categories))
        if not self.uses_text:
            return ids + shared, bias
        text = torch.where(pick(self.has_text).unsqueeze(-1), pick(self.text_vectors), self.text_fallback)
        keep = pick(self.trained)
        if self.training and self.id_dropout > 0:
            keep = keep & (torch.rand(keep.shape, device=keep.device) >= self.id_dropout)
        keep = keep.to(ids.dtype)
        vectors = ids * keep.unsqueeze(-1) + shared + self.text_projection(text)
        bias = bias * keep + (1 - keep) * self.text_bias(text).squeeze(-1)
        return vectors, bias

    def excluded(self, items: torch.Tensor | None = None) -> torch.Tensor | None:
        """Bool mask of items that must not be scored now: in training, the cold ones; else None."""
        if not (self.training and self.uses_text):
            return None
        return ~(self.trained if items is None else self.trained[items])

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.lookup(items)[0]
