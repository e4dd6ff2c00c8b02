"""A direct read of a user's last events, biased by how long ago each happened before the query.

A recurrent state of 64 units has to compress a history; on logs where people come back to what
they had an hour or a week ago, the model also needs to see those events one by one. This module
lets a query attend to the vectors of the last ``window`` events, with a learned bias per head for
each event's distance (0 = the latest) and for the log2-bucketed seconds from the event to the
moment of the query (TiSASRec's and HSTU's time biases, read at the request time). A learned
*sink* slot is always there, so a user without events reads nothing, and a query may choose to.

The last ``window`` events' vectors and times are carried in the state, so a history read in
windows of any size, or one event at a time in serving, gives the same result as read at once;
the state is bounded (``window`` slots), not the history.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import State

TIME_BUCKETS = 40  # floor(log2(1 + seconds)): 0 s, 1 s, 2-3 s, ... up to 2^39 s
SECONDS_PER_UNIT = 3600.0  # Δt arrives in the run's unit, hours by default, as SASRec reads it


class RecentEvents(nn.Module):
    """Multi-head attention from queries over the last ``window`` events before each of them.
    (A model without Δt passes zero gaps: every elapsed time is then 0, the time bias a constant.)"""

    def __init__(self, width: int, heads: int, window: int, dropout: float):
        super().__init__()
        if width % heads:
            raise ValueError(f"embedding_size ({width}) must be divisible by attention_heads ({heads})")
        self.width, self.heads, self.window = width, heads, window
        self.norm = nn.LayerNorm(width)
        self.query = nn.Linear(width, width)
        self.key_value = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.sink = nn.Parameter(torch.zeros(heads, width // heads))
        self.position_bias = nn.Parameter(torch.zeros(heads, window))
        self.time_bias = nn.Parameter(torch.zeros(heads, TIME_BUCKETS))
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, batch_size: int, device=None) -> State:
        """(items (1, B, L) as floats, 0 = empty slot; their times relative to the latest (1, B, L);
        their vectors (1, B, L * D))."""
        slots = torch.zeros(1, batch_size, self.window, device=device)
        return slots, slots.clone(), torch.zeros(1, batch_size, self.window * self.width, device=device)

    def forward(self, queries: torch.Tensor, vectors: torch.Tensor, items: torch.Tensor, dt: torch.Tensor,
                lengths: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Reads (B, T, D) for ``queries`` (B, T, D), query j made at event j from the events before
        it; ``vectors`` (B, T, D) are the window's events as slots. Returns the reads and the state
        after each row's last real event."""
        context, context_times, memory = state
        batch, steps = items.shape
        window = self.window
        tokens = torch.cat([context[0].long(), items], dim=1)  # (B, L + T)
        times = torch.cat([context_times[0], context_times[0, :, -1:] + dt.float().cumsum(1)], dim=1)
        slots = torch.cat([memory[0].view(batch, window, self.width).to(vectors.dtype), vectors], dim=1)
        query_at = window + torch.arange(steps, device=items.device)  # query j's position among slots
        distance = query_at[:, None] - 1 - torch.arange(window + steps, device=items.device)[None, :]
        allowed = (distance >= 0) & (distance < window) & (tokens > 0)[:, None, :]  # (B, T, L + T)
        elapsed = times[:, window:, None] - times[:, None, :]  # (B, T, L + T)
        bias = self._bias(distance.clamp(0, window - 1).expand(batch, -1, -1), elapsed)
        reads = self._attend(queries, slots, bias.masked_fill(~allowed.unsqueeze(1), float("-inf")))
        return reads, self._next_state(tokens, times, slots, lengths)

    def project(self, query: torch.Tensor, state: State, delta: torch.Tensor) -> torch.Tensor:
        """(B, D) read for ``query`` (B, D) at ``delta`` (B,) after each user's last event."""
        context, context_times, memory = state
        batch = query.shape[0]
        distance = torch.arange(self.window - 1, -1, -1, device=query.device).expand(batch, 1, -1)
        elapsed = (delta.reshape(batch, 1).float() - context_times[0]).unsqueeze(1)  # (B, 1, L)
        bias = self._bias(distance, elapsed)
        bias = bias.masked_fill(~(context[0] > 0)[:, None, None, :], float("-inf"))
        slots = memory[0].view(batch, self.window, self.width).to(query.dtype)
        return self._attend(query.unsqueeze(1), slots, bias)[:, 0]

    def _bias(self, distance: torch.Tensor, elapsed: torch.Tensor) -> torch.Tensor:
        """(B, heads, Q, S) learned bias by distance (B, Q, S) and elapsed time (B, Q, S) in Δt units."""
        seconds = (elapsed.clamp(min=0) * SECONDS_PER_UNIT).double()
        bucket = (torch.frexp(seconds + 1.0).exponent - 1).clamp(0, TIME_BUCKETS - 1)
        return (self.position_bias[:, distance] + self.time_bias[:, bucket]).permute(1, 0, 2, 3)

    def _attend(self, queries: torch.Tensor, slots: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Attention of (B, Q, D) queries over (B, S, D) slots plus the sink, with (B, heads, Q, S) bias."""
        batch, count, width = queries.shape
        head = width // self.heads
        q = self.query(queries).view(batch, count, self.heads, head).transpose(1, 2)
        k, v = self.key_value(self.norm(slots)).view(batch, -1, 2, self.heads, head).permute(2, 0, 3, 1, 4)
        scale = 1.0 / math.sqrt(head)
        logits = torch.cat([(q @ k.transpose(-1, -2)) * scale + bias.to(q.dtype),
                            (q * self.sink.to(q.dtype)[None, :, None, :]).sum(-1, keepdim=True) * scale], dim=-1)
        weights = self.dropout(torch.softmax(logits, dim=-1))[..., :-1]  # the sink's value is 0
        read = (weights @ v).transpose(1, 2).reshape(batch, count, width)
        return self.out(read)

    def _next_state(self, tokens, times, slots, lengths) -> State:
        """The last ``window`` slots ending at each row's last real event."""
        index = lengths[:, None] + torch.arange(self.window, device=tokens.device)
        context_times = times.gather(1, index)
        vectors = slots.gather(1, index.unsqueeze(-1).expand(-1, -1, self.width))
        return (tokens.gather(1, index).unsqueeze(0).float(), (context_times - context_times[:, -1:]).unsqueeze(0),
                vectors.flatten(1).unsqueeze(0).float())
