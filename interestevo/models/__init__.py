"""Recommenders that map a user's event history to an interest vector and catalogue scores."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import torch

from .base import SequenceRecommender, State
from .config import EXTRA_MODEL_NAMES, MODEL_NAMES, TEXT_SUFFIX, ModelConfig, split_model_name
from .forecast import interest_forecast
from .popularity import PopularityRec
from .rnn_rec import RNNRec
from .sasrec import SASRec
from .time_lstm_rec import TimeLSTMRec

__all__ = ["EXTRA_MODEL_NAMES", "MODEL_NAMES", "TEXT_SUFFIX", "ModelConfig", "PopularityRec", "RNNRec", "SASRec", "SequenceRecommender",
           "State", "TimeLSTMRec", "as_trained", "build_model", "interest_forecast", "model_from_state", "split_model_name"]


def build_model(name: str, num_items: int, config: ModelConfig, item_categories: torch.Tensor | None = None,
                text=None) -> SequenceRecommender:
    """Construct the model called ``name``: one of :data:`MODEL_NAMES`, or a neural one with
    ``+text``, which needs ``text`` (per-item ``vectors`` and ``has_text``, e.g. TextFeatures)."""
    base, with_text = split_model_name(name)
    if with_text and text is None:
        raise ValueError(f"model {name!r} needs item text features (text=...), e.g. from an item file with titles")
    text = text if with_text else None
    if base == "pop":
        return PopularityRec(num_items, item_categories)
    if base in ("timelstm", "timelstm-no-dt"):
        return TimeLSTMRec(num_items, config, item_categories, use_time=base == "timelstm", text=text)
    if base in ("sasrec", "tisasrec"):
        return SASRec(num_items, config, item_categories, use_time=base == "tisasrec", text=text)
    return RNNRec(num_items, config, item_categories, cell=base, text=text)


def model_from_state(name: str, num_items: int, config: ModelConfig, state: dict) -> SequenceRecommender:
    """Rebuild ``name`` from a saved ``state_dict`` (item categories and text vectors included)."""
    text = None
    if "items.text_vectors" in state:
        text = SimpleNamespace(vectors=state["items.text_vectors"], has_text=state["items.has_text"])
    config, state = as_trained(name, config, state)
    model = build_model(name, num_items, config, state.get("items.categories"), text)
    model.load_state_dict(state)
    return model


def as_trained(name: str, config: ModelConfig, state: dict) -> tuple[ModelConfig, dict]:
    """The configuration and state of a model as it was trained. Before every neural model had the
    scoring terms, only timelstm and timelstm-no-dt had them (whatever the saved configuration
    said), and timelstm-no-dt's re-consumption term ignored the elapsed time."""
    if "repeat.bias" in state and "repeat.time_aware" not in state:
        state = {**state, "repeat.time_aware": torch.tensor(split_model_name(name)[0] == "timelstm")}
    config = replace(config, item_activity=config.item_activity and "activity.weights.weight" in state,
                     repeat_scores=config.repeat_scores and "repeat.bias" in state,
                     fuse_attention=config.fuse_attention and "attention.position_bias" in state)
    return config, state
