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

from .item_activity import ItemActivity
from .item_encoder import ItemEncoder
from .repeat import RepeatScores, SeenItems

State = tuple[torch.Tensor, ...]


def _renamed_item_bias(state_dict, prefix, *_):
    """Checkpoints written before the item bias moved into the ItemEncoder still load."""
    if prefix + "item_bias" in state_dict and prefix + "items.bias" not in state_dict:
        state_dict[prefix + "items.bias"] = state_dict.pop(prefix + "item_bias")


def item_logits(queries: torch.Tensor, vectors: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """(..., K) dot products of ``queries`` (..., D) with item ``vectors`` (K, D), plus ``bias``
    (K,), in one GEMM: the expression training, evaluation and serving share, so that their
    scores are the same bits."""
    if torch.is_autocast_enabled(queries.device.type):
        # A lower-precision product plus the float32 bias gives float32 logits: rankings over a
        # large catalogue need float32's resolution (F.linear would keep them in bfloat16).
        return queries @ vectors.t() + bias
    return nn.functional.linear(queries, vectors, bias)


def scoring_bias(bias: torch.Tensor, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """The item ``bias`` (K,) with -inf for the padding item 0 and the ``excluded`` items: a
    score of -inf from inside the GEMM, so no pass over the (M, K) logits fills them, and their
    backward copies nothing."""
    if excluded is not None:
        bias = bias.masked_fill(excluded, float("-inf"))
    return bias.index_fill(0, torch.tensor([0], device=bias.device), float("-inf"))


class SequenceRecommender(nn.Module):
    """Base class: an :class:`ItemEncoder` (item vectors and biases) and full-catalogue scoring.

    Subclasses implement :meth:`initial_state`, :meth:`forward` and :meth:`project`. ``text``
    (anything with ``vectors`` and ``has_text`` rows per item, e.g.
    :class:`interestevo.text.TextFeatures`) adds language-model item features.

    Two scoring terms sit on top of the dot products, the same for every model that has them, so
    that a comparison of models compares their sequence encoders: ``item_activity``
    (:class:`ItemActivity`, the catalogue's recent counts weighted per query) and
    ``repeat_scores`` (:class:`RepeatScores`, items the user had, by the time since).
    """

    #: whether the model reads elapsed time (a model that does not ignores ``dt`` and ``delta``)
    uses_time = False

    def __init__(self, num_items: int, embedding_size: int, item_categories: torch.Tensor | None = None,
                 text=None, id_dropout: float = 0.0, *, item_activity: bool = False, repeat_scores: bool = False):
        super().__init__()
        self.num_items = num_items
        self.items = ItemEncoder(num_items, embedding_size, item_categories, text, id_dropout)
        self.activity = ItemActivity(num_items, embedding_size) if item_activity else None
        self.repeat = RepeatScores() if repeat_scores else None
        self._register_load_state_dict_pre_hook(_renamed_item_bias)

    def mark_trained_items(self, item_counts) -> None:
        """Tell the item encoder how often each item occurs in training (cold items have 0)."""
        self.items.mark_trained(item_counts)

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

    def observe_log(self, inter) -> None:
        """See the whole log before training: the item-activity term keeps its events."""
        if self.activity is not None:
            self.activity.observe(inter.item, inter.timestamp)

    def prepare_scoring(self) -> None:
        """Build now what scoring caches (the item-activity tables, seconds on a large log), so a
        service's first request after loading does not wait for it."""
        if self.activity is not None:
            self.activity.tables()

    def add_context(self, logits: torch.Tensor, queries: torch.Tensor, at: torch.Tensor,
                    last_seen: torch.Tensor | None, items: torch.Tensor | None = None) -> torch.Tensor:
        """``logits`` (M, K) plus the score terms that depend on the request time ``at`` (M,) unix
        seconds and on when the user last had each item (``last_seen``, see
        :class:`~interestevo.models.repeat.LastSeen`); unchanged for a model without such terms."""
        if self.activity is not None:
            logits = self.activity(queries, at, items, base=logits)
        if self.repeat is not None:
            logits = self.repeat(at, last_seen, items, base=logits)
        return logits

    def score(self, queries: torch.Tensor, at: torch.Tensor | None = None,
              last_seen: torch.Tensor | None = None) -> torch.Tensor:
        """(..., num_items + 1) logits over the catalogue for ``queries`` (..., D), at request times
        ``at`` (...) unix seconds, for users who last had each item at ``last_seen`` (...,
        num_items + 1), -1 for never, or the same as a
        :class:`~interestevo.models.repeat.SeenItems` of shape (...) (both needed by models whose
        scores use them: see :attr:`needs_request_time`, :attr:`needs_history`). The padding item 0 scores -inf (and,
        in training, cold items: see :class:`ItemEncoder`)."""
        vectors, bias = self.items.lookup()
        logits = item_logits(queries, vectors, scoring_bias(bias, self.items.excluded()))
        return self.add_context_scores(logits, queries, at, last_seen)

    def score_items(self, queries: torch.Tensor, candidates: torch.Tensor, at: torch.Tensor | None = None,
                    last_seen: torch.Tensor | None = None) -> torch.Tensor:
        """(M, K) logits of ``candidates`` (M, K) or (K,) for ``queries`` (M, D): sampled softmax."""
        vectors, bias = self.items.lookup(candidates)
        if candidates.dim() == 1:
            logits = item_logits(queries, vectors, bias)
        else:
            logits = (vectors @ queries.unsqueeze(-1)).squeeze(-1) + bias
        logits = self.add_context_scores(logits, queries, at, last_seen, candidates)
        excluded = self.items.excluded(candidates)
        return logits if excluded is None else logits.masked_fill(excluded, float("-inf"))

    def score_block(self, queries: torch.Tensor, items: torch.Tensor, at: torch.Tensor | None = None,
                    last_seen=None) -> torch.Tensor:
        """(M, K) columns ``items`` (K,), ascending distinct item indices, of :meth:`score` for
        ``queries`` (M, D): the same terms (to float rounding), the other items never scored, so that
        evaluation ranks a catalogue too large for one (M, num_items + 1) matrix a block at a time."""
        if type(self).score is not SequenceRecommender.score:  # scores of its own (popularity)
            return self.score_items(queries, items, at, last_seen).masked_fill(items == 0, float("-inf"))
        self._check_context(at, last_seen)
        vectors, bias = self.items.lookup(items)
        excluded, padding = self.items.excluded(items), items == 0  # -inf, as scoring_bias gives them
        logits = item_logits(queries, vectors, bias.masked_fill(padding if excluded is None else padding | excluded,
                                                                float("-inf")))
        if self.activity is not None:
            logits = self.activity(queries, at, items, base=logits)
        if self.repeat is not None:
            # The user's items in this block, as its columns: score_items would search them for every
            # (row, item) pair, score() and this cost one step per item the user had.
            seen = last_seen if isinstance(last_seen, SeenItems) else SeenItems.from_dense(last_seen)
            column = torch.searchsorted(items, seen.items).clamp(max=len(items) - 1)
            had = items[column] == seen.items
            block = SeenItems(seen.rows[had], column[had], seen.times[had], seen.shape, len(items) - 1)
            logits = self.repeat(at, block, base=logits)
        return logits

    def _check_context(self, at, last_seen) -> None:
        if at is None and (self.needs_request_time or self.needs_history):
            raise ValueError(f"{type(self).__name__} scores depend on the request time: pass at=")
        if last_seen is None and self.needs_history:
            raise ValueError(f"{type(self).__name__} scores depend on the user's past items: pass last_seen=")

    def add_context_scores(self, logits, queries, at, last_seen, items=None):
        """``logits`` plus :meth:`add_context`'s terms (the part of :meth:`score` after the dot products)."""
        self._check_context(at, last_seen)
        if at is None:
            return logits
        # Context terms work on flat rows: (M, D) queries, (M,) times, (M, num_items + 1) history.
        # Widths are named, not -1: M may be 0 (a training window without targets), and a 0-element
        # tensor cannot infer them.
        rows = queries.reshape(-1, queries.shape[-1])
        flat_items = items if items is None or items.dim() == 1 else items.reshape(len(rows), items.shape[-1])
        flat_seen = None if last_seen is None else (
            last_seen.reshape(len(rows)) if isinstance(last_seen, SeenItems)
            else last_seen.reshape(len(rows), last_seen.shape[-1]))
        flat = self.add_context(logits.reshape(len(rows), logits.shape[-1]), rows, at.reshape(-1), flat_seen,
                                flat_items)
        return flat.reshape(logits.shape)

    @property
    def needs_request_time(self) -> bool:
        """Whether :meth:`score` needs ``at``."""
        return self.activity is not None

    @property
    def needs_history(self) -> bool:
        """Whether :meth:`score` needs ``last_seen`` (and ``at``)."""
        return self.repeat is not None
