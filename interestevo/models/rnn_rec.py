"""Baselines that ignore time: an nn.LSTM model and a GRU4Rec-style GRU, with the same item
representation, scoring and loss as TimeLSTMRec."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .base import SequenceRecommender, State
from .config import ModelConfig


class RNNRec(SequenceRecommender):
    """The interest at event j is the output after event j − 1, whatever the time in between."""

    def __init__(self, num_items: int, config: ModelConfig, item_categories: torch.Tensor | None = None,
                 cell: str = "lstm", text=None):
        super().__init__(num_items, config.embedding_size, item_categories, text, config.id_dropout,
                         item_activity=config.item_activity, repeat_scores=config.repeat_scores)
        if cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.cell = cell
        self.num_layers = config.num_layers
        self.hidden_size = config.hidden_size
        rnn_type = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_type(config.embedding_size, config.hidden_size, num_layers=config.num_layers,
                            batch_first=True, dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.input_dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_size, config.embedding_size)

    def initial_state(self, batch_size: int, device=None) -> State:
        zeros = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=device)
        return (zeros, zeros.clone()) if self.cell == "lstm" else (zeros,)

    def forward(self, items, dt, lengths, state):
        x = self.input_dropout(self.items(items))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hx = (state[0], state[1]) if self.cell == "lstm" else state[0]
        out, hx = self.rnn(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=items.shape[1])
        # Shift by one: event j is predicted from the state after event j - 1.
        previous = torch.cat([state[0][-1].unsqueeze(1), out[:, :-1]], dim=1)
        new_state = hx if self.cell == "lstm" else (hx,)
        return self.output(previous), tuple(new_state)

    def project(self, state, delta):
        return self.output(state[0][-1])
