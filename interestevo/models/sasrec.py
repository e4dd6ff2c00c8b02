"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over a user's last items, with the
same item representation, scoring and loss as the recurrent models; and its time-interval-aware
variant in the spirit of TiSASRec (Li et al., WSDM 2020)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .base import SequenceRecommender, State
from .config import ModelConfig

# Time intervals between two events are bucketed on a log2 scale of seconds: 0, 1, 2-3, 4-7 s, ...
TIME_BUCKETS = 32


class SASRec(SequenceRecommender):
    """Every event attends to itself and the ``max_history - 1`` events before it (the last
    ``max_history`` items, as in SASRec), in each of ``attention_layers`` post-norm transformer
    blocks; the interest at event j is the output at event j − 1.

    Made for whole histories read in windows and for O(1) serving: each block's inputs for the
    last ``max_history`` events are carried in the state (as Transformer-XL carries its memory),
    so reading a history in windows of any size, one event at a time included, gives exactly the
    result of reading it at once. Positions are therefore learned *relative* ones, a bias per head
    and distance (0 = the event itself), not absolute embeddings, whose meaning would shift as the
    window slides.

    ``use_time=True`` is the time-aware variant: a learned bias per head and log2-bucketed time
    interval between the two events (TiSASRec's idea, as an attention bias).
    """

    def __init__(self, num_items: int, config: ModelConfig, item_categories: torch.Tensor | None = None,
                 use_time: bool = False, text=None):
        super().__init__(num_items, config.embedding_size, item_categories, text, config.id_dropout,
                         item_activity=config.item_activity, repeat_scores=config.repeat_scores)
        self.uses_time = use_time
        self.encoder = AttentionEncoder(config, use_time)
        self._register_load_state_dict_pre_hook(_moved_into_encoder)

    def initial_state(self, batch_size: int, device=None) -> State:
        return self.encoder.initial_state(batch_size, device)

    def forward(self, items, dt, lengths, state):
        outputs, new_state = self.encoder(self.items(items), items, dt, lengths, state)
        return self.encoder.previous(outputs, state), new_state

    def project(self, state, delta):
        return self.encoder.latest(state)


def _moved_into_encoder(state_dict, prefix, *_):
    """Checkpoints written before the encoder was a module of its own still load."""
    for key in [k for k in state_dict if k.startswith(tuple(prefix + p for p in ENCODER_PARTS))]:
        state_dict[prefix + "encoder." + key[len(prefix):]] = state_dict.pop(key)


ENCODER_PARTS = ("position_bias", "time_bias", "input_norm.", "blocks.")


class AttentionEncoder(nn.Module):
    """SASRec's encoder: ``attention_layers`` causal post-norm transformer blocks over the last
    ``max_history`` events' vectors, with each block's inputs for them carried in the state."""

    def __init__(self, config: ModelConfig, use_time: bool):
        super().__init__()
        width, heads = config.embedding_size, config.attention_heads
        if width % heads:
            raise ValueError(f"embedding_size ({width}) must be divisible by attention_heads ({heads})")
        self.width, self.heads, self.max_history = width, heads, config.max_history
        self.position_bias = nn.Parameter(torch.zeros(heads, config.max_history))
        self.time_bias = nn.Parameter(torch.zeros(heads, TIME_BUCKETS)) if use_time else None
        self.input_norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(config.attention_dropout)
        self.blocks = nn.ModuleList(_Block(width, heads, config.attention_dropout)
                                    for _ in range(config.attention_layers))

    def initial_state(self, batch_size: int, device=None) -> State:
        """(last items (1, B, L), their times relative to the last event (1, B, L), each block's
        inputs for them (blocks, B, L * D), the latest output (1, B, D)); item 0: no event."""
        history = torch.zeros(1, batch_size, self.max_history, device=device)
        memory = torch.zeros(len(self.blocks), batch_size, self.max_history * self.width, device=device)
        return (history, history.clone(), memory, torch.zeros(1, batch_size, self.width, device=device))

    def forward(self, vectors, items, dt, lengths, state):
        """(B, T, D) outputs at each event of the window (``vectors`` (B, T, D) its items' vectors)
        and the state after each row's last real event."""
        context, context_times, memory, _ = state
        batch, steps = items.shape
        tokens = torch.cat([context[0].long(), items], dim=1)  # (B, L + T)
        times = torch.cat([context_times[0], context_times[0, :, -1:] + dt.float().cumsum(1)], dim=1)
        memory = memory.view(len(self.blocks), batch, self.max_history, self.width)
        bias = self._attention_bias(tokens, times)
        x = self.dropout(self.input_norm(vectors))
        inputs = []
        for block, remembered in zip(self.blocks, memory):
            keys = torch.cat([remembered.to(x.dtype), x], dim=1)
            inputs.append(keys)
            x = block(x, keys, bias)
        return x, self._next_state(tokens, times, inputs, x, lengths)

    @staticmethod
    def previous(outputs, state):
        """(B, T, D): at each event, the output at the event before it (the carried one first)."""
        return torch.cat([state[3][0].unsqueeze(1).to(outputs.dtype), outputs[:, :-1]], dim=1)

    @staticmethod
    def latest(state):
        """(B, D) the output at each row's last event."""
        return state[3][0]

    def _attention_bias(self, tokens, times):
        """(B, heads, T, L + T) additive bias of the new events over the remembered and new ones:
        -inf outside the window of max_history events and on empty slots, else the learned
        position (and time interval) bias."""
        span, steps = tokens.shape[1], tokens.shape[1] - self.max_history
        query_pos = torch.arange(self.max_history, span, device=tokens.device)
        distance = query_pos[:, None] - torch.arange(span, device=tokens.device)[None, :]
        allowed = (distance >= 0) & (distance < self.max_history) & (tokens > 0)[:, None, :]
        # A query past a row's length (padding) still attends to itself, so that softmax stays finite.
        allowed = allowed | (distance == 0)
        bias = self.position_bias[:, distance.clamp(0, self.max_history - 1)].unsqueeze(0)
        if self.time_bias is not None:
            # Δt is in the run's unit, hours by default: buckets are then log2 of seconds.
            gap = (times[:, self.max_history:, None] - times[:, None, :]).abs() * 3600.0
            bucket = torch.log2(gap + 1.0).floor().clamp(0, TIME_BUCKETS - 1).long()
            bias = bias + self.time_bias[:, bucket].permute(1, 0, 2, 3)
        return bias.masked_fill(~allowed.unsqueeze(1), float("-inf"))

    def _next_state(self, tokens, times, inputs, out, lengths) -> State:
        """Everything about the last max_history slots ending at each row's last real event."""
        index = lengths[:, None] + torch.arange(self.max_history, device=tokens.device)
        context = tokens.gather(1, index)
        context_times = times.gather(1, index)
        context_times = context_times - context_times[:, -1:]
        wide = index.unsqueeze(-1).expand(-1, -1, self.width)
        memory = torch.stack([keys.gather(1, wide).flatten(1) for keys in inputs])
        last = out.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, out.shape[2]))[:, 0]
        return (context.unsqueeze(0).float(), context_times.unsqueeze(0), memory.float(),
                last.unsqueeze(0).float())


class _Block(nn.Module):
    """Post-norm transformer block (as RecBole's SASRec): attention, then a GELU feed-forward."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.attention_dropout = dropout
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.feed_forward = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, keys, bias):
        """x (B, T, D): the new events; keys (B, L + T, D): the remembered and the new events."""
        batch, steps, width = x.shape
        split = (self.heads, width // self.heads)
        q = F.linear(x, self.qkv.weight[:width], self.qkv.bias[:width]).view(batch, steps, *split)
        k, v = F.linear(keys, self.qkv.weight[width:], self.qkv.bias[width:]).view(batch, -1, 2, *split).unbind(2)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  attn_mask=bias.to(q.dtype),
                                                  dropout_p=self.attention_dropout if self.training else 0.0)
        attended = attended.transpose(1, 2).reshape(batch, steps, width)
        x = self.norm1(x + self.dropout(self.proj(attended)))
        return self.norm2(x + self.dropout(self.feed_forward(x)))

