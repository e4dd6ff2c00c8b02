"""Recommenders that map a user's event history to an interest vector and catalogue scores."""
from __future__ import annotations

import torch

from .base import SequenceRecommender, State
from .config import MODEL_NAMES, ModelConfig
from .forecast import interest_forecast
from .popularity import PopularityRec
from .rnn_rec import RNNRec
from .time_lstm_rec import TimeLSTMRec

__all__ = ["MODEL_NAMES", "ModelConfig", "PopularityRec", "RNNRec", "SequenceRecommender", "State",
           "TimeLSTMRec", "build_model", "interest_forecast"]


def build_model(name: str, num_items: int, config: ModelConfig,
                item_categories: torch.Tensor | None = None) -> SequenceRecommender:
    """Construct the model called ``name`` (one of :data:`MODEL_NAMES`)."""
    if name == "timelstm":
        return TimeLSTMRec(num_items, config, item_categories, use_time=True)
    if name == "timelstm-no-dt":
        return TimeLSTMRec(num_items, config, item_categories, use_time=False)
    if name in ("lstm", "gru"):
        return RNNRec(num_items, config, item_categories, cell=name)
    if name == "pop":
        return PopularityRec(num_items, item_categories)
    raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
