"""Hyper-parameters of the sequence recommenders, as one typed dataclass."""
from __future__ import annotations

from dataclasses import dataclass

MODEL_NAMES = ("timelstm", "lstm", "gru", "pop", "timelstm-no-dt")


@dataclass
class ModelConfig:
    """Architecture shared by every neural model, so comparisons change one thing at a time."""

    embedding_size: int = 64
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.1  # on item embeddings, and between recurrent layers
    decay: str = "exp"  # TimeLSTM decay mode: "exp", "log" or "none"
